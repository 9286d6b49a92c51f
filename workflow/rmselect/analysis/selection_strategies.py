"""Competing selection strategies, each fitted on a training part and judged on held-out models.

Every strategy is a function ``fit(X, y, params_b, impute, cfg) -> predict`` where
``predict(X_new, params_new)`` returns predicted overall RM scores (so that out-of-fold
residuals exist for the recommender's conformal interval); only the order of the predictions
enters coverage, precision, hit and regret. All choices inside a strategy are made on its
training part by inner CV with the grid search's folds (shuffled ``KFold(cv_folds)``, seed
``cfg.seed``):

* ``selection_model``: the paper's Elastic Net over polynomial terms (:mod:`.selection_model`).
* ``ridge``: ``StandardScaler`` → ``Ridge(alpha)`` on the raw features (degree 1), alpha from
  :data:`RIDGE_ALPHAS` by mean inner-fold MSE (``RidgeCV(cv=KFold)``'s choice, computed in
  closed form per fold).
* ``rank_average``: each feature's value becomes its mid-rank percentile among the training
  models (signed by its training Spearman ρ with the score); the score is the mean percentile
  of the m features with the largest inner-CV Spearman, m ∈ 1..p chosen by inner CV; a line
  maps it to RM points. Inner-CV Spearman: the pooled out-of-fold Spearman over the inner
  folds, each fold's features signed and percentiled on that fold's training rows.
* ``best_single_feature``: the feature with the largest inner-CV Spearman (as above), a line
  fitted on it.
* ``size_only``: params_b (bigger predicted better), a line on log params_b.
* ``random``: a random ordering; its coverage and precision are k/n in expectation, hit@k and
  regret their exact expectations (all predictions tied, see :func:`.selection_eval.quality_rows`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import stats
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from rmselect.analysis.selection_model import SelectionConfig, grid_search
from rmselect.analysis.selection_solvers import ridge_path

Predict = Callable[[np.ndarray, np.ndarray], np.ndarray]

#: Ridge penalties searched by inner CV (on standardised features).
RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-3, 3, 13))

#: Strategies in the order they are reported; ``random`` has no fit.
STRATEGIES = ("selection_model", "ridge", "rank_average", "best_single_feature", "size_only",
              "random")


def _inner(n: int, cfg: SelectionConfig) -> KFold:
    return KFold(n_splits=max(2, min(cfg.cv_folds, n)), shuffle=True, random_state=cfg.seed)


def _fill(X: np.ndarray, means: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(X), means, X)


def _line(score: np.ndarray, y: np.ndarray) -> LinearRegression:
    return LinearRegression().fit(score.reshape(-1, 1), y)


def _spearman_columns(A: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman ρ of each column of ``A`` (no NaN) with ``y``; 0 where undefined."""
    ra = stats.rankdata(A, axis=0)
    ry = stats.rankdata(y)
    ra = ra - ra.mean(axis=0)
    ry = ry - ry.mean()
    den = np.sqrt((ra**2).sum(axis=0) * (ry @ ry))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (ra.T @ ry) / den
    return np.where(np.isfinite(r), r, 0.0)


class Percentiles:
    """Signed mid-rank percentiles of each feature among training rows (NaN → 0.5)."""

    def __init__(self, X: np.ndarray, y: np.ndarray) -> None:
        self.sorted = [np.sort(X[~np.isnan(X[:, j]), j]) for j in range(X.shape[1])]
        self.rho = np.zeros(X.shape[1])
        full = ~np.isnan(X).any(axis=0)
        if full.any():
            self.rho[full] = _spearman_columns(X[:, full], y)
        for j in np.flatnonzero(~full):
            ok = ~np.isnan(X[:, j])
            if ok.sum() >= 3:
                self.rho[j] = _spearman_columns(X[ok, j : j + 1], y[ok])[0]
        self.sign = np.where(self.rho < 0, -1.0, 1.0)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        P = np.full(X.shape, 0.5)
        for j, s in enumerate(self.sorted):
            if len(s):
                lo = np.searchsorted(s, X[:, j], side="left")
                hi = np.searchsorted(s, X[:, j], side="right")
                p = (lo + hi) / (2.0 * len(s))
                P[:, j] = np.where(np.isnan(X[:, j]), 0.5, p)
        return np.where(self.sign < 0, 1.0 - P, P)


