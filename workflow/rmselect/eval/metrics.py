"""Benchmark scores from per-response rewards: the part every benchmark shares.

What a benchmark counts as correct, how its subsets are weighted and how its sections and
overall score are formed live in its module under :mod:`rmselect.eval.benchmarks`
(RewardBench v1, RewardBench 2, RM-Bench; each module's docstring gives the rules); this
module collects the rewards per example, visits the subsets in the benchmark's fixed order,
runs the bootstrap and assembles the result, asking the registered benchmark object
(:func:`rmselect.eval.benchmarks.get_benchmark`) for every benchmark-specific step.

Bootstrap: prompts are resampled with replacement within each subset (RewardBench 2's Ties:
reference and tied prompts of one prompt id move together), every score is recomputed, and
the 2.5 and 97.5 percentiles give the 95% interval. Seeded, so reruns give the same interval.

All scores returned here are on 0-100.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import polars as pl

from rmselect.eval.benchmarks import BenchmarkData, ExampleRewards, Stat, get_benchmark

WEIGHT_MODES = ("official", "observed")


# ----------------------------------------------------------------- per-example results


def per_example(data: BenchmarkData, rewards: np.ndarray) -> pl.DataFrame:
    """One row per example with its rewards and correctness.

    ``rewards`` is aligned with ``data.items``. Columns: ``id, subset, score_chosen,
    score_rejected, correct`` (float in [0, 1]) plus the benchmark's own
    (:meth:`~rmselect.eval.benchmarks.base.Benchmark.per_example_frame`: RewardBench v1
    adds nothing, RewardBench 2 the reward lists and Ties margins, RM-Bench the reward
    lists and ``easy, normal, hard``).
    """
    bench = get_benchmark(data.benchmark)
    rewards = np.asarray(rewards, dtype=np.float64)
    items = data.items
    if rewards.shape != (items.height,):
        raise ValueError(f"expected {items.height} rewards, got shape {rewards.shape}")
    n = data.examples.height
    chosen: list[list[float]] = [[] for _ in range(n)]
    rejected: list[list[float]] = [[] for _ in range(n)]
    order = items.sort(["example", "role", "slot"])
    for ex, role, r in zip(order["example"], order["role"], rewards[order["item"].to_numpy()]):
        (chosen if role == "chosen" else rejected)[ex].append(float(r))
    ex = data.examples
    base = {"id": ex["id"].to_list(), "subset": ex["subset"].to_list()}
    return bench.per_example_frame(ExampleRewards(base, ex, chosen, rejected))


# ----------------------------------------------------------------- subset statistics


def subset_stats(benchmark: str, rows: pl.DataFrame) -> Stat:
    """Statistics of one subset's rows: ``n`` and the per-stat means (fractions)."""
    return get_benchmark(benchmark).subset_stats(rows)


def bootstrap_subset_stats(
    benchmark: str, rows: pl.DataFrame, n_boot: int, rng: np.random.Generator
) -> Stat:
    """``n_boot`` resampled versions of :func:`subset_stats` (arrays of shape ``(n_boot,)``)."""
    return get_benchmark(benchmark).bootstrap_subset_stats(rows, n_boot, rng)


# ----------------------------------------------------------------- aggregation


def subset_weights(
    present: Mapping[str, int], benchmark: str, weights: str = "official"
) -> dict[str, float]:
    """The weight of each present subset inside its section (the benchmark's rule)."""
    if weights not in WEIGHT_MODES:
        raise ValueError(f"weights must be one of {', '.join(WEIGHT_MODES)}, not {weights!r}")
    return get_benchmark(benchmark).subset_weights(present, weights)


def aggregate(
    benchmark: str,
    stats: Mapping[str, Stat],
    weights: Mapping[str, float],
    include_prior_sets: bool = False,
) -> dict[str, Any]:
    """Section and overall scores (0-100) from subset stats (floats or bootstrap arrays).

    Returns ``{"sections": {key: value or None}, "overall": value or None}``; a section with
    no subsets present is None and the overall averages the sections that are present.
    """
    return get_benchmark(benchmark).aggregate(stats, weights, include_prior_sets)


