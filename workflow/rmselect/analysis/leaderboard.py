"""Figure 1: share of base-model families among the top entries of a RewardBench leaderboard.

Input: ``analysis.leaderboard_csv``, a CSV with at least ``rank`` and ``base_family`` (the base
model family of each leaderboard entry, e.g. ``llama-3``); the top ``analysis.leaderboard_top``
entries by rank are counted. Output: ``leaderboard_share.csv`` (base_family, count, share_pct)
and the figure. Without a leaderboard CSV (``null``, the default: there is no offline copy of
the live leaderboard) the figure is a placeholder saying so, and the CSV has no rows; the log
says the same.
"""

from __future__ import annotations

import argparse
import logging
from typing import Sequence

import polars as pl

from rmselect import plotting
from rmselect.analysis.data import read_csv, setup_logging
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


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="analysis_leaderboard.py", description="Figure 1: base families on the leaderboard."
    )
    ap.add_argument("--leaderboard", default="", help="leaderboard CSV (empty: placeholder)")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--out", required=True)
    ap.add_argument("--figure", required=True, help="figure path (.png; the .pdf is written beside it)")
    a = ap.parse_args(argv)
    setup_logging()
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
