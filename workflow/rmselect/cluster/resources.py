"""Compute resources per rule from model size (params_b) and the config's `resources` section.

Rules ask for resources through ``res(kind, key)`` in workflow/rules/common.smk, which calls
:func:`resources_for`. Kinds: ``toy``, ``posttrain``, ``rm_train``, ``rm_select``, ``eval``,
``benchmarks``, ``presence``, ``analysis``. CPU-only kinds never request GPUs.
"""

from __future__ import annotations

from typing import Any, Mapping

GPU_KINDS = ("posttrain", "rm_train", "eval", "benchmarks", "presence")
DEFAULTS: dict[str, dict[str, int]] = {
    "toy": {"gpu": 0, "cpus_per_task": 1, "mem_mb": 4000, "runtime": 30, "nodes": 1},
    "posttrain": {"gpu": 0, "cpus_per_task": 1, "mem_mb": 4000, "runtime": 60, "nodes": 1},
    "rm_train": {"gpu": 0, "cpus_per_task": 1, "mem_mb": 4000, "runtime": 60, "nodes": 1},
    "rm_select": {"gpu": 0, "cpus_per_task": 1, "mem_mb": 4000, "runtime": 30, "nodes": 1},
    "eval": {"gpu": 0, "cpus_per_task": 1, "mem_mb": 4000, "runtime": 60, "nodes": 1},
    "benchmarks": {"gpu": 0, "cpus_per_task": 1, "mem_mb": 4000, "runtime": 60, "nodes": 1},
    "presence": {"gpu": 0, "cpus_per_task": 1, "mem_mb": 4000, "runtime": 60, "nodes": 1},
    "analysis": {"gpu": 0, "cpus_per_task": 1, "mem_mb": 4000, "runtime": 30, "nodes": 1},
}


def resources_for(
    kind: str, params_b: float | None, config: Mapping[str, Any], model: str | None = None
) -> dict[str, int]:
    """Resources for one job of ``kind`` on a model of ``params_b`` billion parameters.

    Placeholder until the cluster issue lands: defaults, overridden by
    ``config['resources'][kind]`` when present.
    """
    out = dict(DEFAULTS.get(kind, DEFAULTS["analysis"]))
    out.update((config.get("resources", {}) or {}).get(kind, {}) or {})
    if kind not in GPU_KINDS:
        out["gpu"] = 0
    return out
