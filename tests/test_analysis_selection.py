"""The Elastic Net selection model: planted coefficients, selection metrics, no leakage."""

from __future__ import annotations

import numpy as np
import pytest

from rmselect.analysis.data import Aligned
from rmselect.analysis.selection import (
    SelectionConfig,
    analyse_objective,
    coefficients,
    grid_search,
    out_of_sample,
    quality_rows,
)

FAST = SelectionConfig(degrees=[1, 2], alphas=[0.05, 0.01], l1_ratios=[1.0], cv_folds=3,
                       outer_folds=3, seed=0)


def test_recovers_planted_sparse_coefficients():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 6))
    y = 3.0 * X[:, 0] - 2.0 * X[:, 3] + rng.normal(0, 0.05, 80)
    cfg = SelectionConfig(degrees=[1, 2], alphas=[0.01, 0.1], l1_ratios=[1.0], cv_folds=5)
    gs = grid_search(X, y, impute=False, cfg=cfg)
    feats = [f"f{j}" for j in range(6)]
    co = {c["term"]: c["coef"] for c in coefficients(gs.best_estimator_, feats, tol=0.05)}
    assert set(co) == {"f0", "f3"}
    # coefficients are per SD of the (standardised) term: ≈ 3·sd(x0), −2·sd(x3)
    assert co["f0"] == pytest.approx(3.0 * X[:, 0].std(), rel=0.05)
    assert co["f3"] == pytest.approx(-2.0 * X[:, 3].std(), rel=0.05)


def test_quality_rows_by_hand():
    names = ["a", "b", "c", "d"]
    truth = np.array([70, 80, 60, 50.0])  # best = b
    pred = np.array([9, 5, 8, 1.0])  # predicted order a > c > b > d
    rows = {r["k"]: r for r in quality_rows(names, pred, truth, [1, 2, 3, 4])}
    # k=1: choose a (70) instead of b (80) → regret 10; coverage {a} vs {b} = 0
    assert rows[1]["regret_points"] == pytest.approx(10.0) and rows[1]["coverage"] == 0.0
    assert not rows[1]["hit_at_k"]
    # k=2: {a,c} vs {b,a} → 1/2, best in shortlist 70 → regret 10
    assert rows[2]["coverage"] == 0.5 and rows[2]["regret_points"] == pytest.approx(10.0)
    # k=3: {a,c,b} vs {b,a,c} → 1, b in shortlist → regret 0
    assert rows[3]["coverage"] == 1.0 and rows[3]["hit_at_k"] and rows[3]["regret_points"] == 0
    assert rows[2]["precision_at_k"] == rows[2]["coverage"]


def test_quality_rows_with_tied_predictions_are_expectations():
    names = ["a", "b", "c", "d", "e"]
    truth = np.array([50, 80, 70, 60, 40.0])  # best = b
    pred = np.array([9, 5, 5, 5, 1.0])  # a first, then a three-way tie b = c = d
    rows = {r["k"]: r for r in quality_rows(names, pred, truth, [1, 2, 3])}
    assert rows[1]["hit_at_k"] == 0.0 and rows[1]["regret_points"] == pytest.approx(30.0)
    # k=2: a + one of {b, c, d} (1/3 each): hit 1/3; E[best] = (80 + 70 + 60) / 3 = 70
    # (by name, b would always be picked: hit 1, regret 0)
    assert rows[2]["hit_at_k"] == pytest.approx(1 / 3)
    assert rows[2]["regret_points"] == pytest.approx(10.0)
    # coverage k=2: truth top-2 {b, c}: 1/3 + 1/3 = 2/3 of 2 → 1/3
    assert rows[2]["coverage"] == pytest.approx(1 / 3)
    # k=3: a + two of the three; best of a random pair of (60, 70, 80): 70 w.p. 1/3, 80 w.p.
    # 2/3 → 230/3; regret 80 - 230/3 = 10/3; hit 2/3
    assert rows[3]["hit_at_k"] == pytest.approx(2 / 3)
    assert rows[3]["regret_points"] == pytest.approx(10 / 3)
    # two models share the best true score: either one in the shortlist is a hit
    r = quality_rows(["a", "b"], np.array([2.0, 1.0]), np.array([80.0, 80.0]), [1])[0]
    assert r["hit_at_k"] == pytest.approx(1.0) and r["regret_points"] == 0.0


