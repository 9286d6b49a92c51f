"""The selection model: Elastic Net over polynomial features (§4, Figures 5, 6, 10).

Model (one per objective, target = overall RM score)::

    [SimpleImputer(mean) if missing == impute] → StandardScaler → PolynomialFeatures(degree,
    no bias) → StandardScaler → ElasticNet(alpha, l1_ratio)

(at l1_ratio = 0 the identical ridge objective is solved by ``Ridge``: see
:class:`ElasticNetOrRidge`).

Hyper-parameters are chosen by ``GridSearchCV`` over the paper's grid (degree {1,2,3},
alpha {0.1, 0.01, 0.001, 0.0001}, l1_ratio {0, 0.25, 0.5, 0.75, 1}) with shuffled
``KFold(cv_folds)`` (paper: 10), scoring ``analysis.selection.scoring``; the best setting is
refit on all models (the reported model and its non-zero coefficients, on the standardised
polynomial terms).

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
``compare_k`` (the paper's comparison); out of sample, in each training part the feature with
the largest |Spearman ρ| is picked and a straight line fitted, then used to predict the held-
out models (so the baseline faces the same leakage rules as the model).

MAE with and without the presence means (``presence_*`` columns), ``mae_presence``, two
comparisons side by side:

* ``selected_features_in_sample`` (the paper's, §6: 3.2 → 1.7): the features that keep a
  non-zero weight in the model fitted without presence (the paper's five), refit by the same
  grid search on those features alone and on those features plus the presence means; in-sample
  MAE of each. Both the selection and the MAE use all models, so it is optimistic.
* ``all_features``: the whole procedure on all features vs all but ``presence_*``, in sample
  and nested CV (out of sample; the grid search reruns inside each training part).
"""

from __future__ import annotations

import argparse
import json
import logging
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import polars as pl
from scipy import stats
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import ElasticNet, LinearRegression, Ridge
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from rmselect import plotting
from scipy.special import comb

from rmselect.analysis.coverage import coverage_at_k, inclusion
from rmselect.analysis.data import (
    AnalysisError,
    Aligned,
    align,
    load_features,
    load_models,
    load_rm_scores,
    objectives_present,
    setup_logging,
)
from rmselect.io import write_json, write_table

log = logging.getLogger(__name__)


@dataclass
class SelectionConfig:
    """``analysis.selection`` (defaults = the paper's grid)."""

    degrees: list[int] = field(default_factory=lambda: [1, 2, 3])
    alphas: list[float] = field(default_factory=lambda: [0.1, 0.01, 0.001, 0.0001])
    l1_ratios: list[float] = field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0])
    cv_folds: int = 10
    outer_folds: int = 10
    scoring: str = "neg_mean_squared_error"
    max_iter: int = 10000
    seed: int = 0
    n_jobs: int = 1
    leave_one_family_out: bool = True

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "SelectionConfig":
        d = dict(d or {})
        known = {f for f in cls.__dataclass_fields__}
        bad = set(d) - known
        if bad:
            raise AnalysisError(f"analysis.selection: unknown field(s) {sorted(bad)}")
        return cls(**d)


class ElasticNetOrRidge(RegressorMixin, BaseEstimator):
    """``ElasticNet(alpha, l1_ratio)``; at ``l1_ratio == 0`` the same objective solved exactly.

    ElasticNet minimises 1/(2n)·||y − Xw||² + α·ρ·||w||₁ + α(1 − ρ)/2·||w||². At ρ = 0 this
    is ridge regression with penalty n·α (multiply by 2n), which ``sklearn.linear_model.Ridge``
    solves in closed form, where coordinate descent converges slowly and sklearn warns that it
    is unreliable (on 9,000 degree-3 terms: seconds per fit instead of milliseconds).
    """

    def __init__(self, alpha: float = 1.0, l1_ratio: float = 0.5, max_iter: int = 10000,
                 random_state: int | None = None) -> None:
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> "ElasticNetOrRidge":
        if self.l1_ratio == 0:
            est: Any = Ridge(alpha=self.alpha * len(y), random_state=self.random_state)
        else:
            est = ElasticNet(alpha=self.alpha, l1_ratio=self.l1_ratio, max_iter=self.max_iter,
                             random_state=self.random_state)
        est.fit(X, y)
        self.estimator_ = est
        self.coef_ = np.asarray(est.coef_, dtype=float)
        self.intercept_ = float(est.intercept_)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.estimator_.predict(X)


