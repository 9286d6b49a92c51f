"""What every RM benchmark shares: the :class:`Benchmark` protocol and the generic loader.

A benchmark module (``rewardbench``, ``rewardbench2``, ``rmbench``) subclasses
:class:`Benchmark` and fills in only what its format and its scoring rules make different;
the loading and validation (:mod:`.loading`) and the bootstrap machinery (here and in
:mod:`rmselect.eval.metrics`) are written once and asks the benchmark object, never the benchmark's name.

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

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np
import polars as pl

from rmselect.datasets_io import DatasetError

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


# ----------------------------------------------------------------- data-set entries


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
