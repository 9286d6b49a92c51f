"""The lineage study (PAPER.md §5, Table 1): RM score change along post-training lineages.

A *lineage* is the set of models descending from one root model of the effective model table
(a model without a parent, normally a ``base`` model), through the ``parent`` links; only
roots with at least one descendant form a lineage. For every model of a lineage, every
(objective, benchmark) row of ``results/tables/rm_scores.csv`` and every section
(``chat, chat_hard, safety, reasoning, score``)::

    delta_points       = score(model) - score(root)
    delta_relative_pct = 100 · (score(model) - score(root)) / score(root)

(empty when the root has no score for that objective/benchmark, or a zero score).
Output ``results/analysis/posttraining.csv``: ``lineage, model, parent, stage, depth,
objective, benchmark, section, score, root_score, delta_points, delta_relative_pct``; the
root itself appears with delta 0. Models without RM scores are left out (and listed on stderr).
The figure (``results/figures/posttraining.png/.pdf``) shows the relative change per section
for every post-trained model, one panel per (lineage, objective).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import polars as pl

from rmselect import cli
from rmselect.cli import opt
from rmselect.conventions import REWARDBENCH_SECTIONS

#: The RewardBench section columns of rm_scores.csv, then its overall ``score``.
SECTIONS = (*REWARDBENCH_SECTIONS, "score")
SECTION_LABELS = {"chat": "Chat", "chat_hard": "Chat Hard", "safety": "Safety",
                  "reasoning": "Reasoning", "score": "Overall"}
COLUMNS = ["lineage", "model", "parent", "stage", "depth", "objective", "benchmark", "section",
           "score", "root_score", "delta_points", "delta_relative_pct"]


class LineageError(ValueError):
    """A model table whose parent links cannot form lineages (unknown parent, cycle)."""


def lineages(models: Mapping[str, Mapping[str, Any]]) -> dict[str, list[tuple[str, int]]]:
    """``{root: [(model, depth), ...]}`` (root first, then depth-first in table order).

    ``models`` maps a name to ``{"stage": ..., "parent": ...}``. Raises
    :class:`LineageError` for an unknown parent or a cycle.
    """
    for name, m in models.items():
        p = m.get("parent")
        if p and p not in models:
            raise LineageError(f"model '{name}': field 'parent': unknown model '{p}'")
    for name in models:
        seen, cur = [name], name
        while models[cur].get("parent"):
            cur = models[cur]["parent"]
            if cur in seen:
                raise LineageError("lineage cycle through field 'parent': "
                                   + " -> ".join(seen + [cur]))
            seen.append(cur)
    children: dict[str, list[str]] = {n: [] for n in models}
    for name, m in models.items():
        if m.get("parent"):
            children[m["parent"]].append(name)
    out: dict[str, list[tuple[str, int]]] = {}
    for name, m in models.items():
        if m.get("parent") or not children[name]:
            continue
        order: list[tuple[str, int]] = []
        stack = [(name, 0)]
        while stack:
            n, d = stack.pop()
            order.append((n, d))
            stack.extend((c, d + 1) for c in reversed(children[n]))
        out[name] = order
    return out


def lineage_table(
    rm_scores: pl.DataFrame, models: Mapping[str, Mapping[str, Any]]
) -> tuple[pl.DataFrame, list[str]]:
    """The long table (module docstring) and the lineage models that have no RM scores."""
    need = ["model", "objective", "benchmark", *SECTIONS]
    missing = [c for c in need if c not in rm_scores.columns]
    if missing:
        raise ValueError(f"rm_scores.csv: missing column(s) {', '.join(missing)}; "
                         f"found {', '.join(rm_scores.columns)}")
    scores = {
        (r["model"], r["objective"], r["benchmark"]): r
        for r in rm_scores.select(need).iter_rows(named=True)
    }
    keys = sorted({(o, b) for _, o, b in scores}, key=str)
    rows: list[dict[str, Any]] = []
    unscored: list[str] = []
    for root, members in lineages(models).items():
        for name, depth in members:
            if not any((name, o, b) in scores for o, b in keys):
                unscored.append(name)
                continue
            for o, b in keys:
                r = scores.get((name, o, b))
                if r is None:
                    continue
                base = scores.get((root, o, b))
                for sec in SECTIONS:
                    val = _num(r[sec])
                    ref = _num(base[sec]) if base else None
                    dp = val - ref if val is not None and ref is not None else None
                    rel = 100.0 * dp / ref if dp is not None and ref else None
                    rows.append({
                        "lineage": root, "model": name, "parent": models[name].get("parent") or "",
                        "stage": models[name].get("stage", ""), "depth": depth, "objective": o,
                        "benchmark": b, "section": sec, "score": val, "root_score": ref,
                        "delta_points": dp, "delta_relative_pct": rel,
                    })
    schema = {"lineage": pl.String, "model": pl.String, "parent": pl.String, "stage": pl.String,
              "depth": pl.Int64, "objective": pl.String, "benchmark": pl.String,
              "section": pl.String, "score": pl.Float64, "root_score": pl.Float64,
              "delta_points": pl.Float64, "delta_relative_pct": pl.Float64}
    return pl.DataFrame(rows, schema=schema), unscored


def _num(v: Any) -> float | None:
    if v is None or v == "":
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def plot_lineages(table: pl.DataFrame, stem: str) -> None:
    """Per (lineage, objective): grouped bars of relative change per section, one per model."""
    from rmselect.plotting import PALETTE, figure, save

    panels = table.select("lineage", "objective", "benchmark").unique(maintain_order=True).rows()
    n = max(1, len(panels))
    ncols = min(2, n)
    nrows = -(-n // ncols)
    fig, axes = figure("double", height=2.3 * nrows + 0.4, nrows=nrows, ncols=ncols, squeeze=False)
    for k, (lin, obj, bench) in enumerate(panels):
        ax = axes[k // ncols][k % ncols]
        sub = table.filter((pl.col("lineage") == lin) & (pl.col("objective") == obj)
                           & (pl.col("benchmark") == bench) & (pl.col("depth") > 0))
        kids = sub.select("model", "stage").unique(maintain_order=True).rows()
        width = 0.8 / max(1, len(kids))
        for j, (model, stage) in enumerate(kids):
            vals = []
            for sec in SECTIONS:
                v = sub.filter((pl.col("model") == model) & (pl.col("section") == sec))[
                    "delta_relative_pct"]
                vals.append(float(v[0]) if v.len() and v[0] is not None else 0.0)
            xs = [i - 0.4 + width * (j + 0.5) for i in range(len(SECTIONS))]
            ax.bar(xs, vals, width=width, color=PALETTE[j % len(PALETTE)],
                   label=f"{model} ({stage})")
        ax.axhline(0.0, color="black", linewidth=0.6)
        ax.set_xticks(range(len(SECTIONS)), [SECTION_LABELS[s] for s in SECTIONS])
        ax.set_ylabel(f"change vs {lin} (%)")
        ax.set_title(f"{lin} · {obj} · {bench}")
        ax.legend(loc="best", frameon=False)
    for k in range(len(panels), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    if not panels:
        axes[0][0].text(0.5, 0.5, "no lineage with RM scores", ha="center", va="center")
    fig.tight_layout()
    save(fig, stem)


@dataclass(kw_only=True)
class LineageArgs:
    """Per-lineage RM score change vs the lineage's root model
    (results/analysis/posttraining.csv) and its figure."""

    rm_scores: str = opt("results/tables/rm_scores.csv")
    models: str = opt('JSON {model: {"stage": ..., "parent": ...}} (the effective model table)')
    out: str = opt("results/analysis/posttraining.csv")
    figure: str = opt("figure stem (png + pdf)")


def main(argv: Sequence[str] | None = None) -> int:
    from rmselect.io import read_table, write_table

    args = cli.parse(LineageArgs, argv, prog="lineage_table.py")
    table, unscored = lineage_table(read_table(args.rm_scores), json.loads(args.models))
    if unscored:
        sys.stderr.write(f"lineage: no RM scores for {', '.join(unscored)} (left out)\n")
    write_table(args.out, table)
    plot_lineages(table, args.figure)
    return 0
