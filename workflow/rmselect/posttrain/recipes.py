"""Post-training recipes: ``posttrain.recipes.<name>`` merged over per-stage defaults.

A variant (``posttrain.variants[i]``) names its recipe with ``recipe`` (default: its stage,
so ``stage: sft`` uses ``posttrain.recipes.sft``). Every field is documented in
``config/schemas/config.schema.yaml``; the defaults below fill what a recipe leaves out.
"""

from __future__ import annotations

from typing import Any, Mapping

from rmselect.config import ConfigError, ModelSpec

#: Defaults per stage (a recipe overrides any of them; ``data`` has no default).
#: ``zero_stage: None`` = the ZeRO stage of the job's resource tier (``resources.gpu_tiers``).
DEFAULTS: dict[str, dict[str, Any]] = {
    "sft": {
        "lr": 1e-5, "epochs": 1.0, "max_length": 2048, "global_batch": 64, "micro_batch": 4,
        "warmup_steps": 0, "weight_decay": 0.0, "max_steps": None, "max_examples": None,
        "zero_stage": None, "precision": "auto", "gradient_checkpointing": False,
        "grad_clip": 1.0,
    },
    "dpo": {
        "lr": 5e-7, "epochs": 1.0, "max_length": 2048, "global_batch": 64, "micro_batch": 2,
        "warmup_steps": 0, "weight_decay": 0.0, "max_steps": None, "max_examples": None,
        "zero_stage": None, "precision": "auto", "gradient_checkpointing": False,
        "grad_clip": 1.0, "beta": 0.1,
    },
}


def resolve_recipe(config: Mapping[str, Any], spec: ModelSpec) -> dict[str, Any]:
    """The full recipe of variant ``spec`` (``stage`` and ``name`` included)."""
    stage = spec.stage
    if stage not in DEFAULTS:
        raise ConfigError(f"model '{spec.name}': stage '{stage}' cannot be produced (sft, dpo)")
    name = spec.produce or stage
    recipes = (config.get("posttrain", {}) or {}).get("recipes", {}) or {}
    if name not in recipes:
        known = ", ".join(sorted(recipes)) or "none"
        raise ConfigError(
            f"config: variant '{spec.name}': field 'posttrain.recipes.{name}' is missing "
            f"(recipes defined: {known}); add it or set the variant's 'recipe'"
        )
    raw = dict(recipes[name] or {})
    if raw.get("stage", stage) != stage:
        raise ConfigError(
            f"config: variant '{spec.name}' (stage {stage}) uses recipe '{name}', "
            f"which is a {raw['stage']} recipe (field 'posttrain.recipes.{name}.stage')"
        )
    if "data" not in raw:
        raise ConfigError(f"config: field 'posttrain.recipes.{name}.data' is missing")
    out = dict(DEFAULTS[stage])
    out.update(raw)
    out.update(stage=stage, name=name)
    if out["global_batch"] % out["micro_batch"]:
        raise ConfigError(
            f"config: field 'posttrain.recipes.{name}.global_batch' ({out['global_batch']}) must "
            f"be a multiple of micro_batch ({out['micro_batch']})"
        )
    return out
