"""The selection model: Elastic Net over polynomial features (§4, Figures 5, 6, 10).

Model (one per objective, target = overall RM score)::

    [SimpleImputer(mean) if missing == impute] → StandardScaler → PolynomialFeatures(degree,
    no bias) → StandardScaler → ElasticNet(alpha, l1_ratio)

(at l1_ratio = 0 the identical ridge objective is solved by ``Ridge``: see
:class:`ElasticNetOrRidge`).

Hyper-parameters are chosen by grid search over the paper's grid (degree {1,2,3},
alpha {0.1, 0.01, 0.001, 0.0001}, l1_ratio {0, 0.25, 0.5, 0.75, 1}) with shuffled
``KFold(cv_folds)`` (paper: 10), scoring ``analysis.selection.scoring``; the best setting is
refit on all models (the reported model and its non-zero coefficients, on the standardised
polynomial terms). The search solves along alpha paths with exact solvers
(:func:`.selection_model.grid_search`); ``reference_grid_search`` is the earlier
``GridSearchCV`` over coordinate-descent fits, kept for the bench.

Selection quality, each as coverage@k of the predicted score (see :mod:`.coverage`),
hit@k (the true best model is in the predicted top-k) and regret@k (overall RM points lost:
true best score minus the best true score among the predicted top-k, i.e. the loss when the
top-k shortlist is trained and the best kept; regret@1 = choosing the predicted best).
precision@k is |predicted top-k ∩ true top-k| / k, which equals coverage@k because both
sets have k members; it is written under both names.

* ``in_sample``: predictions of the model refit on all models (what the paper reports).
* ``nested_cv``: out-of-fold predictions of shuffled ``KFold(outer_folds)``; inside each
  training part the whole grid search runs again (nested CV, no leakage).
* ``leave_one_lineage_out``: ``GroupKFold`` with one group per *lineage* (model-table column
  ``lineage``: gemma, gemma-1.1 and gemma-2 are one lineage; Hermes-3 and Tulu-3 join
  llama-3): each lineage is predicted by a model that saw none of its versions.
* ``leave_one_family_out``: the same with one group per version-level ``family``. This does
  *not* keep relatives apart (gemma-2 is predicted by a model trained on gemma and
  gemma-1.1, Tulu-3 by one trained on Llama-3.1), so it is optimistic; it is reported beside
  the lineage grouping to show by how much.

Baseline ``best_single_feature``: in sample, the feature with the highest mean coverage over
``compare_k`` (the paper's comparison). Out of sample every strategy of
:mod:`.selection_strategies` (ridge, rank average, best single feature by inner-CV Spearman,
size only, and the random ordering's expectation) is fitted on each training part and
predicts the held-out models, with a bootstrap interval over models and paired comparisons
against random and the best single feature (:func:`.selection_eval.strategy_evidence`); the
strategy with the best nested-CV mean coverage (or ``analysis.selection.strategy``) is the
one the recommender uses (``strategy`` in the summary).

MAE with and without the presence means (``presence_*`` columns), ``mae_presence``, two
comparisons side by side:

* ``selected_features_in_sample`` (the paper's, §6: 3.2 → 1.7): the features that keep a
  non-zero weight in the model fitted without presence (the paper's five), refit by the same
  grid search on those features alone and on those features plus the presence means; in-sample
  MAE of each. Both the selection and the MAE use all models, so it is optimistic.
* ``all_features``: the whole procedure on all features vs all but ``presence_*``, in sample
  and nested CV (out of sample; the grid search reruns inside each training part).

Layout: the model and its grid search in :mod:`.selection_model`, the out-of-sample
evaluation and the quality measures in :mod:`.selection_eval`, the figures in
:mod:`.selection_plots`; this module runs the analysis of each objective and writes it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import polars as pl

from rmselect import cli
from rmselect.analysis.args import SelectionArgs
from rmselect.analysis.coverage import coverage_at_k
from rmselect.analysis.data import (
    AnalysisError,
    Aligned,
    align,
    load_features,
    load_models,
    load_rm_scores,
    objectives_present,
)
from rmselect.cli import opt
from rmselect.io import write_json, write_table

# The model, its evaluation and the figures have their own modules; their names stay
# importable from here (tests and rmselect.analysis.recommend use them).
from rmselect.analysis.selection_eval import (  # noqa: F401
    GROUPINGS,
    best_single_fit,
    expected_best_in_shortlist,
    hit_probability,
    mae,
    out_of_sample,
    out_of_sample_all,
    quality_rows,
    strategy_evidence,
)
from rmselect.analysis.seeds import coverage_draws, draw_seeds, interval, load_seed_scores
from rmselect.analysis.selection_strategies import STRATEGIES
from rmselect.analysis.selection_model import (  # noqa: F401
    ElasticNetOrRidge,
    SelectionConfig,
    coefficients,
    contributions,
    grid_search,
    pipeline,
    used_features,
)
from rmselect.analysis.selection_plots import (
    plot_coefficients,
    plot_comparison,
    plot_in_sample,
    plot_selection,
)

log = logging.getLogger(__name__)


def presence_comparison(
    al: Aligned, fitted_mae: float | None, nested_mae: float | None, cfg: SelectionConfig
) -> dict[str, Any] | None:
    """``mae_presence`` of the summary: both comparisons of the module docstring."""
    y = al.y["overall"]
    X = al.X
    impute = al.missing_policy == "impute"
    pres = [j for j, f in enumerate(al.features) if f.startswith("presence_")]
    if not pres or len(pres) == len(al.features):
        return None
    keep = [j for j in range(len(al.features)) if j not in pres]
    sub = Aligned(al.objective, al.models, [al.features[j] for j in keep], X[:, keep], al.y,
                  al.family, al.params_b, al.missing_policy, al.dropped, al.lineage)
    gs2 = grid_search(sub.X, y, impute, cfg)
    r2 = out_of_sample(sub, sub.X, "nested_cv", cfg)
    selected = used_features(gs2.best_estimator_, sub.features)
    paper: dict[str, Any] = {
        "evaluation": "in_sample",
        "selected_features": selected,
        "without_presence": None,
        "with_presence": None,
    }
    if selected:
        cols = [al.features.index(f) for f in selected]
        for key, idx in (("without_presence", cols), ("with_presence", cols + pres)):
            gs = grid_search(X[:, idx], y, impute, cfg)
            paper[key] = mae(gs.best_estimator_.predict(X[:, idx]), y)
    return {
        "presence_features": [al.features[j] for j in pres],
        "selected_features_in_sample": paper,
        "all_features": {
            "with_presence": {"in_sample": fitted_mae, "nested_cv": nested_mae},
            "without_presence": {"in_sample": mae(gs2.best_estimator_.predict(sub.X), y),
                                 "nested_cv": mae(r2[0], y) if r2 else None},
        },
    }


#: Level of the seed intervals (as the coverage table's, :mod:`rmselect.analysis.coverage`).
SEED_LEVEL = 0.95


def seed_intervals(
    pred: np.ndarray, y_draws: np.ndarray | None, ks: Sequence[int],
    compare_k: Sequence[int], level: float = SEED_LEVEL,
) -> tuple[dict[int, tuple[float | None, float | None]], tuple[float | None, float | None]]:
    """Seed intervals of one predictor's ranking: ({k: coverage@k}, mean coverage over
    ``compare_k``) when the truth is a seed draw (:mod:`rmselect.analysis.seeds`).

    The predictions stay fixed; each draw gives every model the score of one of its RM seeds,
    the truth a single-seed study would have ranked against. The interval is the central
    ``level`` share over the draws: how much of the coverage is the RM's training seed.
    ``y_draws`` None (no model has two seeds) gives empty intervals.
    """
    none: tuple[float | None, float | None] = (None, None)
    if y_draws is None:
        return {k: none for k in ks}, none
    n_ok = int(np.sum(~np.isnan(pred)))
    ks_all = sorted({int(k) for k in list(ks) + list(compare_k) if 1 <= k <= n_ok})
    cov = coverage_draws(pred, y_draws, ks_all)
    per_k = {k: interval(cov[:, i], level) for i, k in enumerate(ks_all)}
    pos = [ks_all.index(k) for k in compare_k if k in ks_all]
    mean = interval(cov[:, pos].mean(axis=1), level) if pos else none
    return {k: per_k.get(int(k), none) for k in ks}, mean


def analyse_objective(
    al: Aligned, cfg: SelectionConfig, ks: Sequence[int], compare_k: Sequence[int],
    seed_y: np.ndarray | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Fit, evaluate and summarise one objective: (JSON summary, selection_coverage rows).

    ``seed_y``: seed draws of the overall score (draws × models, :func:`draw_seeds`), for
    the seed intervals; None when no model has more than one seed.
    """
    y = al.y["overall"]
    if len(al.models) < 4 or not al.features:
        raise AnalysisError(
            f"objective {al.objective}: {len(al.models)} model(s) and {len(al.features)}"
            " feature(s) after the missing-value policy; the selection model needs >= 4 models"
            " and >= 1 feature"
        )
    impute = al.missing_policy == "impute"
    X = al.X
    gs = grid_search(X, y, impute, cfg)
    model = gs.best_estimator_
    fitted = model.predict(X)
    rows: list[dict[str, Any]] = []

    def add(evaluation: str, predictor: str, feature: str, pred: np.ndarray,
            per_k: dict[int, tuple[float, float]] | None = None,
            ev: dict[str, Any] | None = None) -> None:
        seed_k, seed_mean = seed_intervals(pred, seed_y, ks, compare_k)
        for r in quality_rows(al.models, pred, y, ks):
            lo, hi = (per_k or {}).get(r["k"], (None, None))
            slo, shi = seed_k.get(r["k"], (None, None))
            rows.append(
                {"objective": al.objective, "evaluation": evaluation, "predictor": predictor,
                 "feature": feature} | r | {"missing_policy": al.missing_policy}
                | {"coverage_lo": lo, "coverage_hi": hi} | evidence_columns(ev)
                | {"coverage_seed_lo": slo, "coverage_seed_hi": shi,
                   "mean_coverage_seed_lo": seed_mean[0] if ev else None,
                   "mean_coverage_seed_hi": seed_mean[1] if ev else None}
            )

    add("in_sample", "selection_model", "", fitted)
    # In-sample best single feature: highest mean coverage over compare_k (paper's baseline).
    cov_mean = []
    for j in range(X.shape[1]):
        c = [coverage_at_k(al.models, X[:, j], y, k) for k in compare_k]
        cov_mean.append(np.nanmean(c) if not np.all(np.isnan(c)) else -1.0)
    jbest = int(np.argmax(cov_mean))
    add("in_sample", "best_single_feature", al.features[jbest], X[:, jbest])
    summary: dict[str, Any] = {
        "n_models": len(al.models),
        "models": al.models,
        "features": al.features,
        "best_params": {k.split("__")[1]: v for k, v in gs.best_params_.items()},
        "cv_score": float(gs.best_score_),
        "scoring": cfg.scoring,
        "intercept": float(model.named_steps["enet"].intercept_),
        "coefficients": coefficients(model, al.features),
        "in_sample_mae": mae(fitted, y),
        "best_single_feature_in_sample": al.features[jbest],
    }
    oof: dict[str, dict[str, np.ndarray]] = {}
    evidence: dict[str, Any] = {}
    kinds = ["nested_cv"] + (list(GROUPINGS) if cfg.leave_one_family_out else [])
    for kind in kinds:
        res = out_of_sample_all(al, X, kind, cfg)
        if res is None:
            summary[f"{kind}_mae"] = None
            continue
        oof[kind] = res
        ev, per_k = strategy_evidence(res, y, ks, compare_k, cfg.bootstrap, cfg.seed)
        evidence[kind] = ev
        n_ok = int(np.sum(~np.isnan(y)))
        for name in STRATEGIES:
            pred = res[name] if name != "random" else np.zeros(len(y))
            feature = {"best_single_feature": "(chosen per fold)",
                       "random": f"(expectation: coverage k/{n_ok})"}.get(name, "")
            add(kind, name, feature, pred, per_k.get(name), ev.get(name))
        summary[f"{kind}_mae"] = mae(res["selection_model"], y)
        summary[f"{kind}_baseline_mae"] = mae(res["best_single_feature"], y)
    summary["strategies"] = {"k": list(compare_k), "bootstrap": cfg.bootstrap} | evidence
    summary["strategy"] = choose_strategy(evidence, cfg.strategy)
    chosen = summary["strategy"]["residuals_of"]
    summary["oof_residuals"] = (
        (y - oof["nested_cv"][chosen]).tolist() if "nested_cv" in oof else []
    )
    # Mean coverage over compare_k: selection model vs best single feature, per evaluation.
    cmp: dict[str, Any] = {}
    for ev in ["in_sample"] + list(oof):
        sel = [r["coverage"] for r in rows if r["evaluation"] == ev
               and r["predictor"] == "selection_model" and r["k"] in compare_k]
        bas = [r["coverage"] for r in rows if r["evaluation"] == ev
               and r["predictor"] == "best_single_feature" and r["k"] in compare_k]
        if sel and bas:
            cmp[ev] = {"selection_model": float(np.mean(sel)),
                       "best_single_feature": float(np.mean(bas)),
                       "difference": float(np.mean(sel) - np.mean(bas))}
    summary["mean_coverage_compare_k"] = {"k": list(compare_k)} | cmp
    # MAE with and without the presence means: the paper's comparison and the out-of-sample one.
    summary["mae_presence"] = presence_comparison(al, fitted_mae=summary["in_sample_mae"],
                                                  nested_mae=summary.get("nested_cv_mae"),
                                                  cfg=cfg)
    summary["missing_policy"] = al.missing_policy
    summary["dropped"] = al.dropped
    return summary, rows


