"""The benchmark registry: unknown names fail clearly, every benchmark exposes the protocol."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from rmselect.eval.benchmarks import (
    BENCHMARKS,
    PRIMARY,
    REGISTRY,
    Benchmark,
    UnknownBenchmarkError,
    get_benchmark,
    load_benchmark,
    prepare,
    sections_of,
)
from rmselect.eval.benchmarks.base import Benchmark as BaseBenchmark
from rmselect.eval.metrics import ScoreOptions, per_example, score
from rmselect.eval.toysets import DERIVERS

REPO = Path(__file__).resolve().parents[1]


def v1_rows() -> pl.DataFrame:
    """One RewardBench v1 row per subset (the source of the derived toy sets)."""
    subsets = list(get_benchmark(PRIMARY).known_subsets())
    n = len(subsets)
    return pl.DataFrame(
        {
            "prompt": [f"p{i}" for i in range(n)],
            "chosen": [f"c{i}" for i in range(n)],
            "rejected": [f"r{i}" for i in range(n)],
            "subset": subsets,
            "id": [str(i) for i in range(n)],
        }
    )


def raw_frame(name: str) -> pl.DataFrame:
    """A small valid frame of benchmark ``name`` (v1 rows, or a set derived from them)."""
    if name == PRIMARY:
        return v1_rows()
    return pl.DataFrame(DERIVERS[name](v1_rows(), 2), infer_schema_length=None)


def test_unknown_name_names_it_and_the_known_ones():
    with pytest.raises(UnknownBenchmarkError) as err:
        get_benchmark("rewardbench3")
    msg = str(err.value)
    assert "'rewardbench3'" in msg
    assert all(name in msg for name in BENCHMARKS)
    assert isinstance(err.value, ValueError)  # callers catch ValueError for one-line errors


@pytest.mark.parametrize(
    "call",
    [
        lambda: sections_of("nope"),
        lambda: prepare("nope", v1_rows(), "x"),
        lambda: load_benchmark("nope", {"path": "x.jsonl"}),
        lambda: score("nope", pl.DataFrame({"subset": ["chat"]}), ScoreOptions(n_boot=0)),
    ],
)
def test_every_entry_point_refuses_an_unknown_name(call):
    known = r"use one of rewardbench, rewardbench2, rmbench"
    with pytest.raises(UnknownBenchmarkError, match=rf"unknown benchmark 'nope'; {known}"):
        call()


def test_registry_lists_the_three_benchmarks_in_order():
    assert BENCHMARKS == tuple(REGISTRY) == ("rewardbench", "rewardbench2", "rmbench")
    assert PRIMARY == "rewardbench" and get_benchmark(PRIMARY).hub == "allenai/reward-bench"
    assert set(DERIVERS) == set(BENCHMARKS) - {PRIMARY}


def test_command_line_choices_come_from_the_registry():
    from rmselect.eval.run import build_parser

    action = next(a for a in build_parser()._actions if a.dest == "benchmark")
    assert tuple(action.choices) == BENCHMARKS


@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_benchmark_exposes_the_protocol(name):
    bench = REGISTRY[name]
    assert isinstance(bench, Benchmark) and Benchmark is BaseBenchmark
    assert get_benchmark(name) is bench and bench.name == name
    for attr in ("title", "hub", "hub_split"):
        assert isinstance(getattr(bench, attr), str) and getattr(bench, attr), attr
    assert "correct" in bench.stat_columns
    # the hooks without a shared default are implemented
    for hook in sorted(BaseBenchmark.__abstractmethods__):
        assert getattr(type(bench), hook) is not getattr(BaseBenchmark, hook), hook
    secs = bench.sections()
    subsets = bench.known_subsets()
    assert secs and all(secs.values())
    assert len(subsets) == len(set(subsets)) == sum(len(v) for v in secs.values())
    assert secs is not bench.sections()  # a fresh copy: callers may not change the definition
    assert set(bench.main_sections()) <= set(secs)


def test_a_benchmark_without_its_scoring_rules_cannot_be_made():
    assert BaseBenchmark.__abstractmethods__ == {"sections", "per_example_frame", "subset_weights"}

    class Half(BaseBenchmark):
        name, title, hub, hub_split = "half", "Half", "x/half", "test"

        def sections(self, include_prior_sets=False):
            return {"a": ["a"]}

    with pytest.raises(TypeError, match="abstract"):
        Half()


@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_benchmark_loads_and_scores_through_the_registry(name):
    bench = get_benchmark(name)
    data = prepare(name, raw_frame(name), "fixture")
    assert data.benchmark == name and data.missing_subsets == []
    rewards = np.linspace(-1.0, 1.0, data.items.height)
    per = per_example(data, rewards)
    assert per.columns[:2] == ["id", "subset"]
    assert {"score_chosen", "score_rejected", *bench.stat_columns} <= set(per.columns)
    out = score(name, per, ScoreOptions(n_boot=5, seed=0))
    assert set(bench.sections()) <= set(out["sections"])
    # (RewardBench 2's Ties composite can dip just below 0: its tie-break term is a tanh)
    assert out["overall"]["complete"] is True and np.isfinite(out["overall"]["score"])
    assert set(out["subsets"]) == set(bench.known_subsets())


def test_hub_ids_match_the_paper_config():
    """config/paper.yaml names each benchmark's hub data set (some lines commented out)."""
    text = (REPO / "config" / "paper.yaml").read_text()
    for name, bench in REGISTRY.items():
        m = re.search(rf"^\s*#?\s*{name}: \{{hub: ([^,]+), split: ([^,}}]+)", text, re.M)
        assert m, name
        assert (m.group(1), m.group(2)) == (bench.hub, bench.hub_split), name
