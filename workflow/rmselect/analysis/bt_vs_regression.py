"""Regression vs Bradley–Terry per model (§7, Figure 11).

``bt_vs_regression.csv``: model, size_group, section, bt, regression,
``difference_points = regression - bt`` (positive: regression is better), for every model that
has both objectives (all stages, so post-training variants are included), sections plus
overall.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import polars as pl

from rmselect import cli, plotting
from rmselect.analysis.args import FIGURE, ScoresArgs
from rmselect.analysis.data import SECTION_COLUMN, SECTIONS, load_models, load_rm_scores
from rmselect.cli import opt
from rmselect.io import write_table


def bt_vs_regression(rm: pl.DataFrame, models: pl.DataFrame) -> pl.DataFrame:
    rows = []
    for sec in SECTIONS:
        col = SECTION_COLUMN[sec]
        if col not in rm.columns:
            continue
        w = (
            rm.select("model", "objective", pl.col(col).alias("v"))
            .pivot(on="objective", index="model", values="v")
        )
        if "bt" not in w.columns or "regression" not in w.columns:
            continue
        rows.append(
            w.select(
                "model",
                pl.lit(sec).alias("section"),
                pl.col("bt"),
                pl.col("regression"),
                (pl.col("regression") - pl.col("bt")).alias("difference_points"),
            ).drop_nulls(["bt", "regression"])
        )
    if not rows:
        return pl.DataFrame(
            schema={"model": pl.String, "size_group": pl.String, "section": pl.String,
                    "bt": pl.Float64, "regression": pl.Float64, "difference_points": pl.Float64}
        )
    df = pl.concat(rows).join(models.select("model", "size_group"), on="model", how="left")
    return df.select("model", "size_group", "section", "bt", "regression", "difference_points"
                     ).sort("section", "difference_points", descending=[False, True])


def plot(df: pl.DataFrame, stem: str) -> None:
    d = df.filter(pl.col("section") == "overall").sort("difference_points")
    fig, ax = plotting.figure("column", height=max(2.0, 0.16 * d.height + 0.8))
    v = d["difference_points"].to_numpy() if d.height else np.array([])
    ax.barh(range(d.height), v, color=[plotting.PALETTE[0] if x > 0 else plotting.PALETTE[3]
                                       for x in v])
    ax.set_yticks(range(d.height), d["model"].to_list())
    ax.axvline(0, color="black", lw=0.6)
    ax.set_xlabel("Regression − BT (RewardBench points)")
    plotting.save(fig, stem)


@dataclass(kw_only=True)
class BtVsRegressionArgs(ScoresArgs):
    """Regression minus BT per model."""

    out: str = opt("bt_vs_regression.csv")
    figure: str = opt(FIGURE)


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(BtVsRegressionArgs, write_bt_vs_regression, argv,
                   prog="analysis_bt_vs_regression.py")


def write_bt_vs_regression(a: BtVsRegressionArgs) -> int:
    df = bt_vs_regression(load_rm_scores(a.rm_scores, a.benchmark), load_models(a.models))
    plot(df, a.figure)
    write_table(a.out, df)
    return 0