def evidence_columns(ev: dict[str, Any] | None) -> dict[str, Any]:
    """The per-strategy columns of selection_coverage.csv (null for in-sample rows)."""
    ev = ev or {}
    vr, vb = ev.get("vs_random") or {}, ev.get("vs_best_single") or {}
    return {
        "mean_coverage": ev.get("mean_coverage"), "mean_coverage_lo": ev.get("lo"),
        "mean_coverage_hi": ev.get("hi"),
        "vs_random": vr.get("difference"), "vs_random_lo": vr.get("lo"),
        "vs_random_hi": vr.get("hi"), "beats_random": ev.get("beats_random"),
        "vs_best_single": vb.get("difference"), "vs_best_single_lo": vb.get("lo"),
        "vs_best_single_hi": vb.get("hi"), "beats_best_single": ev.get("beats_best_single"),
    }


#: The evaluation whose evidence chooses the recommender's strategy.
CHOICE_EVALUATION = "nested_cv"


def choose_strategy(evidence: dict[str, Any], setting: str) -> dict[str, Any]:
    """The recommender's strategy: the setting's, or the best nested-CV mean coverage.

    ``beats_random`` says whether any strategy's paired interval against random excludes 0
    (nested CV); without one the recommender reports that no ranking is supported.
    """
    ev = evidence.get(CHOICE_EVALUATION, {})
    fitted = {s: e for s, e in ev.items() if s != "random"}
    if setting == "best_out_of_sample":
        chosen = max(fitted, key=lambda s: fitted[s]["mean_coverage"]) if fitted \
            else "selection_model"
    else:
        chosen = setting
    any_beats = any(e.get("beats_random") for e in fitted.values())
    return {
        "setting": setting,
        "evaluation": CHOICE_EVALUATION,
        "chosen": chosen,
        "evidence": fitted.get(chosen),
        "random_mean_coverage": (ev.get("random") or {}).get("mean_coverage"),
        "beats_random": bool((fitted.get(chosen) or {}).get("beats_random", False)),
        "any_strategy_beats_random": bool(any_beats),
        "residuals_of": chosen,
    }


