"""The ``benchmarks:`` section of the study config as typed, validated specs.

This module is imported by the Snakefile at DAG-build time, so it must stay light: no
``lm_eval``, no ``torch``, no network. Field-by-field documentation lives in
``config/schemas/config.schema.yaml`` (section ``benchmarks``); the JSON schema there checks
types and holds every default (read through rmselect.config.section_settings); this module
checks what a schema cannot (e.g. that a code task has its data file).

A benchmark (a *feature* of the feature table) is one entry of ``benchmarks.tasks``::

    tasks:
      hellaswag: {fewshot: 10, metric: acc_norm, n: 200}
      humaneval: {task: rms_humaneval, include_path: workflow/rmselect/bench/lm_tasks,
                  metric: pass@1, n: 50}
      toy_code:  {kind: code, data: results/toy/data/code_problems.jsonl, n: 10}

``kind: lm_eval`` (default) runs the lm-eval task ``task`` (default: the key) from the
registry or from ``include_path``; ``kind: code`` runs a local HumanEval-schema JSONL file
through :mod:`rmselect.bench.code` and the sandbox.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from rmselect.config import ConfigError, fill_defaults, schema_node, section_settings

MODES = ("small", "full")
KINDS = ("lm_eval", "code")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")

#: The sandbox limits every job's ``--settings`` JSON names, given or not (their values are
#: the schema's defaults). The other limits (fsize_mb, nproc) reach a job only when the config
#: gives them, as before issue 18, so that rendered commands did not change; the schema's
#: defaults of those equal :class:`rmselect.bench.sandbox.Limits`', which apply then.
SANDBOX_COMMAND_KEYS = ("timeout_s", "cpu_s", "mem_mb")
#: Where the schema declares one ``benchmarks.tasks`` entry (and its defaults).
_TASK_SCHEMA = ("properties", "benchmarks", "properties", "tasks", "additionalProperties")


@dataclass(frozen=True)
class TaskSpec:
    """One benchmark: how to run it and how to read its score."""

    name: str
    kind: str = "lm_eval"
    #: lm-eval task or group name (``kind: lm_eval``).
    task: str = ""
    include_path: str | None = None
    fewshot: int | None = None
    #: Metric names tried in order for each leaf subtask (``acc`` or ``acc,none`` form).
    metrics: tuple[str, ...] = ("acc",)
    #: Small-mode items per leaf subtask.
    n: int = 100
    #: Raw metric scale: 1 for fractions, 100 for metrics reported in percent (squadv2).
    scale: float = 1.0
    #: ``None``: look the baseline up (table, then samples); a float: use it;
    #: ``"none"``: the task has no random baseline (normalised score stays empty).
    baseline: float | str | None = None
    run: bool = True
    higher_is_better: bool = True
    gen_kwargs: Mapping[str, Any] = field(default_factory=dict)
    #: Code tasks: JSONL file (HumanEval schema), generation length and stop strings.
    data: str | None = None
    max_new_tokens: int = 64
    #: Code tasks: generate from the prompt without trailing whitespace (token healing).
    heal_prompt: bool = True
    stop: tuple[str, ...] = ("\n\n", "\ndef ", "\nclass ", "\nif ", "\nprint")

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["metrics"] = list(self.metrics)
        out["stop"] = list(self.stop)
        out["gen_kwargs"] = dict(self.gen_kwargs)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TaskSpec":
        d = dict(d)
        d["metrics"] = tuple(d.get("metrics", ("acc",)))
        d["stop"] = tuple(d.get("stop", cls.stop))
        return cls(**d)


@dataclass(frozen=True)
class BenchConfig:
    """The whole ``benchmarks:`` section with defaults filled in."""

    mode: str
    seed: int
    backend: str
    device: str
    dtype: str
    batch_size: int | str
    max_length: int | None
    apply_chat_template: bool
    jobs: str
    bootstrap_iters: int
    params_tolerance: float
    threads: int
    sandbox: Mapping[str, Any]
    tasks: Mapping[str, TaskSpec]
    screening: Mapping[str, Any]
    published: Mapping[str, Any] | None
    aggregates: Mapping[str, list[str]]

    @property
    def run_tasks(self) -> list[str]:
        """Benchmarks that get lm-eval/code jobs (``run: false`` ones are imported only)."""
        return [n for n, t in self.tasks.items() if t.run]

    @property
    def screening_enabled(self) -> bool:
        return bool(self.screening.get("enabled"))

    def other_mode(self) -> str:
        return "full" if self.mode == "small" else "small"


def _task(name: str, raw: Mapping[str, Any] | None) -> TaskSpec:
    def where(sub: str = "") -> str:
        return f"config: field 'benchmarks.tasks.{name}{sub}'"

    if not _NAME.match(name):
        raise ConfigError(f"{where()}: benchmark names may use letters, digits, '.', '_', '-'")
    raw = fill_defaults(raw or {}, schema_node(*_TASK_SCHEMA))
    kind = raw["kind"]
    if kind not in KINDS:
        raise ConfigError(f"{where('.kind')}: {kind!r} is not one of {', '.join(KINDS)}")
    metric = raw.get("metric", "pass@1" if kind == "code" else "acc")
    metrics = tuple([metric] if isinstance(metric, str) else metric)
    if not metrics:
        raise ConfigError(f"{where('.metric')}: give at least one metric name")
    baseline = raw.get("baseline")
    if isinstance(baseline, str) and baseline != "none":
        raise ConfigError(f"{where('.baseline')}: {baseline!r} must be a number or 'none'")
    if isinstance(baseline, (int, float)) and not 0 <= float(baseline) < 1:
        raise ConfigError(f"{where('.baseline')}: {baseline} must lie in [0, 1)")
    n = int(raw["n"])
    if n < 1:
        raise ConfigError(f"{where('.n')}: {n} must be at least 1")
    if kind == "code" and not raw.get("data"):
        raise ConfigError(f"{where('.data')}: a code benchmark needs its JSONL file (HumanEval schema)")
    spec = TaskSpec(
        name=name,
        kind=kind,
        task=str(raw.get("task", name)),
        include_path=raw.get("include_path"),
        fewshot=raw.get("fewshot"),
        metrics=metrics,
        n=n,
        scale=float(raw["scale"]),
        baseline=float(baseline) if isinstance(baseline, (int, float)) else baseline,
        run=bool(raw["run"]),
        higher_is_better=bool(raw["higher_is_better"]),
        gen_kwargs=dict(raw.get("gen_kwargs", {}) or {}),
        data=raw.get("data"),
        max_new_tokens=int(raw["max_new_tokens"]),
        heal_prompt=bool(raw["heal_prompt"]),
        stop=tuple(raw.get("stop", TaskSpec.stop)),
    )
    return spec


def bench_config(config: Mapping[str, Any]) -> BenchConfig:
    """Read ``config['benchmarks']`` (the whole study config is passed for the seed)."""
    given = config.get("benchmarks") or {}
    # Every default is the schema's (section_settings: nested objects and tasks included).
    raw = vals = section_settings(config, "benchmarks")
    if vals["mode"] not in MODES:
        raise ConfigError(f"config: field 'benchmarks.mode': {vals['mode']!r} is not small|full")
    if vals["jobs"] not in ("per_task", "per_model"):
        raise ConfigError(
            f"config: field 'benchmarks.jobs': {vals['jobs']!r} is not per_task|per_model"
        )
    if vals["backend"] not in ("hf", "vllm"):
        raise ConfigError(f"config: field 'benchmarks.backend': {vals['backend']!r} is not hf|vllm")
    tasks = {name: _task(name, t) for name, t in (raw.get("tasks") or {}).items()}
    aggregates = {k: list(v) for k, v in (raw.get("aggregates") or {}).items()}
    for agg, parts in aggregates.items():
        if agg in tasks:
            raise ConfigError(
                f"config: field 'benchmarks.aggregates.{agg}': name clashes with a benchmark"
            )
    screening = dict(raw.get("screening") or {})
    for key in ("models", "tasks"):
        if not isinstance(screening.get(key, []) or [], list):
            raise ConfigError(f"config: field 'benchmarks.screening.{key}': give a list")
    run = [n for n, t in tasks.items() if t.run]
    bad = [t for t in screening.get("tasks") or [] if t not in run]
    if bad:
        raise ConfigError(
            f"config: field 'benchmarks.screening.tasks': {', '.join(bad)} not among the run "
            "benchmarks (benchmarks.tasks with run: true)"
        )
    published = raw.get("published") or None
    if published is not None:
        for key in ("path", "columns", "name_column"):
            if key not in published:
                raise ConfigError(f"config: field 'benchmarks.published.{key}' is missing")
    return BenchConfig(
        mode=vals["mode"],
        seed=int(raw.get("seed", config.get("seed", 0))),
        backend=vals["backend"],
        device=str(vals["device"]),
        dtype=str(vals["dtype"]),
        batch_size=vals["batch_size"],
        max_length=vals["max_length"],
        apply_chat_template=bool(vals["apply_chat_template"]),
        jobs=vals["jobs"],
        bootstrap_iters=int(vals["bootstrap_iters"]),
        params_tolerance=float(vals["params_tolerance"]),
        threads=int(vals["threads"]),
        sandbox={
            **{k: raw["sandbox"][k] for k in SANDBOX_COMMAND_KEYS},
            **(given.get("sandbox") or {}),
        },
        tasks=tasks,
        screening=screening,
        published=published,
        aggregates=aggregates,
    )


def task_inputs(spec: TaskSpec) -> list[str]:
    """Local files/folders a job of ``spec`` reads (Snakemake inputs; hub data resolve at run)."""
    out: list[str] = []
    if spec.include_path:
        out.append(spec.include_path)
    if spec.data:
        out.append(spec.data)
    return out
