"""End-to-end RM training on a tiny local model: learning, selection, resume, multi-rank ZeRO.

Single-rank runs call the trainer in-process (one process group, no launch cost); the
multi-rank and kill tests start real processes (torchrun, SIGKILL) and are marked slow.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from rmselect.rm import data as D
from rmselect.rm import model as M
from rmselect.rm import select, train
from support import tiny_rm

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("rmtrain")
    tiny_rm.make_model(root / "base", arch="llama", hidden=32, layers=2, heads=4, pad_is_eos=True)
    tiny_rm.write_preference_data(root / "pref.jsonl", 256, 64, ties=4)
    tiny_rm.write_rated_data(root / "hs2.jsonl", 192)
    return root


def _args(root: Path, out: Path, objective="bt", **kw) -> list[str]:
    opts = {
        "--model": str(root / "base"), "--objective": objective, "--lr": "0.002",
        "--out": str(out),
        "--train-data": json.dumps({"path": str(root / ("pref.jsonl" if objective == "bt" else "hs2.jsonl"))}),
        "--val-data": json.dumps({"path": str(root / "pref.jsonl")}),
        "--global-batch": "16", "--micro-batch": "8", "--epochs": "1", "--warmup-steps": "2",
        "--eval-every": "4", "--max-length": "64", "--seed": "3", "--log-every": "100",
        "--merge-grid-step": "0.25",
    }
    opts.update({k: str(v) for k, v in kw.items() if v is not None})
    return [x for k, v in opts.items() for x in (k, v)]


def _metrics(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


@torch.no_grad()
def _plain_hf_pair_scores(ckpt: Path, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """Validation rewards computed with plain transformers from a saved checkpoint."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(ckpt))
    model = AutoModelForSequenceClassification.from_pretrained(str(ckpt)).eval()
    pairs = D.load_pairs({"path": str(root / "pref.jsonl")}, "validation")
    out = []
    for side in ("chosen", "rejected"):
        texts = [tok.apply_chat_template([{"role": "user", "content": p.prompt},
                                          {"role": "assistant", "content": getattr(p, side)}],
                                         tokenize=False) for p in pairs]
        ids = D.encode_rendered(tok, texts, max_length=64)
        enc = tok.pad({"input_ids": ids}, padding=True, return_tensors="pt")
        out.append(model(**enc).logits.double().numpy())
    return out[0], out[1]


def test_bt_learns_exports_and_selects(setup, tmp_path):
    out = tmp_path / "lr"
    assert train.main(_args(setup, out)) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["batch"] == "8 x 2 x 1 = 16" and run["steps"] == 16
    assert [e["step"] for e in run["evals"]] == [4, 8, 12, 16]
    assert run["best"]["val_accuracy"] >= 0.85  # chance is 0.5; measured 1.0
    assert run["padding_fraction"] <= 0.05
    rows = _metrics(out)
    steps = [r for r in rows if "loss" in r]
    assert len(steps) == 16 and steps[-1]["loss"] < steps[0]["loss"]
    assert steps[0]["lr"] == pytest.approx(0.001) and steps[5]["lr"] == pytest.approx(0.002)
    assert {"tokens_per_s", "padding_fraction", "max_mem_mb"} <= set(steps[0])
    assert not (out / "ds").exists()  # optimizer state removed after a finished run

    sel = tmp_path / "selected.json"
    assert select.main(["--runs", str(out / "run.json"), "--model-name", "tiny",
                        "--objective", "bt", "--final", str(tmp_path / "final"),
                        "--selected", str(sel)]) == 0
    chosen = json.loads(sel.read_text())
    assert chosen["val_accuracy"] == run["best"]["val_accuracy"]
    assert chosen["step"] == run["best"]["step"]
    # Plain transformers on final/ reproduces the trainer's validation accuracy.
    c, r = _plain_hf_pair_scores(tmp_path / "final", setup)
    assert c.shape[1] == 1
    assert float(np.mean(c[:, 0] > r[:, 0])) == chosen["val_accuracy"]


