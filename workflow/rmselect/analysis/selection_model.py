"""The selection model itself: configuration, estimator, pipeline and grid search.

What :mod:`rmselect.analysis.selection` fits (its docstring states the model and the grid)
and how a fitted pipeline is read back (coefficients, per-model contributions, the features
in use). Kept apart from the evaluation (:mod:`.selection_eval`) so that
:mod:`rmselect.analysis.recommend` fits the same model without the evaluation code.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import ElasticNet, Ridge
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from rmselect.analysis.data import AnalysisError


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


def used_features(model: Pipeline, features: Sequence[str], tol: float = 1e-10) -> list[str]:
    """Features that enter at least one polynomial term with a non-zero coefficient."""
    powers = model.named_steps["poly"].powers_
    coef = model.named_steps["enet"].coef_
    used = (powers[np.abs(coef) > tol] > 0).any(axis=0)
    return [f for f, u in zip(features, used) if u]
