"""Normalisation, baselines, subsampling and the benchmarks config section (hand-computed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rmselect.bench.normalise import infer_baseline, normalise, resolve_baseline, summarise
from rmselect.bench.sampling import subsample_indices
from rmselect.bench.spec import bench_config
from rmselect.config import ConfigError, load_study_file

REPO = Path(__file__).resolve().parents[1]


def test_normalise_hand_computed():
    # 4-choice task, raw 0.625: (0.625 - 0.25) / 0.75 = 0.5 -> 50
    assert normalise(0.625, 0.25) == pytest.approx(50.0)
    # below chance is clipped at 0
    assert normalise(0.2, 0.25) == 0.0
    # generative task: baseline 0 -> raw x 100
    assert normalise(0.37, 0.0) == pytest.approx(37.0)
    # percent-scale metric (squadv2 f1 = 42.0) -> 42
    assert normalise(42.0, 0.0, scale=100) == pytest.approx(42.0)
    # 10 choices (MMLU-Pro), raw 0.55: (0.55 - 0.1) / 0.9 = 0.5
    assert normalise(0.55, 0.1) == pytest.approx(50.0)
    with pytest.raises(ValueError):
        normalise(0.5, 1.0)


def test_per_subtask_then_mean():
    # leaf a: 2 choices, raw 0.75 -> 50; leaf b: 4 choices, raw 0.25 -> 0; leaf c: 5 choices,
    # raw 0.6 -> (0.6 - 0.2) / 0.8 = 50. Mean of normalised = 100/3; raw mean = 1.6/3.
    s = summarise({"a": 0.75, "b": 0.25, "c": 0.6}, {"a": 0.5, "b": 0.25, "c": 0.2})
    assert s.normalised == pytest.approx(100 / 3)
    assert s.raw_score == pytest.approx(1.6 / 3)
    assert s.score == s.normalised and s.score_kind == "normalised"


def test_no_baseline_falls_back_to_raw_and_missing_stays_missing():
    s = summarise({"truthfulqa_mc2": 0.41}, {"truthfulqa_mc2": None})
    assert s.normalised is None and s.score == pytest.approx(41.0) and s.score_kind == "raw"
    m = summarise({"a": 0.5, "b": None}, {"a": 0.5, "b": 0.5})
    assert m.score is None and m.raw_score is None and m.score_kind == "missing"


def test_baseline_sources():
    assert resolve_baseline("hellaswag") == (0.25, "table")
    assert resolve_baseline("mmlu_anatomy") == (0.25, "table")
    assert resolve_baseline("anli_r2")[0] == pytest.approx(1 / 3)
    assert resolve_baseline("truthfulqa_mc2") == (None, "table")
    # BBH is inferred per subtask from the items: 2 items with 2 options, 1 with 4 options
    b, src = resolve_baseline("leaderboard_bbh_navigate", None, "multiple_choice", [2, 2, 4])
    assert src == "inferred" and b == pytest.approx((0.5 + 0.5 + 0.25) / 3)
    # config override wins, also "none"
    assert resolve_baseline("hellaswag", 0.3) == (0.3, "config")
    assert resolve_baseline("hellaswag", "none") == (None, "config")
    # unknown generative task: 0; unknown output type: no baseline
    assert infer_baseline("generate_until", []) == 0.0
    assert resolve_baseline("whatever", None, "loglikelihood_rolling") == (None, "none")


def test_subsample_is_seeded_sorted_and_model_independent():
    a = subsample_indices(100, 10, 1234, "toy_facts")
    assert a == subsample_indices(100, 10, 1234, "toy_facts")
    assert a == sorted(a) and len(set(a)) == 10 and all(0 <= i < 100 for i in a)
    assert a != subsample_indices(100, 10, 1234, "toy_cloze")
    assert a != subsample_indices(100, 10, 1, "toy_facts")
    assert a != list(range(10))  # not the first n (that would be limit=)
    assert subsample_indices(10, 10, 1, "x") is None  # n >= total: everything
    with pytest.raises(ValueError):
        subsample_indices(10, 0, 1, "x")


def test_both_configs_parse():
    toy = bench_config(load_study_file("config/config.yaml").config)
    assert toy.jobs == "per_model" and toy.screening_enabled
    assert all(t.startswith("toy_") for t in toy.tasks)
    paper = bench_config(load_study_file("config/paper.yaml").config)
    assert len(paper.run_tasks) == 30 and set(paper.aggregates) == {"openllm_v1", "openllm_v2"}
    assert paper.tasks["squadv2"].scale == 100
    assert paper.tasks["humaneval_plus"].task == "rms_humaneval_plus"


def test_bad_benchmark_config_names_the_field():
    cfg = load_study_file("config/config.yaml").config
    bad = dict(cfg, benchmarks={"tasks": {"c": {"kind": "code"}}})
    with pytest.raises(ConfigError, match=r"benchmarks\.tasks\.c\.data"):
        bench_config(bad)
    bad = dict(cfg, benchmarks={"tasks": {"a": {}}, "screening": {"tasks": ["b"]}})
    with pytest.raises(ConfigError, match=r"benchmarks\.screening\.tasks"):
        bench_config(bad)
    bad = dict(cfg, benchmarks={"mode": "tiny"})
    with pytest.raises(ConfigError, match=r"benchmarks\.mode"):
        bench_config(bad)


def test_spec_import_is_light():
    """The Snakefile imports rmselect.bench.spec at DAG time: no lm_eval, no torch."""
    code = (
        "import sys; import rmselect.bench.spec, rmselect.bench.normalise, "
        "rmselect.bench.sampling; "
        "bad = [m for m in ('lm_eval', 'torch', 'transformers') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO,
                   env={"PYTHONPATH": str(REPO / "workflow"), "PATH": "/usr/bin:/bin"})
