"""Compute resources per rule from model size (params_b) and the config's `resources` section.

Rules ask for resources through ``res(kind, key)`` / ``res_extra(kind)`` in
workflow/rules/common.smk, which call :func:`resources_for`. Kinds: ``toy``, ``posttrain``,
``rm_train``, ``rm_select``, ``eval``, ``benchmarks``, ``presence``, ``analysis``.

The table (documented field by field in config/schemas/config.schema.yaml)::

    resources:
      gpus_per_node: 8          # GPUs of one node; nodes = ceil(gpus / gpus_per_node)
      cpus_per_gpu: 8           # CPU cores per GPU (cpus_per_task = this x GPUs on a node)
      mem_mb_per_gpu: 64000     # host memory per GPU (mem_mb is per node)
      gpu_tiers:                # first row with params_b <= max_b applies
        - {max_b: 3, train_gpus: 1, infer_gpus: 1, zero: 2}
        - {max_b: 10, train_gpus: 8, infer_gpus: 1, zero: 3}
      runtime:                  # minutes = base + per_b * params_b, per kind
        rm_train: {base: 60, per_b: 90}
      rm_train: {gpus: 4}       # per-kind override of any computed key

Which column of a tier a kind uses: ``train_gpus`` for training kinds (``rm_train``,
``posttrain``), ``infer_gpus`` for inference kinds (``eval``, ``benchmarks``, ``presence``).
CPU-only kinds (``toy``, ``rm_select``, ``analysis``) never request GPUs, and neither does any
kind when the config has no ``gpu_tiers`` (the embedded toy study runs on CPUs).

Precedence, lowest first: built-in defaults < size tier < ``resources.<kind>`` (per rule) <
model-table columns ``gpus`` / ``nodes`` / ``runtime`` / ``mem_mb`` (per model).
A retry (Snakemake's ``attempt``) gets a longer runtime (a time limit is the usual cause, and
a resumed trainer needs the time) and more memory only up to ``resources.node_mem_mb``
(:func:`retry_scaled`): a GPU out-of-memory error or a timeout never needed more host
memory, and no node has more than it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from rmselect.config import section_settings

#: Kinds that may use GPUs, and which tier column they read.
TRAIN_KINDS = ("rm_train", "posttrain")
INFER_KINDS = ("eval", "benchmarks", "presence")
GPU_KINDS = TRAIN_KINDS + INFER_KINDS
CPU_KINDS = ("toy", "rm_select", "analysis")
KINDS = GPU_KINDS + CPU_KINDS

#: Per-kind defaults for CPU jobs: MB and minutes (cores: the rule's threads).
CPU_DEFAULTS: dict[str, dict[str, int]] = {
    kind: {"mem_mb": 4000, "runtime": 30 if kind in ("rm_select", "analysis") else 60}
    for kind in KINDS
}

#: Runtime scaling (minutes = base + per_b * params_b) for GPU jobs when the config gives none.
RUNTIME_DEFAULTS: dict[str, dict[str, float]] = {
    "rm_train": {"base": 60, "per_b": 90},
    "posttrain": {"base": 60, "per_b": 90},
    "eval": {"base": 30, "per_b": 10},
    "benchmarks": {"base": 60, "per_b": 30},
    "presence": {"base": 30, "per_b": 10},
}

#: Keys every result of :func:`resources_for` carries (None = leave unset for SLURM).
KEYS = (
    "gpu",
    "nodes",
    "tasks",
    "tasks_per_gpu",
    "gpus_per_node",
    "cpus_per_task",
    "mem_mb",
    "runtime",
    "zero",
    "mpi",
    "gpu_model",
    "slurm_partition",
    "slurm_extra",
)

#: Keys a rule passes to Snakemake besides gpu / mem_mb / runtime (see ``res_extra``).
EXTRA_KEYS = (
    "nodes",
    "tasks",
    "tasks_per_gpu",
    "cpus_per_task",
    "mpi",
    "gpu_model",
    "slurm_partition",
    "slurm_extra",
)


@dataclass(frozen=True)
class ClusterSettings:
    """Site-specific values that never live in the study config (env vars / slurm/local.yaml).

    ``partition`` is used for CPU jobs, ``gpu_partition`` (default ``partition``) for GPU jobs;
    ``gpu_model`` turns ``--gpus=N`` into ``--gpus=<model>:N``; ``slurm_extra`` is appended to
    every sbatch call; ``gpus_per_node`` overrides the config's value for this cluster.
    """

    partition: str | None = None
    gpu_partition: str | None = None
    gpu_model: str | None = None
    slurm_extra: str | None = None
    gpus_per_node: int | None = None
    #: Minutes a projection-based GPU runtime is clamped to (rmselect.cluster.site).
    runtime_floor: int | None = None
    runtime_ceiling: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


class ResourceError(ValueError):
    """A problem with the ``resources`` section or a per-model override."""


def _int(value: Any, where: str) -> int:
    try:
        out = int(str(value).strip())
    except ValueError:
        raise ResourceError(f"{where}: {value!r} is not an integer") from None
    if out < 0:
        raise ResourceError(f"{where}: {value!r} must be >= 0")
    return out


def gpu_tier(params_b: float, tiers: list[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The first tier with ``params_b <= max_b``; the last tier for anything larger."""
    if not tiers:
        raise ResourceError("resources.gpu_tiers is empty")
    for tier in tiers:
        if params_b <= float(tier["max_b"]):
            return tier
    return tiers[-1]


