"""Correlation of every feature with every RM section and the overall score (§4, Figure 3).

For each (objective, section, feature) on the complete pairs (``n`` of them):

* Pearson r and Spearman rho with their two-sided p-values (``scipy.stats``).
* 95% (``--ci``) bootstrap confidence intervals for both: paired resampling of models,
  percentile method (``scipy.stats.bootstrap`` with ``paired=True``), a fixed seed.
* The paper's significance threshold for comparison: from t = r sqrt(n-2)/sqrt(1-r²),
  |r| > t_crit / sqrt(n - 2 + t_crit²) with t_crit the two-sided critical t at ``alpha``
  and n-2 degrees of freedom (n = 40 gives 0.312). The paper's 0.316 is not a rounding of
  it: 0.316 = 2/sqrt(40), the large-sample approximation |r| > 2/sqrt(n).
* Multiple testing. *Family* = all features tested against one section for one objective
  with one method (Pearson or Spearman): the paper reads Figure 3 a column at a time, so
  that is the set of tests one conclusion rests on. Holm (family-wise error) and
  Benjamini–Hochberg (false discovery rate) adjusted p-values via
  ``statsmodels.stats.multitest.multipletests``.
* Partial Spearman controlling for log(params): rank-residual method. Rank the feature,
  the score and log(params_b) (ranks of log params equal ranks of params); regress the
  feature ranks and the score ranks each on the params ranks by least squares; the partial
  rho is the Pearson correlation of the two residual vectors, tested with a t statistic on
  n-3 degrees of freedom. Empty for ``params_b`` itself and whenever n < 4.
* Seed uncertainty (:mod:`rmselect.analysis.seeds`): with several RM training seeds, the
  Spearman rho recomputed over seed draws gives ``spearman_seed_lo/hi`` (``n_seed_draws``
  draws; empty with one seed); ``is_top`` marks the feature with the highest seed-mean rho
  of its (objective, section), ``top_share`` the share of draws each feature leads in, and
  ``top_stable`` whether the top feature leads in at least half of them.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import polars as pl
from scipy import stats
from statsmodels.stats.multitest import multipletests

from rmselect import cli, plotting
from rmselect.analysis.args import FIGURE, SeedArgs
from rmselect.analysis.data import (
    SECTIONS,
    align,
    load_features,
    load_models,
    load_rm_scores,
    objectives_present,
)
from rmselect.analysis.seeds import draw_seeds, load_seed_scores
from rmselect.cli import opt
from rmselect.io import write_table

log = logging.getLogger(__name__)

COLUMNS = (
    "objective",
    "section",
    "feature",
    "n",
    "pearson_r",
    "pearson_p",
    "pearson_lo",
    "pearson_hi",
    "pearson_p_holm",
    "pearson_p_bh",
    "spearman_rho",
    "spearman_p",
    "spearman_lo",
    "spearman_hi",
    "spearman_p_holm",
    "spearman_p_bh",
    "r_threshold",
    "pearson_exceeds_threshold",
    "partial_spearman_rho",
    "partial_spearman_p",
    "missing_policy",
    "spearman_seed_lo",
    "spearman_seed_hi",
    "n_seed_draws",
    "is_top",
    "top_share",
    "top_stable",
)


def r_threshold(n: int, alpha: float = 0.05) -> float:
    """Smallest |r| significant at ``alpha`` (two-sided) by the t-test with n-2 df."""
    if n < 3:
        return float("nan")
    t = stats.t.ppf(1 - alpha / 2, n - 2)
    return float(t / math.sqrt(n - 2 + t * t))


def vector_pearson(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    """Pearson r along ``axis`` (NaN where either side is constant); vectorised for bootstrap."""
    a = a - a.mean(axis=axis, keepdims=True)
    b = b - b.mean(axis=axis, keepdims=True)
    den = np.sqrt((a * a).sum(axis=axis) * (b * b).sum(axis=axis))
    return np.where(den > 0, (a * b).sum(axis=axis) / np.where(den > 0, den, 1.0), np.nan)


def bootstrap_ci(
    x: np.ndarray, y: np.ndarray, method: str, n_resamples: int, level: float, seed: int
) -> tuple[float, float]:
    """Percentile bootstrap CI of a correlation, resampling models (pairs) with replacement.

    Resamples where one side is constant (correlation undefined) are left out; when more than
    half are, the interval is NaN.
    """
    if len(x) < 4 or n_resamples <= 0:
        return (float("nan"), float("nan"))

    def stat(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        if method == "spearman":
            a, b = stats.rankdata(a, axis=axis), stats.rankdata(b, axis=axis)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return vector_pearson(a, b, axis)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate resamples are handled below
        res = stats.bootstrap(
            (x, y),
            stat,
            paired=True,
            vectorized=True,
            n_resamples=n_resamples,
            confidence_level=level,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    # Percentile interval over the resamples where the correlation is defined (a resample
    # with a constant side has none); scipy would return NaN for the whole interval.
    dist = res.bootstrap_distribution
    if np.isnan(dist).mean() > 0.5:
        return (float("nan"), float("nan"))
    lo, hi = np.nanpercentile(dist, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return (float(lo), float(hi))


def partial_spearman(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[float, float]:
    """Spearman correlation of x and y controlling for z (rank-residual method; see module)."""
    n = len(x)
    if n < 4:
        return (float("nan"), float("nan"))
    rx, ry, rz = (stats.rankdata(v) for v in (x, y, z))
    Z = np.column_stack([np.ones(n), rz])
    ex = rx - Z @ np.linalg.lstsq(Z, rx, rcond=None)[0]
    ey = ry - Z @ np.linalg.lstsq(Z, ry, rcond=None)[0]
    if np.allclose(ex, 0) or np.allclose(ey, 0):
        return (float("nan"), float("nan"))
    r = float(np.corrcoef(ex, ey)[0, 1])
    df = n - 3
    r_c = min(max(r, -0.999999999), 0.999999999)
    t = r_c * math.sqrt(df / (1 - r_c * r_c))
    return (r, float(2 * stats.t.sf(abs(t), df)))


def adjust(p: Sequence[float], method: str) -> np.ndarray:
    """Holm (``holm``) or BH (``fdr_bh``) adjusted p-values; NaN p-values stay NaN."""
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method=method)[1]
    return out


def correlations(
    al_by_objective: dict,
    n_boot: int = 1000,
    level: float = 0.95,
    alpha: float = 0.05,
    seed: int = 0,
    control: str = "params_b",
    draws: dict | None = None,
) -> pl.DataFrame:
    """All correlations for the aligned populations (objective → :class:`Aligned`);
    ``draws`` (objective → :class:`rmselect.analysis.seeds.SeedDraws`) adds the seed columns."""
    from rmselect.analysis.seeds import seed_columns

    rows = []
    for obj, al in al_by_objective.items():
        first = len(rows)
        for sec in SECTIONS:
            y_all = al.y[sec]
            fam = []
            for j, feat in enumerate(al.features):
                x_all = al.X[:, j]
                ok = ~np.isnan(x_all) & ~np.isnan(y_all)
                x, y = x_all[ok], y_all[ok]
                n = int(ok.sum())
                row = {"objective": obj, "section": sec, "feature": feat, "n": n}
                valid = n >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0
                if valid:
                    pr = stats.pearsonr(x, y)
                    sr = stats.spearmanr(x, y)
                    row |= {
                        "pearson_r": float(pr.statistic),
                        "pearson_p": float(pr.pvalue),
                        "spearman_rho": float(sr.statistic),
                        "spearman_p": float(sr.pvalue),
                    }
                    s = seed + 7919 * j + 104729 * SECTIONS.index(sec)
                    row["pearson_lo"], row["pearson_hi"] = bootstrap_ci(
                        x, y, "pearson", n_boot, level, s
                    )
                    row["spearman_lo"], row["spearman_hi"] = bootstrap_ci(
                        x, y, "spearman", n_boot, level, s
                    )
                    z = al.params_b[ok]
                    if feat != control and not np.isnan(z).any() and np.ptp(z) > 0:
                        row["partial_spearman_rho"], row["partial_spearman_p"] = (
                            partial_spearman(x, y, np.log(z))
                        )
                thr = r_threshold(n, alpha)
                row["r_threshold"] = thr
                pr_val = row.get("pearson_r")
                row["pearson_exceeds_threshold"] = (
                    None if pr_val is None or math.isnan(thr) else bool(abs(pr_val) > thr)
                )
                row["missing_policy"] = al.missing_policy
                fam.append(row)
            for m in ("pearson", "spearman"):
                p = [r.get(f"{m}_p", float("nan")) for r in fam]
                for r, h, b in zip(fam, adjust(p, "holm"), adjust(p, "fdr_bh")):
                    r[f"{m}_p_holm"] = None if np.isnan(h) else float(h)
                    r[f"{m}_p_bh"] = None if np.isnan(b) else float(b)
            rows.extend(fam)
        if draws is not None and obj in draws:
            mean_rho = {(r["section"], r["feature"]): r.get("spearman_rho") for r in rows[first:]}
            cols = seed_columns(al, draws[obj], level, mean_rho)
            for r in rows[first:]:
                r |= cols.get((r["section"], r["feature"]), {})
    schema = {c: pl.Float64 for c in COLUMNS}
    schema |= {
        "objective": pl.String,
        "section": pl.String,
        "feature": pl.String,
        "n": pl.Int64,
        "pearson_exceeds_threshold": pl.Boolean,
        "missing_policy": pl.String,
        "n_seed_draws": pl.Int64,
        "is_top": pl.Boolean,
        "top_stable": pl.Boolean,
    }
    df = pl.DataFrame([{c: r.get(c) for c in COLUMNS} for r in rows], schema=schema, strict=False)
    # One spelling of "not defined" in the CSV: an empty cell.
    return df.with_columns(pl.col(pl.Float64).fill_nan(None))


def summary(df: pl.DataFrame, top: int = 5) -> str:
    """The ``top`` features by Spearman ρ with the overall score, per objective (for the log)."""
    lines = []
    for obj in df["objective"].unique(maintain_order=True).to_list():
        d = (
            df.filter((pl.col("objective") == obj) & (pl.col("section") == "overall"))
            .sort("spearman_rho", descending=True, nulls_last=True)
            .head(top)
        )
        for r in d.iter_rows(named=True):
            def f(v: float | None, fmt: str = ".3f") -> str:
                return "NA" if v is None else format(v, fmt)

            seed = (f" seeds [{f(r['spearman_seed_lo'])}, {f(r['spearman_seed_hi'])}]"
                    if r.get("spearman_seed_lo") is not None else "")
            lead = (f" top in {r['top_share']:.0%} of seed draws"
                    if r.get("is_top") and r.get("top_share") is not None else "")
            lines.append(
                f"  {obj:<10} {r['feature']:<24} rho={f(r['spearman_rho'])} "
                f"[{f(r['spearman_lo'])}, {f(r['spearman_hi'])}]{seed} "
                f"p_holm={f(r['spearman_p_holm'], '.2g')} n={r['n']}{lead}"
            )
    return "\n".join(lines)


def plot(df: pl.DataFrame, stem: str, method: str = "spearman") -> None:
    """Figure 3: heatmap feature × section of Spearman rho per objective; * = Holm p < 0.05."""
    objs = df["objective"].unique(maintain_order=True).to_list() or ["(none)"]
    feats = (
        df.filter(pl.col("section") == "overall")
        .group_by("feature")
        .agg(pl.col(f"{method}_rho" if method == "spearman" else "pearson_r").mean().alias("m"))
        .sort("m", descending=True, nulls_last=True)["feature"]
        .to_list()
    )
    h = max(2.0, 0.18 * len(feats) + 1.0)
    fig, axes = plotting.figure("double", height=h, ncols=len(objs), squeeze=False)
    col = "spearman_rho" if method == "spearman" else "pearson_r"
    im = None
    for pi, (ax, obj) in enumerate(zip(axes[0], objs)):
        d = df.filter(pl.col("objective") == obj)
        M = np.full((len(feats), len(SECTIONS)), np.nan)
        star = np.zeros_like(M, dtype=bool)
        for r in d.iter_rows(named=True):
            if r["feature"] in feats:
                i, k = feats.index(r["feature"]), SECTIONS.index(r["section"])
                M[i, k] = np.nan if r[col] is None else r[col]
                ph = r[f"{method}_p_holm"]
                star[i, k] = ph is not None and ph < 0.05
        im = ax.imshow(M, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
        ax.set_xticks(range(len(SECTIONS)), [s.replace("_", " ") for s in SECTIONS], rotation=30)
        ax.set_yticks(range(len(feats)), feats if pi == 0 else [])
        ax.grid(False)
        for i in range(len(feats)):
            for k in range(len(SECTIONS)):
                if not np.isnan(M[i, k]):
                    t = f"{M[i, k]:.2f}" + ("*" if star[i, k] else "")
                    ax.text(k, i, t, ha="center", va="center", fontsize=5)
        ax.set_title(f"{obj}: Spearman ρ with RM score")
    if im is not None:
        fig.colorbar(im, ax=axes[0].tolist(), shrink=0.6, label="Spearman ρ (unitless)")
    plotting.save(fig, stem)


@dataclass(kw_only=True)
class CorrelationsArgs(SeedArgs):
    """Pearson/Spearman correlations of features with RM sections (Figure 3)."""

    rm_seeds: str | None = opt(
        "rm_scores_seeds.csv (per-seed scores: seed intervals, top-feature stability)",
        default=None)
    seed_draws: int = opt("seed draws", default=1000)
    seed: int = opt("seed of the bootstrap and the seed draws", default=0)
    bootstrap: int = opt("bootstrap resamples", default=1000)
    ci: float = opt("confidence level", default=0.95)
    alpha: float = opt("significance level of the |r| threshold (two-sided)", default=0.05)
    out: str = opt("correlations.csv")
    figure: str = opt(FIGURE)


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(CorrelationsArgs, write_correlations, argv, prog="analysis_correlations.py")


def write_correlations(a: CorrelationsArgs) -> int:
    rm = load_rm_scores(a.rm_scores, a.benchmark)
    feats, models = load_features(a.features), load_models(a.models)
    als = {
        o: align(rm, feats, models, o, a.missing) for o in objectives_present(rm)
    }
    per_seed = load_seed_scores(a.rm_seeds, a.benchmark)
    draws = {o: draw_seeds(al, per_seed, a.seed_draws, a.seed + i)
             for i, (o, al) in enumerate(als.items())}
    df = correlations(als, a.bootstrap, a.ci, a.alpha, a.seed, draws=draws)
    for obj, al in als.items():
        log.info("%s: %d models, %d features, missing policy %s, dropped %s", obj,
                 len(al.models), len(al.features), al.missing_policy, al.dropped)
    log.info("strongest Spearman correlations with the overall RM score:\n%s", summary(df))
    plot(df, a.figure)
    write_table(a.out, df)
    return 0
