"""Imported RM results (``eval.import``): validation at DAG-build time, and precedence.

The file format, the checks and the precedence rules (``eval.import_precedence``) are
described in :mod:`rmselect.eval.table`'s docstring; errors name the file, row and column.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import polars as pl

from rmselect.eval.benchmarks import PRIMARY
from rmselect.eval.table_schema import OBJECTIVES, SECTION_COLS, VALUE_COLS, _frame


PRECEDENCE = ("imported", "trained", "error")
#: Tolerance (points) between an imported ``score`` and the mean of its four sections.
SCORE_TOLERANCE = 0.5


class ResultsImportError(ValueError):
    """An imported RM-results file that cannot be used (message names file/row/column)."""


def _num(text: str, where: str, col: str, required: bool) -> float | None:
    t = (text or "").strip()
    if not t:
        if required:
            raise ResultsImportError(f"{where}: column '{col}' is empty; give a 0-100 score")
        return None
    try:
        v = float(t)
    except ValueError:
        raise ResultsImportError(f"{where}: column '{col}': {t!r} is not a number") from None
    if not math.isfinite(v) or not 0 <= v <= 100:
        raise ResultsImportError(
            f"{where}: column '{col}': {t} is outside 0-100 (RewardBench scores are"
            " percentages; multiply fractions by 100)"
        )
    return v


def read_import(path: str | Path, models: Iterable[str] | None = None) -> pl.DataFrame:
    """Validate an imported results CSV and return it with the ``rm_scores.csv`` columns."""
    import csv

    p = Path(path)
    if not p.is_file():
        raise ResultsImportError(f"eval.import: file {p} does not exist")
    known = set(models) if models is not None else None
    with p.open(newline="") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        need = ["model", "objective", *SECTION_COLS]
        miss = [c for c in need if c not in header]
        if miss:
            raise ResultsImportError(
                f"{p}: missing column(s) {', '.join(miss)}; need {', '.join(need)}"
                " (optional: benchmark, score, *_lo, *_hi)"
            )
        rows: list[dict[str, Any]] = []
        seen: dict[tuple[str, str], int] = {}
        for i, raw in enumerate(reader, start=2):
            r = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
            where = f"{p} row {i}"
            model = r["model"]
            if not model:
                raise ResultsImportError(f"{where}: column 'model' is empty")
            where += f" (model '{model}')"
            if known is not None and model not in known:
                raise ResultsImportError(
                    f"{where}: column 'model': not in the model table; add the model to the"
                    " table or remove the row"
                )
            obj = r["objective"]
            if obj not in OBJECTIVES:
                raise ResultsImportError(
                    f"{where}: column 'objective': {obj!r}; use {' or '.join(OBJECTIVES)}"
                )
            bench = r.get("benchmark") or PRIMARY
            if bench != PRIMARY:
                raise ResultsImportError(
                    f"{where}: column 'benchmark': {bench!r}; imported rows must be {PRIMARY}"
                )
            if (model, obj) in seen:
                raise ResultsImportError(
                    f"{where}: duplicate (model, objective) = ({model}, {obj});"
                    f" first seen in row {seen[(model, obj)]}"
                )
            seen[(model, obj)] = i
            out: dict[str, Any] = {"model": model, "objective": obj, "benchmark": PRIMARY}
            for c in SECTION_COLS:
                out[c] = _num(r[c], where, c, True)
            mean = sum(out[c] for c in SECTION_COLS) / len(SECTION_COLS)
            score = _num(r.get("score", ""), where, "score", False)
            if score is not None and abs(score - mean) > SCORE_TOLERANCE:
                raise ResultsImportError(
                    f"{where}: column 'score': {score} but the mean of the four sections is"
                    f" {mean:.2f}; leave 'score' empty to use the mean"
                )
            out["score"] = mean if score is None else score
            for c in VALUE_COLS:
                lo = _num(r.get(f"{c}_lo", ""), where, f"{c}_lo", False)
                hi = _num(r.get(f"{c}_hi", ""), where, f"{c}_hi", False)
                if lo is not None and hi is not None and not lo <= out[c] <= hi:
                    raise ResultsImportError(
                        f"{where}: columns '{c}_lo'/'{c}_hi': [{lo}, {hi}] does not contain"
                        f" {c} = {out[c]}"
                    )
                out[f"{c}_lo"], out[f"{c}_hi"] = lo, hi
            out["source"] = "imported"
            rows.append(out)
    if not rows:
        raise ResultsImportError(f"{p}: no rows")
    if all(r[c] <= 1.0 for r in rows for c in SECTION_COLS):
        raise ResultsImportError(
            f"{p}: every score in columns {', '.join(SECTION_COLS)} is <= 1, so the file looks"
            " like fractions; RewardBench scores are percentages 0-100: multiply by 100"
        )
    return _frame(rows)


def evaluated_pairs(
    models: Sequence[str],
    objectives: Sequence[str],
    imported: pl.DataFrame | None,
    precedence: str = "imported",
    train_and_evaluate: bool = True,
) -> list[tuple[str, str]]:
    """(model, objective) pairs whose RMs the eval stage scores.

    ``imported`` precedence drops pairs covered by the import (their RMs are not needed),
    ``trained`` keeps them all, ``error`` refuses an overlap.
    """
    if precedence not in PRECEDENCE:
        raise ValueError(f"eval.import_precedence: {precedence!r}; use {', '.join(PRECEDENCE)}")
    if not train_and_evaluate:
        return []
    pairs = [(m, o) for m in models for o in objectives]
    if imported is None:
        return pairs
    covered = set(zip(imported["model"].to_list(), imported["objective"].to_list()))
    overlap = [p for p in pairs if p in covered]
    if overlap and precedence == "error":
        listed = ", ".join(f"{m}/{o}" for m, o in overlap[:5])
        raise ValueError(
            f"eval.import: {len(overlap)} (model, objective) pair(s) are both imported and"
            f" trained ({listed}); set eval.import_precedence to imported or trained"
        )
    if precedence == "imported":
        return [p for p in pairs if p not in covered]
    return pairs
