"""DAG-build helpers for workflow/rules/posttrain.smk (kept out of the .smk file)."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any, Sequence

from rmselect.config import Study
from rmselect.posttrain.recipes import resolve_recipe


def name_regex(names: Sequence[str]) -> str:
    """A wildcard constraint matching exactly ``names`` (never matching when empty)."""
    return "|".join(re.escape(n) for n in names) or "(?!x)x"


def variant_recipes(study: Study) -> dict[str, dict[str, Any]]:
    """Resolved recipe of every produced variant; raises ConfigError for a bad recipe."""
    return {n: resolve_recipe(study.config, study.model(n)) for n in study.variants()}


def recipe_arg(recipe: dict[str, Any]) -> str:
    return shlex.quote(json.dumps(recipe, sort_keys=True))


def recipe_files(recipe: dict[str, Any]) -> list[str]:
    data = recipe.get("data") or {}
    return [data["path"]] if "path" in data else []


def train_flags(study: Study, name: str, recipe: dict[str, Any]) -> str:
    """Command-line flags of posttrain_train.py for variant ``name``."""
    m = study.model(name)
    parent = study.model(m.parent or "")
    flags = [
        "--parent", study.model_path(parent.name), "--parent-name", parent.name,
        "--name", name, "--recipe", json.dumps(recipe, sort_keys=True),
        "--seed", str(int(study.config.get("seed", 0))),
    ]
    if m.chat_template:
        flags += ["--chat-template", m.chat_template]
    if m.trust_remote_code:
        flags.append("--trust-remote-code")
    return " ".join(shlex.quote(f) for f in flags)


def launcher(gpus: int) -> str:
    """``python`` for a CPU job; the cluster launcher (GPU slots, torchrun/srun) otherwise."""
    if int(gpus or 0) < 1:
        return "python"
    return f"python workflow/scripts/launch.py --gpus {int(gpus)} -- python"


def lineage_models_arg(study: Study) -> str:
    """``--models`` JSON of the lineage table: stage and parent of every model."""
    info = {n: {"stage": m.stage, "parent": m.parent} for n, m in study.models.items()}
    return shlex.quote(json.dumps(info, sort_keys=True))


def has_lineage(study: Study) -> bool:
    return any(m.parent for m in study.models.values())
