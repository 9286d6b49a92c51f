"""What every RM benchmark shares: the :class:`Benchmark` protocol and the generic loader.

A benchmark module (``rewardbench``, ``rewardbench2``, ``rmbench``) subclasses
:class:`Benchmark` and fills in only what its format and its scoring rules make different;
the loading, validation and bootstrap machinery here and in :mod:`rmselect.eval.metrics` is
written once and asks the benchmark object, never the benchmark's name.

Every benchmark loads into the same two frames (:class:`BenchmarkData`):

``examples``
    one row per example (a prompt with its candidate responses): ``example`` (0-based row
    number), ``id`` (text), ``subset``, ``n_chosen``, ``n_rejected``, plus the columns a
    benchmark adds (:meth:`Benchmark.example_fields`; RewardBench 2: ``tie_kind``,
    ``tie_prompt``).
``items``
    one row per text the RM must score: ``item`` (0-based), ``example``, ``role``
    (``chosen`` | ``rejected``), ``slot`` (position in the chosen / rejected list),
    ``prompt``, ``response``. Chosen and rejected texts share one stream, so the scorer can
    sort all of them by length together.

Subset checks: a subset that the benchmark does not define is an error naming it (unless
``ignore_unknown_subsets``: then its rows are dropped and listed as ignored); a defined
subset with no rows is a warning and is recorded as missing -- the sections are scored with
what is there.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np
import polars as pl

from rmselect.datasets_io import DatasetError, load_frame

#: One subset's statistics: ``n`` and stat name -> float (a point estimate) or an
#: ``(n_boot,)`` array (bootstrap replicates).
Stat = dict[str, Any]
#: Keys of a data-set entry (the rest of a benchmark's config entry are options).
DATASET_KEYS = ("path", "hub", "name", "split", "data_files", "revision")


class BenchmarkDataError(DatasetError):
    """Benchmark data that cannot be scored as given."""


@dataclass
class BenchmarkData:
    """A benchmark loaded and validated, ready to score."""

    benchmark: str
    examples: pl.DataFrame
    items: pl.DataFrame
    source: str
    present_subsets: list[str]
    missing_subsets: list[str] = field(default_factory=list)
    ignored_subsets: dict[str, int] = field(default_factory=dict)
    include_prior_sets: bool = False

    @property
    def n_examples(self) -> int:
        return self.examples.height


@dataclass(frozen=True)
class ExampleRewards:
    """Each example's rewards in slot order (``chosen[i]``, ``rejected[i]``: example ``i``'s),
    with the examples frame and the ``base`` columns (``id, subset``) every frame starts with."""

    base: dict[str, list[Any]]
    examples: pl.DataFrame
    chosen: list[list[float]]
    rejected: list[list[float]]


class Benchmark(ABC):
    """One RM benchmark: its data layout, its sections and how it turns rewards into scores.

    Subclasses set the class attributes, implement the abstract hooks and override the
    others where the default (the plain case: linear per-example statistics, weighted
    section means, overall = mean of the sections) does not fit.
    """

    #: Registry key, config key (``eval.benchmarks.<name>``) and results folder name.
    name: ClassVar[str]
    #: Human-readable name.
    title: ClassVar[str]
    #: The hub data set the benchmark is published as, and the split a ``hub`` entry
    #: without ``split`` reads.
    hub: ClassVar[str]
    hub_split: ClassVar[str]
    #: Per-example statistics averaged per subset (columns of :meth:`per_example_frame`).
    stat_columns: ClassVar[tuple[str, ...]] = ("correct",)
    #: Whether a row holds a list of texts per role (else one text per role).
    list_responses: ClassVar[bool] = True
    #: Sections outside the main ones: scored, but not needed for a complete overall score
    #: (RewardBench v1's optional prior sets).
    extra_sections: ClassVar[tuple[str, ...]] = ()

    # ------------------------------------------------------------- definitions

    @abstractmethod
    def sections(self, include_prior_sets: bool = False) -> dict[str, list[str]]:
        """Section key -> subset names, in the benchmark's fixed order (a fresh copy)."""

    def known_subsets(self, include_prior_sets: bool = False) -> list[str]:
        """Every subset name, in the benchmark's fixed order."""
        return [s for subs in self.sections(include_prior_sets).values() for s in subs]

    def main_sections(self, include_prior_sets: bool = False) -> list[str]:
        """Sections the overall score needs (complete = all of them present)."""
        return [k for k in self.sections(include_prior_sets) if k not in self.extra_sections]

    # ------------------------------------------------------------- loading and layout

    @property
    def required_columns(self) -> list[str]:
        """Columns a raw frame must have (after :meth:`normalise`)."""
        return ["prompt", "chosen", "rejected", "subset", "id"]

    def normalise(self, df: pl.DataFrame) -> pl.DataFrame:
        """The raw frame in the common column names (hub layouts differ)."""
        return df

    def missing_column_hint(self) -> str:
        """Appended to a missing-column error (e.g. a known alternative name)."""
        return ""

    def unknown_subset_hint(self, unknown: list[str]) -> str:
        """Appended to an unknown-subset error."""
        return ""

    def add_rows(self, df: pl.DataFrame, root: str | Path, include_prior_sets: bool,
                 prior_sets: Mapping[str, Any] | None) -> pl.DataFrame:
        """Extra rows loaded beside the main data set (RewardBench v1's prior sets)."""
        return df

    def example_fields(
        self, row: Mapping[str, Any], chosen: list[str], rejected: list[str], where: str
    ) -> dict[str, Any]:
        """Benchmark-specific ``examples`` columns of one row; raises on a malformed row."""
        return {}

    # ------------------------------------------------------------- scoring

    @abstractmethod
    def per_example_frame(self, rw: ExampleRewards) -> pl.DataFrame:
        """Per-example frame from each example's rewards (``chosen[i]``, ``rejected[i]``:
        example ``i``'s rewards in slot order): the ``base`` columns ``id, subset``, then
        ``score_chosen, score_rejected, correct`` and :attr:`stat_columns`."""

    def subset_stats(self, rows: pl.DataFrame) -> Stat:
        """Statistics of one subset's rows: ``n`` and the per-stat means (fractions)."""
        out: Stat = {"n": rows.height}
        for col in self.stat_columns:
            out[col] = float(rows[col].mean())  # type: ignore[arg-type]
        return out

    def bootstrap_subset_stats(self, rows: pl.DataFrame, n_boot: int, rng: np.random.Generator) -> Stat:
        """``n_boot`` resampled versions of :meth:`subset_stats` (arrays ``(n_boot,)``)."""
        n = rows.height
        idx = rng.integers(0, n, size=(n_boot, n))
        out: Stat = {"n": n}
        for col in self.stat_columns:
            out[col] = rows[col].to_numpy().astype(np.float64)[idx].mean(axis=1)
        return out

    @abstractmethod
    def subset_weights(self, present: Mapping[str, int], weights: str) -> dict[str, float]:
        """The weight of each present subset (name -> rows) inside its section; ``weights``
        is the (already checked) mode, ``official`` or ``observed``."""

    def aggregate(
        self, stats: Mapping[str, Stat], weights: Mapping[str, float], include_prior_sets: bool = False
    ) -> dict[str, Any]:
        """Section and overall scores (0-100) from subset stats (floats or bootstrap arrays).

        Default: a section is the weighted mean of its present subsets' ``correct``, the
        overall the plain mean of the main sections present (:meth:`overall`).
        """
        secs = self.sections(include_prior_sets)
        out: dict[str, Any] = {}
        for key, subs in secs.items():
            have = [s for s in subs if s in stats]
            if not have:
                out[key] = None
                continue
            tw = sum(weights[s] for s in have)
            out[key] = 100 * sum(weights[s] * stats[s]["correct"] for s in have) / tw
        return {"sections": out, "overall": self.overall(out, include_prior_sets)}

    def overall(self, sections: Mapping[str, Any], include_prior_sets: bool) -> Any:
        """The overall score from the section scores (None when no main section is there)."""
        main = [sections[k] for k in self.main_sections(include_prior_sets) if sections[k] is not None]
        if not main:
            return None
        return sum(main) / float(len(main))

    def subset_extra(self, st: Stat) -> dict[str, float]:
        """Extra per-subset scores (0-100) for the result JSON."""
        return {}

    def section_note(self, key: str) -> str | None:
        """A note on a section of the result JSON (None: no note)."""
        return None


# ----------------------------------------------------------------- generic loading


def describe_entry(entry: Mapping[str, Any]) -> str:
    """A short human-readable name of a data-set entry (for messages and provenance)."""
    if "path" in entry:
        return str(entry["path"])
    parts = [str(entry.get("hub"))]
    for key in ("name", "split", "data_files", "revision"):
        if entry.get(key) is not None:
            parts.append(f"{key}={entry[key]}")
    return " ".join(parts)


def dataset_entry(entry: Mapping[str, Any], bench: Benchmark) -> dict[str, Any]:
    """The data-set part of a benchmark config entry (options removed, hub split defaulted)."""
    out = {k: entry[k] for k in DATASET_KEYS if k in entry and entry[k] is not None}
    if "hub" in out and "split" not in out:
        out["split"] = bench.hub_split
    return out


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
        chosen = _as_list(r["chosen"], bench.list_responses, where, "chosen")
        rejected = _as_list(r["rejected"], bench.list_responses, where, "rejected")
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
