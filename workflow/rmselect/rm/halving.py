"""Successive halving over the learning-rate grid (``rm.lr_search.mode: halving``).

Why: the paper's cost is the full RM grid, every learning rate trained to the end. Most
rates are visibly worse after a fraction of the run, so rung ``r`` trains the rates still in
the race up to a step budget ``min_steps * eta**r``; only the best ``ceil(n / eta)`` of them
(by the best validation accuracy seen so far) go on, from their DeepSpeed checkpoint, with
the same learning-rate schedule and data order, so a rate that survives every rung ends
exactly like a full run. The rest stop and keep the checkpoints they have: the selection
(:mod:`rmselect.rm.select`) still ranks every evaluated (LR, step).

The number of rungs follows from the grid size alone (``n, ceil(n/eta), ..., 1``); the last
rung trains its one survivor to the end. Which rates survive is known only after a rung ran,
so workflow/rules/rm.smk makes each decision a Snakemake ``checkpoint`` (rule
``rm_halving``, output ``halving/rung{r}.json``) and reads it in input functions.

This module is pure (no torch): the budgets, the survivor choice and the decision files, so
that all of it is unit-tested on hand-built validation curves.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from rmselect import cli
from rmselect.cli import opt
from rmselect.config import ConfigError, section_settings

MODES = ("full", "halving")


@dataclass(frozen=True)
class LrSearch:
    """The ``rm.lr_search`` settings (their defaults are the schema's ``default:`` values)."""

    mode: str
    eta: int
    min_steps: int

    @property
    def halving(self) -> bool:
        return self.mode == "halving"


def lr_search(config: Mapping[str, Any]) -> LrSearch:
    """``rm.lr_search`` with the schema's defaults filled in; one clear line on a bad value."""
    rm = dict(config.get("rm") or {})
    if not rm.get("lr_search"):  # null reads as "not given", as it always did
        rm.pop("lr_search", None)
    raw = section_settings({"rm": rm}, "rm")["lr_search"]
    if raw["mode"] not in MODES:
        raise ConfigError(f"config: field 'rm.lr_search.mode': {raw['mode']!r} is not one of "
                          f"{', '.join(MODES)}")
    for key, low in (("eta", 2), ("min_steps", 1)):
        v = raw[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ConfigError(f"config: field 'rm.lr_search.{key}': {v!r} must be an integer "
                              f">= {low}")
    return LrSearch(str(raw["mode"]), int(raw["eta"]), int(raw["min_steps"]))


def keep_count(n: int, eta: int) -> int:
    """How many of ``n`` rates go on to the next rung: ``ceil(n / eta)``."""
    return max(1, math.ceil(n / eta))


def rung_sizes(n: int, eta: int) -> list[int]:
    """Rates that train in each rung: ``[n, ceil(n/eta), ..., 1]`` (``[1]`` for one rate)."""
    if n < 1:
        raise ValueError("an empty learning-rate grid has no rungs")
    sizes = [n]
    while sizes[-1] > 1:
        sizes.append(keep_count(sizes[-1], eta))
    return sizes


def last_rung(n: int, eta: int) -> int:
    """Index of the last rung (the one that trains to the end)."""
    return len(rung_sizes(n, eta)) - 1


def rung_budget(rung: int, n: int, search: LrSearch) -> int | None:
    """Step budget of ``rung``: ``min_steps * eta**rung``; None (= to the end) on the last.

    The trainer stops at the first evaluation point at or after the budget (so the stop is
    always evaluated and checkpointed) and at the run's end when the budget is past it.
    """
    last = last_rung(n, search.eta)
    if not 0 <= rung <= last:
        raise ValueError(f"rung {rung} is outside 0..{last}")
    return None if rung == last else search.min_steps * search.eta**rung


def best_accuracy(run: Mapping[str, Any]) -> float:
    """Best validation accuracy of a run summary (run.json / rung json) so far."""
    evals = run.get("evals") or []
    if not evals:
        raise ValueError(f"run lr={run.get('lr')} has no evaluation")
    return max(float(e["val_accuracy"]) for e in evals)


def choose_survivors(scores: Mapping[str, float], keep: int) -> list[str]:
    """The ``keep`` rates (labels) with the highest score; ties go to the smaller LR.

    Ties are broken as the final selection breaks them (smaller LR first), so halving never
    drops the rate the full grid would pick on a tie. The result is in grid (LR) order.
    """
    ranked = sorted(scores, key=lambda lr: (-scores[lr], float(lr)))
    return sorted(ranked[:keep], key=float)


def decide(runs: Mapping[str, Mapping[str, Any]], paths: Mapping[str, str], rung: int,
           n_grid: int, search: LrSearch, previous: Mapping[str, Any] | None = None
           ) -> dict[str, Any]:
    """The decision after ``rung``: who goes on, who stops, and every rate's latest file.

    ``runs`` maps each participant's LR label to its run summary (rung json), ``paths`` to
    the file it came from. ``previous`` is the decision of ``rung - 1`` (None at rung 0):
    its ``runs`` (the latest file of every rate, stopped ones included) are carried on.
    """
    if not runs:
        raise ValueError(f"rung {rung}: no participants")
    last = last_rung(n_grid, search.eta)
    scores = {lr: best_accuracy(r) for lr, r in runs.items()}
    keep = choose_survivors(scores, keep_count(len(runs), search.eta))
    complete = {lr: bool(r.get("complete", True)) for lr, r in runs.items()}
    final = rung >= last or all(complete[lr] for lr in keep)
    latest = dict((previous or {}).get("runs") or {})
    latest.update({lr: str(paths[lr]) for lr in runs})
    return {
        "rung": rung, "last_rung": last, "eta": search.eta, "min_steps": search.min_steps,
        "budget": rung_budget(rung, n_grid, search),
        "participants": [
            {"lr": lr, "run": str(paths[lr]), "best_val_accuracy": scores[lr],
             "last_step": max(int(e["step"]) for e in runs[lr]["evals"]),
             "complete": complete[lr]}
            for lr in sorted(runs, key=float)
        ],
        "survivors": keep,
        "stopped": sorted((lr for lr in runs if lr not in keep), key=float),
        "final": final,
        "runs": {lr: latest[lr] for lr in sorted(latest, key=float)},
    }


def next_participants(decision: Mapping[str, Any], rung_path: Any) -> dict[str, str]:
    """Files the decision after the next rung reads: LR label -> path.

    A survivor still short of its end trains in the next rung (``rung_path(lr, rung + 1)``);
    one that already finished takes part with the file it has.
    """
    done = {p["lr"]: p["complete"] for p in decision["participants"]}
    nxt = int(decision["rung"]) + 1
    return {lr: (decision["runs"][lr] if done[lr] else str(rung_path(lr, nxt)))
            for lr in decision["survivors"]}


def read_decision(path: str | Path) -> dict[str, Any]:
    """A decision file (``halving/rung{r}.json``)."""
    import json

    return json.loads(Path(path).read_text())


def final_runs(get_decision: Any) -> list[str]:
    """Every rate's latest summary once the race is over: walk the decisions from rung 0
    (``get_decision(r)``, a Snakemake checkpoint read) to the final one."""
    r = 0
    while True:
        d = get_decision(r)
        if d["final"]:
            return [d["runs"][lr] for lr in sorted(d["runs"], key=float)]
        r += 1
        if r > int(d["last_rung"]):
            raise ValueError(f"decision after rung {r - 1} is past the last rung but not final")


def steps_spent(runs: Sequence[Mapping[str, Any]]) -> int:
    """Optimizer steps trained over runs: each run's last evaluated step (= where it stopped)."""
    return sum(max(int(e["step"]) for e in r["evals"]) for r in runs)


# --------------------------------------------------------------------------- entry point


@dataclass(kw_only=True)
class HalvingArgs:
    """Successive-halving decision after one rung: which learning rates go on."""

    runs: list[str] = opt("rung json of every participant")
    previous: str | None = opt("the previous rung's decision json", default=None)
    rung: int = opt()
    grid_size: int = opt("rates in the full grid")
    eta: int = opt()
    min_steps: int = opt()
    out: str = opt("decision json")


def build_parser() -> argparse.ArgumentParser:
    return cli.build_parser(HalvingArgs, prog="halving_rm.py")


def main(argv: Sequence[str] | None = None) -> int:
    from rmselect.io import read_json, write_json
    from rmselect.rm.rules import lr_label

    args = cli.parse(HalvingArgs, argv, prog="halving_rm.py")
    search = LrSearch("halving", args.eta, args.min_steps)
    runs, paths = {}, {}
    for rp in args.runs:
        try:
            run = read_json(rp)
            lr = lr_label(run["lr"])
            best_accuracy(run)
        except (OSError, ValueError, KeyError) as err:
            sys.stderr.write(f"halving_rm: {rp}: unreadable rung result ({err}); delete it to "
                             "retrain that rung\n")
            return 1
        runs[lr], paths[lr] = run, rp
    previous = read_json(args.previous) if args.previous else None
    decision = decide(runs, paths, args.rung, args.grid_size, search, previous)
    write_json(Path(args.out), decision)
    sys.stderr.write(f"[halving_rm] rung {args.rung}: {len(runs)} rates, go on: "
                     f"{decision['survivors']}, stop: {decision['stopped']}, "
                     f"final: {decision['final']}\n")
    return 0
