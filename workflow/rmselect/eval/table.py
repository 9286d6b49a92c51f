"""RM score tables (``workflow/scripts/rm_scores_table.py``) and imported RM results.

``results/tables/rm_scores.csv``
    one row per (model, objective) on the primary benchmark (RewardBench v1): ``model,
    objective, benchmark, chat, chat_hard, safety, reasoning, score`` (0-100), CI columns
    ``<col>_lo, <col>_hi``, ``source`` (``trained`` | ``imported``), ``incomplete``, and the
    seed statistics ``n_seeds`` and ``<col>_seed_sd``. With several training seeds
    (``rm.seeds``) every value is the seed mean (what the analyses use), ``<col>_seed_sd``
    the sample sd over seeds (empty for one seed or an imported row), and the CI columns
    the seed means of the per-seed bootstrap bounds (the CI of one seed's score).
``results/tables/rm_scores_all.csv``
    long form over every evaluated benchmark: ``model, objective, benchmark, section,
    score, lo, hi, source, n_seeds, seed_sd`` (section ``overall`` is the benchmark's overall
    score; seed means as above).
``results/tables/rm_scores_seeds.csv``
    the per-seed rows behind both: ``model, objective, seed, benchmark, section, score, lo,
    hi, source`` (trained RMs only).

Incomplete evaluations: a section with a missing subset, and the overall score of a run
with any section missing or partial, are empty cells, never a mean over what is there; the
``incomplete`` column of ``rm_scores.csv`` says why (empty for complete rows).

Imported results (``eval.import``: a CSV with the ``rm_scores.csv`` columns; ``benchmark``,
``source`` and the CI columns may be absent or empty, ``score`` may be empty and is then the
mean of the four sections) are validated at DAG-build time
(:mod:`rmselect.eval.results_import`), with errors that name the file, row and column. Precedence when a (model, objective) is both imported and trained is
``eval.import_precedence``: ``imported`` (default: the pair is not evaluated, so its RM is
not needed), ``trained`` (the imported row is dropped), or ``error``.

Layout: the columns in :mod:`rmselect.eval.table_schema`, the import's validation and
precedence in :mod:`rmselect.eval.results_import`; this module builds the tables.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import polars as pl

from rmselect import cli
from rmselect.cli import opt
from rmselect.eval.benchmarks import PRIMARY
from rmselect.io import read_json, write_table

# The columns and the imported results have their own modules; their names stay importable
# from here (scripts, rmselect.eval.settings and tests use them).
from rmselect.eval.results_import import (  # noqa: F401
    PRECEDENCE,
    SCORE_TOLERANCE,
    ResultsImportError,
    evaluated_pairs,
    read_import,
)
from rmselect.eval.table_schema import (  # noqa: F401
    ALL_COLS,
    CI_COLS,
    OBJECTIVES,
    SD_COLS,
    SECTION_COLS,
    SEED_COLS,
    TABLE_COLS,
    VALUE_COLS,
    _frame,
    _seed_frame,
)

def _mean(values: Sequence[float | None]) -> float | None:
    """Seed mean; empty when any seed's value is (an incomplete seed makes the mean one)."""
    if not values or any(v is None for v in values):
        return None
    return float(sum(values) / len(values))  # type: ignore[arg-type]


def _sd(values: Sequence[float | None]) -> float | None:
    """Sample sd over seeds (ddof 1); empty for one seed or a missing value."""
    import statistics

    if len(values) < 2 or any(v is None for v in values):
        return None
    return float(statistics.stdev(values))  # type: ignore[arg-type]


