"""The selection model itself: configuration, estimator, pipeline and grid search.

What :mod:`rmselect.analysis.selection` fits (its docstring states the model and the grid)
and how a fitted pipeline is read back (coefficients, per-model contributions, the features
in use). Kept apart from the evaluation (:mod:`.selection_eval`) so that
:mod:`rmselect.analysis.recommend` fits the same model without the evaluation code.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from scipy.special import comb
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.metrics import get_scorer
from sklearn.linear_model import ElasticNet, Ridge
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from rmselect.analysis.data import AnalysisError
from rmselect.analysis.selection_solvers import single_threaded_blas, solve_path


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
    strategy: str = "best_out_of_sample"
    bootstrap: int = 200

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "SelectionConfig":
        d = dict(d or {})
        known = {f for f in cls.__dataclass_fields__}
        bad = set(d) - known
        if bad:
            raise AnalysisError(f"analysis.selection: unknown field(s) {sorted(bad)}")
        return cls(**d)


class _ElasticNetParams(RegressorMixin, BaseEstimator):
    """The parameters both estimators take (sklearn reads them from ``__init__``)."""

    def __init__(self, alpha: float = 1.0, l1_ratio: float = 0.5, max_iter: int = 10000,
                 random_state: int | None = None) -> None:
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.max_iter = max_iter
        self.random_state = random_state


class ElasticNetOrRidge(_ElasticNetParams):
    """The elastic net ``ElasticNet(alpha, l1_ratio)`` minimises, solved exactly.

    ElasticNet minimises 1/(2n)·||y − Xw||² + α·ρ·||w||₁ + α(1 − ρ)/2·||w||². Coordinate
    descent stops at a loose tolerance or runs out of iterations on thousands of polynomial
    terms; :func:`~.selection_solvers.solve_path` solves the same objective exactly (ridge
    in closed form at ρ = 0, the dual by Newton at 0 < ρ < 1, proximal-point elastic-net
    steps at ρ = 1 until the KKT conditions hold to 1e-6·α). ``max_iter`` and
    ``random_state`` are kept for the reference estimator's signature.
    """

    def fit(self, X: np.ndarray, y: np.ndarray) -> "ElasticNetOrRidge":
        X = np.asarray(X, dtype=float)
        ((coef, b),) = solve_path(X, np.asarray(y, dtype=float), [self.alpha], self.l1_ratio)
        self.coef_, self.intercept_ = coef, b
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=float) @ self.coef_ + self.intercept_


class CDElasticNetOrRidge(_ElasticNetParams):
    """The estimator before paths (reference for the bench and the equality test):
    ``ElasticNet(alpha, l1_ratio)`` by coordinate descent; at ``l1_ratio == 0`` the same
    objective solved exactly.

    ElasticNet minimises 1/(2n)·||y − Xw||² + α·ρ·||w||₁ + α(1 − ρ)/2·||w||². At ρ = 0 this
    is ridge regression with penalty n·α (multiply by 2n), which ``sklearn.linear_model.Ridge``
    solves in closed form, where coordinate descent converges slowly and sklearn warns that it
    is unreliable (on 9,000 degree-3 terms: seconds per fit instead of milliseconds).
    """

    def fit(self, X: np.ndarray, y: np.ndarray) -> "CDElasticNetOrRidge":
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


def pipeline(impute: bool, cfg: SelectionConfig, estimator: type = ElasticNetOrRidge) -> Pipeline:
    """imputer (``impute``) → scaler → polynomial terms → scaler → ``estimator`` (degree 1)."""
    steps: list[tuple[str, Any]] = []
    if impute:
        steps.append(("impute", SimpleImputer(strategy="mean")))
    steps += [
        ("scale", StandardScaler()),
        ("poly", PolynomialFeatures(degree=1, include_bias=False)),
        ("scale_poly", StandardScaler()),
        ("enet", estimator(max_iter=cfg.max_iter, random_state=cfg.seed)),
    ]
    return Pipeline(steps)


def reference_grid_search(
    X: np.ndarray, y: np.ndarray, impute: bool, cfg: SelectionConfig
) -> GridSearchCV:
    """The grid search before paths: ``GridSearchCV`` over per-point coordinate-descent fits.

    Kept for ``bench/analysis_selection.py`` and the equality test; the stage uses
    :func:`grid_search`.
    """
    n = len(y)
    folds = max(2, min(cfg.cv_folds, n))
    gs = GridSearchCV(
        pipeline(impute, cfg, CDElasticNetOrRidge),
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


def _transformers(impute: bool, degree: int, cfg: SelectionConfig) -> Pipeline:
    """The pipeline without its estimator, at ``degree``."""
    return Pipeline(pipeline(impute, cfg).set_params(poly__degree=degree).steps[:-1])


def _n_terms(pre: Pipeline, degrees: Sequence[int]) -> dict[int, int]:
    """Columns of each degree's design, a prefix of the largest degree's.

    ``PolynomialFeatures`` orders its terms by degree, so the terms of degree <= d are the
    first C(f + d, d) − 1 columns (f inputs, no bias); ``powers_`` would say the same but
    is built in Python (a second per fold at 41 features).
    """
    f = int(pre.named_steps["poly"].n_features_in_)
    return {d: int(comb(f + d, d, exact=True)) - 1 for d in degrees}


def _score_func(name: str) -> Callable[[np.ndarray, np.ndarray], float]:
    """score(y_true, y_pred), greater is better, as the sklearn scorer ``name`` computes it."""
    if name == "neg_mean_squared_error":  # the default, without sklearn's input checks
        return lambda t, p: -float(np.mean((t - p) ** 2))
    scorer = get_scorer(name)
    sign, func, kwargs = scorer._sign, scorer._score_func, scorer._kwargs
    return lambda t, p: float(sign * func(t, p, **kwargs))


def candidates(cfg: SelectionConfig) -> list[tuple[float, float, int]]:
    """(alpha, l1_ratio, degree) in ``GridSearchCV``'s candidate order (keys sorted)."""
    return list(itertools.product(cfg.alphas, cfg.l1_ratios, cfg.degrees))


