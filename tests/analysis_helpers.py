"""Small builders shared by the tests/test_analysis_*.py files (not a test module)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

FIXTURE = Path(__file__).resolve().parent / "data" / "analysis"


def models_frame(rows: list[tuple[str, str, float, str, str]]) -> pl.DataFrame:
    """(model, family, params_b, size_group, group_default) → a models.csv-shaped frame."""
    return pl.DataFrame(
        {
            "model": [r[0] for r in rows],
            "family": [r[1] for r in rows],
            "lineage": [r[1] for r in rows],
            "publisher": ["P"] * len(rows),
            "params_b": [r[2] for r in rows],
            "tokens_t": [1.0] * len(rows),
            "released": [""] * len(rows),
            "stage": ["instruct"] * len(rows),
            "parent": [""] * len(rows),
            "size_group": [r[3] for r in rows],
            "group_default": [r[4] for r in rows],
            "candidate": [False] * len(rows),
            "in_population": [True] * len(rows),
        }
    )


def rm_frame(rows: list[tuple[str, str, float]]) -> pl.DataFrame:
    """(model, objective, overall) → rm_scores rows; sections equal the overall score."""
    return pl.DataFrame(
        {
            "model": [r[0] for r in rows],
            "objective": [r[1] for r in rows],
            "benchmark": ["rewardbench"] * len(rows),
            "chat": [r[2] for r in rows],
            "chat_hard": [r[2] for r in rows],
            "safety": [r[2] for r in rows],
            "reasoning": [r[2] for r in rows],
            "score": [r[2] for r in rows],
            "overall": [r[2] for r in rows],
            "source": ["imported"] * len(rows),
        }
    )


def fixture_models_csv(tmp_path: Path) -> Path:
    """Write results/analysis/models.csv for the 12-model fixture study into tmp_path."""
    from rmselect.analysis.models import models_table, study_rows
    from rmselect.config import load_study_file
    from rmselect.io import write_table

    study = load_study_file("tests/config_analysis_import.yaml")
    out = tmp_path / "models.csv"
    write_table(out, models_table(study_rows(study)))
    return out
