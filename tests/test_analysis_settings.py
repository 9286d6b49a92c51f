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


#: The analysis defaults the code used before they moved into the schema (issue 18): the
#: schema must keep holding exactly these, and analysis_settings must fill them.
EXPECTED_ANALYSIS = {
    "rm_scores": "results/tables/rm_scores.csv",
    "rm_seeds": "results/tables/rm_scores_seeds.csv",
    "seed_draws": 1000,
    "features": "results/tables/features.csv",
    "posttraining": None,
    "leaderboard_csv": None,
    "leaderboard_top": 30,
    "benchmark": "rewardbench",
    "population": {"column": None, "values": [], "models": []},
    "missing": "drop_feature",
    "correlations": {"bootstrap": 2000, "ci": 0.95, "alpha": 0.05},
    "coverage": {
        "k": list(range(5, 31)),
        "compare_k": [5, 6, 7, 8, 9, 10],
        "filters": [
            {"name": "main", "thresholds": {"5": 0.4, "10": 0.7}},
            {"name": "appendix", "thresholds": {"5": 0.4, "10": 0.6}},
        ],
        "compare_filter": None,
    },
    "selection": {
        "degrees": [1, 2, 3],
        "alphas": [0.1, 0.01, 0.001, 0.0001],
        "l1_ratios": [0.0, 0.25, 0.5, 0.75, 1.0],
        "cv_folds": 10,
        "outer_folds": 10,
        "scoring": "neg_mean_squared_error",
        "max_iter": 10000,
        "leave_one_family_out": True,
        "n_jobs": 1,
        "strategy": "best_out_of_sample",
        "bootstrap": 200,
    },
    "pca": {"components": 0},
    "cost": {
        "stages": None,
        "screening": ["bench_", "presence_"],
        "rm_grid": ["rm_train"],
        "gpu_json": [],
        "wait_for_all_stages": True,
    },
}
EXPECTED_RECOMMEND = {
    "candidates": [],
    "interval_level": 0.9,
    "top_features": 3,
    "score_range": [0.0, 100.0],
}


def test_new_keys_default_as_the_schema_documents():
    from rmselect.config import load_schema, section_settings

    props = load_schema("config")["properties"]
    pop = props["analysis"]["properties"]["population"]
    assert pop["default"] == EXPECTED_ANALYSIS["population"]
    assert {k: v["default"] for k, v in pop["properties"].items()} == EXPECTED_ANALYSIS["population"]
    rec = props["recommend"]["properties"]["score_range"]
    assert rec["default"] == EXPECTED_RECOMMEND["score_range"] == [0.0, 100.0]
    assert "stages" not in section_settings({}, "analysis")


def test_schema_holds_the_defaults_and_settings_fill_them():
    from rmselect.config import section_settings

    assert section_settings({}, "analysis") == EXPECTED_ANALYSIS
    assert section_settings({}, "recommend") == EXPECTED_RECOMMEND
    a = analysis_settings({"seed": 0})
    assert {k: v for k, v in a.items() if k not in ("recommend", "seed")} == {
        **EXPECTED_ANALYSIS,
        "coverage": {**EXPECTED_ANALYSIS["coverage"], "compare_filter": "appendix"},
    }
    assert a["recommend"] == EXPECTED_RECOMMEND
    # A partly given nested object keeps its other defaults.
    part = analysis_settings({"analysis": {"cost": {"rm_grid": ["x"]}, "correlations": {"ci": 0.9}}})
    assert part["cost"] == {**EXPECTED_ANALYSIS["cost"], "rm_grid": ["x"]}
    assert part["correlations"] == {"bootstrap": 2000, "ci": 0.9, "alpha": 0.05}
