"""Evaluate one reward model on one or more benchmarks (``workflow/scripts/eval_rm.py``).

One call loads the RM (model and tokenizer) once and scores it on every benchmark it is
given: repeat ``--benchmark NAME --data JSON --out-json PATH --out-scores PATH`` once per
benchmark (the i-th ``--data``, ``--out-json`` and ``--out-scores`` belong to the i-th
``--benchmark``). Each benchmark's numbers are exactly those of a single-benchmark call with
the same settings. Several RMs can share one call (``eval.jobs: per_model``, e.g. a model's
BT and regression RMs): complete argument sets separated by ``--next-rm`` run one after
another in one process, so the imports (torch, transformers: seconds, more than scoring a
toy RM takes) are paid once; each set's numbers are exactly those of its own call. For every
benchmark (of every RM) it writes, atomically:

- ``--out-scores`` (Parquet): per example ``id, subset, score_chosen, score_rejected,
  correct`` plus benchmark-specific columns (:func:`rmselect.eval.metrics.per_example`);
- ``--out-json``: per-subset scores and counts, per-section scores with bootstrap 95%
  intervals, the overall score (all 0-100), the subsets missing or ignored, and provenance
  (model, objective, RM path, selected lr/step from ``selected.json``, data source,
  counts, scorer settings, wall time).

Every benchmark's data is loaded and validated before the RM is loaded, and the outputs
are written only after every benchmark of every RM has been scored: nothing is written when
loading, validation or scoring of any of them fails.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from rmselect import cli
from rmselect.cli import opt
from rmselect.conventions import ATTN_IMPLEMENTATIONS
from rmselect.eval.benchmarks import BENCHMARKS, load_benchmark
from rmselect.eval.metrics import WEIGHT_MODES, ScoreOptions, per_example, score
from rmselect.eval.settings import NEXT_RM
from rmselect.io import write_json, write_table

#: Keys of a benchmark config entry that are options, not data-set fields.
ENTRY_OPTIONS = (
    "ignore_unknown_subsets",
    "include_prior_sets",
    "prior_sets",
    "weights",
    "derive_from",
    "limit_per_subset",
)


@dataclass(kw_only=True)
class EvalArgs:
    """Score a reward model on RewardBench v1, RewardBench 2 and/or RM-Bench and write, per
    benchmark, per-example scores (Parquet) and benchmark scores with bootstrap CIs (JSON). The
    RM is loaded once for all benchmarks of the call.

    Several benchmarks in one call: repeat the four per-benchmark options, giving each
    once per --benchmark, in the same order, e.g. --benchmark rewardbench --data A --out-json
    A.json --out-scores A.parquet --benchmark rmbench --data B --out-json B.json --out-scores
    B.parquet; the i-th --data, --out-json and --out-scores belong to the i-th --benchmark.
    Every other option applies to all benchmarks. Several RMs in one call (one process;
    imports paid once): separate complete argument sets with --next-rm."""

    # per benchmark (give each once per --benchmark, in the same order)
    benchmark: list[str] = opt(
        "benchmark to score (repeat it, with its --data, --out-json and --out-scores,"
        " per benchmark)", repeat=True, choices=BENCHMARKS)
    data: list[str] = opt(
        "benchmark config entry as JSON: {\"path\": file} or {\"hub\": id, \"split\": s}"
        " plus options ignore_unknown_subsets, include_prior_sets, prior_sets, weights,"
        " limit_per_subset", repeat=True)
    out_json: list[str] = opt("benchmark scores (JSON)", repeat=True)
    out_scores: list[str] = opt("per-example scores (Parquet)", repeat=True)
    # every benchmark of the call
    rm: str = opt("RM folder (AutoModelForSequenceClassification) or hub id")
    model: str = opt("model name (table row) for provenance")
    objective: str = opt("bt | regression (empty for hub RMs)", default="")
    selected: str | None = opt("selected.json of the training stage (lr, step)", default=None)
    weights: str | None = opt("merge weights as a JSON list (default: rmselect.json)",
                              default=None)
    chat_template: str | None = opt("chat template override (file or Jinja)", default=None)
    trust_remote_code: bool = opt("only when the model row opts in", default=False)
    attn_implementation: str = opt(
        "attention kernel (the model row's column): auto = eager where the architecture "
        "needs it (Gemma-2), else sdpa", default="auto", choices=list(ATTN_IMPLEMENTATIONS))
    batch_size: int = opt("max rows per batch", default=64)
    max_tokens: int = opt("max padded tokens per batch", default=32768)
    max_length: int = opt("truncate texts to this many tokens", default=2048)
    dtype: str = opt("auto | float32 | bfloat16 | float16", default="auto")
    device: str | None = opt("cuda | cpu (default: cuda when available)", default=None)
    n_boot: int = opt("bootstrap resamples (0: no CIs)", default=1000)
    seed: int = opt("bootstrap seed (the same for every benchmark)", default=0)
    limit_per_subset: int | None = opt(
        "first N rows per subset, for every benchmark (debug; a limit_per_subset in a"
        " benchmark's --data wins)", default=None)


def build_parser() -> argparse.ArgumentParser:
    """The parser of one argument set (:class:`EvalArgs`)."""
    return cli.build_parser(EvalArgs, prog="eval_rm.py")


@dataclass
class BenchmarkJob:
    """One benchmark of a call: its config entry and output paths."""

    benchmark: str
    entry: dict[str, Any]
    out_json: str
    out_scores: str
    limit_per_subset: int | None


def benchmark_jobs(args: EvalArgs) -> list[BenchmarkJob]:
    """Pair the repeated per-benchmark options; check the data JSON and the output paths."""
    names, datas = list(args.benchmark), list(args.data)
    jsons, scores = list(args.out_json), list(args.out_scores)
    counts = {"--benchmark": len(names), "--data": len(datas), "--out-json": len(jsons),
              "--out-scores": len(scores)}  # fmt: skip
    if len(set(counts.values())) != 1:
        raise ValueError(
            "give --data, --out-json and --out-scores once per --benchmark; got "
            + ", ".join(f"{k} x{v}" for k, v in counts.items())
        )
    outs = [str(Path(o)) for o in jsons + scores]
    dup = sorted({o for o in outs if outs.count(o) > 1})
    if dup:
        raise ValueError(f"output path(s) given more than once: {', '.join(dup)}")
    jobs = []
    for name, data, out_json, out_scores in zip(names, datas, jsons, scores):
        try:
            entry = json.loads(data)
        except json.JSONDecodeError as err:
            raise ValueError(f"--data of {name}: not JSON ({err})") from None
        if not isinstance(entry, dict):
            raise ValueError(f"--data of {name} must be a JSON object")
        weights_mode = entry.get("weights", "official")
        if weights_mode not in WEIGHT_MODES:
            raise ValueError(
                f"eval.benchmarks.{name}.weights: {weights_mode!r}; use {', '.join(WEIGHT_MODES)}"
            )
        limit = entry.get("limit_per_subset") or args.limit_per_subset
        jobs.append(BenchmarkJob(name, entry, out_json, out_scores, limit))
    return jobs


def read_selected(path: str | None) -> dict[str, Any]:
    """``lr, step, val_accuracy`` (and the selected weights) from the training stage."""
    if not path:
        return {}
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: selected.json not found (run the rm stage first)")
    sel = json.loads(p.read_text())
    return {k: sel.get(k) for k in ("seed", "lr", "step", "val_accuracy", "weights") if k in sel}


#: A scored benchmark waiting to be written: its job, per-example frame and result JSON.
Scored = tuple[BenchmarkJob, Any, dict[str, Any]]


def write_scored(done: Sequence[Scored]) -> None:
    """Write each scored benchmark's two files (each atomically)."""
    for job, per_ex, result in done:
        write_table(job.out_scores, per_ex)
        write_json(job.out_json, result)