COV_SCHEMA = {
    "objective": pl.String,
    "evaluation": pl.String,
    "predictor": pl.String,
    "feature": pl.String,
    "k": pl.Int64,
    "coverage": pl.Float64,
    "precision_at_k": pl.Float64,
    "hit_at_k": pl.Float64,
    "regret_points": pl.Float64,
    "missing_policy": pl.String,
    "coverage_lo": pl.Float64,
    "coverage_hi": pl.Float64,
    "mean_coverage": pl.Float64,
    "mean_coverage_lo": pl.Float64,
    "mean_coverage_hi": pl.Float64,
    "vs_random": pl.Float64,
    "vs_random_lo": pl.Float64,
    "vs_random_hi": pl.Float64,
    "beats_random": pl.Boolean,
    "vs_best_single": pl.Float64,
    "vs_best_single_lo": pl.Float64,
    "vs_best_single_hi": pl.Float64,
    "beats_best_single": pl.Boolean,
    "coverage_seed_lo": pl.Float64,
    "coverage_seed_hi": pl.Float64,
    "mean_coverage_seed_lo": pl.Float64,
    "mean_coverage_seed_hi": pl.Float64,
}


@dataclass(kw_only=True)
class SelectionModelArgs(SelectionArgs):
    """Elastic Net selection model: grid search, refit, in- and out-of-sample selection quality
    (Figures 5, 6, 10)."""

    coverage: str = opt("coverage.csv (for Figure 10)")
    k: list[int] = opt("the k of the selection quality (coverage, precision, hit, regret at k)")
    compare_k: list[int] = opt(
        "the k whose mean coverage compares the model with the best single feature")
    appendix_filter: str = opt("coverage filter name for Figure 10", default="")
    rm_seeds: str | None = opt("rm_scores_seeds.csv (seed intervals)", default=None)
    seed_draws: int = opt("seed draws", default=200)
    out_json: str = opt("selection_model.json")
    out_coverage: str = opt("selection_coverage.csv")
    figures: list[str] = opt(
        "PNG paths of Figure 5, out-of-sample coverage by strategy, Figure 10 and Figure 6"
        " in-sample (PDFs beside them)", nargs=4)


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(SelectionModelArgs, write_selection, argv, prog="analysis_selection.py")


