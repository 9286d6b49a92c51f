"""PCA of the standardised model × feature matrix (§4, Figures 12 and 13).

Rows = the population of one objective (the feature matrix does not depend on the objective,
so the ``regression`` population is used when present, else ``bt``); columns = the features
left by the missing-value policy (with ``impute``, column means fill the gaps first).
Each column is standardised (z-score), then ``sklearn.decomposition.PCA``.

Outputs: ``pca_variance.csv`` (component, explained_variance_ratio, cumulative, missing_policy)
and ``pca_loadings.csv`` (feature, component, loading, missing_policy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import polars as pl
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import StandardScaler

from rmselect import cli, plotting
from rmselect.analysis.args import FeatureArgs
from rmselect.analysis.data import (
    Aligned,
    align,
    load_features,
    load_models,
    load_rm_scores,
    objectives_present,
)
from rmselect.cli import opt
from rmselect.io import write_table


def pca(al: Aligned, n_components: int | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(variance table, loadings table) of the standardised feature matrix."""
    X = al.X
    if al.missing_policy == "impute":
        X = SimpleImputer(strategy="mean").fit_transform(X)
    Z = StandardScaler().fit_transform(X)
    k = min(Z.shape) if n_components is None else min(n_components, *Z.shape)
    p = PCA(n_components=k).fit(Z)
    var = pl.DataFrame(
        {
            "component": [f"PC{i + 1}" for i in range(k)],
            "explained_variance_ratio": p.explained_variance_ratio_,
            "cumulative": np.cumsum(p.explained_variance_ratio_),
            "missing_policy": [al.missing_policy] * k,
        }
    )
    load = pl.DataFrame(
        {
            "feature": [f for _ in range(k) for f in al.features],
            "component": [f"PC{i + 1}" for i in range(k) for _ in al.features],
            "loading": p.components_.reshape(-1),
            "missing_policy": [al.missing_policy] * (k * len(al.features)),
        }
    )
    return var, load


def plot_variance(var: pl.DataFrame, stem: str) -> None:
    fig, ax = plotting.figure("column")
    x = np.arange(1, var.height + 1)
    ax.bar(x, 100 * var["explained_variance_ratio"].to_numpy(), color=plotting.PALETTE[0],
           label="component")
    ax.plot(x, 100 * var["cumulative"].to_numpy(), marker="o", ms=3, color=plotting.PALETTE[1],
            label="cumulative")
    ax.set_xlabel("Principal component")
    ax.set_ylabel("Explained variance (%)")
    ax.set_ylim(0, 105)
    ax.legend()
    plotting.save(fig, stem)


def plot_loadings(load: pl.DataFrame, stem: str, n: int = 5) -> None:
    comps = load["component"].unique(maintain_order=True).to_list()[:n]
    feats = load["feature"].unique(maintain_order=True).to_list()
    M = np.array([[load.filter((pl.col("feature") == f) & (pl.col("component") == c))
                   ["loading"][0] for c in comps] for f in feats])
    fig, ax = plotting.figure("column", height=max(2.0, 0.16 * len(feats) + 0.8))
    lim = float(np.abs(M).max()) if M.size else 1.0
    im = ax.imshow(M, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(comps)), comps)
    ax.set_yticks(range(len(feats)), feats)
    ax.grid(False)
    fig.colorbar(im, ax=ax, label="Loading (unitless)")
    plotting.save(fig, stem)


@dataclass(kw_only=True)
class PcaArgs(FeatureArgs):
    """PCA of the feature matrix."""

    components: int = opt("0 = all", default=0)
    out_variance: str = opt("pca_variance.csv")
    out_loadings: str = opt("pca_loadings.csv")
    figures: list[str] = opt("PNG paths of Figures 12 and 13 (PDFs beside them)", nargs=2)


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(PcaArgs, write_pca, argv, prog="analysis_pca.py")


def write_pca(a: PcaArgs) -> int:
    rm = load_rm_scores(a.rm_scores, a.benchmark)
    objs = objectives_present(rm)
    obj = "regression" if "regression" in objs else objs[0]
    al = align(rm, load_features(a.features), load_models(a.models), obj, a.missing)
    var, load = pca(al, a.components or None)
    plot_variance(var, a.figures[0])
    plot_loadings(load, a.figures[1])
    write_table(a.out_variance, var)
    write_table(a.out_loadings, load)
    return 0
