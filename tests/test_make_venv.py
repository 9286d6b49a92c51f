"""The GPU set-up path: `make venv TORCH=cu128` installs the CUDA build of the pinned torch
from the PyTorch index (dry run: `make -n`, nothing is installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")


def _plan(venv: Path, *args: str) -> list[str]:
    out = subprocess.run(["make", "-n", "venv", f"VENV={venv}", *args], cwd=REPO,
                         capture_output=True, text=True, check=True, timeout=60)
    return [ln for ln in out.stdout.splitlines() if "pip install" in ln or ln.startswith("touch")]


def _torch_line(lines: list[str]) -> str:
    return next(ln for ln in lines if " torch==" in ln)


def test_cuda_venv_installs_the_cuda_build_from_the_pytorch_index(tmp_path):
    lines = _plan(tmp_path / "v", "TORCH=cu128", "FLASH_ATTN=1")
    torch = _torch_line(lines)
    assert "torch==2.13.0+cu128" in torch  # the CUDA build, not the CPU pin
    assert "--index-url https://download.pytorch.org/whl/cu128" in torch
    assert not any(ln.rstrip().endswith("torch==2.13.0") for ln in lines)
    assert any("flash-attn" in ln for ln in lines)
    assert lines[-1] == f"touch {tmp_path / 'v'}/.installed-cu128"


def test_cpu_venv_keeps_the_cpu_pin_and_a_cuda_venv_remembers_its_build(tmp_path):
    lines = _plan(tmp_path / "v")
    assert _torch_line(lines).rstrip().endswith("torch==2.13.0")
    assert not any("download.pytorch.org" in ln or "flash-attn" in ln for ln in lines)
    cuda = tmp_path / "c"
    cuda.mkdir()
    (cuda / ".installed-cu126").touch()  # set up earlier with TORCH=cu126, and up to date
    out = subprocess.run(["make", "-n", "test-fast", f"VENV={cuda}"], cwd=REPO,
                         capture_output=True, text=True, check=True, timeout=60).stdout
    assert "torch==" not in out  # a plain make target does not reinstall CPU torch over it