@dataclass
class ScoreOptions:
    """How to turn per-example results into benchmark scores."""

    weights: str = "official"
    include_prior_sets: bool = False
    n_boot: int = 1000
    seed: int = 0
    level: float = 0.95


def score(benchmark: str, per_ex: pl.DataFrame, opts: ScoreOptions | None = None) -> dict[str, Any]:
    """Per-subset, per-section and overall scores (0-100) with bootstrap intervals.

    Subsets are visited in the benchmark's fixed order, so the bootstrap is reproducible.
    """
    opts = opts or ScoreOptions()
    bench = get_benchmark(benchmark)
    secs = bench.sections(opts.include_prior_sets)
    order = [s for subs in secs.values() for s in subs]
    present = {s: per_ex.filter(pl.col("subset") == s) for s in order}
    present = {s: f for s, f in present.items() if f.height}
    if not present:
        raise ValueError(f"{benchmark}: no examples of any known subset to score")
    w = subset_weights({s: f.height for s, f in present.items()}, benchmark, opts.weights)
    point = {s: subset_stats(benchmark, f) for s, f in present.items()}
    agg = aggregate(benchmark, point, w, opts.include_prior_sets)

    boot_agg: dict[str, Any] | None = None
    boot_sub: dict[str, Stat] = {}
    if opts.n_boot > 0:
        rng = np.random.default_rng(opts.seed)
        boot_sub = {s: bootstrap_subset_stats(benchmark, f, opts.n_boot, rng) for s, f in present.items()}
        boot_agg = aggregate(benchmark, boot_sub, w, opts.include_prior_sets)
    q = ((1 - opts.level) / 2, 1 - (1 - opts.level) / 2)

    def ci(arr: Any) -> tuple[float | None, float | None]:
        if arr is None or boot_agg is None:
            return None, None
        lo, hi = np.quantile(np.asarray(arr, dtype=float), q)
        return float(lo), float(hi)

    section_of = {s: k for k, subs in secs.items() for s in subs}
    subsets_out = {}
    for s, st in point.items():
        lo, hi = ci(100 * boot_sub[s]["correct"]) if boot_sub else (None, None)
        entry = {
            "section": section_of[s],
            "n": int(st["n"]),
            "weight": w[s],
            "score": 100 * st["correct"],
            "lo": lo,
            "hi": hi,
            **bench.subset_extra(st),
        }
        subsets_out[s] = entry
    sections_out = {}
    for key, val in agg["sections"].items():
        subs = secs.get(key, [])
        lo, hi = ci(boot_agg["sections"][key]) if boot_agg else (None, None)
        sections_out[key] = {
            "score": val,
            "lo": lo,
            "hi": hi,
            "subsets": [s for s in subs if s in present],
            "missing_subsets": [s for s in subs if s not in present],
        }
        note = bench.section_note(key)
        if note is not None:
            sections_out[key]["note"] = note
    lo, hi = ci(boot_agg["overall"]) if boot_agg else (None, None)
    main_sections = bench.main_sections(opts.include_prior_sets)
    return {
        "subsets": subsets_out,
        "sections": sections_out,
        "overall": {
            "score": agg["overall"],
            "lo": lo,
            "hi": hi,
            "complete": all(agg["sections"][k] is not None for k in main_sections),
        },
        "weights": opts.weights,
        "bootstrap": {
            "n_boot": opts.n_boot,
            "seed": opts.seed,
            "level": opts.level,
            "method": "percentile; prompts resampled with replacement within each subset",
        },
    }


__all__ = [
    "WEIGHT_MODES",
    "ScoreOptions",
    "aggregate",
    "bootstrap_subset_stats",
    "per_example",
    "score",
    "subset_stats",
    "subset_weights",
]