def write_selection(a: SelectionModelArgs) -> int:
    cfg = a.selection_config()
    rm = load_rm_scores(a.rm_scores, a.benchmark)
    feats, models = load_features(a.features), load_models(a.models)
    summary: dict[str, Any] = {
        "target": "overall",
        "benchmark": a.benchmark,
        "missing_policy": a.missing,
        "grid": {"degree": cfg.degrees, "alpha": cfg.alphas, "l1_ratio": cfg.l1_ratios},
        "cv_folds": cfg.cv_folds,
        "outer_folds": cfg.outer_folds,
        "seed": cfg.seed,
        "objectives": {},
    }
    rows: list[dict[str, Any]] = []
    per_seed = load_seed_scores(a.rm_seeds, a.benchmark)
    for i, obj in enumerate(objectives_present(rm)):
        al = align(rm, feats, models, obj, a.missing)
        draws = draw_seeds(al, per_seed, a.seed_draws, cfg.seed + i)
        s, r = analyse_objective(al, cfg, a.k, a.compare_k,
                                 draws.y["overall"] if draws.varies else None)
        s["n_seed_draws"] = draws.n_draws if draws.varies else 0
        summary["objectives"][obj] = s
        log.info(
            "%s: %d models, best %s, %d non-zero terms; MAE in-sample %.2f, nested CV %s,"
            " leave-one-lineage-out %s (leave-one-family-out %s); mean coverage over k=%s: %s",
            obj, s["n_models"], s["best_params"], len(s["coefficients"]), s["in_sample_mae"],
            s.get("nested_cv_mae"), s.get("leave_one_lineage_out_mae"),
            s.get("leave_one_family_out_mae"), a.compare_k,
            {k: v for k, v in s["mean_coverage_compare_k"].items() if k != "k"},
        )
        rows.extend(r)
    cov = pl.DataFrame(rows, schema=COV_SCHEMA)
    plot_coefficients(summary, a.figures[0])
    plot_selection(cov, a.figures[1])
    plot_in_sample(cov, a.figures[3])
    feat_cov = pl.read_csv(a.coverage)
    col = f"passes_{a.appendix_filter}"
    extra = (feat_cov.filter(pl.col(col)) if col in feat_cov.columns
             else feat_cov.head(0)).select("objective", "feature", "k", "coverage")
    plot_comparison(cov.filter(pl.col("evaluation") == "in_sample"), a.figures[2], extra,
                    title=f"vs features passing '{a.appendix_filter}'")
    write_table(a.out_coverage, cov)
    write_json(a.out_json, summary)
    return 0
