"""Presence score distributions: summary, shared-bin histograms, Jensen–Shannon distances.

* ``summary.csv``: ``model, domain, mean, std, n_docs`` (std with ddof=1; empty for one doc),
  plus ``scored_by`` (the model whose scores these are; differs under family reuse) and the
  domain-mean estimate: ``estimate, halfwidth, estimator, r2`` (:func:`estimates`). With
  ``presence.estimator: regression`` and a corpus whose manifest has the pool's covariate,
  ``estimate`` is the regression estimator of :mod:`rmselect.presence.covariate`; otherwise
  the plain ``mean``. The benchmarks stage adds ``presence_<domain> = estimate`` to the
  feature table from it.
* ``histograms.csv``: ``model, domain, bin, lo, hi, count, prob``. Within a domain every
  model uses the **same** bins: ``n_bins`` equal-width bins spanning the minimum to the maximum
  score of all models on that domain (±0.5 when all scores are equal).
* ``jsd.csv``: ``model_a, model_b, domain, js_distance`` for every ordered pair (diagonal
  included, so the matrix reads directly): ``scipy.spatial.distance.jensenshannon(p_a, p_b,
  base=2)`` of the two histograms. That is the Jensen–Shannon *distance* (the square root of
  the divergence, in [0, 1]), not the divergence, hence the column name; the file keeps its
  short name. Domain ``mean``: the plain mean of the per-domain distances.
* Figures (``rmselect.plotting``): score distributions per domain (the paper's Fig. 7) and
  the heatmap of the mean distance (Fig. 8).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import polars as pl
from scipy.spatial.distance import jensenshannon

from rmselect import cli
from rmselect.cli import opt

MEAN_DOMAIN = "mean"


def load_scores(presence_dir: str | Path, models: Iterable[str], domains: Iterable[str]) -> pl.DataFrame:
    """Long frame ``model, domain, doc_id, n_tokens, score`` from the per-model parquet files."""
    frames = []
    for m in models:
        for d in domains:
            path = Path(presence_dir) / m / f"{d}.parquet"
            if not path.exists():
                raise FileNotFoundError(f"presence scores {path} missing (model '{m}', domain '{d}')")
            df = pl.read_parquet(path)
            missing = {"doc_id", "n_tokens", "score"} - set(df.columns)
            if missing:
                raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
            frames.append(df.select(
                pl.lit(m).alias("model"), pl.lit(d).alias("domain"),
                pl.col("doc_id").cast(pl.Int64), pl.col("n_tokens").cast(pl.Int64),
                pl.col("score").cast(pl.Float64),
            ))
    if not frames:
        raise ValueError("no presence scores: no models or no domains")
    return pl.concat(frames)


def summarise(scores: pl.DataFrame) -> pl.DataFrame:
    """``model, domain, mean, std, n_docs`` in input order."""
    return scores.group_by(["model", "domain"], maintain_order=True).agg(
        pl.col("score").mean().alias("mean"),
        pl.col("score").std(ddof=1).alias("std"),
        pl.len().cast(pl.Int64).alias("n_docs"),
    )


def corpus_covariates(corpus_dir: str | Path, domains: Sequence[str]
                      ) -> dict[str, tuple[pl.DataFrame, dict] | None]:
    """Per domain: the sampled documents' covariate (``doc_id, x``) and the manifest's pool
    moments, or None when the corpus has no covariate (sampled without one)."""
    import json

    from rmselect.presence.covariate import NAME

    out: dict[str, tuple[pl.DataFrame, dict] | None] = {}
    for d in domains:
        folder = Path(corpus_dir) / d
        man = json.loads((folder / "manifest.json").read_text())
        cov = man.get("covariate")
        files = sorted(folder.glob("part-*.parquet"))
        if not cov or not files or NAME not in pl.read_parquet_schema(files[0]):
            print(f"presence: corpus {folder} has no covariate (sampled without one); domain "
                  f"'{d}' is estimated by the plain mean", file=sys.stderr)
            out[d] = None
            continue
        x = pl.concat([pl.read_parquet(f, columns=["doc_id", NAME]) for f in files])
        out[d] = (x.rename({NAME: "x"}), cov)
    return out


def estimates(scores: pl.DataFrame, covariates: dict[str, tuple[pl.DataFrame, dict] | None],
              estimator: str = "regression") -> pl.DataFrame:
    """``model, domain, estimate, halfwidth, estimator, r2`` per (model, domain): the
    regression estimator where ``estimator`` is ``regression`` and the domain has a
    covariate, else the plain mean (rmselect.presence.covariate)."""
    from rmselect.presence import covariate as cv

    rows = []
    for (model, domain), g in scores.group_by(["model", "domain"], maintain_order=True):
        cov = covariates.get(str(domain)) if estimator == "regression" else None
        if cov is None:
            e = cv.plain(g["score"].to_numpy())
        else:
            x, man = cov
            j = g.join(x, on="doc_id", how="inner")
            if j.height != g.height:
                raise ValueError(f"presence: model '{model}' domain '{domain}': "
                                 f"{g.height - j.height} scored documents are not in the "
                                 "corpus; rescore after resampling")
            e = cv.regression(j["score"].to_numpy(), j["x"].to_numpy(), float(man["mean"]),
                              int(man["pool_docs"]))
        rows.append({"model": model, "domain": domain, "estimate": e.estimate,
                     "halfwidth": e.halfwidth if math.isfinite(e.halfwidth) else None,
                     "estimator": e.estimator, "r2": e.r2})
    return pl.DataFrame(rows, schema={"model": pl.String, "domain": pl.String,
                                      "estimate": pl.Float64, "halfwidth": pl.Float64,
                                      "estimator": pl.String, "r2": pl.Float64})


def shared_edges(values: np.ndarray, n_bins: int) -> np.ndarray:
    """``n_bins + 1`` equal-width edges from min to max of ``values`` (±0.5 if constant)."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("no finite scores to bin")
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, n_bins + 1)


