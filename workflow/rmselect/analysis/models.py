"""The effective model table as a CSV for the analysis (``results/analysis/models.csv``).

The Snakemake rule passes the study's model table (TSV rows plus post-training variants, with
each model's size group and that group's default model) as JSON, so that analysis scripts do
not have to re-read and re-validate the configuration. The CSV doubles as Table 3.

Columns: ``model, family, lineage, publisher, params_b, tokens_t, released, stage, parent,
size_group, group_default, candidate, in_population``.

``in_population`` is decided here, once, from ``analysis.population`` (see
:meth:`rmselect.config.Study.population`), and every cross-model analysis (gains, correlations, coverage,
selection model, PCA, recommender training set) reads it from this file, so they cannot
disagree about which models they analyse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import polars as pl

from rmselect import cli
from rmselect.analysis.data import AnalysisError
from rmselect.cli import opt
from rmselect.io import write_table

COLUMNS = (
    "model",
    "family",
    "lineage",
    "publisher",
    "params_b",
    "tokens_t",
    "released",
    "stage",
    "parent",
    "size_group",
    "group_default",
    "candidate",
    "in_population",
)


def study_rows(study: Any) -> list[dict[str, Any]]:
    """Rows for :func:`models_table` from a :class:`rmselect.config.Study` (used by the rule)."""
    defaults = {g["name"]: g.get("default") for g in study.config["size_groups"]}
    cands = set(study.candidates())
    pop = set(study.population())
    rows = []
    for name, m in study.models.items():
        g = study.size_group(name)
        rows.append(
            {
                "model": name,
                "family": m.family,
                "lineage": m.lineage,
                "publisher": m.publisher,
                "params_b": m.params_b,
                "tokens_t": m.tokens_t,
                "released": m.released,
                "stage": m.stage,
                "parent": m.parent or "",
                "size_group": g,
                "group_default": defaults.get(g) or "",
                "candidate": name in cands,
                "in_population": name in pop,
            }
        )
    return rows


def models_table(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Validate rows (every column of :data:`COLUMNS`) and return them as a frame."""
    if not rows:
        raise AnalysisError("the model table is empty")
    for r in rows:
        missing = [c for c in COLUMNS if c not in r]
        if missing:
            raise AnalysisError(f"model '{r.get('model')}': missing field(s) {missing}")
    return pl.DataFrame(
        [{c: r[c] for c in COLUMNS} for r in rows],
        schema={
            "model": pl.String,
            "family": pl.String,
            "lineage": pl.String,
            "publisher": pl.String,
            "params_b": pl.Float64,
            "tokens_t": pl.Float64,
            "released": pl.String,
            "stage": pl.String,
            "parent": pl.String,
            "size_group": pl.String,
            "group_default": pl.String,
            "candidate": pl.Boolean,
            "in_population": pl.Boolean,
        },
    )


@dataclass(kw_only=True)
class ModelsTableArgs:
    """Write the effective model table (JSON rows from the workflow) as CSV."""

    models_json: list[dict[str, Any]] = opt("JSON list of model rows", json=True)
    out: str = opt("output CSV (results/analysis/models.csv)")


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(ModelsTableArgs, write_models, argv, prog="analysis_models.py")


def write_models(a: ModelsTableArgs) -> int:
    write_table(a.out, models_table(a.models_json))
    return 0
