"""DeepSpeed optimizer and parameter offload (``rm.offload``) for GPUs too small for a model.

The ds_config the trainer builds, the thread count offloading ranks get, and (slow) tiny
CPU runs under DS_ACCELERATOR=cpu that train with offload to the same numbers as without.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from rmselect import runtime
from rmselect.rm import run_config as RC

BASE = dict(global_batch=64, micro_batch=2, accumulation=4, grad_clip=1.0, bf16=True)


def test_ds_config_without_offload_has_no_offload_section():
    for stage in (0, 1, 2, 3):
        zero = runtime.ds_config(**BASE, zero_stage=stage)["zero_optimization"]
        assert "offload_optimizer" not in zero and "offload_param" not in zero
        assert zero["stage"] == stage


def test_ds_config_optimizer_offload_from_zero1_and_param_offload_at_zero3():
    for stage in (1, 2, 3):
        conf = runtime.ds_config(**BASE, zero_stage=stage, offload="optimizer", pin_memory=True)
        zero = conf["zero_optimization"]
        assert zero["offload_optimizer"] == {"device": "cpu", "pin_memory": True}
        assert "offload_param" not in zero
    conf = runtime.ds_config(**BASE, zero_stage=3, offload="param", pin_memory=False)
    zero = conf["zero_optimization"]
    assert zero["offload_param"] == {"device": "cpu", "pin_memory": False}
    assert zero["offload_optimizer"] == {"device": "cpu", "pin_memory": False}
    assert zero["stage3_gather_16bit_weights_on_model_save"] is True  # export still whole
    assert (conf["train_batch_size"], conf["train_micro_batch_size_per_gpu"],
            conf["gradient_accumulation_steps"]) == (64, 2, 4)


@pytest.mark.parametrize("offload, stage", [("param", 2), ("param", 0), ("optimizer", 0),
                                            ("disk", 3)])
def test_an_offload_the_stage_cannot_do_is_an_error_not_a_silent_no_op(offload, stage):
    with pytest.raises(ValueError, match="offload"):
        runtime.ds_config(**BASE, zero_stage=stage, offload=offload)
    with pytest.raises(ValueError, match="offload"):
        RC.check_offload(offload, stage)


def test_trainer_passes_its_offload_to_the_ds_config(monkeypatch):
    from rmselect.rm import train

    monkeypatch.setattr(train, "use_bf16", lambda precision, cuda: True)  # no GPU here

    args = train.build_parser().parse_args([
        "--model", "m", "--objective", "bt", "--lr", "1e-5", "--out", "x",
        "--train-data", "{}", "--val-data", "{}", "--zero-stage", "3", "--offload", "param",
        "--global-batch", "8", "--micro-batch", "1"])
    cfg = RC.run_config(args, 0, 1)
    zero = train.ds_config(cfg, 8, cuda=True)["zero_optimization"]
    assert zero["offload_param"]["pin_memory"] is True and "offload_optimizer" in zero
    args.zero_stage = 2
    with pytest.raises(ValueError, match="ZeRO stage >= 3"):
        RC.run_config(args, 0, 1)


def test_offloading_ranks_get_the_jobs_cpus_per_rank(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert runtime.cpus_per_rank() == 8  # 8 GPUs x 8 cores of a SLURM node
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert runtime.cpus_per_rank() == 64  # a one-GPU workstation: every core
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "128")
    assert runtime.cpus_per_rank() == 1


def test_set_cpu_threads_sets_torch_and_openmp(monkeypatch):
    import torch

    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    try:
        runtime.set_cpu_threads(2)
        assert os.environ["OMP_NUM_THREADS"] == "2" and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------- tiny runs


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from support import tiny_rm

    root = tmp_path_factory.mktemp("offload")
    tiny_rm.make_model(root / "base", arch="llama", hidden=32, layers=2, heads=4, pad_is_eos=True)
    tiny_rm.write_preference_data(root / "pref.jsonl", 128, 32)
    return root


def _train(root: Path, out: Path, stage: int, offload: str) -> dict:
    from rmselect.rm import train

    pref = json.dumps({"path": str(root / "pref.jsonl")})
    assert train.main([
        "--model", str(root / "base"), "--objective", "bt", "--lr", "0.002", "--out", str(out),
        "--train-data", pref, "--val-data", pref, "--global-batch", "16", "--micro-batch", "8",
        "--warmup-steps", "2", "--eval-every", "4", "--max-length", "64", "--seed", "3",
        "--log-every", "100", "--zero-stage", str(stage), "--offload", offload]) == 0
    run = json.loads((out / "run.json").read_text())
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return {"evals": [(e["step"], e["val_accuracy"]) for e in run["evals"]],
            "loss": [r["loss"] for r in rows if "loss" in r], "offload": run["config"]["offload"]}


@pytest.mark.slow
@pytest.mark.parametrize("stage, offload", [(2, "optimizer"), (3, "param")])
def test_cpu_run_with_offload_trains_like_without(setup, tmp_path, stage, offload):
    """Under DS_ACCELERATOR=cpu (the trainer's CPU default) the offloaded run trains the
    same examples to the same losses and validation accuracies as the plain one."""
    ref = _train(setup, tmp_path / "plain", stage, "none")
    got = _train(setup, tmp_path / offload, stage, offload)
    assert got["offload"] == offload and len(got["loss"]) == 8
    np.testing.assert_allclose(got["loss"], ref["loss"], rtol=1e-4, atol=1e-5)
    assert got["evals"] == ref["evals"]
    assert got["loss"][-1] < got["loss"][0]