def pipeline(impute: bool, cfg: SelectionConfig) -> Pipeline:
    steps: list[tuple[str, Any]] = []
    if impute:
        steps.append(("impute", SimpleImputer(strategy="mean")))
    steps += [
        ("scale", StandardScaler()),
        ("poly", PolynomialFeatures(degree=1, include_bias=False)),
        ("scale_poly", StandardScaler()),
        ("enet", ElasticNetOrRidge(max_iter=cfg.max_iter, random_state=cfg.seed)),
    ]
    return Pipeline(steps)


def grid_search(X: np.ndarray, y: np.ndarray, impute: bool, cfg: SelectionConfig) -> GridSearchCV:
    """Fit the paper's grid search on (X, y) and refit the best setting on all rows."""
    n = len(y)
    folds = max(2, min(cfg.cv_folds, n))
    gs = GridSearchCV(
        pipeline(impute, cfg),
        {
            "poly__degree": list(cfg.degrees),
            "enet__alpha": list(cfg.alphas),
            "enet__l1_ratio": list(cfg.l1_ratios),
        },
        cv=KFold(n_splits=folds, shuffle=True, random_state=cfg.seed),
        scoring=cfg.scoring,
        n_jobs=cfg.n_jobs,
        refit=True,
        error_score="raise",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)
        gs.fit(X, y)
    return gs


def coefficients(model: Pipeline, features: Sequence[str], tol: float = 1e-10) -> list[dict]:
    """Non-zero coefficients of a fitted pipeline, named by polynomial term."""
    names = model.named_steps["poly"].get_feature_names_out(list(features))
    coef = model.named_steps["enet"].coef_
    out = [
        {"term": str(t), "coef": float(c)} for t, c in zip(names, coef) if abs(c) > tol
    ]
    return sorted(out, key=lambda r: -abs(r["coef"]))


def contributions(model: Pipeline, features: Sequence[str], X: np.ndarray) -> list[list[dict]]:
    """Per row: terms with coef × standardised term value, largest |contribution| first."""
    Z = model[:-1].transform(X)
    names = model.named_steps["poly"].get_feature_names_out(list(features))
    coef = model.named_steps["enet"].coef_
    out = []
    for z in Z:
        c = coef * z
        idx = [i for i in np.argsort(-np.abs(c)) if coef[i] != 0]
        out.append([{"term": str(names[i]), "contribution": float(c[i])} for i in idx])
    return out


#: Leave-one-group-out evaluations: name → the Aligned attribute holding each model's group.
GROUPINGS: dict[str, str] = {
    "leave_one_lineage_out": "lineage",
    "leave_one_family_out": "family",
}


def _splits(al: Aligned, kind: str, cfg: SelectionConfig):
    n = len(al.models)
    if kind == "nested_cv":
        return KFold(n_splits=max(2, min(cfg.outer_folds, n)), shuffle=True,
                     random_state=cfg.seed).split(al.X)
    groups = np.array(getattr(al, GROUPINGS[kind]))
    g = len(set(groups.tolist()))
    if g < 2:
        return None
    return GroupKFold(n_splits=g).split(al.X, groups=groups)