def runtime_minutes(kind: str, params_b: float | None, section: Mapping[str, Any]) -> int:
    """Runtime of one attempt: ``base + per_b * params_b`` minutes, rounded up to 10."""
    table = dict(RUNTIME_DEFAULTS.get(kind, {"base": CPU_DEFAULTS[kind]["runtime"], "per_b": 0}))
    table.update((section.get("runtime", {}) or {}).get(kind, {}) or {})
    minutes = float(table.get("base", 60)) + float(table.get("per_b", 0)) * float(params_b or 0)
    return int(math.ceil(minutes / 10.0) * 10)


def projected_runtime(minutes: float, safety: float, cluster: ClusterSettings) -> int:
    """A GPU job's runtime from its projected minutes: ``minutes x safety``, rounded up to
    10, clamped to the site's floor and ceiling (where set)."""
    out = int(math.ceil(float(minutes) * float(safety) / 10.0) * 10)
    if cluster.runtime_floor:
        out = max(out, int(cluster.runtime_floor))
    if cluster.runtime_ceiling:
        out = min(out, int(cluster.runtime_ceiling))
    return out


def node_mem_mb(section: Mapping[str, Any], gpus_per_node: int) -> int:
    """Host memory of one node: ``resources.node_mem_mb``, or (null) what the config gives
    a full node, ``mem_mb_per_gpu x gpus_per_node``."""
    given = section.get("node_mem_mb")
    if given is not None:
        return _int(given, "resources.node_mem_mb")
    return int(section["mem_mb_per_gpu"]) * int(gpus_per_node)


def retry_scaled(mem_mb: int, runtime: int, attempt: int, node_mb: int) -> tuple[int, int]:
    """``(mem_mb, runtime)`` of attempt ``attempt`` (1 = the first) of a job sized
    ``(mem_mb, runtime)``: the runtime times the attempt; memory times the attempt but not
    past the node's ``node_mb`` (a request already above it is left as it is)."""
    attempt = max(1, int(attempt))
    mem = max(mem_mb, min(mem_mb * attempt, node_mb))
    return mem, runtime * attempt


