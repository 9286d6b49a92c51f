"""Benchmark definitions and data loading for RM evaluation.

Three benchmark formats are supported; each loads into the same two frames:

``examples``
    one row per example (a prompt with its candidate responses): ``example`` (0-based row
    number), ``id`` (text), ``subset``, ``n_chosen``, ``n_rejected``; RewardBench 2 adds
    ``tie_kind`` / ``tie_prompt`` for its Ties subset.
``items``
    one row per text the RM must score: ``item`` (0-based), ``example``, ``role``
    (``chosen`` | ``rejected``), ``slot`` (position in the chosen / rejected list),
    ``prompt``, ``response``. Chosen and rejected texts share one stream, so the scorer can
    sort all of them by length together.

Formats (column names as on the hub):

- ``rewardbench`` (``allenai/reward-bench``, split ``filtered``): ``prompt, chosen, rejected,
  subset, id``, one chosen and one rejected string per row; 23 subsets in four sections.
- ``rewardbench2`` (``allenai/reward-bench-2``, split ``test``): ``id, prompt, chosen``
  (list), ``rejected`` (list), ``subset``; every subset is a section. Non-Ties rows have one
  chosen and (usually) three rejected responses; Ties rows have ids ``ref:<n>`` (one correct
  answer) or ``tied:<n>`` (several correct answers) and any number of either.
- ``rmbench`` (``THU-KEG/RM-Bench``): ``id, prompt, chosen, rejected`` (lists of three
  responses: concise, detailed, detailed+markdown) and ``domain`` (or ``subset``) in
  ``chat, code, math, safety-refuse, safety-response``.

Subset checks: a subset that the benchmark does not define is an error naming it (unless
``ignore_unknown_subsets``: then its rows are dropped and listed as ignored); a defined
subset with no rows is a warning and is recorded as missing — the sections are scored with
what is there.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import polars as pl

from rmselect.conventions import REWARDBENCH_SECTIONS
from rmselect.datasets_io import DatasetError, load_frame

BENCHMARKS: tuple[str, ...] = ("rewardbench", "rewardbench2", "rmbench")
#: The paper's benchmark: the one ``results/tables/rm_scores.csv`` reports.
PRIMARY = "rewardbench"

# ----------------------------------------------------------------- RewardBench v1
#: Sections and their subsets (RewardBench's SUBSET_MAPPING), section keys in snake case:
#: defined once in rmselect.conventions, shared with the toy zoo's RewardBench set.
RB1_SECTIONS = REWARDBENCH_SECTIONS
#: The older leaderboard's "Prior Sets" section (allenai/preference-test-sets), off by default.
RB1_PRIOR_SECTION = "prior_sets"
RB1_PRIOR_SUBSETS: list[str] = ["anthropic_helpful", "anthropic_hhh", "shp", "summarize"]
#: Rows per subset in ``allenai/reward-bench`` (split ``filtered``, 2,985 rows).
RB1_ROWS: dict[str, int] = {
    "alpacaeval-easy": 100,
    "alpacaeval-length": 95,
    "alpacaeval-hard": 95,
    "mt-bench-easy": 28,
    "mt-bench-med": 40,
    "mt-bench-hard": 37,
    "llmbar-natural": 100,
    "llmbar-adver-neighbor": 134,
    "llmbar-adver-GPTInst": 92,
    "llmbar-adver-GPTOut": 47,
    "llmbar-adver-manual": 46,
    "refusals-dangerous": 100,
    "refusals-offensive": 100,
    "xstest-should-refuse": 154,
    "xstest-should-respond": 250,
    "donotanswer": 136,
    "math-prm": 447,
    "hep-cpp": 164,
    "hep-go": 164,
    "hep-java": 164,
    "hep-js": 164,
    "hep-python": 164,
    "hep-rust": 164,
}
#: RewardBench's section weights (its EXAMPLE_COUNTS): the row counts, except math-prm,
#: which is weighted as 984 = 6 x 164 so that math and code weigh the same in Reasoning.
RB1_OFFICIAL_WEIGHTS: dict[str, float] = {**RB1_ROWS, "math-prm": 984.0}
MATH_SUBSET = "math-prm"
CODE_PREFIX = "hep-"

# ----------------------------------------------------------------- RewardBench 2
RB2_SUBSETS: list[str] = ["Factuality", "Precise IF", "Math", "Safety", "Focus", "Ties"]
RB2_TIES = "Ties"
_TIE_ID = re.compile(r"^(ref|tied):(\d+)$")

# ----------------------------------------------------------------- RM-Bench
RMB_DOMAINS: dict[str, list[str]] = {
    "chat": ["chat"],
    "math": ["math"],
    "code": ["code"],
    "safety": ["safety-refuse", "safety-response"],
}
#: Response styles, in the order of the chosen / rejected lists (rows and columns of the
#: 3 x 3 comparison matrix).
RMB_STYLES: tuple[str, str, str] = ("concise", "detailed", "markdown")


def snake(name: str) -> str:
    """Section key of a RewardBench 2 subset name: ``Precise IF`` -> ``precise_if``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def sections_of(benchmark: str, include_prior_sets: bool = False) -> dict[str, list[str]]:
    """Section key -> subset names of a benchmark."""
    if benchmark == "rewardbench":
        out = {k: list(v) for k, v in RB1_SECTIONS.items()}
        if include_prior_sets:
            out[RB1_PRIOR_SECTION] = list(RB1_PRIOR_SUBSETS)
        return out
    if benchmark == "rewardbench2":
        return {snake(s): [s] for s in RB2_SUBSETS}
    if benchmark == "rmbench":
        return {k: list(v) for k, v in RMB_DOMAINS.items()}
    raise ValueError(f"unknown benchmark {benchmark!r}; use one of {', '.join(BENCHMARKS)}")


