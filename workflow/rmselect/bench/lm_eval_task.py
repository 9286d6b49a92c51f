"""lm-eval tasks of a benchmark run: one benchmark through ``lm_eval.simple_evaluate``.

Small mode passes the seeded subsample of :mod:`rmselect.bench.sampling` as ``samples=``
(never ``limit=``); the per-leaf metrics are normalised by :mod:`rmselect.bench.normalise`.
``lm_eval`` is imported inside the functions, never at module import.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any, Mapping, Sequence

from rmselect.bench.handle import ModelHandle, Settings
from rmselect.bench.normalise import resolve_baseline, summarise
from rmselect.bench.sampling import subsample_indices
from rmselect.bench.spec import TaskSpec


def _metric_value(row: Mapping[str, Any], metrics: Sequence[str]) -> tuple[str, float] | None:
    """First configured metric present in one lm-eval results row.

    ``acc`` matches ``acc,none`` first, then any ``acc,<filter>``; ``acc,strict-match`` must
    match exactly. Stderr entries never match.
    """
    for m in metrics:
        if "," in m:
            if m in row and _is_number(row[m]):
                return m, float(row[m])
            continue
        keys = [k for k in row if k.split(",")[0] == m and "_stderr" not in k]
        keys.sort(key=lambda k: (k != f"{m},none", k))
        for k in keys:
            if _is_number(row[k]):
                return k, float(row[k])
    return None


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def _top_objects(loaded: Mapping[str, Any], name: str) -> list[Any]:
    if name in loaded["groups"]:
        return [loaded["groups"][name]]
    if name in loaded["tasks"]:
        return [loaded["tasks"][name]]
    return list(loaded["tasks"].values())  # a tag: its member tasks


def _light_env_info(storage: dict[str, Any]) -> None:
    """Replacement for lm-eval's ``add_env_info``.

    The original calls torch's ``collect_env`` (pip/conda/nvidia-smi subprocesses, about
    2 s per ``simple_evaluate`` call) - more than a whole toy benchmark costs. We record the
    versions that matter instead.
    """
    from importlib.metadata import version

    import torch
    import transformers

    storage.update(
        {
            "pretty_env_info": None,
            "lm_eval_version": version("lm_eval"),
            "transformers_version": transformers.__version__,
            "torch_version": torch.__version__,
            "upper_git_hash": None,
        }
    )


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=lambda o: str(o)))


def run_lm_eval(spec: TaskSpec, handle: ModelHandle, settings: Settings) -> dict[str, Any]:
    """Evaluate one lm-eval benchmark; returns the result record (without model fields)."""
    import lm_eval
    import lm_eval.evaluator
    from lm_eval.tasks import TaskManager

    lm_eval.evaluator.add_env_info = _light_env_info
    lm_eval.evaluator.get_git_commit_hash = lambda: None

    lm = handle.lm()  # loaded once per process; its time is load_s, not this benchmark's
    t0 = time.monotonic()
    include = spec.include_path
    tm = TaskManager(include_path=include, include_defaults=include is None)
    try:
        loaded = tm.load([spec.task])
    except (KeyError, ValueError) as err:
        where = f"include_path {include}" if include else "the lm-eval registry"
        raise RuntimeError(
            f"benchmark '{spec.name}': lm-eval task '{spec.task}' not found in {where} ({err}); "
            "check benchmarks.tasks.<name>.task / include_path"
        ) from err
    leaves = loaded["tasks"]
    samples: dict[str, list[int]] = {}
    n_items: dict[str, int] = {}
    n_total: dict[str, int] = {}
    for leaf, task in leaves.items():
        total = len(task.eval_docs)
        n_total[leaf] = total
        idx = subsample_indices(total, spec.n, settings.seed, leaf) if settings.mode == "small" else None
        if idx is not None:
            samples[leaf] = idx
        n_items[leaf] = len(idx) if idx is not None else total
    os.environ["RMSELECT_SANDBOX"] = json.dumps(dict(settings.sandbox))
    out = lm_eval.simple_evaluate(
        model=lm,
        tasks=_top_objects(loaded, spec.task),
        num_fewshot=spec.fewshot,
        samples=samples or None,
        bootstrap_iters=settings.bootstrap_iters,
        log_samples=True,
        apply_chat_template=settings.apply_chat_template,
        gen_kwargs=dict(spec.gen_kwargs) or None,
        task_manager=tm,
        random_seed=settings.seed,
        numpy_random_seed=settings.seed,
        torch_random_seed=settings.seed,
        fewshot_random_seed=settings.seed,
    )
    wall = time.monotonic() - t0
    results = out["results"]
    logged = out.get("samples") or {}
    leaf_out: dict[str, Any] = {}
    raws: dict[str, float | None] = {}
    bases: dict[str, float | None] = {}
    for leaf, task in leaves.items():
        row = results.get(leaf, {})
        found = _metric_value(row, spec.metrics)
        if found is None:
            avail = sorted(k for k in row if "," in k and "_stderr" not in k)
            raise RuntimeError(
                f"benchmark '{spec.name}', subtask '{leaf}': none of the metrics "
                f"{list(spec.metrics)} in lm-eval's results (available: {avail}); fix "
                f"benchmarks.tasks.{spec.name}.metric"
            )
        key, value = found
        otype = task.get_config("output_type")
        choices = [len(s.get("arguments", [])) for s in logged.get(leaf, [])]
        base, source = resolve_baseline(leaf, spec.baseline, otype, choices)
        raws[leaf] = value
        bases[leaf] = base
        mname, _, filt = key.partition(",")
        items = [
            [int(x["doc_id"]), _jsonable(x.get(mname))]
            for x in logged.get(leaf, [])
            if x.get("filter", "none") == (filt or "none")
        ]
        leaf_out[leaf] = {
            "metric": key,
            "raw": value,
            "n_items": n_items[leaf],
            "n_total": n_total[leaf],
            "output_type": otype,
            "baseline": base,
            "baseline_source": source,
            "indices": samples.get(leaf),
            "items": items,
        }
    summ = summarise(raws, bases, spec.scale)
    for leaf, rec in leaf_out.items():
        b = rec["baseline"]
        rec["normalised"] = (
            None if b is None else summarise({leaf: raws[leaf]}, {leaf: b}, spec.scale).normalised
        )
    return {
        "lm_eval_task": spec.task,
        "num_fewshot": _jsonable(out.get("n-shot", {})),
        "leaves": leaf_out,
        "raw_metrics": _jsonable(results),
        "groups": _jsonable(out.get("groups", {})),
        "versions": _jsonable(out.get("versions", {})),
        "raw_score": summ.raw_score,
        "normalised": summ.normalised,
        "score": summ.score,
        "score_kind": summ.score_kind,
        "items_used": sum(n_items.values()),
        "items_total": sum(n_total.values()),
        "wall_s": round(wall, 3),
        "lm_eval_version": out.get("lm_eval_version"),
        "transformers_version": out.get("transformers_version"),
    }
