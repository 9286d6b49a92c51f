"""The generic loader and validator every RM benchmark goes through.

:func:`load` reads a benchmark's config entry (``path`` or ``hub``), lets the benchmark add
its extra rows, and :func:`prepare` validates the frame (columns, subsets, ids, response
types) and builds the ``examples`` / ``items`` frames of
:class:`~rmselect.eval.benchmarks.base.BenchmarkData`. Nothing here compares benchmark
names: what differs is asked of the :class:`~rmselect.eval.benchmarks.base.Benchmark`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Mapping

import polars as pl

from rmselect.datasets_io import DatasetError, load_frame
from rmselect.eval.benchmarks.base import (
    Benchmark,
    BenchmarkData,
    BenchmarkDataError,
    dataset_entry,
    describe_entry,
)


def resolve(bench: Benchmark | str) -> Benchmark:
    """``bench`` itself, or the registered benchmark of that name (as configs give it)."""
    if isinstance(bench, Benchmark):
        return bench
    from rmselect.eval.benchmarks import get_benchmark  # the registry imports this module

    return get_benchmark(bench)


def load(
    bench: Benchmark | str,
    entry: Mapping[str, Any],
    root: str | Path = ".",
    ignore_unknown_subsets: bool = False,
    include_prior_sets: bool = False,
    prior_sets: Mapping[str, Any] | None = None,
    limit_per_subset: int | None = None,
) -> BenchmarkData:
    """Load ``bench`` from a config entry (``path`` or ``hub``) and validate it.

    ``prior_sets`` is the data-set entry of the v1 "Prior Sets" section (used only with
    ``include_prior_sets``); its rows need a ``subset`` column, or, for a hub data set
    without one (``allenai/preference-test-sets``), one split per subset name.
    """
    bench = resolve(bench)
    data_entry = dataset_entry(entry, bench)
    source = describe_entry(data_entry)
    try:
        df = load_frame(data_entry, root)
    except DatasetError:
        raise
    except Exception as err:  # datasets raises many types; name the entry
        raise BenchmarkDataError(
            f"{bench.name}: cannot load {source}: {err}. For a hub data set, populate the"
            " datasets cache first (HF_DATASETS_OFFLINE=1 runs read only the cache)."
        ) from err
    df = bench.add_rows(df, root, include_prior_sets, prior_sets)
    return prepare(
        bench,
        df,
        source,
        ignore_unknown_subsets=ignore_unknown_subsets,
        include_prior_sets=include_prior_sets,
        limit_per_subset=limit_per_subset,
    )


def prepare(
    bench: Benchmark | str,
    df: pl.DataFrame,
    source: str,
    ignore_unknown_subsets: bool = False,
    include_prior_sets: bool = False,
    limit_per_subset: int | None = None,
) -> BenchmarkData:
    """Validate a raw frame of ``bench`` and build the ``examples`` / ``items`` frames."""
    bench = resolve(bench)
    name = bench.name
    what = f"{name} data {source}"
    df = bench.normalise(df)
    missing_cols = [c for c in bench.required_columns if c not in df.columns]
    if missing_cols:
        raise BenchmarkDataError(
            f"{what}: missing column(s) {', '.join(missing_cols)}{bench.missing_column_hint()};"
            f" found {', '.join(df.columns)}"
        )
    if df.height == 0:
        raise BenchmarkDataError(f"{what}: no rows")
    if "id" not in df.columns:
        df = df.with_row_index("id")
    df = df.with_columns(pl.col("id").cast(pl.Utf8), pl.col("subset").cast(pl.Utf8))

    known = bench.known_subsets(include_prior_sets)
    null_subset = df.filter(pl.col("subset").is_null()).height
    if null_subset:
        raise BenchmarkDataError(f"{what}: {null_subset} row(s) have an empty 'subset'")
    present_all = df["subset"].unique(maintain_order=True).to_list()
    unknown = [s for s in present_all if s not in known]
    ignored: dict[str, int] = {}
    if unknown:
        counts = {s: df.filter(pl.col("subset") == s).height for s in unknown}
        if not ignore_unknown_subsets:
            listed = ", ".join(f"{s!r} ({n} rows)" for s, n in counts.items())
            raise BenchmarkDataError(
                f"{what}: unknown subset(s) {listed}{bench.unknown_subset_hint(unknown)}; the"
                f" {name} subsets are {', '.join(known)}. Fix the data, or set"
                f" eval.benchmarks.{name}.ignore_unknown_subsets: true to drop them."
            )
        ignored = counts
        warn(f"{what}: ignoring unknown subset(s) {', '.join(unknown)}")
        df = df.filter(~pl.col("subset").is_in(unknown))
        if df.height == 0:
            raise BenchmarkDataError(f"{what}: no rows left after dropping unknown subsets")
    dup = df.filter(pl.col("id").is_duplicated())["id"].unique().sort().to_list()
    if dup:
        raise BenchmarkDataError(
            f"{what}: duplicate id(s) {', '.join(map(str, dup[:5]))}"
            f"{' ...' if len(dup) > 5 else ''}; ids must be unique"
        )
    if limit_per_subset:
        df = df.filter(pl.int_range(pl.len()).over("subset") < limit_per_subset)

    present = [s for s in known if s in set(df["subset"].to_list())]
    missing = [s for s in known if s not in present]
    if missing:
        warn(
            f"{what}: subset(s) with no rows: {', '.join(missing)}; sections are scored with"
            " the subsets present and the missing ones are recorded in the output"
        )

    rows = df.select("id", "subset", "prompt", "chosen", "rejected").to_dicts()
    ex_rows: list[dict[str, Any]] = []
    items: dict[str, list[Any]] = {k: [] for k in ("example", "role", "slot", "prompt", "response")}
    for i, r in enumerate(rows):
        where = f"{what}: row {i + 1} (id {r['id']}, subset {r['subset']!r})"
        prompt = r["prompt"]
        if not isinstance(prompt, str):
            raise BenchmarkDataError(f"{where}: field 'prompt' must be text, got {prompt!r:.60}")
        if not prompt.strip():
            raise BenchmarkDataError(f"{where}: field 'prompt' is empty; fix or remove the row")
        chosen = _as_list(r["chosen"], bench.list_responses, where, "chosen")
        rejected = _as_list(r["rejected"], bench.list_responses, where, "rejected")
        for col, texts in (("chosen", chosen), ("rejected", rejected)):
            if any(not t.strip() for t in texts):
                raise BenchmarkDataError(
                    f"{where}: field '{col}' holds an empty response; fix or remove the row")
        ex: dict[str, Any] = {
            "example": i,
            "id": r["id"],
            "subset": r["subset"],
            "n_chosen": len(chosen),
            "n_rejected": len(rejected),
            **bench.example_fields(r, chosen, rejected, where),
        }
        ex_rows.append(ex)
        for role, texts in (("chosen", chosen), ("rejected", rejected)):
            for slot, text in enumerate(texts):
                items["example"].append(i)
                items["role"].append(role)
                items["slot"].append(slot)
                items["prompt"].append(prompt)
                items["response"].append(text)
    examples = pl.DataFrame(ex_rows, infer_schema_length=None)
    items_df = pl.DataFrame(
        items,
        schema={
            "example": pl.Int64,
            "role": pl.Utf8,
            "slot": pl.Int64,
            "prompt": pl.Utf8,
            "response": pl.Utf8,
        },
    ).with_row_index("item")
    return BenchmarkData(
        benchmark=name,
        examples=examples,
        items=items_df.with_columns(pl.col("item").cast(pl.Int64)),
        source=source,
        present_subsets=present,
        missing_subsets=missing,
        ignored_subsets=ignored,
        include_prior_sets=include_prior_sets,
    )


def _as_list(value: Any, list_responses: bool, where: str, col: str) -> list[str]:
    """One role's texts of a row: a single text, or a non-empty list of texts."""
    if not list_responses:
        if not isinstance(value, str):
            raise BenchmarkDataError(f"{where}: field '{col}' must be text, got {value!r:.60}")
        return [value]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise BenchmarkDataError(f"{where}: field '{col}' must be a non-empty list of texts")
    if not all(isinstance(v, str) for v in value):
        raise BenchmarkDataError(f"{where}: field '{col}' holds a non-text entry")
    return list(value)


def warn(msg: str) -> None:
    """A warning line on stderr, in the eval stage's format."""
    sys.stderr.write(f"rmselect eval: warning: {msg}\n")