def known_subsets(benchmark: str, include_prior_sets: bool = False) -> list[str]:
    return [s for subs in sections_of(benchmark, include_prior_sets).values() for s in subs]


#: Hub defaults, used when a benchmark entry gives ``hub`` without a ``split``.
HUB_DEFAULT_SPLIT: dict[str, str] = {
    "rewardbench": "filtered",
    "rewardbench2": "test",
    "rmbench": "train",
}


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


def describe_entry(entry: Mapping[str, Any]) -> str:
    """A short human-readable name of a data-set entry (for messages and provenance)."""
    if "path" in entry:
        return str(entry["path"])
    parts = [str(entry.get("hub"))]
    for key in ("name", "split", "data_files", "revision"):
        if entry.get(key) is not None:
            parts.append(f"{key}={entry[key]}")
    return " ".join(parts)


def _dataset_entry(entry: Mapping[str, Any], benchmark: str) -> dict[str, Any]:
    """The data-set part of a benchmark config entry (options removed, hub split defaulted)."""
    keys = ("path", "hub", "name", "split", "data_files", "revision")
    out = {k: entry[k] for k in keys if k in entry and entry[k] is not None}
    if "hub" in out and "split" not in out:
        out["split"] = HUB_DEFAULT_SPLIT[benchmark]
    return out


def load_benchmark(
    benchmark: str,
    entry: Mapping[str, Any],
    root: str | Path = ".",
    ignore_unknown_subsets: bool = False,
    include_prior_sets: bool = False,
    prior_sets: Mapping[str, Any] | None = None,
    limit_per_subset: int | None = None,
) -> BenchmarkData:
    """Load a benchmark from a config entry (``path`` or ``hub``) and validate it.

    ``prior_sets`` is the data-set entry of the v1 "Prior Sets" section (used only with
    ``include_prior_sets``); its rows need a ``subset`` column, or, for a hub data set
    without one (``allenai/preference-test-sets``), one split per subset name.
    """
    data_entry = _dataset_entry(entry, benchmark)
    source = describe_entry(data_entry)
    try:
        df = load_frame(data_entry, root)
    except DatasetError:
        raise
    except Exception as err:  # datasets raises many types; name the entry
        raise BenchmarkDataError(
            f"{benchmark}: cannot load {source}: {err}. For a hub data set, populate the"
            " datasets cache first (HF_DATASETS_OFFLINE=1 runs read only the cache)."
        ) from err
    if benchmark == "rewardbench" and include_prior_sets:
        if not prior_sets:
            raise BenchmarkDataError(
                "rewardbench: include_prior_sets is on but no 'prior_sets' data set is"
                " configured; set eval.benchmarks.rewardbench.prior_sets {path|hub}"
            )
        df = pl.concat([df, _load_prior_sets(prior_sets, root)], how="diagonal_relaxed")
    return prepare(
        benchmark,
        df,
        source,
        ignore_unknown_subsets=ignore_unknown_subsets,
        include_prior_sets=include_prior_sets,
        limit_per_subset=limit_per_subset,
    )