def seed_mean_rows(per_seed: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One ``rm_scores.csv`` row per (model, objective) from its seeds' rows."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in per_seed:
        groups.setdefault((r["model"], r["objective"]), []).append(r)
    out = []
    for (model, obj), rows in groups.items():
        row: dict[str, Any] = {"model": model, "objective": obj, "benchmark": PRIMARY,
                               "source": "trained", "n_seeds": len(rows)}
        for c in VALUE_COLS:
            row[c] = _mean([r[c] for r in rows])
            row[f"{c}_seed_sd"] = _sd([r[c] for r in rows])
            for b in ("lo", "hi"):
                row[f"{c}_{b}"] = (None if row[c] is None
                                   else _mean([r[f"{c}_{b}"] for r in rows]))
        reasons = [f"seed {r.get('seed')}: {r['incomplete']}" if len(rows) > 1 else r["incomplete"]
                   for r in rows if r.get("incomplete")]
        row["incomplete"] = "; ".join(reasons) or None
        out.append(row)
    return out


def seed_mean_long(per_seed: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rm_scores_all.csv`` rows: seed means of the per-seed long rows."""
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for r in per_seed:
        groups.setdefault((r["model"], r["objective"], r["benchmark"], r["section"]), []).append(r)
    out = []
    for (model, obj, bench, sec), rows in groups.items():
        score = _mean([r["score"] for r in rows])
        out.append({
            "model": model, "objective": obj, "benchmark": bench, "section": sec,
            "score": score,
            "lo": None if score is None else _mean([r["lo"] for r in rows]),
            "hi": None if score is None else _mean([r["hi"] for r in rows]),
            "source": rows[0]["source"], "n_seeds": len(rows),
            "seed_sd": _sd([r["score"] for r in rows]),
        })
    return out


def row_from_eval(result: dict[str, Any]) -> dict[str, Any]:
    """One ``rm_scores.csv`` row from an eval JSON of the primary benchmark."""
    if result.get("benchmark") != PRIMARY:
        raise ValueError(f"row_from_eval: expected a {PRIMARY} result, got {result.get('benchmark')!r}")
    out: dict[str, Any] = {
        "model": result["model"],
        "objective": result["objective"],
        "seed": result.get("rm_seed"),
        "benchmark": PRIMARY,
        "source": "trained",
    }
    reasons = []
    for c in SECTION_COLS:
        sec = result["sections"].get(c) or {}
        miss = list(sec.get("missing_subsets") or [])
        if sec.get("score") is None or miss:
            reasons.append(f"{c}: no rows for {', '.join(miss) or 'any subset'}")
            out[c], out[f"{c}_lo"], out[f"{c}_hi"] = None, None, None
        else:
            out[c], out[f"{c}_lo"], out[f"{c}_hi"] = sec["score"], sec.get("lo"), sec.get("hi")
    ov = result["overall"]
    if reasons or not ov.get("complete", True) or ov.get("score") is None:
        # A mean over the sections present is not the benchmark's score: leave it empty.
        out["score"], out["score_lo"], out["score_hi"] = None, None, None
        out["incomplete"] = "; ".join(reasons) or "overall score not complete"
    else:
        out["score"], out["score_lo"], out["score_hi"] = ov["score"], ov.get("lo"), ov.get("hi")
        out["incomplete"] = None
    return out


def long_rows(result: dict[str, Any], source: str = "trained") -> list[dict[str, Any]]:
    rows = []
    for key, sec in result["sections"].items():
        rows.append(
            {
                "model": result["model"],
                "objective": result["objective"],
                "seed": result.get("rm_seed"),
                "benchmark": result["benchmark"],
                "section": key,
                "score": sec["score"],
                "lo": sec.get("lo"),
                "hi": sec.get("hi"),
                "source": source,
            }
        )
    ov = result["overall"]
    whole = ov.get("complete", True)  # a partial overall is no score (module docstring)
    rows.append(
        {
            "model": result["model"],
            "objective": result["objective"],
            "seed": result.get("rm_seed"),
            "benchmark": result["benchmark"],
            "section": "overall",
            "score": ov["score"] if whole else None,
            "lo": ov.get("lo") if whole else None,
            "hi": ov.get("hi") if whole else None,
            "source": source,
        }
    )
    return rows


def build_tables(
    eval_jsons: Sequence[str | Path],
    imported: pl.DataFrame | None = None,
    precedence: str = "imported",
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(rm_scores, rm_scores_all)`` from eval JSONs plus imported rows (seed means)."""
    return build_seed_tables(eval_jsons, imported, precedence)[:2]


def build_seed_tables(
    eval_jsons: Sequence[str | Path],
    imported: pl.DataFrame | None = None,
    precedence: str = "imported",
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """``(rm_scores, rm_scores_all, rm_scores_seeds)``: seed means, and the per-seed rows."""
    results = [read_json(p) for p in eval_jsons]
    seen: dict[tuple[Any, ...], str] = {}
    for p, r in zip(eval_jsons, results):
        key = (r["model"], r["objective"], r["benchmark"], r.get("rm_seed"))
        if key in seen:
            raise ValueError(f"{p} and {seen[key]} are the same RM (model, objective,"
                             f" benchmark, seed {key[3]}); keep one")
        seen[key] = str(p)
    primary = [row_from_eval(r) for r in results if r["benchmark"] == PRIMARY]
    trained = _frame(seed_mean_rows(primary)) if primary else _frame([])
    per_seed = [row for r in results for row in long_rows(r)]
    long = seed_mean_long(per_seed)
    if imported is not None and imported.height:
        have = set(zip(trained["model"].to_list(), trained["objective"].to_list()))
        clash = imported.filter(
            pl.struct("model", "objective").map_elements(
                lambda s: (s["model"], s["objective"]) in have, return_dtype=pl.Boolean
            )
        )
        if clash.height:
            if precedence == "error":
                raise ValueError(
                    f"{clash.height} imported row(s) are also trained:"
                    f" {', '.join(clash['model'].to_list()[:5])}; set eval.import_precedence"
                )
            if precedence == "trained":
                sys.stderr.write(
                    f"rmselect eval: dropping {clash.height} imported row(s) that were trained"
                    " (eval.import_precedence: trained)\n"
                )
                imported = imported.join(clash.select("model", "objective"), on=["model", "objective"], how="anti")
            else:
                trained = trained.join(clash.select("model", "objective"), on=["model", "objective"], how="anti")
                gone = set(zip(clash["model"].to_list(), clash["objective"].to_list()))
                long = [r for r in long if (r["model"], r["objective"]) not in gone]
                per_seed = [r for r in per_seed if (r["model"], r["objective"]) not in gone]
        for r in imported.iter_rows(named=True):
            for c in VALUE_COLS:
                long.append(
                    {
                        "model": r["model"],
                        "objective": r["objective"],
                        "benchmark": PRIMARY,
                        "section": "overall" if c == "score" else c,
                        "score": r[c],
                        "lo": r[f"{c}_lo"],
                        "hi": r[f"{c}_hi"],
                        "source": "imported",
                        "n_seeds": None,
                        "seed_sd": None,
                    }
                )
        table = pl.concat([trained, imported.select(TABLE_COLS)], how="vertical")
    else:
        table = trained
    table = table.sort(["model", "objective"])
    all_schema = {c: (pl.Float64 if c in ("score", "lo", "hi", "seed_sd") else
                      pl.Int64 if c == "n_seeds" else pl.Utf8) for c in ALL_COLS}
    long_df = pl.DataFrame(long, schema=all_schema).sort(["model", "objective", "benchmark", "section"])
    return table, long_df, _seed_frame(per_seed)


@dataclass(kw_only=True)
class TableArgs:
    """Collect eval JSONs (results/eval/{benchmark}/{objective}/{model}/seed{seed}.json) and
    imported RM results into results/tables/rm_scores.csv (primary benchmark, one row per model
    and objective, seed means), rm_scores_all.csv (long form) and rm_scores_seeds.csv (per-seed
    rows)."""

    evals: list[str] = opt("eval JSON files", default=[])
    import_csv: str | None = opt("imported results CSV (eval.import)", default=None)
    models: list[str] | None = opt("model names the import may use", default=None)
    precedence: str = opt("which row wins when a model has both", default="imported",
                          choices=PRECEDENCE)
    out: str = opt("rm_scores.csv")
    out_all: str = opt("rm_scores_all.csv")
    out_seeds: str | None = opt("rm_scores_seeds.csv (per-seed rows)", default=None)


def build_parser() -> argparse.ArgumentParser:
    return cli.build_parser(TableArgs, prog="rm_scores_table.py")


def main(argv: Sequence[str] | None = None) -> int:
    args = cli.parse(TableArgs, argv, prog="rm_scores_table.py")
    try:
        imported = read_import(args.import_csv, args.models) if args.import_csv else None
        table, long, seeds = build_seed_tables(args.evals, imported, args.precedence)
    except (ValueError, OSError, KeyError) as err:
        sys.stderr.write(f"rmselect eval: error: {err}\n")
        return 1
    dup = table.filter(pl.struct("model", "objective").is_duplicated())
    if dup.height:
        sys.stderr.write(f"rmselect eval: error: duplicate rows in rm_scores: {dup['model'].to_list()}\n")
        return 1
    write_table(args.out_all, long.with_columns(pl.col("score", "lo", "hi", "seed_sd").round(4)))
    write_table(args.out, table.with_columns(pl.col(VALUE_COLS + CI_COLS + SD_COLS).round(4)))
    if args.out_seeds:
        write_table(args.out_seeds, seeds.with_columns(pl.col("score", "lo", "hi").round(4)))
    sys.stderr.write(
        f"rmselect eval: rm_scores.csv: {table.height} row(s)"
        f" ({table.filter(pl.col('source') == 'imported').height} imported)\n"
    )
    return 0
