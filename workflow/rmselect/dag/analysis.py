"""DAG-build helpers of the analysis rules (``workflow/rules/analysis.smk``): which other
stages' outputs the cost table waits for, whether an optional input can be made, and the
GPUs each job kind is given.

The section's settings and defaults are :func:`rmselect.analysis.settings.analysis_settings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from rmselect.config import Study

#: The other stages' ``*_TARGETS`` lists (defined by their rule files before analysis.smk).
UPSTREAM_TARGET_LISTS = (
    "TOY_TARGETS",
    "POSTTRAIN_TARGETS",
    "RM_TARGETS",
    "EVAL_TARGETS",
    "BENCHMARK_TARGETS",
    "PRESENCE_TARGETS",
    "PROBE_TARGETS",
)


def upstream_targets(namespace: Mapping[str, Any], wait: bool) -> list[str]:
    """The other stages' final outputs (their ``*_TARGETS`` lists) when ``wait``."""
    if not wait:
        return []
    out: list[str] = []
    for name in UPSTREAM_TARGET_LISTS:
        out += [str(t) for t in namespace.get(name, []) or []]
    return out


def producible(path: str | None, rules: Any) -> bool:
    """True when ``path`` exists or one of ``rules`` (Snakemake rules) names it as output."""
    if not path:
        return False
    if Path(path).exists():
        return True
    return any(str(f) == path for r in rules for f in r.output)


def companion(path: str | None, of: str, rules: Any, explicit: bool = False) -> bool:
    """Whether the analysis reads ``path`` (the per-seed RM scores) beside ``of``.

    By default only when one rule writes both (the eval stage's ``rm_scores_table``): an
    analysis pointed at an imported score table must neither schedule the eval stage for a
    seed table nor pick up a stale one. A path the user set (``explicit``) is read when it
    exists or a rule writes it.
    """
    if not path:
        return False
    if any({str(f) for f in r.output} >= {path, of} for r in rules):
        return True
    return explicit and producible(path, rules)


def gpu_allocation(study: Study) -> dict[str, dict[str, int]]:
    """GPUs a job of each GPU kind gets per model (``rmselect.cluster.resources``).

    The cost table multiplies a job's wall time by this to give allocated GPU-seconds. A model
    whose resources cannot be computed is left out (its jobs then count 0 allocated GPUs).
    """
    from rmselect.cluster.resources import GPU_KINDS, resources_for

    out: dict[str, dict[str, int]] = {}
    for kind in GPU_KINDS:
        per: dict[str, int] = {}
        for name, m in study.models.items():
            try:
                g = resources_for(kind, m.params_b, study.config, name)["gpu"]
            except Exception:  # noqa: BLE001 - a cost estimate must not break the DAG
                continue
            per[name] = int(g or 0)
        out[kind] = per
    return out
