"""Command-line arguments and inputs of the benchmark rules (``workflow/rules/benchmarks.smk``).

Light on purpose: no ``lm_eval``, no ``torch``, no network at DAG time.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from rmselect.bench.spec import BenchConfig, task_inputs
from rmselect.config import Study
from rmselect.dag.common import model_flags, shell_flags, shell_json

#: Global fields of ``benchmarks:`` that a run job receives in ``--settings``.
SETTINGS_KEYS = (
    "seed",
    "backend",
    "device",
    "dtype",
    "batch_size",
    "max_length",
    "apply_chat_template",
    "bootstrap_iters",
    "threads",
    "sandbox",
)


def settings_arg(bench: BenchConfig, mode: str) -> str:
    """``--settings`` JSON (shell-quoted) for a run in ``mode``."""
    out: dict[str, Any] = {k: getattr(bench, k) for k in SETTINGS_KEYS}
    out["sandbox"] = dict(out["sandbox"])
    out["mode"] = mode
    return shell_json(out)


def specs_arg(bench: BenchConfig, tasks: Sequence[str]) -> str:
    """``--spec JSON`` per benchmark (shell-quoted)."""
    return " ".join(f"--spec {shell_json(bench.tasks[t].to_dict())}" for t in tasks)


def task_files(bench: BenchConfig, tasks: Sequence[str]) -> list[str]:
    """Local task folders and data files the benchmarks read (Snakemake inputs)."""
    return sorted({f for t in tasks for f in task_inputs(bench.tasks[t])})


def run_flags(study: Study, name: str) -> str:
    """``--model-ref`` (and ``--trust-remote-code`` when the table row opts in) of bench_run.py.

    No ``--chat-template``: lm-eval applies the tokenizer's own template.
    """
    flags = ["--model-ref", study.model_path(name)]
    return shell_flags(flags + model_flags(study.model(name), chat_template=False))


def presence_domains(config: Mapping[str, Any]) -> list[str]:
    """Presence domain names when the presence stage is configured (list or mapping)."""
    d = (config.get("presence") or {}).get("domains") or []
    if isinstance(d, Mapping):
        return list(d)
    return [x["name"] if isinstance(x, Mapping) else str(x) for x in d]


def models_arg(study: Study, names: Sequence[str]) -> str:
    """``--models`` JSON for the feature table: source, params_b, tokens_t per model."""
    out = {
        m: {
            "source": study.model(m).source,
            "params_b": study.model(m).params_b,
            "tokens_t": study.model(m).tokens_t,
        }
        for m in names
    }
    return shell_json(out, sort_keys=False)


def tokens_flag(study: Study, name: str) -> str:
    """``--tokens-t T`` of bench_params.py when the table row gives pre-training tokens."""
    t = study.model(name).tokens_t
    return f"--tokens-t {t}" if t is not None else ""


def screen_args(mode: str, tasks: Sequence[str], name: str) -> str:
    """What bench_model_screen adds to bench_model's command line (leading space included):
    rerun ``tasks`` in ``mode`` into ``results/screening/{mode}/{name}`` in the same process."""
    screen = " ".join(f"--screen-task {t}" for t in tasks)
    return f" --screen-mode {mode} {screen} --screen-out-dir results/screening/{mode}/{name}"


def features_flags(bench: BenchConfig, domains: Sequence[str]) -> str:
    """features_table's settings: the tasks, which of them run, aggregates, published scores
    and the presence domains (each a JSON argument; ``features_table.py --help``)."""
    return " ".join(
        [
            f"--tasks {shell_json(list(bench.tasks))}",
            f"--run-tasks {shell_json(bench.run_tasks)}",
            f"--aggregates {shell_json(bench.aggregates, sort_keys=False)}",
            f"--published {shell_json(bench.published, sort_keys=False)}",
            f"--presence-domains {shell_json(list(domains))}",
        ]
    )