def _load_prior_sets(entry: Mapping[str, Any], root: str | Path) -> pl.DataFrame:
    data_entry = _dataset_entry(entry, "rewardbench")
    if "hub" in entry and not entry.get("split"):
        frames = []
        for name in RB1_PRIOR_SUBSETS:
            part = load_frame({**data_entry, "split": name}, root)
            frames.append(part.with_columns(pl.lit(name).alias("subset")))
        df = pl.concat(frames, how="diagonal_relaxed")
    else:
        df = load_frame(data_entry, root)
    if "id" not in df.columns:
        df = df.with_row_index("id").with_columns(pl.format("prior-{}", pl.col("id")))
    return df.select([c for c in ("prompt", "chosen", "rejected", "subset", "id") if c in df.columns])


def prepare(
    benchmark: str,
    df: pl.DataFrame,
    source: str,
    ignore_unknown_subsets: bool = False,
    include_prior_sets: bool = False,
    limit_per_subset: int | None = None,
) -> BenchmarkData:
    """Validate a raw benchmark frame and build the ``examples`` / ``items`` frames."""
    what = f"{benchmark} data {source}"
    if benchmark == "rmbench" and "subset" not in df.columns and "domain" in df.columns:
        df = df.rename({"domain": "subset"})
    required = ["prompt", "chosen", "rejected", "subset"]
    if benchmark != "rewardbench":
        required.append("id")
    missing_cols = [c for c in required if c not in df.columns]
    if missing_cols:
        hint = " (RM-Bench may name it 'domain')" if benchmark == "rmbench" else ""
        raise BenchmarkDataError(
            f"{what}: missing column(s) {', '.join(missing_cols)}{hint};"
            f" found {', '.join(df.columns)}"
        )
    if df.height == 0:
        raise BenchmarkDataError(f"{what}: no rows")
    if "id" not in df.columns:
        df = df.with_row_index("id")
    df = df.with_columns(pl.col("id").cast(pl.Utf8), pl.col("subset").cast(pl.Utf8))

    known = known_subsets(benchmark, include_prior_sets)
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
            hint = ""
            if benchmark == "rewardbench" and set(unknown) & set(RB1_PRIOR_SUBSETS):
                hint = " (prior-sets subsets need include_prior_sets: true)"
            raise BenchmarkDataError(
                f"{what}: unknown subset(s) {listed}{hint}; the {benchmark} subsets are"
                f" {', '.join(known)}. Fix the data, or set"
                f" eval.benchmarks.{benchmark}.ignore_unknown_subsets: true to drop them."
            )
        ignored = counts
        _warn(f"{what}: ignoring unknown subset(s) {', '.join(unknown)}")
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
        _warn(
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
        chosen = _as_list(r["chosen"], benchmark, where, "chosen")
        rejected = _as_list(r["rejected"], benchmark, where, "rejected")
        ex: dict[str, Any] = {
            "example": i,
            "id": r["id"],
            "subset": r["subset"],
            "n_chosen": len(chosen),
            "n_rejected": len(rejected),
        }
        if benchmark == "rewardbench2":
            ex["tie_kind"], ex["tie_prompt"] = None, None
            if r["subset"] == RB2_TIES:
                m = _TIE_ID.match(r["id"])
                if not m:
                    raise BenchmarkDataError(
                        f"{where}: field 'id': Ties ids must look like 'ref:<n>' or"
                        " 'tied:<n>' (RewardBench 2 format)"
                    )
                ex["tie_kind"], ex["tie_prompt"] = m.group(1), int(m.group(2))
            elif len(chosen) != 1:
                raise BenchmarkDataError(
                    f"{where}: field 'chosen' has {len(chosen)} responses; rows outside Ties"
                    " need exactly one (best-of-N against the rejected ones)"
                )
        if benchmark == "rmbench" and (len(chosen) != 3 or len(rejected) != 3):
            raise BenchmarkDataError(
                f"{where}: fields 'chosen'/'rejected' need 3 responses each"
                f" ({', '.join(RMB_STYLES)}); got {len(chosen)} and {len(rejected)}"
            )
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
        benchmark=benchmark,
        examples=examples,
        items=items_df.with_columns(pl.col("item").cast(pl.Int64)),
        source=source,
        present_subsets=present,
        missing_subsets=missing,
        ignored_subsets=ignored,
        include_prior_sets=include_prior_sets,
    )


def _as_list(value: Any, benchmark: str, where: str, col: str) -> list[str]:
    if benchmark == "rewardbench":
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


def _warn(msg: str) -> None:
    sys.stderr.write(f"rmselect eval: warning: {msg}\n")