def best_single_fit(X: np.ndarray, y: np.ndarray) -> tuple[int, LinearRegression, float]:
    """Index of the feature with largest |Spearman ρ| on (X, y), its line fit, its mean."""
    best, best_r = 0, -1.0
    for j in range(X.shape[1]):
        ok = ~np.isnan(X[:, j])
        if ok.sum() >= 3 and np.ptp(X[ok, j]) > 0 and np.ptp(y[ok]) > 0:
            r = abs(float(stats.spearmanr(X[ok, j], y[ok]).statistic))
            if r > best_r:
                best, best_r = j, r
    ok = ~np.isnan(X[:, best])
    lr = LinearRegression().fit(X[ok, best : best + 1], y[ok])
    return best, lr, float(np.nanmean(X[:, best]))


def out_of_sample(
    al: Aligned, X: np.ndarray, kind: str, cfg: SelectionConfig
) -> tuple[np.ndarray, np.ndarray] | None:
    """Out-of-fold predictions of the selection model and of the single-feature baseline."""
    y = al.y["overall"]
    splits = _splits(al, kind, cfg)
    if splits is None:
        return None
    pred = np.full(len(y), np.nan)
    base = np.full(len(y), np.nan)
    impute = al.missing_policy == "impute"
    for tr, te in splits:
        if len(tr) < 3:
            continue
        gs = grid_search(X[tr], y[tr], impute, cfg)
        pred[te] = gs.predict(X[te])
        j, lr, mean = best_single_fit(X[tr], y[tr])
        xt = np.where(np.isnan(X[te, j]), mean, X[te, j])
        base[te] = lr.predict(xt.reshape(-1, 1))
    return pred, base


def expected_best_in_shortlist(pred: np.ndarray, truth: np.ndarray, k: int) -> float:
    """E[max truth over the top-k by ``pred``] when ties in ``pred`` break at random.

    The shortlist is the models strictly above the k-th prediction plus a uniformly random
    r-subset of the g models tied at it. The largest truth of an r-subset of values sorted
    ascending v_1..v_g is v_j with probability (C(j-1, r-1)) / C(g, r); each is maxed with
    the best certain member.
    """
    p = inclusion(pred, k)
    sure = p == 1.0
    tied = (p > 0) & (p < 1)
    best_sure = float(np.max(truth[sure])) if sure.any() else -np.inf
    if not tied.any():
        return best_sure
    g = int(tied.sum())
    r = int(round(k - sure.sum()))
    v = np.sort(truth[tied])
    j = np.arange(1, g + 1)
    prob = comb(j - 1, r - 1) / comb(g, r)
    return float(np.sum(np.maximum(best_sure, v) * prob))


def hit_probability(pred: np.ndarray, truth: np.ndarray, k: int) -> float:
    """P(the top-k by ``pred`` holds a model with the best true score), random tie-breaks.

    1 when a certain member (strictly above the k-th prediction) is a best model; otherwise
    1 − C(g − b, r) / C(g, r) for the r slots left among the g tied models, b of them best.
    """
    p = inclusion(pred, k)
    is_best = truth == np.max(truth)
    sure = p == 1.0
    if (sure & is_best).any():
        return 1.0
    tied = (p > 0) & (p < 1)
    g, b = int(tied.sum()), int((tied & is_best).sum())
    r = int(round(k - sure.sum()))
    if not g or not b:
        return 0.0
    return float(1.0 - comb(g - b, r) / comb(g, r))


def quality_rows(
    names: Sequence[str], pred: np.ndarray, y: np.ndarray, ks: Sequence[int]
) -> list[dict[str, Any]]:
    """coverage/precision/hit/regret at each k of predictions ``pred`` against truth ``y``.

    All four are expectations under random tie-breaking (see :mod:`.coverage`): tied
    predictions enter the shortlist by chance. ``hit_at_k`` is the probability that the
    shortlist holds a model with the best true score (0 or 1 without tied predictions),
    ``regret_points`` the expected loss.
    """
    ok = ~np.isnan(pred) & ~np.isnan(y)
    p, t = pred[ok], y[ok]
    rows: list[dict[str, Any]] = []
    if not len(t):
        return rows
    for k in ks:
        if k < 1 or k > len(t):
            continue
        cov = coverage_at_k(list(range(len(t))), p, t, k)
        rows.append(
            {
                "k": int(k),
                "coverage": cov,
                "precision_at_k": cov,
                "hit_at_k": hit_probability(p, t, k),
                "regret_points": float(np.max(t) - expected_best_in_shortlist(p, t, k)),
            }
        )
    return rows


