"""Gains over the default model of each size group (paper §3, Figure 2).

For every objective and size group, ``gain_points = score - default_score`` and
``gain_relative_pct = 100 * gain_points / default_score`` where ``default_score`` is the
overall RM score of the group's default model (``size_groups[].default``). Groups whose
default has no RM score for an objective get empty default and gain cells (the row is kept
so that the score is still reported).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import polars as pl

from rmselect import cli, plotting
from rmselect.analysis.args import FIGURE, ScoresArgs
from rmselect.analysis.data import load_models, load_rm_scores, population
from rmselect.cli import opt
from rmselect.io import write_table

COLUMNS = (
    "objective",
    "size_group",
    "model",
    "score",
    "default_model",
    "default_score",
    "gain_points",
    "gain_relative_pct",
)


def gains(rm: pl.DataFrame, models: pl.DataFrame) -> pl.DataFrame:
    """One row per (objective, model) of the population; see module docstring."""
    pop = population(models)
    m = models.select("model", "size_group", pl.col("group_default").alias("default_model"))
    df = (
        rm.filter(pl.col("model").is_in(pop))
        .select("objective", "model", "score")
        .join(m, on="model", how="inner")
    )
    ref = rm.select(
        "objective", pl.col("model").alias("default_model"), pl.col("score").alias("default_score")
    )
    df = df.join(ref, on=["objective", "default_model"], how="left")
    df = df.with_columns(
        pl.when(pl.col("default_model") == "").then(None).otherwise(pl.col("default_model"))
        .alias("default_model"),
        (pl.col("score") - pl.col("default_score")).alias("gain_points"),
    ).with_columns(
        (100.0 * pl.col("gain_points") / pl.col("default_score")).alias("gain_relative_pct")
    )
    order = {g: i for i, g in enumerate(models["size_group"].unique(maintain_order=True))}
    df = df.with_columns(pl.col("size_group").replace_strict(order, default=99).alias("_g"))
    return df.sort("objective", "_g", "score", descending=[False, False, True]).select(COLUMNS)


def plot(df: pl.DataFrame, stem: str) -> None:
    """Figure 2: one panel per objective, bars = gain over the group default."""
    objs = df["objective"].unique(maintain_order=True).to_list() or ["(none)"]
    n = max(df.group_by("objective").len()["len"].max() or 1, 1) if df.height else 1
    fig, axes = plotting.figure(
        "double", height=max(2.2, 0.16 * n + 1.0), ncols=len(objs), squeeze=False, sharey=False,
        layout="constrained",
    )
    groups = df["size_group"].unique(maintain_order=True).to_list()
    for ax, obj in zip(axes[0], objs):
        d = df.filter(pl.col("objective") == obj).reverse()
        vals = d["gain_points"].fill_null(np.nan).to_numpy()
        cols = [plotting.PALETTE[groups.index(g) % len(plotting.PALETTE)] for g in d["size_group"]]
        ax.barh(np.arange(d.height), np.nan_to_num(vals), color=cols)
        ax.set_yticks(np.arange(d.height), d["model"].to_list())
        ax.axvline(0, color="black", lw=0.6)
        ax.set_xlabel("Gain over group default (RewardBench points)")
        ax.set_title(f"{obj}")
    handles = [
        plotting.plt.Rectangle((0, 0), 1, 1, color=plotting.PALETTE[i % len(plotting.PALETTE)])
        for i in range(len(groups))
    ]
    if groups:
        axes[0][-1].legend(handles, groups, title="size group", loc="lower right")
    plotting.save(fig, stem)


@dataclass(kw_only=True)
class GainsArgs(ScoresArgs):
    """Gains over each size group's default model."""

    out: str = opt("gains_vs_default.csv")
    figure: str = opt(FIGURE)


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(GainsArgs, write_gains, argv, prog="analysis_gains.py")


def write_gains(a: GainsArgs) -> int:
    df = gains(load_rm_scores(a.rm_scores, a.benchmark), load_models(a.models))
    plot(df, a.figure)
    write_table(a.out, df)
    return 0
