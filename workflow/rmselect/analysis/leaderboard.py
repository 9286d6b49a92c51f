"""Figure 1: share of base-model families among the top entries of a RewardBench leaderboard.

Input: ``analysis.leaderboard_csv``, a CSV with at least ``rank`` and ``base_family`` (the base
model family of each leaderboard entry, e.g. ``llama-3``); the top ``analysis.leaderboard_top``
entries by rank are counted. Output: ``leaderboard_share.csv`` (base_family, count, share_pct)
and the figure. Without a leaderboard CSV (``null``, the default: there is no offline copy of
the live leaderboard) the figure is a placeholder saying so, and the CSV has no rows; the log
says the same.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import polars as pl

from rmselect import cli, plotting
from rmselect.analysis.args import FIGURE
from rmselect.analysis.data import read_csv
from rmselect.cli import opt
from rmselect.io import write_table

log = logging.getLogger(__name__)


def family_share(lb: pl.DataFrame, top: int) -> pl.DataFrame:
    d = lb.with_columns(pl.col("rank").cast(pl.Int64)).sort("rank").head(top)
    n = d.height
    return (
        d.group_by("base_family")
        .len("count")
        .with_columns((100.0 * pl.col("count") / n).alias("share_pct"))
        .sort(["count", "base_family"], descending=[True, False])
    )


def plot(share: pl.DataFrame | None, stem: str, top: int) -> None:
    fig, ax = plotting.figure("column", height=2.2)
    if share is None or share.height == 0:
        ax.text(0.5, 0.5, "No leaderboard CSV configured\n(analysis.leaderboard_csv)",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    else:
        d = share.reverse()
        ax.barh(range(d.height), d["share_pct"], color=plotting.PALETTE[0])
        ax.set_yticks(range(d.height), d["base_family"].to_list())
        ax.set_xlabel(f"Share of top-{top} RewardBench entries (%)")
    plotting.save(fig, stem)


@dataclass(kw_only=True)
class LeaderboardArgs:
    """Figure 1: base families on the leaderboard."""

    leaderboard: str = opt("leaderboard CSV (empty: placeholder)", default="")
    top: int = opt("top entries counted (analysis.leaderboard_top)", default=30)
    out: str = opt("leaderboard_share.csv")
    figure: str = opt(FIGURE)


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(LeaderboardArgs, write_leaderboard, argv, prog="analysis_leaderboard.py")


def write_leaderboard(a: LeaderboardArgs) -> int:
    share = None
    if a.leaderboard:
        share = family_share(read_csv(a.leaderboard, ("rank", "base_family"), "leaderboard"),
                             a.top)
    else:
        log.info("Figure 1 skipped: no analysis.leaderboard_csv; writing a placeholder figure")
        share = pl.DataFrame(schema={"base_family": pl.String, "count": pl.UInt32,
                                     "share_pct": pl.Float64})
    plot(share, a.figure, a.top)
    write_table(a.out, share)
    return 0