def mae(pred: np.ndarray, y: np.ndarray) -> float | None:
    ok = ~np.isnan(pred) & ~np.isnan(y)
    return float(np.mean(np.abs(pred[ok] - y[ok]))) if ok.any() else None


def used_features(model: Pipeline, features: Sequence[str], tol: float = 1e-10) -> list[str]:
    """Features that enter at least one polynomial term with a non-zero coefficient."""
    powers = model.named_steps["poly"].powers_
    coef = model.named_steps["enet"].coef_
    used = (powers[np.abs(coef) > tol] > 0).any(axis=0)
    return [f for f, u in zip(features, used) if u]


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


def analyse_objective(
    al: Aligned, cfg: SelectionConfig, ks: Sequence[int], compare_k: Sequence[int]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Fit, evaluate and summarise one objective: (JSON summary, selection_coverage rows)."""
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

    def add(evaluation: str, predictor: str, feature: str, pred: np.ndarray) -> None:
        for r in quality_rows(al.models, pred, y, ks):
            rows.append(
                {"objective": al.objective, "evaluation": evaluation, "predictor": predictor,
                 "feature": feature} | r | {"missing_policy": al.missing_policy}
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
    oof: dict[str, np.ndarray] = {}
    kinds = ["nested_cv"] + (list(GROUPINGS) if cfg.leave_one_family_out else [])
    for kind in kinds:
        res = out_of_sample(al, X, kind, cfg)
        if res is None:
            summary[f"{kind}_mae"] = None
            continue
        pred, base = res
        oof[kind] = pred
        add(kind, "selection_model", "", pred)
        add(kind, "best_single_feature", "(chosen per fold)", base)
        summary[f"{kind}_mae"] = mae(pred, y)
        summary[f"{kind}_baseline_mae"] = mae(base, y)
    summary["oof_residuals"] = (
        (y - oof["nested_cv"]).tolist() if "nested_cv" in oof else []
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
}


def plot_coefficients(summary: dict[str, Any], stem: str) -> None:
    """Figure 5: non-zero coefficients of the refit model per objective."""
    objs = list(summary["objectives"]) or ["(none)"]
    n = max([len(summary["objectives"][o]["coefficients"]) for o in objs
             if o in summary["objectives"]] or [1])
    fig, axes = plotting.figure("double", height=max(1.8, 0.18 * min(n, 25) + 0.9),
                                ncols=len(objs), squeeze=False, layout="constrained")
    for ax, obj in zip(axes[0], objs):
        co = summary["objectives"].get(obj, {}).get("coefficients", [])[:25][::-1]
        ax.barh(range(len(co)), [c["coef"] for c in co],
                color=[plotting.PALETTE[0] if c["coef"] > 0 else plotting.PALETTE[3] for c in co])
        ax.set_yticks(range(len(co)), [c["term"] for c in co])
        ax.axvline(0, color="black", lw=0.6)
        ax.set_xlabel("Coefficient (RM points per SD of term)")
        ax.set_title(f"{obj}: non-zero Elastic Net terms")
    plotting.save(fig, stem)


def plot_comparison(cov: pl.DataFrame, stem: str, extra: pl.DataFrame | None = None,
                    title: str = "") -> None:
    """Figure 6 (selection model vs best single feature) or 10 (vs filtered features)."""
    objs = cov["objective"].unique(maintain_order=True).to_list() or ["(none)"]
    fig, axes = plotting.figure("double", height=2.6, ncols=len(objs), squeeze=False, sharey=True)
    styles = {"in_sample": "-", "nested_cv": "--", "leave_one_lineage_out": ":",
              "leave_one_family_out": "-."}
    for ax, obj in zip(axes[0], objs):
        d = cov.filter(pl.col("objective") == obj)
        i = 0
        for (ev, pr), s in d.group_by(["evaluation", "predictor"], maintain_order=True):
            if extra is not None and pr != "selection_model":
                continue
            s = s.sort("k")
            lab = f"{'model' if pr == 'selection_model' else 'best feature'} ({ev})"
            if pr == "best_single_feature" and ev == "in_sample":
                lab = f"{s['feature'][0]} (in_sample)"
            if extra is not None:  # Figure 10: the model in black over coloured features
                color, lw = plotting.PALETTE[7], 1.8
            else:
                color, lw = plotting.PALETTE[0 if pr == "selection_model" else 1], 1.5
            ax.plot(s["k"], s["coverage"], ls=styles.get(ev, "-"), marker="o", ms=2,
                    color=color, lw=lw, label=lab, zorder=3)
            i += 1
        if extra is not None:
            e = extra.filter(pl.col("objective") == obj)
            for j, feat in enumerate(e["feature"].unique(maintain_order=True).to_list()):
                s = e.filter(pl.col("feature") == feat).sort("k")
                ax.plot(s["k"], s["coverage"], marker=".", ms=2, lw=0.8,
                        color=plotting.PALETTE[j % 7],
                        ls=["-", "--", ":", "-."][(j // 7) % 4], label=feat)
        ax.set_xlabel("k (top-k models)")
        ax.set_ylabel("Coverage (fraction of true top-k)")
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{obj}{': ' + title if title else ''}")
        ax.legend(fontsize=5)
    plotting.save(fig, stem)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="analysis_selection.py",
        description="Elastic Net selection model: grid search, refit, in- and out-of-sample"
        " selection quality (Figures 5, 6, 10).",
    )
    ap.add_argument("--rm-scores", required=True)
    ap.add_argument("--features", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--coverage", required=True, help="coverage.csv (for Figure 10)")
    ap.add_argument("--benchmark", default="rewardbench")
    ap.add_argument("--missing", default="drop_feature")
    ap.add_argument("--k", type=int, nargs="+", required=True)
    ap.add_argument("--compare-k", type=int, nargs="+", required=True)
    ap.add_argument("--selection", default="{}", help="JSON of analysis.selection")
    ap.add_argument("--n-jobs", type=int, default=0, help="threads (overrides n_jobs)")
    ap.add_argument("--appendix-filter", default="", help="coverage filter name for Figure 10")
    ap.add_argument("--out-json", required=True)
    ap.add_argument("--out-coverage", required=True)
    ap.add_argument("--figures", nargs=3, required=True, help="PNG paths of Figures 5, 6, 10 (PDFs beside them)")
    a = ap.parse_args(argv)
    setup_logging()
    cfg = SelectionConfig.from_dict(json.loads(a.selection))
    if a.n_jobs:
        cfg.n_jobs = a.n_jobs
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
    for obj in objectives_present(rm):
        al = align(rm, feats, models, obj, a.missing)
        s, r = analyse_objective(al, cfg, a.k, a.compare_k)
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
    plot_comparison(cov, a.figures[1], title="selection model vs best single feature")
    feat_cov = pl.read_csv(a.coverage)
    col = f"passes_{a.appendix_filter}"
    extra = (feat_cov.filter(pl.col(col)) if col in feat_cov.columns
             else feat_cov.head(0)).select("objective", "feature", "k", "coverage")
    plot_comparison(cov.filter(pl.col("evaluation") == "in_sample"), a.figures[2], extra,
                    title=f"vs features passing '{a.appendix_filter}'")
    write_table(a.out_coverage, cov)
    write_json(a.out_json, summary)
    return 0