def score_rm(args: EvalArgs, jobs: Sequence[BenchmarkJob]) -> list[Scored]:
    """Load and check every benchmark's data (``jobs``: :func:`benchmark_jobs` of ``args``),
    load the RM, score it; writes nothing."""
    from rmselect.eval.scorer import load_reward_model

    # Every benchmark's data first: a bad set fails before the (slow) model load.
    loaded = []
    for job in jobs:
        t0 = time.perf_counter()
        data = load_benchmark(
            job.benchmark,
            job.entry,
            ignore_unknown_subsets=bool(job.entry.get("ignore_unknown_subsets", False)),
            include_prior_sets=bool(job.entry.get("include_prior_sets", False)),
            prior_sets=job.entry.get("prior_sets"),
            limit_per_subset=job.limit_per_subset,
        )
        loaded.append((job, data, time.perf_counter() - t0))
    selected = read_selected(args.selected)
    t0 = time.perf_counter()
    rm = load_reward_model(
        args.rm,
        trust_remote_code=args.trust_remote_code,
        attn_implementation=args.attn_implementation,
        weights=json.loads(args.weights) if args.weights else None,
        template_override=args.chat_template,
        max_length=args.max_length,
        dtype=args.dtype,
        device=args.device,
    )
    load_s = time.perf_counter() - t0
    names = [job.benchmark for job in jobs]
    return [
        (job, *score_benchmark(args, rm, job, data, selected, data_s, load_s, names))
        for job, data, data_s in loaded
    ]