def _aligned(n=16, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = 60 + 4 * X[:, 0] + rng.normal(0, 0.5, n)
    names = [f"m{i:02d}" for i in range(n)]
    fams = [f"fam{i % 4}" for i in range(n)]
    return Aligned("regression", names, ["bench", "noise1", "noise2"], X,
                   {"overall": y}, fams, np.ones(n), "drop_feature")


def test_nested_cv_prediction_does_not_see_its_own_target():
    al = _aligned()
    pred, _ = out_of_sample(al, al.X, "nested_cv", FAST)
    y2 = al.y["overall"].copy()
    y2[5] += 1000.0  # a wild change to one model's target
    al2 = Aligned(al.objective, al.models, al.features, al.X, {"overall": y2}, al.family,
                  al.params_b, al.missing_policy)
    pred2, _ = out_of_sample(al2, al2.X, "nested_cv", FAST)
    assert pred2[5] == pytest.approx(pred[5])  # held out: unaffected by its own target
    assert not np.allclose(np.delete(pred2, 5), np.delete(pred, 5))  # others see it


def test_leave_one_family_out_holds_out_whole_families():
    al = _aligned()
    pred, base = out_of_sample(al, al.X, "leave_one_family_out", FAST)
    assert not np.isnan(pred).any() and not np.isnan(base).any()
    y2 = al.y["overall"].copy()
    fam0 = [i for i, f in enumerate(al.family) if f == "fam0"]
    y2[fam0] += 500.0
    al2 = Aligned(al.objective, al.models, al.features, al.X, {"overall": y2}, al.family,
                  al.params_b, al.missing_policy)
    pred2, _ = out_of_sample(al2, al2.X, "leave_one_family_out", FAST)
    assert pred2[fam0] == pytest.approx(pred[fam0])


def test_leave_one_lineage_out_holds_out_version_families_together():
    # fam0 and fam1 are two versions of one lineage (like gemma-1.1 and gemma-2)
    al = _aligned()
    al.lineage = ["lin01" if f in ("fam0", "fam1") else f for f in al.family]
    pred, _ = out_of_sample(al, al.X, "leave_one_lineage_out", FAST)
    fam_pred, _ = out_of_sample(al, al.X, "leave_one_family_out", FAST)
    y2 = al.y["overall"].copy()
    fam0 = [i for i, f in enumerate(al.family) if f == "fam0"]
    fam1 = [i for i, f in enumerate(al.family) if f == "fam1"]
    y2[fam0] += 500.0  # a wild change to the sibling version's targets
    al2 = Aligned(al.objective, al.models, al.features, al.X, {"overall": y2}, al.family,
                  al.params_b, al.missing_policy, lineage=al.lineage)
    pred2, _ = out_of_sample(al2, al2.X, "leave_one_lineage_out", FAST)
    fam_pred2, _ = out_of_sample(al2, al2.X, "leave_one_family_out", FAST)
    # held out with fam0: fam1's predictions never saw its sibling's targets
    assert pred2[fam1] == pytest.approx(pred[fam1])
    # by family, fam1 is predicted by a model trained on fam0: the leak the lineage closes
    assert np.abs(fam_pred2[fam1] - fam_pred[fam1]).max() > 1.0


def test_presence_comparisons_paper_in_sample_and_out_of_sample():
    rng = np.random.default_rng(4)
    n = 24
    X = rng.normal(size=(n, 4))
    y = 60 + 4 * X[:, 0] + 3 * X[:, 2] + rng.normal(0, 0.3, n)
    al = Aligned("regression", [f"m{i:02d}" for i in range(n)],
                 ["bench", "noise", "presence_github", "presence_book"], X, {"overall": y},
                 [f"fam{i % 4}" for i in range(n)], np.ones(n), "drop_feature")
    s, _ = analyse_objective(al, FAST, ks=[1, 3], compare_k=[3])
    mp = s["mae_presence"]
    assert mp["presence_features"] == ["presence_github", "presence_book"]
    paper = mp["selected_features_in_sample"]
    assert paper["evaluation"] == "in_sample"
    assert "bench" in paper["selected_features"]
    assert not any(f.startswith("presence_") for f in paper["selected_features"])
    # the planted presence signal: adding it to the selected features lowers the MAE a lot
    assert paper["with_presence"] < 0.5 * paper["without_presence"]
    out = mp["all_features"]
    assert out["with_presence"]["nested_cv"] < out["without_presence"]["nested_cv"]
    assert out["with_presence"]["in_sample"] == s["in_sample_mae"]


def test_summary_on_a_clear_signal():
    al = _aligned(n=20)
    s, rows = analyse_objective(al, FAST, ks=[1, 3, 5], compare_k=[3, 5])
    assert s["coefficients"][0]["term"] == "bench"
    assert s["nested_cv_mae"] < 3.0 and s["in_sample_mae"] < 3.0
    assert s["mae_presence"] is None  # no presence_* features
    assert {r["evaluation"] for r in rows} == {"in_sample", "nested_cv", "leave_one_lineage_out",
                                               "leave_one_family_out"}
    assert s["leave_one_lineage_out_mae"] is not None and s["leave_one_family_out_mae"] is not None
    assert len(s["oof_residuals"]) == 20
    assert s["best_single_feature_in_sample"] == "bench"


def test_l1_ratio_zero_is_the_same_objective_as_elastic_net():
    from sklearn.linear_model import ElasticNet

    from rmselect.analysis.selection import ElasticNetOrRidge

    rng = np.random.default_rng(5)
    X = rng.normal(size=(40, 5))
    y = X @ np.array([1.0, -2.0, 0.0, 0.5, 0.0]) + rng.normal(0, 0.1, 40)
    ours = ElasticNetOrRidge(alpha=0.3, l1_ratio=0.0).fit(X, y)
    ref = ElasticNet(alpha=0.3, l1_ratio=0.0, tol=1e-12, max_iter=100000).fit(X, y)
    assert ours.coef_ == pytest.approx(ref.coef_, abs=1e-6)
    assert ours.intercept_ == pytest.approx(ref.intercept_, abs=1e-6)
    for rho in (0.25, 0.5, 0.75, 1.0):  # dual Newton (0 < rho < 1) and LARS (rho = 1)
        ours = ElasticNetOrRidge(alpha=0.3, l1_ratio=rho).fit(X, y)
        ref = ElasticNet(alpha=0.3, l1_ratio=rho, tol=1e-14, max_iter=100000).fit(X, y)
        assert ours.coef_ == pytest.approx(ref.coef_, abs=1e-8)
        assert ours.intercept_ == pytest.approx(ref.intercept_, abs=1e-8)


def test_exact_solvers_match_converged_coordinate_descent_with_more_terms_than_models():
    """p > n with correlated columns, the case where ElasticNet's defaults stop early."""
    from sklearn.linear_model import ElasticNet

    from rmselect.analysis.selection_solvers import solve_path

    rng = np.random.default_rng(3)
    q = rng.normal(size=20)
    Z = np.outer(q, rng.uniform(0.5, 1, 30)) + rng.normal(0, 0.3, (20, 30))
    y = 3 * q + rng.normal(0, 0.5, 20)
    alphas = [0.1, 0.01]
    for rho in (0.0, 0.5, 1.0):
        path = solve_path(Z, y, alphas, rho)
        for a, (coef, b) in zip(alphas, path):
            ref = ElasticNet(alpha=a, l1_ratio=rho, tol=1e-14, max_iter=10**6).fit(Z, y)
            assert coef == pytest.approx(ref.coef_, abs=1e-6), (a, rho)
            assert b == pytest.approx(ref.intercept_, abs=1e-6)


def test_path_grid_search_equals_the_per_point_grid_search():
    """Same folds, same grid: same choice, CV scores and coefficients as GridSearchCV over
    per-point coordinate-descent fits (well-conditioned small case: n > terms)."""
    from rmselect.analysis.selection_model import reference_grid_search

    rng = np.random.default_rng(4)
    X = rng.normal(size=(40, 3))
    y = 50 + 3 * X[:, 0] - 1.5 * X[:, 1] * X[:, 2] + rng.normal(0, 0.3, 40)
    cfg = SelectionConfig(degrees=[1, 2], alphas=[0.1, 0.01], l1_ratios=[0.0, 0.5, 1.0],
                          cv_folds=5, seed=0)
    new, old = grid_search(X, y, False, cfg), reference_grid_search(X, y, False, cfg)
    assert new.best_params_ == old.best_params_
    assert new.best_params_["poly__degree"] == 2  # the planted interaction is found
    for params, score in zip(old.cv_results_["params"], old.cv_results_["mean_test_score"]):
        key = (params["enet__alpha"], params["enet__l1_ratio"], params["poly__degree"])
        # within the reference's coordinate-descent tolerance (relative duality gap 1e-4)
        assert new.cv_scores_[key] == pytest.approx(score, rel=1e-2)
    a = new.best_estimator_.named_steps["enet"].coef_
    b = old.best_estimator_.named_steps["enet"].coef_
    # the reference stops at ElasticNet's default tolerance, ~1e-4 away from the optimum ...
    assert np.max(np.abs(a - b)) < 1e-3
    assert new.predict(X) == pytest.approx(old.predict(X), abs=1e-3)
    # ... which the per-point fit reaches when run to convergence: equal within 1e-6
    from sklearn.linear_model import ElasticNet

    Z = new.best_estimator_[:-1].transform(X)
    p = new.best_params_
    tight = ElasticNet(alpha=p["enet__alpha"], l1_ratio=p["enet__l1_ratio"], tol=1e-14,
                       max_iter=10**6).fit(Z, y)
    assert np.max(np.abs(a - tight.coef_)) < 1e-6
    # folds in parallel give the same scores
    par = grid_search(X, y, False, cfg, n_jobs=2)
    assert par.cv_scores_ == pytest.approx(new.cv_scores_)


def test_impute_policy_runs_the_imputer_inside_the_pipeline():
    al = _aligned()
    X = al.X.copy()
    X[[1, 7], 1] = np.nan
    al2 = Aligned(al.objective, al.models, al.features, X, al.y, al.family, al.params_b,
                  "impute")
    s, rows = analyse_objective(al2, FAST, ks=[1, 3], compare_k=[3])
    assert s["missing_policy"] == "impute" and np.isfinite(s["nested_cv_mae"])
    gs = grid_search(X, al.y["overall"], True, FAST)
    assert "impute" in gs.best_estimator_.named_steps


def test_lower_degree_terms_are_a_prefix_of_the_largest_degree():
    from rmselect.analysis.selection_model import _n_terms, _transformers

    X = np.random.default_rng(0).normal(size=(12, 4))
    pre = _transformers(False, 3, SelectionConfig()).fit(X)
    deg = pre.named_steps["poly"].powers_.sum(axis=1)
    n = _n_terms(pre, [1, 2, 3])
    assert n == {1: 4, 2: 14, 3: 34}
    assert all((deg[: n[d]] <= d).all() and (deg[n[d]:] > d).all() for d in (1, 2, 3))


STRAT = SelectionConfig(degrees=[1], alphas=[0.1, 0.01], l1_ratios=[0.5], cv_folds=5,
                        outer_folds=5, seed=0, leave_one_family_out=False, bootstrap=200)


def _study(signal: bool, seed: int, n: int = 40, p: int = 8) -> Aligned:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = 60 + rng.normal(0, 3, n)
    if signal:  # feature 3 determines the score up to noise
        X[:, 3] = (y - 60) / 3 + rng.normal(0, 0.15, n)
    names = [f"m{i:02d}" for i in range(n)]
    return Aligned("bt", names, [f"f{j}" for j in range(p)], X, {"overall": y},
                   [f"fam{i % 8}" for i in range(n)], np.exp(rng.normal(2, 1, n)),
                   "drop_feature")


def _evidence(rows, predictor):
    r = [x for x in rows if x["evaluation"] == "nested_cv" and x["predictor"] == predictor]
    return r[0]


def test_planted_feature_is_found_out_of_sample_and_beats_random():
    from rmselect.analysis.selection_strategies import chosen_feature

    al = _study(signal=True, seed=0)
    s, rows = analyse_objective(al, STRAT, ks=list(range(1, 11)), compare_k=[5, 6, 7, 8])
    assert chosen_feature(al.X, al.y["overall"], al.features, STRAT) == "f3"
    rnd = _evidence(rows, "random")
    assert rnd["mean_coverage"] == pytest.approx(np.mean([5, 6, 7, 8]) / 40)
    for strat in ("rank_average", "best_single_feature"):
        e = _evidence(rows, strat)
        assert e["mean_coverage"] > 0.5  # random: 0.16; 0.67-0.97 over seeds 0-3
        assert e["beats_random"] and e["vs_random_lo"] > 0.3
        assert e["coverage_lo"] <= e["coverage"] <= e["coverage_hi"]
    assert s["strategy"]["any_strategy_beats_random"]
    assert s["strategy"]["chosen"] != "size_only"
    # residuals are the chosen strategy's, on the score scale (noise sd ~0.45 points)
    assert np.median(np.abs(s["oof_residuals"])) < 2.0
    # random row: exact expectations
    r1 = [x for x in rows if x["predictor"] == "random" and x["k"] == 4][0]
    assert r1["coverage"] == pytest.approx(4 / 40) and r1["hit_at_k"] == pytest.approx(4 / 40)


def test_pure_noise_no_strategy_interval_excludes_random():
    al = _study(signal=False, seed=1)
    s, rows = analyse_objective(al, STRAT, ks=list(range(1, 11)), compare_k=[5, 6, 7, 8])
    fitted = [x for x in rows if x["evaluation"] == "nested_cv" and x["predictor"] != "random"]
    assert {x["predictor"] for x in fitted} == {"selection_model", "ridge", "rank_average",
                                                 "best_single_feature", "size_only"}
    for x in fitted:
        assert x["vs_random_lo"] <= 0 <= x["vs_random_hi"], x["predictor"]
        assert not x["beats_random"]
    assert not s["strategy"]["any_strategy_beats_random"]


def test_lasso_solutions_are_checked_against_the_optimality_conditions():
    """9 models x 35 nearly collinear terms (where LARS once gave coefficients of 1e13):
    every solution is finite, within the l1 bound, and passes the lasso's KKT check."""
    from rmselect.analysis.selection_solvers import _lasso_kkt, lasso_path

    rng = np.random.default_rng(0)
    q = rng.normal(size=9)
    Z = np.outer(q, np.ones(35)) + rng.normal(0, 1e-3, (9, 35))
    Z -= Z.mean(axis=0)
    y = 5 * q + rng.normal(0, 0.5, 9)
    y -= y.mean()
    for a, w in zip([0.1, 0.001], lasso_path(Z, y, [0.1, 0.001])):
        assert np.all(np.isfinite(w))
        # the l1 norm of a lasso solution is bounded by objective(0) / alpha
        assert np.abs(w).sum() <= (y @ y) / (2 * len(y)) / a + 1e-9
        assert _lasso_kkt(Z, y, w, a)
    w = lasso_path(Z, y, [0.1])[0]
    assert _lasso_kkt(Z, y, w, 0.1, rtol=1e-2)
    assert not _lasso_kkt(Z, y, w + 0.5, 0.1)


def test_ridge_strategy_chooses_the_penalty_ridgecv_chooses():
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from rmselect.analysis.selection_strategies import RIDGE_ALPHAS, fit_ridge

    rng = np.random.default_rng(2)
    X = rng.normal(size=(30, 6))
    y = X @ rng.normal(size=6) + rng.normal(0, 2, 30)
    ours = fit_ridge(X, y, np.ones(30), False, STRAT)
    ref = make_pipeline(StandardScaler(), RidgeCV(alphas=RIDGE_ALPHAS, scoring="neg_mean_squared_error",
                        cv=KFold(5, shuffle=True, random_state=0))).fit(X, y)
    assert ours(X, None) == pytest.approx(ref.predict(X), abs=1e-8)


def test_proximal_lasso_reaches_the_lasso_optimum():
    from sklearn.linear_model import Lasso

    from rmselect.analysis.selection_solvers import _lasso_kkt, lasso_proximal

    rng = np.random.default_rng(6)
    q = rng.normal(size=20)
    Z = np.outer(q, rng.uniform(0.5, 1, 60)) + rng.normal(0, 0.3, (20, 60))
    Z -= Z.mean(axis=0)
    y = 3 * q + rng.normal(0, 0.5, 20)
    y -= y.mean()
    for a in (0.1, 0.01):
        w = lasso_proximal(Z, y, a)
        assert w is not None and _lasso_kkt(Z, y, w, a)
        ref = Lasso(alpha=a, fit_intercept=False, tol=1e-14, max_iter=10**6).fit(Z, y)
        assert w == pytest.approx(ref.coef_, abs=1e-5)


def test_seed_interval_of_a_ranking_widens_with_seed_noise():
    """Planted seeds: a perfect ranking's coverage is exactly 1 on the seed means; its seed
    interval is a point without seed noise and widens as seed noise grows against the
    spread of the models; the random ordering's interval is its expectation k/n."""
    from rmselect.analysis.selection import seed_intervals

    rng = np.random.default_rng(0)
    n, ks = 30, [3, 5, 10]
    y = np.linspace(50, 80, n)
    assert seed_intervals(y, None, ks, ks) == ({k: (None, None) for k in ks}, (None, None))
    widths = []
    for noise in (0.0, 1.0, 5.0):
        draws = y + rng.normal(0, noise, (300, n))
        per_k, mean = seed_intervals(y, draws, ks, ks)
        assert mean[0] <= mean[1] <= 1.0
        widths.append(mean[1] - mean[0])
        if noise == 0:
            assert all(per_k[k] == (1.0, 1.0) for k in ks)
        rnd, _ = seed_intervals(np.zeros(n), draws, ks, ks)
        assert all(rnd[k] == pytest.approx((k / n, k / n)) for k in ks)
    assert widths[0] == 0 and widths[1] > 0.05 and widths[2] > widths[1] + 0.1
    assert seed_intervals(y, y + rng.normal(0, 5.0, (300, n)), ks, ks)[1][0] < 0.8


def test_selection_rows_carry_seed_intervals_when_seeds_exist():
    al = _study(signal=True, seed=0)
    y = al.y["overall"]
    draws = y + np.random.default_rng(3).normal(0, 0.5, (50, len(y)))
    _, rows = analyse_objective(al, STRAT, ks=[5], compare_k=[5], seed_y=draws)
    for r in rows:
        assert r["coverage_seed_lo"] <= r["coverage_seed_hi"], r["predictor"]
        if r["predictor"] == "random":
            assert r["coverage_seed_lo"] == pytest.approx(5 / len(y))
        if r["evaluation"] != "in_sample":
            assert r["mean_coverage_seed_lo"] is not None
    _, rows = analyse_objective(al, STRAT, ks=[5], compare_k=[5])
    assert all(r["coverage_seed_lo"] is None for r in rows)
