"""Recipes, inputs and flags of the post-training rules (``workflow/rules/posttrain.smk``)."""

from __future__ import annotations

import shlex
from typing import Any

from rmselect.config import Study
from rmselect.dag.common import shell_json
from rmselect.posttrain.recipes import resolve_recipe


def variant_recipes(study: Study) -> dict[str, dict[str, Any]]:
    """Resolved recipe of every produced variant; raises ConfigError for a bad recipe."""
    return {n: resolve_recipe(study.config, study.model(n)) for n in study.variants()}


def recipe_files(recipe: dict[str, Any]) -> list[str]:
    """The recipe's local data file (empty for a hub data set)."""
    data = recipe.get("data") or {}
    return [data["path"]] if "path" in data else []


def train_flags(study: Study, name: str, recipe: dict[str, Any]) -> str:
    """Command-line flags of posttrain_train.py for variant ``name`` but the output paths and
    the ZeRO stage (the rule adds those per job).

    Derived from the trainer's one declaration
    (:class:`rmselect.posttrain.train.PosttrainArgs`); a field at its default adds no flag.
    """
    from rmselect import cli
    from rmselect.posttrain.args import PosttrainArgs

    m = study.model(name)
    parent = study.model(m.parent or "")
    run = PosttrainArgs(
        parent=study.model_path(parent.name), parent_name=parent.name, name=name,
        recipe=recipe, out_dir="", train_json="", seed=int(study.config.get("seed", 0)),
        chat_template=m.chat_template or None, trust_remote_code=bool(m.trust_remote_code),
    )
    return shlex.join(cli.to_argv(run, exclude=("out_dir", "train_json", "zero_stage")))


def lineage_models_arg(study: Study) -> str:
    """``--models`` JSON of the lineage table: stage and parent of every model."""
    return shell_json({n: {"stage": m.stage, "parent": m.parent} for n, m in study.models.items()})


def has_lineage(study: Study) -> bool:
    """Whether any model has a parent (else there is no lineage table to build)."""
    return any(m.parent for m in study.models.values())
