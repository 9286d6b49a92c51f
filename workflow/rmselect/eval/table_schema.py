"""Columns of the RM score tables (``rm_scores.csv``, ``rm_scores_all.csv``,
``rm_scores_seeds.csv``; see :mod:`rmselect.eval.table`) and their typed frames.

Shared by the table building (:mod:`rmselect.eval.table`) and the validation of imported
results (:mod:`rmselect.eval.results_import`), which must produce the same columns.
"""

from __future__ import annotations

from typing import Any, Sequence

import polars as pl

from rmselect.eval.benchmarks import PRIMARY, get_benchmark


OBJECTIVES = ("bt", "regression")
SECTION_COLS = list(get_benchmark(PRIMARY).sections())  # chat, chat_hard, safety, reasoning
VALUE_COLS = [*SECTION_COLS, "score"]
CI_COLS = [f"{c}_{s}" for c in VALUE_COLS for s in ("lo", "hi")]
SD_COLS = [f"{c}_seed_sd" for c in VALUE_COLS]
TABLE_COLS = ["model", "objective", "benchmark", *VALUE_COLS, *CI_COLS, "source", "incomplete",
              "n_seeds", *SD_COLS]
ALL_COLS = ["model", "objective", "benchmark", "section", "score", "lo", "hi", "source",
            "n_seeds", "seed_sd"]
SEED_COLS = ["model", "objective", "seed", "benchmark", "section", "score", "lo", "hi", "source"]


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    schema = {c: (pl.Float64 if c in VALUE_COLS or c in CI_COLS or c in SD_COLS
                  else pl.Int64 if c == "n_seeds" else pl.Utf8) for c in TABLE_COLS}
    rows = [{"incomplete": None, "n_seeds": None, **{c: None for c in SD_COLS}, **r}
            for r in rows]
    return pl.DataFrame(rows, schema=schema).select(TABLE_COLS)


def _seed_frame(rows: Sequence[dict[str, Any]]) -> pl.DataFrame:
    schema = {c: (pl.Float64 if c in ("score", "lo", "hi") else pl.Int64 if c == "seed"
                  else pl.Utf8) for c in SEED_COLS}
    return pl.DataFrame([{c: r.get(c) for c in SEED_COLS} for r in rows], schema=schema).sort(
        ["model", "objective", "benchmark", "section", "seed"], nulls_last=True)
