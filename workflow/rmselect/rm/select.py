"""Pick the final reward model of one (objective, base model) over the LR grid.

Every run (``lr{lr}/run.json``) lists its evaluation points. For BT the candidate score is
the validation accuracy of each (LR, step) point. For regression each point's validation
predictions (``val_preds/step{N}.parquet``; older runs: ``ckpt/step{N}/val_preds.parquet``)
go through the exhaustive merge-weight search (:mod:`rmselect.rm.merge`) and the candidate
score is the best weight vector's accuracy; the winner is the best (LR, step, w). Ties go
to the smaller LR, then the earlier step.

Every point is ranked, but a run keeps the weights of its best points only
(:mod:`rmselect.rm.checkpoint`); the winner is always among them when the trainer logs the
selection's own accuracy. Where it does not (a coarser ``rm.train_merge_grid_step``) and the
best point's weights were not kept, the best kept point wins instead, with a warning and
the best point under ``unkept_best`` in selected.json (raise ``rm.keep_checkpoints``).

The winner is copied (hard links where possible) to ``final/`` with ``rmselect.json``
(merge weights, provenance) and described in ``selected.json``. With ``--prune`` every other
checkpoint dir of the runs is deleted afterwards (the run.json files stay), and so is the
DeepSpeed state (``ds/``) that runs stopped by successive halving keep.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence


from rmselect import cli
from rmselect.cli import opt
from rmselect.io import atomic_path, read_json, read_table, write_json
from rmselect.rm.data import ATTRIBUTES
from rmselect.rm.merge import pair_diff, search


@dataclass(kw_only=True)
class SelectArgs:
    """Select the best (learning rate, step[, merge weights]) checkpoint of one base model and
    objective; write final/ and selected.json."""

    runs: list[str] = opt("run.json of every LR of the grid")
    model_name: str = opt()
    objective: str = opt(choices=["bt", "regression"])
    final: str = opt("output dir for the selected checkpoint")
    selected: str = opt("output selected.json")
    merge_grid_step: float = opt("regression: weight grid step (0.05 = the paper's 21^5 vectors)",
                                 default=0.05)
    prune: bool = opt("delete the non-selected checkpoint dirs after copying the winner",
                      default=False)


def build_parser() -> argparse.ArgumentParser:
    return cli.build_parser(SelectArgs, prog="select_rm.py")


def preds_path(ev: Mapping[str, Any]) -> Path:
    """Where an evaluation point's validation predictions are (older runs kept them in the
    checkpoint dir)."""
    if ev.get("val_preds"):
        return Path(ev["val_preds"])
    return Path(ev["checkpoint"]) / "val_preds.parquet"


def has_weights(ckpt: str | Path) -> bool:
    """Whether an evaluation point's HF checkpoint is on disk."""
    return (Path(ckpt) / "config.json").exists()


def regression_candidate(path: Path, step: float) -> dict[str, Any]:
    """Best merge weights of one regression point from its validation predictions."""
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: the run is incomplete or was pruned; "
            "delete the run's run.json to retrain it"
        )
    df = read_table(path).sort(["side", "pair_id"])
    cols = [f"a{j}" for j in range(len(ATTRIBUTES))]
    ch = df.filter(df["side"] == "chosen").select(cols).to_numpy()
    rj = df.filter(df["side"] == "rejected").select(cols).to_numpy()
    res = search(pair_diff(ch, rj), step)
    return {"val_accuracy": res.accuracy, "weights": list(res.weights)}


def collect(runs: Sequence[str | Path], objective: str, grid_step: float) -> list[dict[str, Any]]:
    """Every (lr, step) candidate with its validation accuracy (and weights)."""
    cands = []
    for rp in runs:
        run = read_json(rp)
        if run.get("objective") != objective:
            raise ValueError(f"{rp}: objective {run.get('objective')!r}, expected {objective!r}")
        for ev in run["evals"]:
            c = {"lr": float(run["lr"]), "step": int(ev["step"]), "checkpoint": ev["checkpoint"],
                 "val_accuracy": float(ev["val_accuracy"]), "weights": None,
                 "kept": has_weights(ev["checkpoint"])}
            if objective == "regression":
                c.update(regression_candidate(preds_path(ev), grid_step))
            cands.append(c)
    if not cands:
        raise ValueError("no evaluated checkpoints in the given runs")
    return cands


