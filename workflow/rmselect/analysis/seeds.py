"""Seed uncertainty: how much of an analysis' answer is the RM's training seed.

The RM scores the analyses use are seed means (``rm_scores.csv``); the per-seed scores are
in ``rm_scores_seeds.csv``. A *seed draw* gives every model the score of one of its seeds,
picked uniformly and independently per model: the score table one single-seed study could
have produced. Recomputing a statistic over many draws and taking the central
``level`` share of its values gives its *seed interval*. When that interval is wide, the
statistic is as much the seed as the base model.

Models without per-seed rows (imported results, or one seed) keep their one score in every
draw: they add no seed variance, which is all we know about them.

"The top feature" of an (objective, section) is the feature with the highest seed-mean
Spearman rho; its ``top_share`` is the fraction of draws in which it is still the highest,
and it is *stable* when that share is at least one half (it stays on top in most of the
studies one seed could have produced).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import polars as pl

from rmselect.analysis.data import SECTIONS, Aligned, read_csv

SEED_REQUIRED = ("model", "objective", "seed", "benchmark", "section", "score")
#: Share of draws a top feature must lead in to be called stable.
STABLE_SHARE = 0.5


@dataclass(frozen=True)
class SeedDraws:
    """Seed draws of every section's scores for one aligned population."""

    #: section -> (n_draws, n_models) scores, models in :attr:`Aligned.models` order
    y: Mapping[str, np.ndarray]
    #: number of seeds behind each model (1 for models without per-seed rows)
    n_seeds: np.ndarray

    @property
    def n_draws(self) -> int:
        return next(iter(self.y.values())).shape[0]

    @property
    def varies(self) -> bool:
        """Whether any model has more than one seed (otherwise every draw is the mean)."""
        return bool((self.n_seeds > 1).any())


def load_seed_scores(path: str | Path | None, benchmark: str) -> pl.DataFrame | None:
    """Per-seed rows of ``benchmark`` from ``rm_scores_seeds.csv`` (None without a file)."""
    if path is None or not Path(path).is_file():
        return None
    df = read_csv(path, SEED_REQUIRED, "per-seed RM score table")
    return (df.filter(pl.col("benchmark") == benchmark)
            .with_columns(pl.col("score").cast(pl.Float64, strict=False)))


def draw_seeds(al: Aligned, seeds: pl.DataFrame | None, n_draws: int, rng_seed: int
               ) -> SeedDraws:
    """``n_draws`` seed draws of ``al``'s section scores (see the module docstring)."""
    rng = np.random.default_rng(rng_seed)
    n = len(al.models)
    per: dict[str, dict[str, list[float]]] = {}
    if seeds is not None and seeds.height:
        rows = seeds.filter(pl.col("objective") == al.objective).sort("seed")
        for r in rows.iter_rows(named=True):
            per.setdefault(r["model"], {}).setdefault(r["section"], []).append(r["score"])
    n_seeds = np.ones(n, dtype=int)
    picks = np.zeros((n_draws, n), dtype=int)
    for i, m in enumerate(al.models):
        k = len(per.get(m, {}).get("overall", []))
        if k > 1:
            n_seeds[i] = k
            picks[:, i] = rng.integers(0, k, size=n_draws)
    y: dict[str, np.ndarray] = {}
    for sec in SECTIONS:  # the per-seed table names sections as the analyses do
        out = np.repeat(al.y[sec][None, :], n_draws, axis=0).astype(float)
        for i, m in enumerate(al.models):
            vals = per.get(m, {}).get(sec, [])
            if n_seeds[i] > 1 and len(vals) == n_seeds[i]:
                v = np.array([np.nan if x is None else x for x in vals], dtype=float)
                out[:, i] = v[picks[:, i]]
        y[sec] = out
    return SeedDraws(y, n_seeds)


