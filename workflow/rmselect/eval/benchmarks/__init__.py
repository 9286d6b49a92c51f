"""The RM benchmarks, one module each, behind a small registry.

Every benchmark is a :class:`~rmselect.eval.benchmarks.base.Benchmark` object that owns
its data layout (columns, list or single responses, extra rows), its sections, its hub id
and default split, and how per-response rewards become its scores (per-example
correctness, subset statistics and their bootstrap, subset weights, section and overall
aggregation). Callers ask :func:`get_benchmark` for the object instead of comparing
benchmark names, so adding a benchmark is one module plus one line in :data:`REGISTRY`.

- :mod:`.rewardbench` -- RewardBench v1 (``allenai/reward-bench``), the paper's;
- :mod:`.rewardbench2` -- RewardBench 2 (``allenai/reward-bench-2``);
- :mod:`.rmbench` -- RM-Bench (``THU-KEG/RM-Bench``);
- :mod:`.base` -- the protocol, :class:`BenchmarkData` and the generic loader/validator.

The functions below take a benchmark name (as the config and the command lines give it)
and delegate to the registered object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import polars as pl

from rmselect.eval.benchmarks import base
from rmselect.eval.benchmarks.base import (
    Benchmark,
    BenchmarkData,
    BenchmarkDataError,
    Stat,
    describe_entry,
)
from rmselect.eval.benchmarks.rewardbench import RB1_ROWS, RB1_SECTIONS, RewardBench
from rmselect.eval.benchmarks.rewardbench2 import RewardBench2
from rmselect.eval.benchmarks.rmbench import RMBench

#: Name -> benchmark, in the order the benchmarks are listed everywhere.
REGISTRY: dict[str, Benchmark] = {b.name: b for b in (RewardBench(), RewardBench2(), RMBench())}
BENCHMARKS: tuple[str, ...] = tuple(REGISTRY)
#: The paper's benchmark: the one ``results/tables/rm_scores.csv`` reports.
PRIMARY = RewardBench.name


class UnknownBenchmarkError(ValueError):
    """A benchmark name that no module registers."""


def get_benchmark(name: str) -> Benchmark:
    """The registered benchmark called ``name``; an unknown name is an error listing the known."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise UnknownBenchmarkError(
            f"unknown benchmark {name!r}; use one of {', '.join(BENCHMARKS)}"
        ) from None


def sections_of(benchmark: str, include_prior_sets: bool = False) -> dict[str, list[str]]:
    """Section key -> subset names of a benchmark."""
    return get_benchmark(benchmark).sections(include_prior_sets)


def known_subsets(benchmark: str, include_prior_sets: bool = False) -> list[str]:
    """Every subset name of a benchmark, in its fixed order."""
    return get_benchmark(benchmark).known_subsets(include_prior_sets)


def load_benchmark(
    benchmark: str,
    entry: Mapping[str, Any],
    root: str | Path = ".",
    ignore_unknown_subsets: bool = False,
    include_prior_sets: bool = False,
    prior_sets: Mapping[str, Any] | None = None,
    limit_per_subset: int | None = None,
) -> BenchmarkData:
    """Load a benchmark from a config entry (``path`` or ``hub``) and validate it.

    ``prior_sets`` is the data-set entry of the v1 "Prior Sets" section (used only with
    ``include_prior_sets``); its rows need a ``subset`` column, or, for a hub data set
    without one (``allenai/preference-test-sets``), one split per subset name.
    """
    return base.load(
        get_benchmark(benchmark),
        entry,
        root,
        ignore_unknown_subsets=ignore_unknown_subsets,
        include_prior_sets=include_prior_sets,
        prior_sets=prior_sets,
        limit_per_subset=limit_per_subset,
    )


def prepare(
    benchmark: str,
    df: pl.DataFrame,
    source: str,
    ignore_unknown_subsets: bool = False,
    include_prior_sets: bool = False,
    limit_per_subset: int | None = None,
) -> BenchmarkData:
    """Validate a raw benchmark frame and build the ``examples`` / ``items`` frames."""
    return base.prepare(
        get_benchmark(benchmark),
        df,
        source,
        ignore_unknown_subsets=ignore_unknown_subsets,
        include_prior_sets=include_prior_sets,
        limit_per_subset=limit_per_subset,
    )


__all__ = [
    "BENCHMARKS",
    "PRIMARY",
    "RB1_ROWS",
    "RB1_SECTIONS",
    "REGISTRY",
    "Benchmark",
    "BenchmarkData",
    "BenchmarkDataError",
    "Stat",
    "UnknownBenchmarkError",
    "describe_entry",
    "get_benchmark",
    "known_subsets",
    "load_benchmark",
    "prepare",
    "sections_of",
]
