"""No silent CPU fallback: a job holding GPUs without CUDA stops in one line; bf16 only where
the GPU supports it (CPU torch here: CUDA is faked where a test needs it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rmselect import device as D

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    for k in (D.ENV_GPUS, D.ENV_JOB, D.ENV_ALLOW_CPU):
        monkeypatch.delenv(k, raising=False)
    D._warned.clear()


def test_cpu_job_runs_on_cpu():
    assert not torch.cuda.is_available()  # this machine: a CPU build of torch
    assert D.pick_device().type == "cpu" and D.pick_device("auto").type == "cpu"
    assert D.pick_device(gpus=0).type == "cpu"


def test_job_holding_gpus_without_cuda_stops_in_one_line(monkeypatch):
    monkeypatch.setenv(D.ENV_GPUS, "2")
    monkeypatch.setenv(D.ENV_JOB, "train_rm.py --out results/rm/bt/m/lr1e-05")
    with pytest.raises(D.NoCudaError) as err:
        D.pick_device()
    msg = str(err.value)
    assert "\n" not in msg
    assert "job train_rm.py --out results/rm/bt/m/lr1e-05" in msg and "holds 2 GPU(s)" in msg
    assert f"torch {torch.__version__}" in msg and "CUDA none" in msg  # torch.version.cuda
    with pytest.raises(D.NoCudaError, match="holds 1 GPU"):
        D.pick_device("cuda", gpus=0)  # asking for cuda is holding one
    assert D.pick_device("cpu").type == "cpu"  # an explicit CPU choice is obeyed


def test_allow_cpu_turns_the_stop_into_one_warning(monkeypatch, capsys):
    monkeypatch.setenv(D.ENV_GPUS, "1")
    monkeypatch.setenv(D.ENV_ALLOW_CPU, "1")
    assert D.pick_device().type == "cpu"
    assert D.pick_device().type == "cpu"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: job ") and "holds 1 GPU(s)" in err[0]


def test_job_name_from_the_command():
    assert D.describe_command(["/v/bin/python", "workflow/scripts/eval_rm.py", "--rm", "x",
                               "--out", "results/eval/m.json"]) == "eval_rm.py --out results/eval/m.json"
    assert D.describe_command(["python", "-m", "pkg.mod", "--name", "m1"]) == "pkg.mod --name m1"
    assert D.job_name(["t.py"], env={D.ENV_JOB: "given"}) == "given"


def _fake_cuda(monkeypatch, bf16: bool):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "Tesla V100")


def test_precision_auto_is_bf16_only_where_supported(monkeypatch, capsys):
    from rmselect.hf import default_dtype
    from rmselect.rm.train import train_dtype

    assert not D.use_bf16("auto", cuda=False) and D.use_bf16("bf16", cuda=False)
    assert not D.use_bf16("fp32", cuda=True)
    _fake_cuda(monkeypatch, bf16=True)
    assert D.use_bf16("auto", cuda=True) and train_dtype("auto", True) == torch.bfloat16
    assert default_dtype() == torch.bfloat16
    assert capsys.readouterr().err == ""
    _fake_cuda(monkeypatch, bf16=False)  # a V100: CUDA without bf16
    assert train_dtype("auto", True) == torch.float32 and default_dtype() == torch.float32
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["warning: precision auto: this GPU does not support bf16 (Tesla V100); using fp32"]
    with pytest.raises(ValueError, match="precision"):
        D.use_bf16("fp16", cuda=True)


def test_entry_points_stop_before_loading(monkeypatch, tmp_path):
    """The scorer, presence and probe ask pick_device before touching the model."""
    from rmselect.eval.scorer import load_reward_model
    from rmselect.presence import score as presence
    from rmselect.probe import score as probe

    monkeypatch.setenv(D.ENV_GPUS, "1")
    with pytest.raises(D.NoCudaError):
        load_reward_model(tmp_path / "no-such-rm")
    with pytest.raises(D.NoCudaError):
        presence.main(["--model", str(tmp_path / "m"), "--name", "m",
                       "--corpus", str(tmp_path / "c.parquet"), "--out",
                       str(tmp_path / "o.parquet"), "--meta", str(tmp_path / "o.json")])
    with pytest.raises(D.NoCudaError):
        probe.main(["--model", str(tmp_path / "m"), "--name", "m", "--data",
                    json.dumps({"path": "unread.jsonl"}), "--out", str(tmp_path / "o.json")])


def test_trainer_behind_the_launcher_stops_at_start(tmp_path):
    """launch.py --gpus 1 on a fake 1-GPU machine, CPU torch: the rank exits at start
    (runtime.start) with the one line, before it reads any data."""
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "PYTHONPATH": str(REPO / "workflow"), "OMP_NUM_THREADS": "1",
        "RMSELECT_GPU_IDS": "0", "RMSELECT_GPU_LOCK_DIR": str(tmp_path / "locks"),
        "DS_ACCELERATOR": "cpu",
    }
    proc = subprocess.run(
        [sys.executable, "workflow/scripts/launch.py", "--nproc", "auto", "--gpus", "1", "--",
         "python", "workflow/scripts/train_rm.py", "--model", "nowhere", "--objective", "bt",
         "--lr", "1e-5", "--out", str(tmp_path / "run"), "--train-data", "{}", "--val-data", "{}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode != 0
    line = next(ln for ln in proc.stderr.splitlines() if "sees no CUDA device" in ln)
    assert f"job train_rm.py --out {tmp_path / 'run'}: holds 1 GPU(s)" in line
    assert f"torch {torch.__version__}" in line