def spearman_draws(x: np.ndarray, y_draws: np.ndarray) -> np.ndarray:
    """Spearman rho of ``x`` with each row of ``y_draws`` over the models where both are
    known (NaN where undefined): the Pearson r of ranks, vectorised over the draws
    (:func:`rmselect.analysis.correlations.vector_pearson`, as its bootstrap does)."""
    from scipy import stats

    from rmselect.analysis.correlations import vector_pearson

    ok = ~np.isnan(x) & ~np.isnan(y_draws).any(axis=0)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0:
        return np.full(y_draws.shape[0], np.nan)
    rx = np.broadcast_to(stats.rankdata(x[ok]), (y_draws.shape[0], int(ok.sum())))
    with np.errstate(all="ignore"):
        return vector_pearson(rx, stats.rankdata(y_draws[:, ok], axis=1), axis=1)


def interval(values: np.ndarray, level: float) -> tuple[float | None, float | None]:
    """Central ``level`` interval of a statistic over draws (None when undefined)."""
    v = values[~np.isnan(values)]
    if v.size == 0:
        return (None, None)
    lo, hi = np.percentile(v, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return (float(lo), float(hi))


def top_feature_columns(rhos: Mapping[str, np.ndarray], mean_rho: Mapping[str, float | None]
                        ) -> dict[str, dict[str, object]]:
    """Per feature of one (objective, section): ``is_top``, ``top_share``, ``top_stable``.

    ``rhos``: feature -> rho per draw; ``mean_rho``: feature -> rho on the seed means.
    """
    feats = list(rhos)
    known = {f: v for f, v in mean_rho.items() if v is not None and not np.isnan(v)}
    top = max(known, key=lambda f: (known[f], f)) if known else None
    if feats:
        M = np.vstack([rhos[f] for f in feats])  # features x draws
        M = np.where(np.isnan(M), -np.inf, M)
        lead = np.argmax(M, axis=0)
        defined = np.isfinite(M.max(axis=0))
        share = {f: float(((lead == j) & defined).sum() / max(defined.sum(), 1))
                 for j, f in enumerate(feats)}
    else:
        share = {}
    return {f: {"is_top": f == top, "top_share": share.get(f),
                "top_stable": f == top and share.get(f, 0.0) >= STABLE_SHARE}
            for f in feats}


def seed_columns(al: Aligned, draws: SeedDraws, level: float,
                 mean_rho: Mapping[tuple[str, str], float | None]
                 ) -> dict[tuple[str, str], dict[str, object]]:
    """Seed columns of ``correlations.csv`` for one objective: (section, feature) ->
    ``spearman_seed_lo/hi``, ``n_seed_draws``, ``is_top``, ``top_share``, ``top_stable``."""
    out: dict[tuple[str, str], dict[str, object]] = {}
    for sec in SECTIONS:
        rhos = {f: spearman_draws(al.X[:, j], draws.y[sec]) for j, f in enumerate(al.features)}
        tops = top_feature_columns(rhos, {f: mean_rho.get((sec, f)) for f in al.features})
        for f in al.features:
            lo, hi = interval(rhos[f], level) if draws.varies else (None, None)
            out[(sec, f)] = {"spearman_seed_lo": lo, "spearman_seed_hi": hi,
                             "n_seed_draws": draws.n_draws if draws.varies else 0,
                             **tops[f]}
    return out


def coverage_draws(pred: np.ndarray, y_draws: np.ndarray, ks: Sequence[int]) -> np.ndarray:
    """Coverage@k of the fixed ranking ``pred`` against each seed draw of the truth
    (draws × ks; NaN where k exceeds the models known in both)."""
    from rmselect.analysis.coverage import coverage_at_k

    names = list(range(len(pred)))
    return np.array([[coverage_at_k(names, pred, yd, k) for k in ks] for yd in y_draws],
                    dtype=float).reshape(len(y_draws), len(ks))


def coverage_intervals(al: Aligned, draws: SeedDraws, ks: Sequence[int], level: float
                       ) -> dict[tuple[str, int], tuple[float | None, float | None]]:
    """(feature, k) -> seed interval of coverage@k (None, None when no model has seeds)."""
    out: dict[tuple[str, int], tuple[float | None, float | None]] = {}
    for j, f in enumerate(al.features):
        cov = coverage_draws(al.X[:, j], draws.y["overall"], ks) if draws.varies else None
        for i, k in enumerate(ks):
            out[(f, k)] = interval(cov[:, i], level) if cov is not None else (None, None)
    return out