_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def inner_cv_spearman(X: np.ndarray, y: np.ndarray, cfg: SelectionConfig
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(per-feature inner-CV Spearman, inner-CV Spearman of the top-m average for m=1..p).

    The top-m order inside each inner fold is that fold's training |ρ|. The last result is
    kept, as rank_average and best_single_feature ask for the same training part in turn.
    """
    key = (X.tobytes(), y.tobytes(), X.shape, cfg.cv_folds, cfg.seed)
    if key in _CACHE:
        return _CACHE[key]
    n, p = X.shape
    oof_feat = np.full((n, p), np.nan)
    oof_m = np.full((n, p), np.nan)
    for tr, te in _inner(n, cfg).split(X):
        pc = Percentiles(X[tr], y[tr])
        P = pc(X[te])
        oof_feat[te] = P
        order = np.argsort(-np.abs(pc.rho), kind="stable")
        oof_m[te] = np.cumsum(P[:, order], axis=1) / np.arange(1, p + 1)
    out = (_spearman_columns(oof_feat, y), _spearman_columns(oof_m, y))
    _CACHE.clear()
    _CACHE[key] = out
    return out


def fit_selection_model(X, y, params_b, impute, cfg) -> Predict:
    gs = grid_search(X, y, impute, cfg, n_jobs=1)
    return lambda Xn, pn: gs.predict(Xn)


def fit_ridge(X, y, params_b, impute, cfg) -> Predict:
    """Ridge on standardised features; alpha by the mean inner-fold MSE (RidgeCV's choice
    with ``cv=KFold``), each fold solved for all alphas in closed form."""
    def prep(Xt: np.ndarray):
        return make_pipeline(SimpleImputer(strategy="mean"), StandardScaler()).fit(Xt)

    mse = np.zeros(len(RIDGE_ALPHAS))
    splits = list(_inner(len(y), cfg).split(X))
    for tr, te in splits:
        pre = prep(X[tr])
        Z, Zt = pre.transform(X[tr]), pre.transform(X[te])
        zm, ym = Z.mean(axis=0), y[tr].mean()
        # Ridge(A) = ridge_path at A / n (ridge_path uses the ElasticNet scaling n·alpha)
        coefs = ridge_path(Z - zm, y[tr] - ym, [a / len(tr) for a in RIDGE_ALPHAS])
        mse += [np.mean((y[te] - (ym + (Zt - zm) @ c)) ** 2) for c in coefs]
    alpha = RIDGE_ALPHAS[int(np.argmin(mse / len(splits)))]
    model = make_pipeline(SimpleImputer(strategy="mean"), StandardScaler(), Ridge(alpha=alpha))
    model.fit(X, y)
    return lambda Xn, pn: model.predict(Xn)


def fit_rank_average(X, y, params_b, impute, cfg) -> Predict:
    feat_rho, m_rho = inner_cv_spearman(X, y, cfg)
    m = int(np.argmax(m_rho)) + 1
    pc = Percentiles(X, y)
    top = np.argsort(-feat_rho, kind="stable")[:m]
    line = _line(pc(X)[:, top].mean(axis=1), y)
    return lambda Xn, pn: line.predict(pc(Xn)[:, top].mean(axis=1).reshape(-1, 1))


def fit_best_single(X, y, params_b, impute, cfg) -> Predict:
    feat_rho, _ = inner_cv_spearman(X, y, cfg)
    j = int(np.argmax(feat_rho))
    means = np.nanmean(X, axis=0)
    ok = ~np.isnan(X[:, j])
    line = _line(X[ok, j], y[ok])
    return lambda Xn, pn: line.predict(_fill(Xn, means)[:, j].reshape(-1, 1))


def fit_size_only(X, y, params_b, impute, cfg) -> Predict:
    lp = np.log(np.asarray(params_b, float))
    ok = np.isfinite(lp)
    mean = float(np.mean(lp[ok])) if ok.any() else 0.0
    line = _line(lp[ok], y[ok])
    if line.coef_[0] < 0:  # the strategy is "bigger is better", whatever the training slope
        line.coef_[0] = 0.0
        line.intercept_ = float(np.mean(y))

    def predict(Xn: np.ndarray, pn: np.ndarray) -> np.ndarray:
        lpn = np.log(np.asarray(pn, float))
        lpn = np.where(np.isfinite(lpn), lpn, mean)
        # a flat line would tie every model: keep the order of params_b
        return line.predict(lpn.reshape(-1, 1)) + 1e-9 * lpn

    return predict


FITTERS: dict[str, Callable[..., Predict]] = {
    "selection_model": fit_selection_model,
    "ridge": fit_ridge,
    "rank_average": fit_rank_average,
    "best_single_feature": fit_best_single,
    "size_only": fit_size_only,
}


def chosen_feature(X: np.ndarray, y: np.ndarray, features: list[str], cfg: SelectionConfig
                   ) -> str:
    """Name of the feature ``best_single_feature`` picks on (X, y)."""
    return features[int(np.argmax(inner_cv_spearman(X, y, cfg)[0]))]