def histograms(scores: pl.DataFrame, n_bins: int) -> pl.DataFrame:
    """Per (model, domain) histogram on the domain's shared bins; ``prob`` sums to 1."""
    rows: dict[str, list] = {k: [] for k in ("model", "domain", "bin", "lo", "hi", "count", "prob")}
    for domain in scores["domain"].unique(maintain_order=True).to_list():
        dom = scores.filter(pl.col("domain") == domain)
        edges = shared_edges(dom["score"].to_numpy(), n_bins)
        for model in dom["model"].unique(maintain_order=True).to_list():
            vals = dom.filter(pl.col("model") == model)["score"].to_numpy()
            counts, _ = np.histogram(vals, bins=edges)
            total = counts.sum()
            for b in range(n_bins):
                rows["model"].append(model)
                rows["domain"].append(domain)
                rows["bin"].append(b)
                rows["lo"].append(float(edges[b]))
                rows["hi"].append(float(edges[b + 1]))
                rows["count"].append(int(counts[b]))
                rows["prob"].append(float(counts[b] / total) if total else 0.0)
    return pl.DataFrame(rows)


def js_distance(p: Sequence[float], q: Sequence[float]) -> float:
    """Jensen–Shannon distance, base 2, of two histograms (normalised by scipy)."""
    d = float(jensenshannon(np.asarray(p, float), np.asarray(q, float), base=2))
    return 0.0 if not np.isfinite(d) or d < 0 else d


def jsd_table(hist: pl.DataFrame) -> pl.DataFrame:
    """``model_a, model_b, domain, js_distance`` for all ordered pairs, plus the ``mean`` domain."""
    rows: dict[str, list] = {"model_a": [], "model_b": [], "domain": [], "js_distance": []}
    models = hist["model"].unique(maintain_order=True).to_list()
    domains = hist["domain"].unique(maintain_order=True).to_list()
    if MEAN_DOMAIN in domains:
        raise ValueError(f"a presence domain may not be called '{MEAN_DOMAIN}' (reserved)")
    probs = {
        (m, d): hist.filter((pl.col("model") == m) & (pl.col("domain") == d)).sort("bin")["prob"].to_numpy()
        for m in models for d in domains
    }
    for a in models:
        for b in models:
            per = [js_distance(probs[a, d], probs[b, d]) if a != b else 0.0 for d in domains]
            for d, v in zip(domains, per):
                rows["model_a"].append(a)
                rows["model_b"].append(b)
                rows["domain"].append(d)
                rows["js_distance"].append(v)
            rows["model_a"].append(a)
            rows["model_b"].append(b)
            rows["domain"].append(MEAN_DOMAIN)
            rows["js_distance"].append(float(np.mean(per)))
    return pl.DataFrame(rows)


# --------------------------------------------------------------------------- figures

_STYLES = ["-", "--", ":", "-."]


