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
- :mod:`.base` -- the protocol and :class:`BenchmarkData`;
- :mod:`.loading` -- the generic loader/validator.

The functions below, and :func:`load_benchmark` / :func:`prepare`, take a benchmark name (as
the config and the command lines give it) or the object itself.
"""

from __future__ import annotations

from rmselect.eval.benchmarks.base import (
    Benchmark,
    BenchmarkData,
    BenchmarkDataError,
    ExampleRewards,
    Stat,
    describe_entry,
)
from rmselect.eval.benchmarks.loading import load as load_benchmark
from rmselect.eval.benchmarks.loading import prepare
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


__all__ = [
    "BENCHMARKS",
    "PRIMARY",
    "RB1_ROWS",
    "RB1_SECTIONS",
    "REGISTRY",
    "Benchmark",
    "BenchmarkData",
    "BenchmarkDataError",
    "ExampleRewards",
    "Stat",
    "UnknownBenchmarkError",
    "describe_entry",
    "get_benchmark",
    "known_subsets",
    "load_benchmark",
    "prepare",
    "sections_of",
]
