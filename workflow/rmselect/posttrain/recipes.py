"""Post-training recipes: ``posttrain.recipes.<name>`` merged over per-stage defaults.

A variant (``posttrain.variants[i]``) names its recipe with ``recipe`` (default: its stage,
so ``stage: sft`` uses ``posttrain.recipes.sft``). Every field is documented in
``config/schemas/config.schema.yaml``, together with the defaults that fill what a recipe
leaves out (:func:`stage_defaults`; the schema is their only copy).
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

from rmselect.config import ConfigError, ModelSpec, fill_defaults, schema_node

#: Where the schema declares a recipe: its fields' ``default:`` values and, for the fields
#: whose default depends on the stage (lr, micro_batch, beta), its ``stage_defaults``.
_RECIPE = ("$defs", "posttrain_recipe")


def stages() -> list[str]:
    """The stages a recipe can produce (those with ``stage_defaults`` in the schema)."""
    return list(schema_node(*_RECIPE)["stage_defaults"])


def stage_defaults(stage: str) -> dict[str, Any]:
    """Every default of a ``stage`` recipe (``data`` has none).

    ``zero_stage: None`` = the ZeRO stage of the job's resource tier (``resources.gpu_tiers``).
    """
    node = schema_node(*_RECIPE)
    out = fill_defaults({}, node)
    out.update(copy.deepcopy(node["stage_defaults"][stage]))
    return out


def resolve_recipe(config: Mapping[str, Any], spec: ModelSpec) -> dict[str, Any]:
    """The full recipe of variant ``spec`` (``stage`` and ``name`` included)."""
    stage = spec.stage
    if stage not in stages():
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
    out = stage_defaults(stage)
    out.update(raw)
    out.update(stage=stage, name=name)
    if out["global_batch"] % out["micro_batch"]:
        raise ConfigError(
            f"config: field 'posttrain.recipes.{name}.global_batch' ({out['global_batch']}) must "
            f"be a multiple of micro_batch ({out['micro_batch']})"
        )
    return out
