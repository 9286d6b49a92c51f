"""Run benchmarks for one model: lm-eval tasks through ``lm_eval.simple_evaluate``, code tasks
through :mod:`rmselect.bench.code`; one JSON per (model, benchmark).

One process may run several benchmarks of the same model (``benchmarks.jobs: per_model``):
the model loads once and each benchmark gets its own wall time. ``lm_eval`` and ``torch`` are
imported inside the functions, never at module import (the Snakefile imports
:mod:`rmselect.bench.spec` only).

Output (``results/benchmarks/{model}/{task}.json``)::

    model, benchmark, kind, lm_eval_task, mode, seed, num_fewshot, metric_scale,
    leaves: {leaf: {metric, raw, n_items, n_total, output_type, baseline, baseline_source,
                    normalised, indices (small-mode subsample, null = all),
                    items ([doc_id, per-item metric] as lm-eval logged them)}},
    raw_metrics: lm-eval's ``results`` rows as produced (groups and leaves),
    raw_score, normalised, score (0-100), score_kind (normalised | raw),
    items_used, items_total, wall_s, gpu_s, load_s, device, backend, versions, isolation

Small mode evaluates a seeded subsample of ``n`` items per leaf subtask
(:mod:`rmselect.bench.sampling`, passed to lm-eval as ``samples=``, never ``limit=``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from rmselect.bench.normalise import resolve_baseline, summarise
from rmselect.bench.sampling import subsample_indices
from rmselect.bench.spec import TaskSpec
from rmselect.io import write_json

log = logging.getLogger("rmselect.bench")


@dataclass
class Settings:
    """Global run settings (the non-task fields of ``benchmarks:``)."""

    mode: str = "small"
    seed: int = 0
    backend: str = "hf"
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int | str = 8
    max_length: int | None = None
    apply_chat_template: bool = False
    bootstrap_iters: int = 0
    #: CPU threads for torch (tiny models on a shared CPU run fastest single-threaded).
    threads: int = 1
    sandbox: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Settings":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _dtype(name: str) -> Any:
    import torch

    from rmselect.hf import default_dtype

    if name == "auto":
        return default_dtype()
    try:
        return getattr(torch, name)
    except AttributeError:
        raise ValueError(f"benchmarks.dtype: unknown torch dtype {name!r}") from None


class ModelHandle:
    """Loads the model once, on first use, for HF lm-eval and code tasks."""

    def __init__(self, ref: str, trust_remote_code: bool, settings: Settings, name: str):
        self.ref = ref
        self.name = name
        self.trust_remote_code = trust_remote_code
        self.settings = settings
        self.device = resolve_device(settings.device)
        if self.device == "cpu":
            import torch

            torch.set_num_threads(max(1, int(settings.threads)))
        self._hf: tuple[Any, Any] | None = None
        self._lm: Any = None
        self.load_s = 0.0

    def hf(self) -> tuple[Any, Any]:
        if self._hf is None:
            from rmselect.hf import load_causal_lm, load_tokenizer

            t0 = time.monotonic()
            try:
                tok = load_tokenizer(self.ref, trust_remote_code=self.trust_remote_code)
                model = load_causal_lm(
                    self.ref, trust_remote_code=self.trust_remote_code,
                    dtype=_dtype(self.settings.dtype),
                )
            except OSError as err:
                raise RuntimeError(
                    f"model '{self.name}': cannot load {self.ref} ({err}); build it first or "
                    "make it available in the local Hugging Face cache"
                ) from err
            model.to(self.device).eval()
            self._hf = (model, tok)
            self.load_s += time.monotonic() - t0
        return self._hf

    def lm(self) -> Any:
        """The lm-eval LM object (HFLM around our safely loaded model, or vLLM)."""
        if self._lm is None:
            t0 = time.monotonic()
            if self.settings.backend == "vllm":
                import lm_eval.api.registry

                args = {
                    "pretrained": self.ref,
                    "trust_remote_code": self.trust_remote_code,
                    "dtype": self.settings.dtype,
                }
                if self.settings.max_length:
                    args["max_model_len"] = self.settings.max_length
                self._lm = lm_eval.api.registry.get_model("vllm").create_from_arg_obj(
                    args, {"batch_size": self.settings.batch_size}
                )
            else:
                from lm_eval.models.huggingface import HFLM

                model, tok = self.hf()
                self._lm = HFLM(
                    pretrained=model,
                    tokenizer=tok,
                    batch_size=self.settings.batch_size,
                    max_length=self.settings.max_length,
                )
            self.load_s += time.monotonic() - t0
        return self._lm

    @property
    def n_gpus(self) -> int:
        if self.device.startswith("cuda"):
            return 1
        return 0


# ----------------------------------------------------------------- lm-eval tasks


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


# ----------------------------------------------------------------- code tasks


def run_code(spec: TaskSpec, handle: ModelHandle, settings: Settings) -> dict[str, Any]:
    """Greedy completion + sandboxed tests of a local HumanEval-schema file (pass@1)."""
    from rmselect.bench import code
    from rmselect.bench.sandbox import Limits, isolation, selfcheck

    limits = Limits.from_config(dict(settings.sandbox))
    python = dict(settings.sandbox).get("python")
    problems = code.load_problems(spec.data)
    total = len(problems)
    idx = subsample_indices(total, spec.n, settings.seed, spec.name) if settings.mode == "small" else None
    chosen = [problems[i] for i in idx] if idx is not None else problems
    if spec.heal_prompt:
        chosen = [code.heal(p) for p in chosen]
    model, tok = handle.hf()
    t0 = time.monotonic()
    selfcheck(limits, python)
    comps = code.greedy_completions(
        model, tok, [p["prompt"] for p in chosen], spec.max_new_tokens, spec.stop, handle.device
    )
    records = code.score(chosen, comps, limits, python)
    wall = time.monotonic() - t0
    value = code.pass_at_1(records)
    base, source = resolve_baseline(spec.name, spec.baseline, "code")
    summ = summarise({spec.name: value}, {spec.name: base}, spec.scale)
    statuses: dict[str, int] = {}
    for r in records:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    return {
        "lm_eval_task": None,
        "num_fewshot": {spec.name: 0},
        "leaves": {
            spec.name: {
                "metric": "pass@1",
                "raw": value,
                "n_items": len(chosen),
                "n_total": total,
                "output_type": "code",
                "baseline": base,
                "baseline_source": source,
                "normalised": summ.normalised,
            }
        },
        "raw_metrics": {spec.name: {"pass@1": value, "statuses": statuses}},
        "samples": records,
        "isolation": isolation(),
        "raw_score": summ.raw_score,
        "normalised": summ.normalised,
        "score": summ.score,
        "score_kind": summ.score_kind,
        "items_used": len(chosen),
        "items_total": total,
        "wall_s": round(wall, 3),
    }


# ----------------------------------------------------------------- driver


def run_benchmarks(
    model: str,
    ref: str,
    specs: Sequence[TaskSpec],
    outs: Sequence[str | Path],
    settings: Settings,
    trust_remote_code: bool = False,
    handle: ModelHandle | None = None,
) -> list[dict[str, Any]]:
    """Run ``specs`` on one model and write one JSON per benchmark to ``outs`` (atomically).

    Pass ``handle`` to reuse an already loaded model (e.g. for a second mode).
    """
    if len(specs) != len(outs):
        raise ValueError("one output path per benchmark")
    if handle is None:
        handle = ModelHandle(ref, trust_remote_code, settings, model)
    handle.settings = settings
    records = []
    for spec, out in zip(specs, outs):
        log.info("model %s: benchmark %s (%s mode)", model, spec.name, settings.mode)
        body = run_code(spec, handle, settings) if spec.kind == "code" else run_lm_eval(
            spec, handle, settings
        )
        rec = {
            "model": model,
            "model_ref": ref,
            "benchmark": spec.name,
            "kind": spec.kind,
            "mode": settings.mode,
            "seed": settings.seed,
            "n_requested": spec.n if settings.mode == "small" else None,
            "metric_scale": spec.scale,
            "higher_is_better": spec.higher_is_better,
            **body,
            "gpu_s": round(body["wall_s"] * handle.n_gpus, 3),
            "load_s": round(handle.load_s, 3),
            "device": handle.device,
            "backend": settings.backend if spec.kind == "lm_eval" else "hf",
            "threads": settings.threads if handle.device == "cpu" else None,
        }
        write_json(out, rec)
        log.info(
            "model %s: %s score %s (%s), %d items, %.1f s",
            model, spec.name, rec["score"], rec["score_kind"], rec["items_used"], rec["wall_s"],
        )
        records.append(rec)
    return records


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench_run.py",
        description=(
            "Run upstream benchmarks (lm-eval tasks or local code tasks) for one model and "
            "write results/benchmarks/{model}/{task}.json per benchmark."
        ),
    )
    p.add_argument("--model", required=True, help="model name (row of the model table)")
    p.add_argument("--model-ref", required=True, help="model folder or hub id to load")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="allow the model's own code (only when its table row opts in)")
    p.add_argument("--settings", required=True,
                   help="JSON: mode, seed, backend, device, dtype, batch_size, max_length, "
                        "apply_chat_template, bootstrap_iters, sandbox")
    p.add_argument("--spec", action="append", required=True,
                   help="JSON of one benchmark spec (repeat for several benchmarks)")
    p.add_argument("--out-dir", required=True,
                   help="folder for the results: <out-dir>/<benchmark>.json per --spec")
    p.add_argument("--screen-mode", choices=["small", "full"], default=None,
                   help="also run --screen-task benchmarks in this mode (screening check), "
                        "reusing the loaded model")
    p.add_argument("--screen-task", action="append", default=[],
                   help="benchmark (one of the --spec names) to rerun in --screen-mode")
    p.add_argument("--screen-out-dir", default=None,
                   help="folder for the --screen-mode results")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    settings = Settings.from_dict(json.loads(args.settings))
    specs = [TaskSpec.from_dict(json.loads(s)) for s in args.spec]
    outs = [Path(args.out_dir) / f"{s.name}.json" for s in specs]
    handle = ModelHandle(args.model_ref, args.trust_remote_code, settings, args.model)
    run_benchmarks(args.model, args.model_ref, specs, outs, settings, args.trust_remote_code,
                   handle)
    if args.screen_task:
        if not args.screen_mode or not args.screen_out_dir:
            raise SystemExit("--screen-task needs --screen-mode and --screen-out-dir")
        by_name = {s.name: s for s in specs}
        unknown = [t for t in args.screen_task if t not in by_name]
        if unknown:
            raise SystemExit(f"--screen-task {unknown} not among the --spec benchmarks")
        screen = [by_name[t] for t in args.screen_task]
        run_benchmarks(args.model, args.model_ref, screen,
                       [Path(args.screen_out_dir) / f"{s.name}.json" for s in screen],
                       replace(settings, mode=args.screen_mode), args.trust_remote_code, handle)
    return 0