def plot_distributions(hist: pl.DataFrame, stem: str | Path) -> None:
    """Fig. 7: per domain, every model's score distribution on the shared bins."""
    from rmselect.plotting import PALETTE, figure, save

    domains = hist["domain"].unique(maintain_order=True).to_list()
    models = hist["model"].unique(maintain_order=True).to_list()
    ncols = min(3, len(domains))
    nrows = -(-len(domains) // ncols)
    fig, axes = figure("double", height=2.0 * nrows + 0.6, nrows=nrows, ncols=ncols, squeeze=False)
    for k, d in enumerate(domains):
        ax = axes[k // ncols][k % ncols]
        for j, m in enumerate(models):
            h = hist.filter((pl.col("model") == m) & (pl.col("domain") == d)).sort("bin")
            centers = ((h["lo"] + h["hi"]) / 2).to_numpy()
            ax.plot(centers, h["prob"].to_numpy(), label=m, color=PALETTE[j % len(PALETTE)],
                    linestyle=_STYLES[(j // len(PALETTE)) % len(_STYLES)], linewidth=1.0)
        ax.set_title(d)
        ax.set_xlabel("presence score (mean log-prob)")
        if k % ncols == 0:
            ax.set_ylabel("share of documents")
    for k in range(len(domains), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(models)),
               bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout()
    save(fig, stem)


def plot_jsd(jsd: pl.DataFrame, stem: str | Path, domain: str = MEAN_DOMAIN) -> None:
    """Fig. 8: heatmap of the pairwise Jensen–Shannon distance (mean over domains)."""
    from rmselect.plotting import figure, save

    sub = jsd.filter(pl.col("domain") == domain)
    models = sub["model_a"].unique(maintain_order=True).to_list()
    idx = {m: i for i, m in enumerate(models)}
    mat = np.zeros((len(models), len(models)))
    for a, b, v in sub.select("model_a", "model_b", "js_distance").iter_rows():
        mat[idx[a], idx[b]] = v
    size = max(3.3, 0.35 * len(models) + 1.5)
    fig, ax = figure(size, height=size * 0.85)
    ax.grid(False)
    im = ax.imshow(mat, cmap="viridis", vmin=0.0, vmax=max(1e-9, float(mat.max())))
    ax.set_xticks(range(len(models)), models, rotation=90)
    ax.set_yticks(range(len(models)), models)
    if len(models) <= 16:
        for i in range(len(models)):
            for j in range(len(models)):
                ax.text(j, i, f"{mat[i, j]:.2f}", ha="center", va="center", fontsize=5,
                        color="white" if mat[i, j] < 0.6 * mat.max() else "black")
    fig.colorbar(im, ax=ax, label=f"Jensen–Shannon distance ({domain} over domains)"
                 if domain == MEAN_DOMAIN else f"Jensen–Shannon distance ({domain})")
    save(fig, stem)


# --------------------------------------------------------------------------- entry point


@dataclass(kw_only=True)
class DistributionsArgs:
    """Summary, shared-bin histograms, pairwise Jensen-Shannon distances and the two presence
    figures from results/presence/<model>/<domain>.parquet."""

    presence_dir: str = opt(default="results/presence")
    models: list[str] = opt()
    domains: list[str] = opt()
    bins: int = opt("histogram bins per domain", default=40)
    summary: str = opt("output summary.csv")
    histograms: str = opt("output histograms.csv")
    jsd: str = opt("output jsd.csv")
    fig_distributions: str = opt("figure stem (png + pdf)")
    fig_jsd: str = opt("figure stem (png + pdf)")
    precision: str | None = opt("output precision.csv (rmselect.presence.precision)",
                                default=None)
    corpus_dir: str | None = opt("the sampled corpora (<dir>/<domain>/manifest.json and "
                                 "part-*.parquet) whose covariate the regression estimator "
                                 "uses; none: plain means", default=None)
    estimator: str = opt("domain-mean estimator of summary.csv's estimate",
                         default="regression", choices=["regression", "mean"])
    halfwidth: float = opt("target 95 % half-width of precision.csv, nats", default=0.01)


def main(argv: Sequence[str] | None = None) -> int:
    from rmselect.io import read_json, write_table

    args = cli.parse(DistributionsArgs, argv, prog="presence_distributions.py")
    scores = load_scores(args.presence_dir, args.models, args.domains)
    summary = summarise(scores)
    scored_by = {}
    for m in args.models:
        prov = Path(args.presence_dir) / m / "presence.json"
        scored_by[m] = read_json(prov).get("scored_by", m) if prov.exists() else m
    summary = summary.with_columns(
        pl.col("model").replace_strict(scored_by, return_dtype=pl.String).alias("scored_by")
    )
    covs = corpus_covariates(args.corpus_dir, args.domains) if args.corpus_dir else {}
    summary = summary.join(estimates(scores, covs, args.estimator), on=["model", "domain"],
                           how="left", maintain_order="left")
    hist = histograms(scores, args.bins)
    jsd = jsd_table(hist)
    write_table(args.summary, summary)
    write_table(args.histograms, hist)
    write_table(args.jsd, jsd)
    if args.precision:
        from rmselect.presence.precision import precision_table

        write_table(args.precision, precision_table(scores, args.halfwidth, covariates=covs))
    plot_distributions(hist, args.fig_distributions)
    plot_jsd(jsd, args.fig_jsd)
    return 0
