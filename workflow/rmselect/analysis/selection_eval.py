"""Evaluation of the selection model: out-of-sample predictions and selection quality.

Nested cross-validation and the leave-one-lineage/family-out groupings (with the
single-feature baseline refit inside each training part), and coverage/precision/hit/regret
at k under random tie-breaking; the definitions are in :mod:`rmselect.analysis.selection`'s
docstring.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from joblib import Parallel, delayed
from scipy import stats
from scipy.special import comb
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GroupKFold, KFold

from rmselect.analysis.coverage import coverage_at_k, inclusion
from rmselect.analysis.data import Aligned
from rmselect.analysis.selection_model import SelectionConfig, grid_search


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
    parts = [(tr, te) for tr, te in splits if len(tr) >= 3]
    # outer folds in parallel, each grid search serial inside its worker
    jobs = min(cfg.n_jobs, len(parts))
    run = Parallel(n_jobs=jobs) if jobs > 1 else (lambda tasks: [f(*a) for f, a, _ in tasks])
    fits = run(delayed(_outer_fold)(X, y, tr, te, impute, cfg) for tr, te in parts)
    for (tr, te), (p, b) in zip(parts, fits):
        pred[te], base[te] = p, b
    return pred, base


def _outer_fold(
    X: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray, impute: bool,
    cfg: SelectionConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Held-out predictions of the selection model and the single-feature baseline."""
    gs = grid_search(X[tr], y[tr], impute, cfg, n_jobs=1)
    j, lr, mean = best_single_fit(X[tr], y[tr])
    xt = np.where(np.isnan(X[te, j]), mean, X[te, j])
    return gs.predict(X[te]), lr.predict(xt.reshape(-1, 1))


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