def fold_scores(
    X: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray, impute: bool,
    cfg: SelectionConfig,
) -> dict[tuple[float, float, int], float]:
    """Validation score of every grid point on one fold (see :func:`grid_search`)."""
    with single_threaded_blas():  # see solve_path
        return _fold_scores(X, y, tr, te, impute, cfg)


def _fold_scores(
    X: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray, impute: bool,
    cfg: SelectionConfig,
) -> dict[tuple[float, float, int], float]:
    pre = _transformers(impute, max(cfg.degrees), cfg).fit(X[tr], y[tr])
    Ztr, Zte = pre.transform(X[tr]), pre.transform(X[te])
    n_terms = _n_terms(pre, cfg.degrees)
    score = _score_func(cfg.scoring)
    out = {}
    for d in cfg.degrees:
        m = n_terms[d]
        for l1 in cfg.l1_ratios:
            for a, (coef, b) in zip(cfg.alphas, solve_path(Ztr[:, :m], y[tr], cfg.alphas, l1)):
                out[(a, l1, d)] = score(y[te], Zte[:, :m] @ coef + b)
    return out


class PathSearch:
    """Result of :func:`grid_search`: the chosen setting, its CV score, its refit.

    Offers what callers read from ``GridSearchCV``: ``best_params_``, ``best_score_``,
    ``best_estimator_`` (the chosen setting refit on all rows, built when first read) and
    ``predict``; ``cv_scores_`` maps (alpha, l1_ratio, degree) to its mean fold score.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, impute: bool, cfg: SelectionConfig,
                 scores: dict[tuple[float, float, int], float]) -> None:
        order = candidates(cfg)
        self.cv_scores_ = scores
        # the first best in candidate order, as GridSearchCV's rank_test_score breaks ties
        best = order[int(np.argmax([scores[c] for c in order]))]
        self.best_score_ = float(scores[best])
        self.best_params_ = {"enet__alpha": best[0], "enet__l1_ratio": best[1],
                             "poly__degree": best[2]}
        self._data = (X, y, impute, cfg)
        self._est: Pipeline | None = None

    @property
    def best_estimator_(self) -> Pipeline:
        if self._est is None:
            X, y, impute, cfg = self._data
            with single_threaded_blas():
                self._est = pipeline(impute, cfg).set_params(**self.best_params_).fit(X, y)
        return self._est

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.best_estimator_.predict(X)


def grid_search(
    X: np.ndarray, y: np.ndarray, impute: bool, cfg: SelectionConfig, n_jobs: int | None = None
) -> PathSearch:
    """The paper's grid search (shuffled ``KFold(cv_folds)``), fitted along alpha paths.

    Same grid, folds, scoring and choice as :func:`reference_grid_search`, with less work:
    per fold the transformers are fitted once at the largest degree (a lower degree's terms
    are a prefix of its columns and the second scaler is column-wise, so each degree's
    design is a slice); each (degree, l1_ratio) solves all alphas in one call of
    :func:`~.selection_solvers.solve_path`; folds run in parallel (``n_jobs``, default
    ``cfg.n_jobs``); the refit on all rows happens only if the estimator is read.
    """
    folds = max(2, min(cfg.cv_folds, len(y)))
    splits = list(KFold(n_splits=folds, shuffle=True, random_state=cfg.seed).split(X))
    jobs = min(cfg.n_jobs if n_jobs is None else n_jobs, len(splits))
    if jobs > 1:
        per_fold = Parallel(n_jobs=jobs)(
            delayed(fold_scores)(X, y, tr, te, impute, cfg) for tr, te in splits)
    else:
        per_fold = [fold_scores(X, y, tr, te, impute, cfg) for tr, te in splits]
    scores = {c: float(np.mean([f[c] for f in per_fold])) for c in candidates(cfg)}
    return PathSearch(X, y, impute, cfg, scores)


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
