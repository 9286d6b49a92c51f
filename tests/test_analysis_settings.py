"""Analysis settings: defaults merged under the config; the analysis rules' DAG helpers."""

from __future__ import annotations

import shlex
from types import SimpleNamespace

from rmselect.analysis.settings import analysis_settings
from rmselect.dag.analysis import producible, upstream_targets
from rmselect.dag.common import shell_json, shell_words


def test_defaults_are_the_papers_and_config_overrides_deeply():
    a = analysis_settings({"seed": 3, "analysis": {"selection": {"cv_folds": 4}}})
    assert a["selection"]["cv_folds"] == 4
    assert a["selection"]["alphas"] == [0.1, 0.01, 0.001, 0.0001]  # untouched default
    assert a["coverage"]["k"] == list(range(5, 31))
    assert a["coverage"]["compare_filter"] == "appendix"  # last filter by default
    assert a["seed"] == 3 and a["recommend"]["interval_level"] == 0.9
    assert a["missing"] == "drop_feature"


def test_shell_helpers_round_trip():
    assert shlex.split(shell_json({"a": "x y"})) == ['{"a": "x y"}']
    assert shlex.split(shell_words(["a b", 3])) == ["a b", "3"]
    assert shell_words([]) == ""


def test_upstream_and_producible(tmp_path):
    ns = {"RM_TARGETS": ["r.txt"], "EVAL_TARGETS": ["e.txt"]}
    assert upstream_targets(ns, True) == ["r.txt", "e.txt"]
    assert upstream_targets(ns, False) == []
    rules = [SimpleNamespace(output=["results/analysis/posttraining.csv"])]
    assert producible("results/analysis/posttraining.csv", rules)
    assert not producible("results/other.csv", rules)
    f = tmp_path / "x.csv"
    f.write_text("a\n")
    assert producible(str(f), [])
    assert not producible(None, rules)


def test_new_keys_default_as_the_schema_documents():
    from rmselect.analysis.settings import DEFAULTS, RECOMMEND_DEFAULTS
    from rmselect.config import load_schema

    props = load_schema("config")["properties"]
    pop = props["analysis"]["properties"]["population"]
    assert pop["default"] == DEFAULTS["population"]
    assert {k: v["default"] for k, v in pop["properties"].items()} == DEFAULTS["population"]
    rec = props["recommend"]["properties"]["score_range"]
    assert rec["default"] == RECOMMEND_DEFAULTS["score_range"] == [0.0, 100.0]
    assert "stages" not in DEFAULTS