@pytest.mark.parametrize("zero", [0, 3])
def test_bf16_run_exports_an_fp32_head(setup, tmp_path, zero):
    """A bf16 run (CPU: bf16 weights trained directly) saves the head in fp32: kept in fp32
    (ZeRO-0), or from ZeRO-3's fp32 partitions (one dtype per partition buffer)."""
    from safetensors import safe_open

    out = tmp_path / "bf16"
    assert train.main(_args(setup, out, **{"--precision": "bf16", "--eval-every": "16",
                                           "--zero-stage": str(zero)})) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["dtype"] == "bfloat16" and run["best"]["val_accuracy"] >= 0.75
    with safe_open(str(Path(run["checkpoints"][-1]) / "model.safetensors"), framework="pt") as fh:
        assert fh.get_tensor("score.weight").dtype == torch.float32
        assert fh.get_tensor("model.embed_tokens.weight").dtype == torch.bfloat16


def test_regression_merge_weights_selected(setup, tmp_path):
    out = tmp_path / "lr"
    assert train.main(_args(setup, out, "regression", **{"--epochs": 2, "--eval-every": 6})) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["steps"] == 2 * (192 // 16) and [e["step"] for e in run["evals"]] == [6, 12, 18, 24]
    assert all(Path(e["val_preds"]).exists() for e in run["evals"])
    assert len(run["evals"][-1]["weights"]) == 5
    sel = tmp_path / "selected.json"
    assert select.main(["--runs", str(out / "run.json"), "--model-name", "tiny",
                        "--objective", "regression", "--final", str(tmp_path / "final"),
                        "--selected", str(sel), "--merge-grid-step", "0.1"]) == 0
    chosen = json.loads(sel.read_text())
    w = np.array(chosen["weights"])
    assert w[4] <= 0 and (w[:4] >= 0).all()
    assert chosen["val_accuracy"] >= 0.75  # the merged score beats chance (0.5)
    meta = json.loads((tmp_path / "final" / "rmselect.json").read_text())
    assert meta["weights"] == chosen["weights"]
    c, r = _plain_hf_pair_scores(tmp_path / "final", setup)
    assert c.shape[1] == 5
    assert float(np.mean((c - r) @ w > 0)) == pytest.approx(chosen["val_accuracy"])


def _select_json(runs: list[Path], objective: str, out: Path, step: str) -> dict:
    sel = out / "selected.json"
    assert select.main(["--runs", *map(str, runs), "--model-name", "tiny",
                        "--objective", objective, "--final", str(out / "final"),
                        "--selected", str(sel), "--merge-grid-step", step]) == 0
    return json.loads(sel.read_text())


def _dir_bytes(d: Path) -> int:
    return sum(f.stat().st_size for f in d.rglob("*") if f.is_file())


@pytest.mark.parametrize("objective", ["bt", "regression"])
def test_a_run_keeps_one_hf_checkpoint_and_selection_is_unchanged(setup, tmp_path, objective):
    """The same runs (two learning rates) trained keeping every checkpoint (the old
    behaviour) and keeping the best one: the selection picks the same (lr, step, weights),
    ranks every point alike, and final/ holds the same weights; each run keeps one HF dir
    (its best point) and every point's predictions, and no DeepSpeed state."""
    from safetensors.torch import load_file

    kw = {"--eval-every": 4, "--merge-grid-step": "0.25"}  # = the selection's grid below
    if objective == "regression":
        kw["--epochs"] = 1
    picks = {}
    for keep in (0, 1):
        root = tmp_path / f"keep{keep}"
        runs = []
        for lr in ("0.002", "0.0005"):
            out = root / f"lr{lr}"
            assert train.main(_args(setup, out, objective, **kw, **{
                "--lr": lr, "--keep-checkpoints": keep})) == 0
            runs.append(out / "run.json")
        picks[keep] = _select_json(runs, objective, root, "0.25")
        picks[keep]["weights_file"] = load_file(str(root / "final" / "model.safetensors"))
        picks[keep]["runs"] = [json.loads(r.read_text()) for r in runs]
    every, best = picks[0], picks[1]
    assert (best["lr"], best["step"], best["val_accuracy"], best["weights"]) == (
        every["lr"], every["step"], every["val_accuracy"], every["weights"])
    assert best["unkept_best"] is None
    drop = ("kept", "checkpoint")
    assert [{k: v for k, v in c.items() if k not in drop} for c in best["candidates"]] == [
        {k: v for k, v in c.items() if k not in drop} for c in every["candidates"]]
    wa, wb = every["weights_file"], best["weights_file"]
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    for run in best["runs"]:
        out = Path(run["evals"][0]["checkpoint"]).parents[1]
        n = len(run["evals"])
        assert n >= 3
        assert sorted(p.name for p in (out / "ckpt").iterdir()) == [f"step{run['best']['step']}"]
        assert run["checkpoints"] == [str(out / "ckpt" / f"step{run['best']['step']}")]
        assert len(list((out / "val_preds").glob("step*.parquet"))) == n
        assert not (out / "ds").exists()
        one = _dir_bytes(out / "ckpt")
        assert one < _dir_bytes(out) < one + 100_000  # one checkpoint + small files
    for run in every["runs"]:
        out = Path(run["evals"][0]["checkpoint"]).parents[1]
        assert len(list((out / "ckpt").iterdir())) == len(run["evals"])


def test_deepspeed_state_is_saved_on_the_clock_and_not_at_the_end(setup, tmp_path, capsys):
    out = tmp_path / "every"
    assert train.main(_args(setup, out, **{"--ds-save-minutes": 0})) == 0
    saved = [ln for ln in capsys.readouterr().err.splitlines() if "DeepSpeed state saved" in ln]
    assert [int(ln.split("step ")[1].split(":")[0]) for ln in saved] == list(range(1, 16))
    assert not (out / "ds").exists()  # the last step (16) saves nothing; the state is gone
    # On a 30-minute clock a short run never saves: a killed one restarts from the start.
    cut = tmp_path / "cut"
    assert train.main(_args(setup, cut, **{"--stop-after-steps": 6})) == train.STOPPED_EXIT
    assert not (cut / "ds").exists()
    assert "DeepSpeed state saved" not in capsys.readouterr().err
    assert train.main(_args(setup, cut)) == 0
    assert [r["step"] for r in _metrics(cut) if "loss" in r] == list(range(1, 17))
    # --keep-ds-checkpoint: the last step's state is written and kept
    kept = tmp_path / "kept"
    assert train.main(_args(setup, kept, **{"--ds-save-minutes": 9}) + ["--keep-ds-checkpoint"]) == 0
    assert (kept / "ds" / "latest").read_text().strip() == "step16"


def test_a_kill_between_state_saves_resumes_with_the_states_best_dir(setup, tmp_path,
                                                                    monkeypatch):
    """The state is saved at step 5 only; the run is killed after step 11. Until the next
    save, the dir the saved state counts as best stays even when a later point is better, so
    the resumed run (from step 5) finds it; the finished run keeps only its best point, with
    the same evaluations, losses and weights as an uninterrupted run."""
    from safetensors.torch import load_file

    class StepClock:  # due at step 5 of the first call only (steps counted per call)
        calls = 0

        def __init__(self, minutes):
            pass

        def due(self, rt):
            StepClock.calls += 1
            return StepClock.calls == 5

        def reset(self):
            pass

    kw = {"--eval-every": 2, "--lr": "0.0005"}
    full = tmp_path / "full"
    assert train.main(_args(setup, full, **kw)) == 0
    ref = json.loads((full / "run.json").read_text())
    out = tmp_path / "killed"
    monkeypatch.setattr(train, "SaveClock", StepClock)
    assert train.main(_args(setup, out, **kw, **{"--stop-after-steps": 11})) == train.STOPPED_EXIT
    assert (out / "ds" / "latest").read_text().strip() == "step5"
    evals = [e for e in ref["evals"] if e["step"] <= 10]
    at_save = {e["step"] for e in evals if e["step"] <= 4}
    best_at_save = min((e for e in evals if e["step"] in at_save),
                       key=lambda e: (-e["val_accuracy"], e["step"]))["step"]
    best_now = min(evals, key=lambda e: (-e["val_accuracy"], e["step"]))["step"]
    assert best_at_save != best_now  # (measured 4 and 6) else the test shows nothing
    on_disk = sorted(int(p.name[4:]) for p in (out / "ckpt").iterdir())
    assert on_disk == [best_at_save, best_now]
    StepClock.calls = 10**6  # the resumed call saves nothing more
    assert train.main(_args(setup, out, **kw)) == 0
    got = json.loads((out / "run.json").read_text())
    assert [(e["step"], e["val_accuracy"]) for e in got["evals"]] == [
        (e["step"], e["val_accuracy"]) for e in ref["evals"]]
    assert [r["loss"] for r in _metrics(out) if "loss" in r] == [
        r["loss"] for r in _metrics(full) if "loss" in r]
    best = ref["best"]["step"]
    assert [p.name for p in (out / "ckpt").iterdir()] == [f"step{best}"]
    wa = load_file(str(full / "ckpt" / f"step{best}" / "model.safetensors"))
    wb = load_file(str(out / "ckpt" / f"step{best}" / "model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_after_stop_gives_identical_results(setup, tmp_path):
    full, cut = tmp_path / "full", tmp_path / "cut"
    every = {"--keep-checkpoints": 0, "--ds-save-minutes": 0}  # all dirs; state every step
    assert train.main(_args(setup, full, **every)) == 0
    assert train.main(_args(setup, cut, **every, **{"--stop-after-steps": 10})) == train.STOPPED_EXIT
    assert (cut / "ds" / "latest").read_text().strip() == "step10"
    assert not (cut / "run.json").exists()
    assert [r["step"] for r in _metrics(cut) if "loss" in r][-1] == 10
    assert train.main(_args(setup, cut, **every)) == 0  # resumes from step 10
    a, b = (json.loads((d / "run.json").read_text()) for d in (full, cut))
    assert [(e["step"], e["val_accuracy"]) for e in a["evals"]] == [
        (e["step"], e["val_accuracy"]) for e in b["evals"]]
    la = [(r["step"], r["loss"]) for r in _metrics(full) if "loss" in r]
    lb = [(r["step"], r["loss"]) for r in _metrics(cut) if "loss" in r]
    assert la == lb  # bit-identical losses, each step logged once
    from safetensors.torch import load_file

    wa = load_file(str(full / "ckpt" / "step16" / "model.safetensors"))
    wb = load_file(str(cut / "ckpt" / "step16" / "model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_changed_settings_start_fresh(setup, tmp_path):
    out = tmp_path / "lr"
    kw = {"--stop-after-steps": 5, "--ds-save-minutes": 0}
    assert train.main(_args(setup, out, **kw)) == train.STOPPED_EXIT
    assert (out / "ds" / "latest").exists()  # a state to resume from, of other settings
    assert train.main(_args(setup, out, **{"--lr": "0.001", **kw})) == train.STOPPED_EXIT
    first = [r for r in _metrics(out) if "loss" in r]
    assert first[0]["step"] == 1 and first[0]["lr"] == pytest.approx(0.0005)


def test_global_batch_must_divide(setup, tmp_path):
    with pytest.raises(ValueError, match="not divisible"):
        train.main(_args(setup, tmp_path / "x", **{"--micro-batch": 5}))


DIST_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def _env() -> dict[str, str]:
    """A child environment without the rank variables the in-process runs set."""
    env = {k: v for k, v in os.environ.items() if k not in DIST_VARS}
    return {**env, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "workflow")}


def _torchrun(args: list[str], nproc: int) -> subprocess.CompletedProcess:
    env = _env()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", str(REPO / "workflow/scripts/train_rm.py"), *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("stage", [2, 3])
def test_two_ranks_zero_matches_one_rank(setup, tmp_path, stage):
    kw = {"--micro-batch": 4, "--zero-stage": stage, "--eval-every": 8,
          "--keep-checkpoints": 0, "--ds-save-minutes": 0}
    one = tmp_path / "one"
    assert train.main(_args(setup, one, **{**kw, "--zero-stage": 0})) == 0
    two = tmp_path / "two"
    proc = _torchrun(_args(setup, two, **kw), 2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = json.loads((two / "run.json").read_text())
    assert run["world_size"] == 2 and run["batch"] == "4 x 2 x 2 = 16"
    l1 = [r["loss"] for r in _metrics(one) if "loss" in r]
    l2 = [r["loss"] for r in _metrics(two) if "loss" in r]
    np.testing.assert_allclose(l2, l1, rtol=2e-3, atol=2e-4)  # same examples per step
    # The ZeRO-partitioned model is exported whole and scores like the one-rank model.
    c1, r1 = _plain_hf_pair_scores(one / "ckpt" / "step16", setup)
    c2, r2 = _plain_hf_pair_scores(two / "ckpt" / "step16", setup)
    np.testing.assert_allclose(c2, c1, rtol=1e-2, atol=1e-2)
    assert run["evals"][-1]["val_accuracy"] == pytest.approx(float(np.mean(c2 > r2)))


@pytest.mark.slow
def test_sigkill_then_rerun_resumes_to_identical_metrics(setup, tmp_path):
    full = tmp_path / "full"
    assert train.main(_args(setup, full, **{"--eval-every": 2})) == 0
    out = tmp_path / "killed"
    env = _env()
    cmd = [sys.executable, str(REPO / "workflow/scripts/train_rm.py"),
           *_args(setup, out, **{"--eval-every": 2, "--ds-save-minutes": 0})]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    latest = out / "ds" / "latest"
    while time.time() < deadline and proc.poll() is None:
        if latest.exists() and int(latest.read_text().strip()[4:] or 0) >= 6:
            break  # checkpoint of step 6 (or later) complete: kill mid-run
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "run.json").exists()
    assert subprocess.run(cmd, env=env, capture_output=True, timeout=600).returncode == 0
    a, b = (json.loads((d / "run.json").read_text()) for d in (full, out))
    assert [(e["step"], e["val_accuracy"]) for e in a["evals"]] == [
        (e["step"], e["val_accuracy"]) for e in b["evals"]]
    assert [r["loss"] for r in _metrics(full) if "loss" in r] == [
        r["loss"] for r in _metrics(out) if "loss" in r]


@pytest.mark.slow
def test_workstation_runs_a_larger_tier_on_fewer_ranks_same_global_batch(setup, tmp_path):
    """A job of a 4-GPU tier on a 2-GPU machine (fake slots, CPU ranks stand in): launch.py
    runs it on 2 ranks instead of exiting 75, accumulation doubles, the global batch and
    the losses are those of one rank."""
    kw = {"--micro-batch": 4, "--eval-every": 8, "--zero-stage": 2}
    one = tmp_path / "one"
    assert train.main(_args(setup, one, **{**kw, "--zero-stage": 0})) == 0
    two = tmp_path / "ws"
    env = {**_env(), "RMSELECT_GPU_IDS": "0,1", "RMSELECT_GPU_LOCK_DIR": str(tmp_path / "locks"),
           "RMSELECT_ALLOW_CPU": "1"}
    cmd = [sys.executable, "workflow/scripts/launch.py", "--nproc", "auto", "--gpus", "4", "--",
           "python", "workflow/scripts/train_rm.py", *_args(setup, two, **kw)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "asks for 4 GPU(s), this machine has 2: 2 rank(s)" in proc.stderr
    run = json.loads((two / "run.json").read_text())
    assert run["world_size"] == 2 and run["batch"] == "4 x 2 x 2 = 16"
    l1 = [r["loss"] for r in _metrics(one) if "loss" in r]
    l2 = [r["loss"] for r in _metrics(two) if "loss" in r]
    np.testing.assert_allclose(l2, l1, rtol=2e-3, atol=2e-4)
