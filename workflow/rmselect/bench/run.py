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

Layout: the settings and the model handle in :mod:`rmselect.bench.handle`, lm-eval tasks in
:mod:`rmselect.bench.lm_eval_task`, code tasks in :mod:`rmselect.bench.code_task`; this module
is the driver and the command line.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from rmselect import cli
from rmselect.bench.code_task import run_code
from rmselect.bench.handle import ModelHandle, Settings, resolve_device  # noqa: F401
from rmselect.bench.lm_eval_task import run_lm_eval
from rmselect.bench.spec import TaskSpec
from rmselect.cli import opt
from rmselect.io import write_json

log = logging.getLogger("rmselect.bench")


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


@dataclass(kw_only=True)
class BenchArgs:
    """Run upstream benchmarks (lm-eval tasks or local code tasks) for one model and write
    results/benchmarks/{model}/{task}.json per benchmark."""

    model: str = opt("model name (row of the model table)")
    model_ref: str = opt("model folder or hub id to load")
    trust_remote_code: bool = opt("allow the model's own code (only when its table row opts in)",
                                 default=False)
    settings: dict[str, Any] = opt(
        "JSON: mode, seed, backend, device, dtype, batch_size, max_length, "
        "apply_chat_template, bootstrap_iters, sandbox", json=True)
    spec: list[dict[str, Any]] = opt(
        "JSON of one benchmark spec (repeat for several benchmarks)", repeat=True, json=True)
    out_dir: Path = opt("folder for the results: <out-dir>/<benchmark>.json per --spec")
    screen_mode: str | None = opt(
        "also run --screen-task benchmarks in this mode (screening check), reusing the "
        "loaded model", default=None, choices=["small", "full"])
    screen_task: list[str] = opt(
        "benchmark (one of the --spec names) to rerun in --screen-mode", default=[], repeat=True)
    screen_out_dir: Path | None = opt("folder for the --screen-mode results", default=None)


def build_parser() -> argparse.ArgumentParser:
    return cli.build_parser(BenchArgs, prog="bench_run.py")


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(BenchArgs, run_model, argv, prog="bench_run.py")


def run_model(args: BenchArgs) -> int:
    """Load the model once and run every benchmark of the call (and the screening reruns)."""
    settings = Settings.from_dict(args.settings)
    specs = [TaskSpec.from_dict(s) for s in args.spec]
    outs = [args.out_dir / f"{s.name}.json" for s in specs]
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
                       [args.screen_out_dir / f"{s.name}.json" for s in screen],
                       replace(settings, mode=args.screen_mode), args.trust_remote_code, handle)
    return 0
