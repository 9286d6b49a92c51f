"""Importing published benchmark scores (e.g. Open LLM Leaderboard exports) as features.

Config (``benchmarks.published``)::

    published:
      path: data/published_scores.csv     # any CSV
      name_column: fullname               # the column naming the model
      columns: {"IFEval Raw": leaderboard_ifeval, "Average": openllm_v2}   # theirs -> ours
      name_map: {"meta-llama/Meta-Llama-3-8B-Instruct": Meta-Llama-3-8B-Instruct}  # optional

A published name is matched to a model of the effective model table, first hit wins:
``name_map`` -> exact model name -> exact hub id (``source``) -> case-insensitive name or hub id
-> case-insensitive hub-id basename (``org/Name`` -> ``Name``). A name matching several
models is *ambiguous* and not used. Every unmatched or ambiguous name, every duplicate row,
every model without a row and every missing / non-numeric value is reported (log and report
CSV); nothing is dropped silently and nothing is zero-filled.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

REPORT_COLUMNS = ("kind", "name", "model", "feature", "detail")


@dataclass
class Imported:
    """Values per model and feature, and the report rows."""

    values: dict[str, dict[str, float]] = field(default_factory=dict)
    report: list[dict[str, str]] = field(default_factory=list)

    def add(self, kind: str, name: str = "", model: str = "", feature: str = "", detail: str = "") -> None:
        self.report.append(
            {"kind": kind, "name": name, "model": model, "feature": feature, "detail": detail}
        )


def _basename(s: str) -> str:
    return s.rsplit("/", 1)[-1]


def match_name(
    name: str, models: Mapping[str, str], name_map: Mapping[str, str] | None = None
) -> tuple[str | None, str]:
    """Our model for a published name, and how it matched (or why not).

    ``models`` maps our model names to their ``source`` (hub id, path or toy spec).
    """
    name = name.strip()
    if name_map and name in name_map:
        target = name_map[name]
        if target not in models:
            return None, f"name_map points to unknown model '{target}'"
        return target, "name_map"
    if name in models:
        return name, "exact"
    hits = [m for m, s in models.items() if s == name]
    if len(hits) == 1:
        return hits[0], "hub_id"
    low = name.lower()
    tiers = [
        ("case_insensitive", lambda m, s: m.lower() == low or s.lower() == low),
        ("basename", lambda m, s: _basename(low) in (m.lower(), _basename(s).lower())),
    ]
    for how, pred in tiers:
        hits = [m for m, s in models.items() if pred(m, s)]
        if len(hits) == 1:
            return hits[0], how
        if len(hits) > 1:
            return None, f"ambiguous: matches {', '.join(sorted(hits))}"
    return None, "no model of that name"


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    t = str(text).strip().rstrip("%")
    if not t:
        return None
    try:
        v = float(t)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def import_published(
    path: str | Path,
    name_column: str,
    columns: Mapping[str, str],
    models: Mapping[str, str],
    name_map: Mapping[str, str] | None = None,
) -> Imported:
    """Read the CSV and match it to ``models``; see the module doc for the rules."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"benchmarks.published.path: {path} does not exist; fix the path or remove "
            "benchmarks.published"
        )
    out = Imported()
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = [c for c in [name_column, *columns] if c not in header]
        if missing:
            raise ValueError(
                f"{path}: column(s) {', '.join(repr(c) for c in missing)} not in the CSV "
                f"(benchmarks.published.name_column / columns); it has {header}"
            )
        seen: dict[str, str] = {}
        for i, row in enumerate(reader, start=2):
            name = (row.get(name_column) or "").strip()
            if not name:
                out.add("empty_name", "", "", "", f"row {i}")
                continue
            model, how = match_name(name, models, name_map)
            if model is None:
                kind = "ambiguous" if how.startswith("ambiguous") else "unmatched_name"
                out.add(kind, name, "", "", f"row {i}: {how}")
                continue
            if model in seen:
                out.add("duplicate", name, model, "", f"row {i}: model already matched by "
                        f"'{seen[model]}'; first row kept")
                continue
            seen[model] = name
            out.add("matched", name, model, "", how)
            vals: dict[str, float] = {}
            for theirs, ours in columns.items():
                v = _number(row.get(theirs))
                if v is None:
                    raw = (row.get(theirs) or "").strip()
                    out.add("missing_value", name, model, ours,
                            f"column '{theirs}' is {'empty' if not raw else repr(raw)}")
                else:
                    vals[ours] = v
            out.values[model] = vals
    for m in models:
        if m not in out.values:
            out.add("model_without_row", "", m, "", "no published row matched this model")
    return out


def summarise_report(imported: Imported) -> dict[str, int]:
    """Number of report rows per kind (for the log)."""
    counts: dict[str, int] = {}
    for r in imported.report:
        counts[r["kind"]] = counts.get(r["kind"], 0) + 1
    return counts