def resources_for(
    kind: str,
    params_b: float | None,
    config: Mapping[str, Any],
    model: str | None = None,
    *,
    model_extra: Mapping[str, str] | None = None,
    cluster: ClusterSettings | None = None,
    attempt: int = 1,
    projected_min: float | None = None,
) -> dict[str, Any]:
    """Resources for one job of ``kind`` on a model of ``params_b`` billion parameters.

    Returns every key of :data:`KEYS`; values are ints or strings, or None where SLURM should
    get nothing (Snakemake drops None-valued resources of a job).

    * ``gpu``: total GPUs of the job (Snakemake's ``--resources gpu=N`` counts these; the
      SLURM plugin turns it into ``--gpus=N``); 0 for CPU-only kinds and CPU studies.
    * ``nodes``: ``ceil(gpu / gpus_per_node)``, at least 1. ``tasks``: one launcher per node.
      ``tasks_per_gpu``: 0, so that the plugin does not add ``--ntasks-per-gpu``.
    * ``cpus_per_task``: ``cpus_per_gpu`` x GPUs on one node; CPU jobs: None (SLURM then
      gets the rule's ``threads``) unless ``resources.<kind>.cpus_per_task`` says otherwise.
    * ``zero``: DeepSpeed ZeRO stage of the tier (training kinds; 0 otherwise; used by the
      posttrain rules; the RM trainer takes its stage from ``rm.by_size``).
    * ``mem_mb``: per node, ``mem_mb_per_gpu`` x GPUs on one node (CPU jobs: the kind's MB);
      a retry grows it up to ``node_mem_mb`` (:func:`retry_scaled`). ``runtime``: minutes,
      times ``attempt``; with ``resources.runtime_from: projection`` and the job's
      ``projected_min`` (the plan's projection of one job,
      rmselect.plan.feasibility.job_minutes), GPU jobs ask for :func:`projected_runtime`
      instead of ``base + per_b x params_b``.
    * ``mpi``: ``"srun"`` for multi-node jobs (the plugin then runs the rule in the batch
      script and the rule calls srun itself: rmselect.cluster.launch), else None.
    * ``gpu_model``, ``slurm_partition``: from the cluster settings, GPU jobs / all jobs.
    * ``slurm_extra``: cluster-wide sbatch flags plus ``--ntasks-per-node=1`` for multi-node.
    """
    if kind not in KINDS:
        raise ResourceError(f"unknown resource kind {kind!r}; known: {', '.join(KINDS)}")
    # gpus_per_node, cpus_per_gpu, mem_mb_per_gpu: the schema's defaults (section_settings).
    section: Mapping[str, Any] = section_settings(config, "resources")
    cluster = cluster or ClusterSettings()
    attempt = max(1, int(attempt))
    override: Mapping[str, Any] = section.get(kind, {}) or {}
    where_model = f"model '{model}'" if model else "model"
    extra = {k: v for k, v in (model_extra or {}).items() if v not in (None, "")}

    tiers = list(section.get("gpu_tiers", []) or [])
    gpus_per_node = int(cluster.gpus_per_node or section["gpus_per_node"])
    gpus, zero = 0, 0
    if kind in GPU_KINDS and tiers and params_b is not None:
        tier = gpu_tier(float(params_b), tiers)
        col = "train_gpus" if kind in TRAIN_KINDS else "infer_gpus"
        gpus = int(tier.get(col, tier.get("gpus", 1)))
        zero = int(tier.get("zero", 0)) if kind in TRAIN_KINDS else 0
    if kind in GPU_KINDS:
        if "gpus" in override:
            gpus = _int(override["gpus"], f"resources.{kind}.gpus")
        if "zero" in override:
            zero = _int(override["zero"], f"resources.{kind}.zero")
        if "gpus" in extra:
            gpus = _int(extra["gpus"], f"{where_model}: column 'gpus'")
    # CPU-only kinds never request GPUs, whatever the overrides say.

    nodes = max(1, math.ceil(gpus / gpus_per_node)) if gpus else 1
    if "nodes" in override:
        nodes = max(1, _int(override["nodes"], f"resources.{kind}.nodes"))
    if "nodes" in extra:
        nodes = max(1, _int(extra["nodes"], f"{where_model}: column 'nodes'"))
    if gpus and gpus % nodes:
        raise ResourceError(
            f"{kind} job of {where_model}: {gpus} GPUs do not split evenly over {nodes} nodes"
        )
    gpn = gpus // nodes if gpus else 0

    base = CPU_DEFAULTS[kind]
    cpus: int | None = None  # CPU jobs: None = the rule's threads (the plugin's default)
    if gpus:
        cpus = int(section["cpus_per_gpu"]) * gpn
        mem = int(section["mem_mb_per_gpu"]) * gpn
        runtime = runtime_minutes(kind, params_b, section)
        if section.get("runtime_from") == "projection" and projected_min is not None:
            runtime = projected_runtime(projected_min, float(section["runtime_safety"]), cluster)
    else:
        mem = int(base["mem_mb"])
        # CPU studies: the kind's default unless the config scales it explicitly.
        scaled = kind in (section.get("runtime", {}) or {})
        runtime = runtime_minutes(kind, params_b, section) if scaled else int(base["runtime"])
    if "cpus_per_task" in override:
        cpus = _int(override["cpus_per_task"], f"resources.{kind}.cpus_per_task")
    if "mem_mb" in override:
        mem = _int(override["mem_mb"], f"resources.{kind}.mem_mb")
    if "runtime" in override:
        runtime = _int(override["runtime"], f"resources.{kind}.runtime")
    if "mem_mb" in extra:
        mem = _int(extra["mem_mb"], f"{where_model}: column 'mem_mb'")
    if "runtime" in extra:
        runtime = _int(extra["runtime"], f"{where_model}: column 'runtime'")

    flags = [cluster.slurm_extra] if cluster.slurm_extra else []
    if nodes > 1:
        flags.append("--ntasks-per-node=1")
    partition = (cluster.gpu_partition or cluster.partition) if gpus else cluster.partition
    mem, runtime = retry_scaled(mem, runtime, attempt, node_mem_mb(section, gpus_per_node))
    return {
        "gpu": gpus,
        "nodes": nodes,
        "tasks": nodes,
        "tasks_per_gpu": 0,
        "gpus_per_node": gpn,
        "cpus_per_task": max(1, cpus) if cpus is not None else None,
        "mem_mb": mem,
        "runtime": runtime,
        "zero": zero,
        "mpi": "srun" if nodes > 1 else None,
        "gpu_model": cluster.gpu_model if gpus else None,
        "slurm_partition": partition or None,
        "slurm_extra": " ".join(flags) or None,
    }


def resource_table(
    config: Mapping[str, Any],
    models: Mapping[str, Any],
    kinds: tuple[str, ...] = GPU_KINDS,
) -> list[dict[str, Any]]:
    """One row per (model, kind): the documented table made concrete (for docs and tests).

    ``models`` maps a name to an object with ``params_b`` and ``extra`` (a ModelSpec).
    """
    rows = []
    for name, spec in models.items():
        for kind in kinds:
            r = resources_for(
                kind, spec.params_b, config, name, model_extra=getattr(spec, "extra", None)
            )
            rows.append({"model": name, "kind": kind, "params_b": spec.params_b, **r})
    return rows
