"""Command-line arguments of the benchmark rules, built at DAG time (kept out of the .smk file).

Light on purpose: imported by ``workflow/rules/benchmarks.smk`` while Snakemake builds the
DAG, so no ``lm_eval``, no ``torch``, no network.
"""

from __future__ import annotations

import json
import shlex
from typing import Any, Mapping, Sequence

from rmselect.bench.spec import BenchConfig, task_inputs

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
    return shlex.quote(json.dumps(out, sort_keys=True))


def specs_arg(bench: BenchConfig, tasks: Sequence[str]) -> str:
    """``--spec JSON`` per benchmark (shell-quoted)."""
    return " ".join(
        f"--spec {shlex.quote(json.dumps(bench.tasks[t].to_dict(), sort_keys=True))}"
        for t in tasks
    )


def task_files(bench: BenchConfig, tasks: Sequence[str]) -> list[str]:
    """Local task folders and data files the benchmarks read (Snakemake inputs)."""
    return sorted({f for t in tasks for f in task_inputs(bench.tasks[t])})


def model_flags(study: Any, name: str) -> str:
    """``--model-ref`` (and ``--trust-remote-code`` when the table row opts in)."""
    m = study.model(name)
    flags = f"--model-ref {shlex.quote(study.model_path(name))}"
    return f"{flags} --trust-remote-code" if m.trust_remote_code else flags


def presence_domains(config: Mapping[str, Any]) -> list[str]:
    """Presence domain names when the presence stage is configured (list or mapping)."""
    d = (config.get("presence") or {}).get("domains") or []
    if isinstance(d, Mapping):
        return list(d)
    return [x["name"] if isinstance(x, Mapping) else str(x) for x in d]


def models_arg(study: Any, names: Sequence[str]) -> str:
    """``--models`` JSON for the feature table: source, params_b, tokens_t per model."""
    out = {
        m: {
            "source": study.model(m).source,
            "params_b": study.model(m).params_b,
            "tokens_t": study.model(m).tokens_t,
        }
        for m in names
    }
    return shlex.quote(json.dumps(out))


def json_arg(obj: Any) -> str:
    """Any JSON value as one shell-quoted argument (``''`` for None)."""
    return shlex.quote("" if obj is None else json.dumps(obj))


def text_arg(text: str) -> str:
    """A plain string as one shell-quoted argument."""
    return shlex.quote(str(text))
