"""Does small-scale screening track the full benchmark? (toy zoo check)

For every benchmark, compare each model's small-mode score (seeded subsample of ``n`` items
per leaf subtask) with its full-mode score:

* ``spearman``: rank correlation across models (empty when either side is constant or fewer
  than 3 models - a rank correlation is undefined there);
* ``mae``: mean absolute difference of the scores (0-100 feature units);
* ``items_small`` / ``items_full``: mean items evaluated per model;
* ``wall_small_s`` / ``wall_full_s``: summed wall seconds over models, and
  ``compute_saved`` = 1 - small / full.

A final row ``ALL`` holds the mean Spearman and MAE over benchmarks and the summed walls.
Writes ``results/analysis/screening_agreement.csv``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import polars as pl

from rmselect import cli
from rmselect.cli import opt
from rmselect.io import read_json, write_table

log = logging.getLogger("rmselect.bench.agreement")

COLUMNS = (
    "task", "n_models", "n_per_subtask", "items_small", "items_full", "spearman", "mae",
    "wall_small_s", "wall_full_s", "compute_saved",
)


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rho (average ranks for ties); None when undefined."""
    if len(x) != len(y) or len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    from scipy.stats import spearmanr

    rho = spearmanr(x, y).statistic
    return None if rho is None or not math.isfinite(float(rho)) else float(rho)


def agreement(
    small: Mapping[tuple[str, str], Mapping[str, Any]],
    full: Mapping[tuple[str, str], Mapping[str, Any]],
    tasks: Sequence[str],
    models: Sequence[str],
) -> pl.DataFrame:
    """One row per task plus ``ALL`` (see the module doc)."""
    rows: list[dict[str, Any]] = []
    for t in tasks:
        pairs = []
        ws = wf = 0.0
        its: list[float] = []
        itf: list[float] = []
        n_req = None
        for m in models:
            s, f = small.get((m, t)), full.get((m, t))
            if s is None or f is None:
                continue
            ws += float(s["wall_s"])
            wf += float(f["wall_s"])
            its.append(float(s["items_used"]))
            itf.append(float(f["items_used"]))
            n_req = s.get("n_requested")
            if s.get("score") is not None and f.get("score") is not None:
                pairs.append((float(s["score"]), float(f["score"])))
        xs = [p[0] for p in pairs]
        ys = [p[1] for p in pairs]
        rows.append(
            {
                "task": t,
                "n_models": len(pairs),
                "n_per_subtask": n_req,
                "items_small": sum(its) / len(its) if its else None,
                "items_full": sum(itf) / len(itf) if itf else None,
                "spearman": spearman(xs, ys),
                "mae": sum(abs(a - b) for a, b in pairs) / len(pairs) if pairs else None,
                "wall_small_s": ws,
                "wall_full_s": wf,
                "compute_saved": 1 - ws / wf if wf > 0 else None,
            }
        )
    rho = [r["spearman"] for r in rows if r["spearman"] is not None]
    mae = [r["mae"] for r in rows if r["mae"] is not None]
    ws = sum(r["wall_small_s"] for r in rows)
    wf = sum(r["wall_full_s"] for r in rows)
    rows.append(
        {
            "task": "ALL",
            "n_models": len(models),
            "n_per_subtask": None,
            "items_small": sum(r["items_small"] or 0 for r in rows) or None,
            "items_full": sum(r["items_full"] or 0 for r in rows) or None,
            "spearman": sum(rho) / len(rho) if rho else None,
            "mae": sum(mae) / len(mae) if mae else None,
            "wall_small_s": ws,
            "wall_full_s": wf,
            "compute_saved": 1 - ws / wf if wf > 0 else None,
        }
    )
    schema = {c: pl.Float64 for c in COLUMNS}
    schema.update({"task": pl.Utf8, "n_models": pl.Int64, "n_per_subtask": pl.Int64})
    return pl.DataFrame(rows, schema=schema, orient="row")


@dataclass(kw_only=True)
class AgreementArgs:
    """Small-scale vs full benchmark agreement across models (Spearman, MAE, compute saved);
    writes results/analysis/screening_agreement.csv."""

    models: list[str] = opt("JSON list of model names", json=True)
    tasks: list[str] = opt("JSON list of benchmark names", json=True)
    small_dir: Path = opt("folder with {model}/{task}.json (small)")
    full_dir: Path = opt("folder with {model}/{task}.json (full)")
    out: Path = opt("output CSV")


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(AgreementArgs, write_agreement, argv, prog="bench_agreement.py")


def write_agreement(args: AgreementArgs) -> int:
    models, tasks = args.models, args.tasks
    small, full = {}, {}
    for m in models:
        for t in tasks:
            small[(m, t)] = read_json(args.small_dir / m / f"{t}.json")
            full[(m, t)] = read_json(args.full_dir / m / f"{t}.json")
            for mode, rec in (("small", small[(m, t)]), ("full", full[(m, t)])):
                if rec.get("mode") != mode:
                    raise ValueError(
                        f"{m}/{t}.json in the {mode} folder was run in mode {rec.get('mode')!r}"
                    )
    df = agreement(small, full, tasks, models)
    write_table(args.out, df)
    for r in df.iter_rows(named=True):
        log.info("%s: spearman %s mae %s saved %s", r["task"], r["spearman"], r["mae"],
                 r["compute_saved"])
    return 0
