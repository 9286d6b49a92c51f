"""Recommender: prediction interval, ranking, contributions that add up."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from analysis_helpers import FIXTURE, fixture_models_csv

from rmselect.analysis.data import load_features, load_models, load_rm_scores
from rmselect.analysis.recommend import conformal_quantile, interval, recommend
from rmselect.analysis.selection import SelectionConfig, contributions, grid_search

FAST = SelectionConfig(degrees=[1], alphas=[0.1, 0.01], l1_ratios=[0.5, 1.0], cv_folds=3,
                       outer_folds=3, seed=0)


def test_conformal_interval_by_hand():
    res = [-2, -1, 0, 1, 2, 3, -4, 0.5, 1.5, -2.5]  # |r| sorted: 0 .5 1 1 1.5 2 2 2.5 3 4
    # n = 10, level 0.8: rank ceil(11 * 0.8) = 9 → q = 3 (level 9/10 of |r|)
    assert conformal_quantile(res, 0.8) == (3.0, 10)
    assert interval(50.0, res, 0.8) == (47.0, 53.0, 10)
    # level 0.9: rank ceil(9.9) = 10 → q = 4 (the plain 0.9 quantile would be 3.1)
    assert interval(50.0, res, 0.9) == (46.0, 54.0, 10)
    # clipped to the 0-100 score range
    assert interval(98.0, res, 0.8) == (95.0, 100.0, 10)
    assert interval(1.0, res, 0.8) == (0.0, 4.0, 10)
    # five residuals cannot support 90%: rank ceil(6 * 0.9) = 6 > 5 → the whole range
    assert interval(50.0, [-2, -1, 0, 1, 2], 0.9) == (0.0, 100.0, 5)
    lo, hi, n = interval(50.0, [], 0.9)
    assert np.isnan(lo) and np.isnan(hi) and n == 0


def test_interval_stays_inside_the_score_range():
    # the toy study's residuals once gave [-107, 59]: wide residuals, a low prediction
    rng = np.random.default_rng(0)
    res = rng.normal(0, 60, 8).tolist()
    for pred in (-30.0, 5.0, 50.0, 97.0, 130.0):
        for level in (0.5, 0.8, 0.9):
            lo, hi, n = interval(pred, res, level)
            assert 0.0 <= lo <= hi <= 100.0 and n == 8


def test_contributions_add_up_to_the_prediction():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 3))
    y = 2 * X[:, 0] + X[:, 1] + rng.normal(0, 0.1, 30)
    m = grid_search(X, y, False, FAST).best_estimator_
    c = contributions(m, ["a", "b", "c"], X[:2])
    for row, pred in zip(c, m.predict(X[:2])):
        total = m.named_steps["enet"].intercept_ + sum(t["contribution"] for t in row)
        assert total == pytest.approx(pred)


def test_ranks_held_back_models_on_the_fixture(tmp_path):
    models = load_models(fixture_models_csv(tmp_path))
    rm = load_rm_scores(FIXTURE / "rm_scores.csv", "rewardbench")
    cands = ["famd-7b", "famc-0.5b"]  # the best and one of the worst RMs of the fixture
    rm_train = rm.filter(~pl.col("model").is_in(cands))
    feats = load_features(FIXTURE / "features.csv")
    out = recommend(rm_train, feats, models, cands, "drop_feature", FAST,
                    {"regression": [-1.0, -0.5, 0.0, 0.5, 1.0]}, level=0.5, n_top=2)
    assert out.height == 4  # 2 candidates x 2 objectives
    reg = out.filter(pl.col("objective") == "regression").sort("rank")
    assert reg["candidate"].to_list() == ["famd-7b", "famc-0.5b"]
    r0 = reg.row(0, named=True)
    assert r0["pi_lo"] == pytest.approx(r0["predicted_score"] - 0.5)
    assert r0["pi_hi"] == pytest.approx(r0["predicted_score"] + 0.5)
    assert r0["top_features"].count(":") == 2
    assert r0["pi_n_residuals"] == 5
    assert out.filter(pl.col("objective") == "bt")["pi_lo"].is_nan().all()  # no residuals
    assert set(out["missing_policy"]) == {"drop_feature"}


def test_uses_the_chosen_strategy_and_says_when_none_beats_random(tmp_path):
    from rmselect.analysis.recommend import NO_EVIDENCE

    models = load_models(fixture_models_csv(tmp_path))
    rm = load_rm_scores(FIXTURE / "rm_scores.csv", "rewardbench")
    cands = ["famd-7b", "famc-0.5b"]
    rm_train = rm.filter(~pl.col("model").is_in(cands))
    feats = load_features(FIXTURE / "features.csv")
    res = {"regression": [-1.0, -0.5, 0.0, 0.5, 1.0]}
    good = {"regression": {"chosen": "rank_average", "any_strategy_beats_random": True},
            "bt": {"chosen": "size_only", "any_strategy_beats_random": False}}
    out = recommend(rm_train, feats, models, cands, "drop_feature", FAST, res, level=0.5,
                    strategies=good)
    reg = out.filter(pl.col("objective") == "regression").sort("rank")
    assert reg["strategy"].to_list() == ["rank_average"] * 2
    assert reg["candidate"].to_list() == ["famd-7b", "famc-0.5b"]
    assert (reg["note"] == "").all()
    r0 = reg.row(0, named=True)  # split-conformal on the residuals given, as before
    assert r0["pi_hi"] - r0["pi_lo"] == pytest.approx(1.0)
    bt = out.filter(pl.col("objective") == "bt")
    assert bt["rank"].is_null().all()  # no strategy beats random: no ranking
    assert (bt["note"] == NO_EVIDENCE).all() and (bt["strategy"] == "size_only").all()