def best_candidate(cands: list[dict[str, Any]]) -> dict[str, Any]:
    """Highest accuracy; ties to the smaller LR, then the earlier step."""
    return min(cands, key=lambda c: (-c["val_accuracy"], c["lr"], c["step"]))


def pick(cands: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``(winner, unkept_best)``: the best candidate whose weights are on disk, and the best
    candidate overall when that one's were not kept (else None)."""
    best = best_candidate(cands)
    if best.get("kept", True):
        return best, None
    kept = [c for c in cands if c.get("kept", True)]
    if not kept:
        raise FileNotFoundError(f"no checkpoint of the runs is on disk (best: "
                                f"{best['checkpoint']}); retrain the runs")
    return best_candidate(kept), best


def copy_checkpoint(src: Path, dst: Path, meta: dict[str, Any]) -> None:
    """Copy ``src`` to ``dst`` atomically (hard links when possible) and add rmselect.json."""
    if not (src / "config.json").exists():
        raise FileNotFoundError(f"checkpoint {src} is missing (pruned?); retrain the run")
    with atomic_path(dst) as tmp:
        def _link(s: str, d: str) -> None:
            try:
                os.link(s, d)
            except OSError:
                shutil.copy2(s, d)

        shutil.copytree(src, tmp, copy_function=_link,
                        ignore=shutil.ignore_patterns("val_preds.parquet"))
        (tmp / "rmselect.json").write_text(json.dumps(meta, indent=2) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = cli.parse(SelectArgs, argv, prog="select_rm.py")
    t0 = time.time()
    cands = collect(args.runs, args.objective, args.merge_grid_step)
    best, unkept = pick(cands)
    if unkept is not None:
        sys.stderr.write(
            f"select_rm: warning: {args.model_name} {args.objective}: the best point (lr "
            f"{unkept['lr']:g} step {unkept['step']}, accuracy {unkept['val_accuracy']:.4f}) "
            f"was not kept by its run; selecting the best kept one (accuracy "
            f"{best['val_accuracy']:.4f}). Raise rm.keep_checkpoints or set "
            "rm.train_merge_grid_step to rm.merge_grid_step, and retrain, to select it\n")
    # The training seed of these runs (all runs of one selection share it; older runs
    # without the field count as one unnamed seed).
    seeds = {read_json(p).get("seed") for p in args.runs}
    if len(seeds) > 1:
        sys.stderr.write(f"select_rm: error: runs of different seeds {sorted(map(str, seeds))}"
                         " in one selection; select each seed's runs on their own\n")
        return 1
    meta = {
        "model": args.model_name, "objective": args.objective, "seed": seeds.pop(),
        "lr": best["lr"],
        "step": best["step"], "val_accuracy": best["val_accuracy"], "weights": best["weights"],
        "attributes": list(ATTRIBUTES) if args.objective == "regression" else None,
        "score": ("dot(outputs, weights)" if args.objective == "regression" else "outputs[0]"),
        "source_checkpoint": best["checkpoint"],
    }
    copy_checkpoint(Path(best["checkpoint"]), Path(args.final), meta)
    write_json(args.selected, {**meta, "merge_grid_step": args.merge_grid_step
                               if args.objective == "regression" else None,
                               "candidates": cands, "unkept_best": unkept,
                               "select_s": time.time() - t0})
    if args.prune:
        for c in cands:
            if c["checkpoint"] != best["checkpoint"]:
                shutil.rmtree(c["checkpoint"], ignore_errors=True)
        # Runs stopped by successive halving keep their DeepSpeed state (to continue if the
        # search changes); pruning drops it too (a later continuation retrains that run).
        for rp in args.runs:
            shutil.rmtree(Path(rp).parent / "ds", ignore_errors=True)
    sys.stderr.write(
        f"[select_rm] {args.model_name} {args.objective}: lr {best['lr']:g} step {best['step']} "
        f"val accuracy {best['val_accuracy']:.4f} weights {best['weights']} "
        f"({len(cands)} candidates, {time.time() - t0:.1f}s)\n"
    )
    return 0
