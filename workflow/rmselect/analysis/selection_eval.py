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
from rmselect.analysis.selection_model import SelectionConfig
from rmselect.analysis.selection_strategies import FITTERS


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
    res = out_of_sample_all(al, X, kind, cfg, ("selection_model", "best_single_feature"))
    return None if res is None else (res["selection_model"], res["best_single_feature"])


def out_of_sample_all(
    al: Aligned, X: np.ndarray, kind: str, cfg: SelectionConfig,
    strategies: Sequence[str] = tuple(FITTERS),
) -> dict[str, np.ndarray] | None:
    """Out-of-fold predictions of each strategy (:mod:`.selection_strategies`), same splits."""
    y = al.y["overall"]
    splits = _splits(al, kind, cfg)
    if splits is None:
        return None
    impute = al.missing_policy == "impute"
    parts = [(tr, te) for tr, te in splits if len(tr) >= 3]
    # outer folds in parallel, each grid search serial inside its worker
    jobs = min(cfg.n_jobs, len(parts))
    run = Parallel(n_jobs=jobs) if jobs > 1 else (lambda tasks: [f(*a) for f, a, _ in tasks])
    fits = run(delayed(_outer_fold)(X, y, al.params_b, tr, te, impute, cfg, tuple(strategies))
               for tr, te in parts)
    out = {s: np.full(len(y), np.nan) for s in strategies}
    for (tr, te), preds in zip(parts, fits):
        for name, p in preds.items():
            out[name][te] = p
    return out


def _outer_fold(
    X: np.ndarray, y: np.ndarray, params_b: np.ndarray, tr: np.ndarray, te: np.ndarray,
    impute: bool, cfg: SelectionConfig, strategies: tuple[str, ...],
) -> dict[str, np.ndarray]:
    """Held-out predictions of each strategy fitted on the training part."""
    pb = np.asarray(params_b, float)
    return {name: FITTERS[name](X[tr], y[tr], pb[tr], impute, cfg)(X[te], pb[te])
            for name in strategies}


def strategy_evidence(
    preds: dict[str, np.ndarray], y: np.ndarray, ks: Sequence[int], compare_k: Sequence[int],
    draws: int, seed: int,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[int, tuple[float, float]]]]:
    """Mean coverage over ``compare_k`` per strategy with a bootstrap interval over models,
    and paired bootstrap differences against ``random`` and ``best_single_feature``.

    Each draw resamples the models with replacement and recomputes every strategy's
    coverage on the same draw (paired). Intervals are the 2.5 and 97.5 percentiles; a
    strategy *beats* another when its difference's lower bound is above 0. Returns
    ({strategy: summary}, {strategy: {k: (coverage_lo, coverage_hi)}}).
    """
    n = len(y)
    names = list(preds) + ["random"]
    P = dict(preds) | {"random": np.zeros(n)}
    ok = np.all([~np.isnan(v) for v in P.values()], axis=0) & ~np.isnan(y)
    idx0 = np.flatnonzero(ok)
    m = len(idx0)
    ks_all = sorted({k for k in list(ks) + list(compare_k) if 1 <= k <= m})
    cmp_k = [k for k in compare_k if 1 <= k <= m]
    rng = np.random.default_rng(seed)
    draws_idx = [idx0] + [idx0[rng.integers(0, m, m)] for _ in range(draws)]
    cov = {s: np.full((len(draws_idx), len(ks_all)), np.nan) for s in names}
    for d, idx in enumerate(draws_idx):
        yt = y[idx]
        for s in names:
            pv = P[s][idx]
            cov[s][d] = [coverage_at_k(list(range(m)), pv, yt, k) for k in ks_all]
    pos = [ks_all.index(k) for k in cmp_k]
    mean = {s: cov[s][:, pos].mean(axis=1) if pos else np.full(len(draws_idx), np.nan)
            for s in names}

    def interval(v: np.ndarray) -> tuple[float, float]:
        return (float(np.percentile(v[1:], 2.5)), float(np.percentile(v[1:], 97.5))) \
            if draws else (float("nan"), float("nan"))

    out: dict[str, dict[str, Any]] = {}
    for s in names:
        lo, hi = interval(mean[s])
        row: dict[str, Any] = {"mean_coverage": float(mean[s][0]), "lo": lo, "hi": hi}
        for ref, key in (("random", "random"), ("best_single_feature", "best_single")):
            if ref in mean and ref != s:
                diff = mean[s] - mean[ref]
                dlo, dhi = interval(diff)
                row[f"vs_{key}"] = {"difference": float(diff[0]), "lo": dlo, "hi": dhi}
                row[f"beats_{key}"] = bool(dlo > 0)
        out[s] = row
    per_k = {s: {k: (float(np.percentile(cov[s][1:, i], 2.5)),
                     float(np.percentile(cov[s][1:, i], 97.5))) if draws
                 else (float("nan"), float("nan"))
                 for i, k in enumerate(ks_all)} for s in names}
    return out, per_k


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