def score_benchmark(
    args: EvalArgs,
    rm: Any,
    job: BenchmarkJob,
    data: Any,
    selected: dict[str, Any],
    data_s: float,
    load_s: float,
    job_benchmarks: list[str],
) -> tuple[Any, dict[str, Any]]:
    """One benchmark with an already loaded RM: (per-example frame, result JSON)."""
    from rmselect.eval.scorer import encode_items, score_ids

    t0 = time.perf_counter()
    sys.stderr.write(
        f"rmselect eval: {job.benchmark} ({data.source}): {data.n_examples} examples,"
        f" {data.items.height} texts; RM {args.rm} ({rm.num_labels} output(s), {rm.dtype},"
        f" {rm.device})\n"
    )
    ids, trunc = encode_items(rm, data.items["prompt"].to_list(), data.items["response"].to_list())
    res = score_ids(rm, ids, batch_size=args.batch_size, max_tokens=args.max_tokens)
    per_ex = per_example(data, res.rewards)
    scores = score(
        job.benchmark,
        per_ex,
        ScoreOptions(
            weights=job.entry.get("weights", "official"),
            include_prior_sets=data.include_prior_sets,
            n_boot=args.n_boot,
            seed=args.seed,
        ),
    )
    import torch
    import transformers

    result = {
        "benchmark": job.benchmark,
        "scale": "0-100",
        "model": args.model,
        "objective": args.objective or None,
        # the RM's training seed (rm.seeds; None for an external RM)
        "rm_seed": selected.get("seed"),
        "overall": scores["overall"],
        "sections": scores["sections"],
        "subsets": scores["subsets"],
        "missing_subsets": data.missing_subsets,
        "ignored_subsets": data.ignored_subsets,
        "weights": scores["weights"],
        "bootstrap": scores["bootstrap"],
        "provenance": {
            "model": args.model,
            "objective": args.objective or None,
            "rm_path": args.rm,
            "source": "trained" if args.selected else "external",
            "selected": selected or None,
            "merge_weights": None if rm.weights is None else rm.weights.tolist(),
            "num_labels": rm.num_labels,
            "reward": (
                "score head on the backbone's last hidden state at the last real token"
                " (attention mask); regression: outputs . merge weights"
            ),
            "chat_template": "override" if args.chat_template else "tokenizer or fallback",
            "data_source": data.source,
            "n_examples": data.n_examples,
            "limit_per_subset": job.limit_per_subset,
            "n_texts": data.items.height,
            "n_truncated": trunc.truncated,
            "n_response_cut": trunc.response_cut,
            "max_length": rm.max_length,
            "dtype": str(rm.dtype).replace("torch.", ""),
            "device": str(rm.device),
            "batch_size": args.batch_size,
            "max_tokens": args.max_tokens,
            "n_batches": res.n_batches,
            "padding_fraction": 1 - float(res.n_tokens.sum()) / max(res.padded_tokens, 1),
            "scoring_wall_s": res.wall_s,
            # this benchmark's data load, encoding, scoring and metrics (not the RM load)
            "wall_s": data_s + time.perf_counter() - t0,
            # the RM load, once per call and shared by job_benchmarks
            "model_load_s": load_s,
            "job_benchmarks": job_benchmarks,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "created_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    }
    ov = scores["overall"]
    sys.stderr.write(
        f"rmselect eval: {args.model} {args.objective} {job.benchmark}: overall"
        f" {_fmt(ov['score'])} [{_fmt(ov['lo'])}, {_fmt(ov['hi'])}]; "
        + ", ".join(f"{k} {_fmt(v['score'])}" for k, v in scores["sections"].items())
        + "\n"
    )
    return per_ex, result


def _fmt(x: float | None) -> str:
    return "NA" if x is None else f"{x:.2f}"


def split_calls(argv: Sequence[str]) -> list[list[str]]:
    """The argument sets of a call: ``argv`` cut at every :data:`NEXT_RM`."""
    sets: list[list[str]] = [[]]
    for a in argv:
        if a == NEXT_RM:
            sets.append([])
        else:
            sets[-1].append(a)
    return sets


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    sets = split_calls(argv)
    if len(sets) > 1 and not all(sets):
        build_parser().error(f"{NEXT_RM} separates complete argument sets; one of them is empty")
    calls = [cli.parse(EvalArgs, s, prog="eval_rm.py") for s in sets]
    try:
        # Every set's options and outputs are checked before the first RM loads.
        jobs = [benchmark_jobs(args) for args in calls]
        outs = [str(Path(p)) for js in jobs for j in js for p in (j.out_json, j.out_scores)]
        dup = sorted({o for o in outs if outs.count(o) > 1})
        if dup:
            raise ValueError(f"output path(s) given by more than one RM: {', '.join(dup)}")
        # Written only once every RM of the call is scored: a failure writes nothing.
        done = [score_rm(args, js) for args, js in zip(calls, jobs)]
        for scored in done:
            write_scored(scored)
    except (ValueError, FileNotFoundError, OSError) as err:
        sys.stderr.write(f"rmselect eval: error: {err}\n")
        return 1
    return 0
