"""Gains over the size group's default model, checked by hand on a three-model group."""

from __future__ import annotations

import math

import polars as pl
import pytest
from analysis_helpers import models_frame, rm_frame

from rmselect.analysis.bt_vs_regression import bt_vs_regression
from rmselect.analysis.gains import gains


def test_three_model_group_by_hand():
    models = models_frame(
        [
            ("llama", "llama", 1.0, "small", "llama"),
            ("qwen", "qwen", 1.5, "small", "llama"),
            ("gemma", "gemma", 2.0, "small", "llama"),
        ]
    )
    rm = rm_frame([("llama", "bt", 60.0), ("qwen", "bt", 66.0), ("gemma", "bt", 57.0)])
    g = gains(rm, models)
    by = {r["model"]: r for r in g.iter_rows(named=True)}
    assert by["qwen"]["gain_points"] == pytest.approx(6.0)
    assert by["qwen"]["gain_relative_pct"] == pytest.approx(10.0)  # 6 / 60
    assert by["gemma"]["gain_points"] == pytest.approx(-3.0)
    assert by["gemma"]["gain_relative_pct"] == pytest.approx(-5.0)
    assert by["llama"]["gain_points"] == 0.0
    assert g["model"].to_list() == ["qwen", "llama", "gemma"]  # best first within the group
    assert set(g["default_model"]) == {"llama"}


def test_groups_use_their_own_default_and_missing_default_stays_empty():
    models = models_frame(
        [
            ("a", "f", 1.0, "small", "a"),
            ("b", "f", 1.0, "small", "a"),
            ("c", "g", 9.0, "large", "d"),
            ("d", "g", 9.0, "large", "d"),
        ]
    )
    rm = rm_frame([("a", "regression", 50.0), ("b", "regression", 55.0),
                   ("c", "regression", 70.0)])  # default d has no RM score
    g = gains(rm, models)
    c = g.filter(pl.col("model") == "c").row(0, named=True)
    assert c["default_model"] == "d" and c["default_score"] is None and c["gain_points"] is None
    b = g.filter(pl.col("model") == "b").row(0, named=True)
    assert b["gain_points"] == pytest.approx(5.0)


def test_bt_vs_regression_difference_by_hand():
    models = models_frame([("m1", "f", 1.0, "s", "m1"), ("m2", "f", 1.0, "s", "m1")])
    rm = rm_frame([("m1", "bt", 60.0), ("m1", "regression", 64.5), ("m2", "bt", 70.0),
                   ("m2", "regression", 68.0)])
    d = bt_vs_regression(rm, models).filter(pl.col("section") == "overall")
    diff = dict(zip(d["model"], d["difference_points"]))
    assert diff["m1"] == pytest.approx(4.5) and diff["m2"] == pytest.approx(-2.0)
    assert not math.isnan(diff["m1"])
