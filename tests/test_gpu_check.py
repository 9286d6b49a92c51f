"""bench/gpu_check.py, the first-GPU check, runs end to end on CPU with a tiny config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_peak_table_and_memory_hook():
    sys.path.insert(0, str(REPO / "bench"))
    import gpu_check

    assert gpu_check.peak_tflops("NVIDIA H100 80GB HBM3") == pytest.approx(989.4)
    assert gpu_check.peak_tflops("NVIDIA H100 PCIe") == pytest.approx(756.0)
    assert gpu_check.peak_tflops("NVIDIA H200") == pytest.approx(989.4)
    assert gpu_check.peak_tflops("NVIDIA A100-SXM4-80GB") == pytest.approx(312.0)
    assert gpu_check.peak_tflops("NVIDIA RTX A6000") == pytest.approx(154.8)
    assert gpu_check.peak_tflops("Tesla T4") is None
    # the ~1B shape is about 1B parameters (Llama-3.2-1B's trunk, 32k vocabulary)
    h, layers, heads, kv, ffn, vocab = gpu_check.SHAPES["1b"]
    per_layer = h * h * (2 + 2 * kv / heads) + 3 * h * ffn
    assert 0.9e9 < layers * per_layer + 2 * vocab * h < 1.2e9


@pytest.mark.slow
def test_gpu_check_passes_on_cpu_with_a_tiny_config(tmp_path):
    out = tmp_path / "gc.json"
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check.py"), "--device",
                           "cpu", "--json", str(out)], capture_output=True, text=True,
                          timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())
    checks = res["checks"]
    assert checks["packed == padded rewards (sdpa)"] == "PASS"
    assert checks["scorer: same rewards as the naive loop (CPU; speed is judged on GPUs)"] == "PASS"
    assert checks["train MFU >= 40%"] == "SKIP"  # no CPU peak
    assert res["train"]["ours"]["tokens_per_s"] > 0 and res["train"]["trl"]["tokens_per_s"] > 0
    assert res["train"]["ours"]["padding_fraction"] < res["train"]["trl"]["padding_fraction"]
    assert res["scorer"]["max_diff"] <= 1e-5
    lines = [ln for ln in proc.stdout.splitlines() if ln.split(" ")[0] in ("PASS", "FAIL", "SKIP")]
    assert len(lines) == len(checks) and not any(ln.startswith("FAIL") for ln in lines)
