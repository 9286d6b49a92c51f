"""Defaults of the ``analysis`` and ``recommend`` config sections (one place).

Every field is documented in ``config/schemas/config.schema.yaml``. The workflow
(``workflow/rules/analysis.smk``) reads settings only through :func:`analysis_settings`; its
other DAG-build helpers are in :mod:`rmselect.dag.analysis`.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

DEFAULTS: dict[str, Any] = {
    "rm_scores": "results/tables/rm_scores.csv",
    "rm_seeds": "results/tables/rm_scores_seeds.csv",
    "seed_draws": 1000,
    "features": "results/tables/features.csv",
    "posttraining": None,
    "leaderboard_csv": None,
    "leaderboard_top": 30,
    "benchmark": "rewardbench",
    "population": {"column": None, "values": [], "models": []},
    "missing": "drop_feature",
    "correlations": {"bootstrap": 2000, "ci": 0.95, "alpha": 0.05},
    "coverage": {
        "k": list(range(5, 31)),
        "compare_k": [5, 6, 7, 8, 9, 10],
        "filters": [
            {"name": "main", "thresholds": {"5": 0.4, "10": 0.7}},
            {"name": "appendix", "thresholds": {"5": 0.4, "10": 0.6}},
        ],
        "compare_filter": None,
    },
    "selection": {
        "degrees": [1, 2, 3],
        "alphas": [0.1, 0.01, 0.001, 0.0001],
        "l1_ratios": [0.0, 0.25, 0.5, 0.75, 1.0],
        "cv_folds": 10,
        "outer_folds": 10,
        "scoring": "neg_mean_squared_error",
        "max_iter": 10000,
        "leave_one_family_out": True,
        "n_jobs": 1,
    },
    "pca": {"components": 0},
    "cost": {
        "stages": None,
        "screening": ["bench_", "presence_"],
        "rm_grid": ["rm_train"],
        "gpu_json": [],
        "wait_for_all_stages": True,
    },
}

RECOMMEND_DEFAULTS: dict[str, Any] = {
    "candidates": [],
    "interval_level": 0.9,
    "top_features": 3,
    "score_range": [0.0, 100.0],
}


def _merge(base: dict[str, Any], over: Mapping[str, Any] | None) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def analysis_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config['analysis']`` over :data:`DEFAULTS`, plus ``recommend`` and the study seed."""
    given = config.get("analysis") or {}
    a = _merge(DEFAULTS, given)
    a["recommend"] = _merge(RECOMMEND_DEFAULTS, config.get("recommend") or {})
    a["seed"] = int(config.get("seed", 0))
    filters = a["coverage"]["filters"] or []
    if not a["coverage"].get("compare_filter"):
        a["coverage"]["compare_filter"] = filters[-1]["name"] if filters else ""
    return a
