"""What a training run keeps on disk (rmselect.rm.checkpoint) and how the selection reads it.

Pure tests: planted evaluation curves and validation predictions, no training.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rmselect.rm import checkpoint as C
from rmselect.rm import select


def _ev(step: int, acc: float) -> dict:
    return {"step": step, "val_accuracy": acc}


def test_kept_steps_are_the_best_with_ties_to_the_earlier_step():
    evals = [_ev(4, 0.7), _ev(8, 0.9), _ev(12, 0.9), _ev(16, 0.8)]
    assert C.kept_steps(evals, 1) == {8}  # tie 8 vs 12: earlier (as run.json's best)
    assert C.kept_steps(evals, 2) == {8, 12}
    assert C.kept_steps(evals, 3) == {8, 12, 16}
    assert C.kept_steps(evals, 0) == {4, 8, 12, 16}
    best = max(evals, key=lambda e: (e["val_accuracy"], -e["step"]))  # train.py's best
    assert C.kept_steps(evals, 1) == {best["step"]}


def _simulate(tmp_path: Path, accs: list[float], saves: set[int], keep: int):
    """The trainer's protocol at evaluation points 1..n: export when among the best (after
    pruning), DeepSpeed saves at the steps in ``saves``. Returns (disk after each point,
    the state's evals at each save)."""
    root = tmp_path / "ckpt"
    root.mkdir(parents=True)
    ret = C.Retention(keep)
    evals: list[dict] = []
    disk, states = [], []
    for step, acc in enumerate(accs, start=1):
        evals.append(_ev(step, acc))
        if ret.exports(evals):
            ret.prune(root, evals)
            (root / f"step{step}").mkdir()
        if step in saves:
            ret.state_saved(evals)
            ret.prune(root, evals)
            states.append(list(evals))
        disk.append(C.on_disk(root))
    return ret, evals, disk, states


def test_retention_keeps_one_dir_and_never_loses_the_saved_states_best(tmp_path):
    accs = [0.60, 0.70, 0.65, 0.80, 0.75, 0.90, 0.85]
    ret, evals, disk, states = _simulate(tmp_path, accs, saves={3, 5}, keep=1)
    # After each point: the best so far, plus the best as of the last save while it differs.
    assert disk == [[1], [2], [2], [2, 4], [4], [4, 6], [4, 6]]
    assert max(len(d) for d in disk) <= 2
    # A resume from any saved state finds the dirs of that state's best points on disk.
    for i, d in enumerate(disk, start=1):
        last = [s for s in states if s[-1]["step"] <= i]
        if last:
            assert C.kept_steps(last[-1], 1) <= set(d)
    # The run ends: its state goes, then the dirs only the state protected.
    ret.state_dropped()
    ret.prune(tmp_path / "ckpt", evals)
    assert C.on_disk(tmp_path / "ckpt") == [6]


def test_retention_without_any_saved_state_keeps_only_the_best(tmp_path):
    _, _, disk, _ = _simulate(tmp_path, [0.5, 0.9, 0.7, 0.95, 0.6], saves=set(), keep=1)
    assert disk == [[1], [2], [2], [4], [4]]


def test_keep_m_keeps_the_m_best(tmp_path):
    _, _, disk, _ = _simulate(tmp_path / "m2", [0.5, 0.9, 0.7, 0.95, 0.6, 0.8], saves=set(),
                              keep=2)
    assert disk == [[1], [1, 2], [2, 3], [2, 4], [2, 4], [2, 4]]
    _, _, every, _ = _simulate(tmp_path / "all", [0.5, 0.9, 0.7], saves=set(), keep=0)
    assert every[-1] == [1, 2, 3]


# --------------------------------------------------------------------------- selection


def _preds(path: Path, diff0: np.ndarray) -> None:
    """Validation predictions whose chosen - rejected differ only in attribute a0."""
    import polars as pl

    n = len(diff0)
    scores = np.zeros((2 * n, 5))
    scores[:n, 0] = diff0
    path.parent.mkdir(parents=True, exist_ok=True)
    C.write_val_preds(path, scores, n)
    assert pl.read_parquet(path).height == 2 * n


def _run(tmp_path: Path, kept: set[int]) -> Path:
    """One regression run of two evaluation points whose logged accuracy (a coarse training
    grid) prefers step 4, while the predictions make step 8 the selection's best:
    step 4 scores 6 of 10 pairs right, step 8 all 10."""
    run_dir = tmp_path / "lr0.001"
    evals = []
    for step, logged, right in ((4, 0.9, 6), (8, 0.8, 10)):
        preds = run_dir / "val_preds" / f"step{step}.parquet"
        _preds(preds, np.array([1.0] * right + [-1.0] * (10 - right)))
        ck = run_dir / "ckpt" / f"step{step}"
        if step in kept:
            ck.mkdir(parents=True)
            (ck / "config.json").write_text("{}")
        evals.append({"step": step, "val_accuracy": logged, "checkpoint": str(ck),
                      "val_preds": str(preds)})
    (run_dir / "run.json").write_text(json.dumps(
        {"objective": "regression", "lr": 0.001, "seed": 0, "evals": evals}))
    return run_dir / "run.json"


def _select(run: Path, tmp_path: Path) -> dict:
    sel = tmp_path / "selected.json"
    assert select.main(["--runs", str(run), "--model-name", "m", "--objective", "regression",
                        "--final", str(tmp_path / "final"), "--selected", str(sel),
                        "--merge-grid-step", "0.5"]) == 0
    return json.loads(sel.read_text())


def test_selection_ranks_points_from_saved_predictions_without_their_weights(tmp_path):
    got = _select(_run(tmp_path, kept={4, 8}), tmp_path)
    assert (got["step"], got["val_accuracy"], got["unkept_best"]) == (8, 1.0, None)
    assert [c["val_accuracy"] for c in got["candidates"]] == [0.6, 1.0]
    assert (tmp_path / "final" / "config.json").exists()


def test_selection_warns_and_takes_the_best_kept_when_its_pick_was_not_kept(tmp_path, capsys):
    got = _select(_run(tmp_path, kept={4}), tmp_path)
    assert got["step"] == 4 and got["val_accuracy"] == 0.6
    assert got["unkept_best"]["step"] == 8 and got["unkept_best"]["val_accuracy"] == 1.0
    assert "rm.keep_checkpoints" in capsys.readouterr().err


def test_selection_reads_older_runs_predictions_in_the_checkpoint_dir(tmp_path):
    run = _run(tmp_path, kept={4, 8})
    data = json.loads(run.read_text())
    for ev in data["evals"]:
        Path(ev.pop("val_preds")).rename(Path(ev["checkpoint"]) / "val_preds.parquet")
    run.write_text(json.dumps(data))
    assert _select(run, tmp_path)["step"] == 8


# --------------------------------------------------------------------------- disk figures


def test_run_disk_bytes_of_an_8b_run_by_hand():
    """8e9 parameters, bf16: HF dir 2 B/param = 16 GB; DeepSpeed state 14 B/param = 112 GB
    (bf16 weights 2 + fp32 master 4 + Adam 8). 6 BT points of 1,000 pairs."""
    d = C.run_disk_bytes(8e9, 1, n_evals=6, n_val_pairs=1000, n_labels=1)
    assert d["hf_checkpoint"] == 16_000_000_000 and d["ds_state"] == 112_000_000_000
    vp = 2 * 1000 * (8 + 16) + 4096
    assert d["val_preds"] == vp
    assert d["kept"] == 16_000_000_000 + 6 * vp
    assert d["peak"] == 2 * 16_000_000_000 + 2 * 112_000_000_000 + 6 * vp
    every = C.run_disk_bytes(8e9, 0, n_evals=6, n_val_pairs=1000, n_labels=1)
    assert every["kept"] == 6 * 16_000_000_000 + 6 * vp  # the old behaviour: every point
    fp32 = C.run_disk_bytes(1e9, 3, n_evals=2, n_val_pairs=10, n_labels=5, bf16=False,
                            keep_ds=True)
    assert fp32["hf_checkpoint"] == 4_000_000_000 and fp32["ds_state"] == 12_000_000_000
    assert fp32["kept"] == 2 * 4_000_000_000 + 2 * fp32["val_preds"] + 12_000_000_000


def test_run_disk_bytes_bounds_the_files_a_point_writes(tmp_path):
    n = 300
    path = tmp_path / "p.parquet"
    C.write_val_preds(path, np.random.default_rng(0).normal(size=(2 * n, 5)), n)
    assert path.stat().st_size <= C.val_preds_bytes(n, 5)


@pytest.mark.parametrize("keep", [1, 2])
def test_disk_figures_match_the_simulated_protocol(tmp_path, keep):
    accs = [0.60, 0.70, 0.65, 0.80, 0.75, 0.90, 0.85]
    _, _, disk, _ = _simulate(tmp_path, accs, saves={3, 5}, keep=keep)
    d = C.run_disk_bytes(1.0, keep, n_evals=len(accs), n_val_pairs=1, n_labels=1)
    assert max(len(x) for x in disk) * d["hf_checkpoint"] <= d["peak"] - 2 * d["ds_state"]
