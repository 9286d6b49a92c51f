"""The ``eval`` config section, resolved with defaults at DAG-build time.

``workflow/rules/eval.smk`` calls :func:`eval_settings` once; every field and its default is
written once, in ``config/schemas/config.schema.yaml`` (section ``eval``). Errors are
:class:`rmselect.config.ConfigError` lines naming the field.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import polars as pl

from rmselect.config import ConfigError, ModelSpec, Study, section_settings
from rmselect.datasets_io import entry_arg
from rmselect.eval.benchmarks import BENCHMARKS, PRIMARY
from rmselect.eval.table import PRECEDENCE, ResultsImportError, evaluated_pairs, read_import

#: eval_rm job layouts (``eval.jobs``).
JOB_LAYOUTS = ("per_rm", "per_model")
#: Separates the complete argument sets of several RMs scored in one eval_rm.py call.
NEXT_RM = "--next-rm"
#: Where derived toy sets go (rule eval_toy_sets).
DERIVED_PATH = "results/eval/data/{benchmark}.jsonl"


@dataclass
class EvalSettings:
    """Resolved ``eval`` section."""

    benchmarks: dict[str, dict[str, Any]]
    derived: dict[str, dict[str, Any]]
    options: dict[str, Any]
    pairs: list[tuple[str, str]]
    imported: pl.DataFrame | None = None
    import_path: str | None = None
    objectives: list[str] = field(default_factory=list)
    #: Training seeds (``rm.seeds``): each evaluated (model, objective) is one RM per seed.
    seeds: list[int] = field(default_factory=lambda: [0])

    @property
    def rms(self) -> list[tuple[str, str, int]]:
        """Every RM the stage scores: ``(model, objective, seed)``."""
        return [(m, o, s) for m, o in self.pairs for s in self.seeds]

    @staticmethod
    def json_path(benchmark: str, objective: str, model: str, seed: int | str) -> str:
        """One RM's result on one benchmark (``.scores.parquet`` beside it)."""
        return f"results/eval/{benchmark}/{objective}/{model}/seed{seed}.json"

    def _job_rms(self, per_model: bool) -> list[tuple[str, Any]]:
        """(objective, seed) of an eval_rm job's RMs; wildcards for a one-RM job."""
        if per_model:
            return [(o, s) for o in self.objectives for s in self.seeds]
        return [("{objective}", "{seed}")]

    def job_outputs(self, suffix: str, per_model: bool = False) -> list[str]:
        """An eval_rm job's output patterns (``.json`` or ``.scores.parquet``), every benchmark.

        One job per RM leaves ``{objective}``, ``{model}`` and ``{seed}`` as wildcards; a
        per-model job (``eval.jobs: per_model``) lists every objective and seed and leaves only
        ``{model}``.
        """
        rms = self._job_rms(per_model)
        return [
            self.json_path(b, o, "{model}", s).removesuffix(".json") + suffix
            for b in self.benchmarks
            for o, s in rms
        ]

    def job_inputs(self, leaf: str, per_model: bool = False) -> list[str]:
        """An eval_rm job's RM inputs: each RM's ``final`` folder or ``selected.json``."""
        rms = self._job_rms(per_model)
        return [f"results/rm/{o}/{{model}}/seed{s}/{leaf}" for o, s in rms]

    def data_files(self, benchmark: str) -> list[str]:
        """Local files a benchmark's jobs read (empty for hub data sets)."""
        entry = self.benchmarks[benchmark]
        files = [entry["path"]] if "path" in entry else []
        prior = entry.get("prior_sets") or {}
        if entry.get("include_prior_sets") and "path" in prior:
            files.append(prior["path"])
        return files

    def job_data_files(self) -> list[str]:
        """Local files one eval_rm job reads: those of every benchmark, each once."""
        return list(dict.fromkeys(f for b in self.benchmarks for f in self.data_files(b)))

    def benchmark_args(self, jsons: Sequence[str], scores: Sequence[str]) -> str:
        """eval_rm.py's per-benchmark options for one job scoring every benchmark.

        One ``--benchmark NAME --data JSON --out-json PATH --out-scores PATH`` group per
        configured benchmark, in config order; ``jsons`` and ``scores`` are the job's
        outputs ``results/eval/{benchmark}/...`` in that order.
        """
        names = list(self.benchmarks)
        if len(jsons) != len(names) or len(scores) != len(names):
            raise ValueError(
                f"eval_rm: {len(jsons)} JSON and {len(scores)} score outputs for"
                f" {len(names)} benchmarks"
            )
        groups = []
        for name, out_json, out_scores in zip(names, jsons, scores):
            for out in (out_json, out_scores):
                if f"/{name}/" not in f"/{out}":
                    raise ValueError(f"eval_rm: output {out} is not under benchmark {name}")
            data = entry_arg(self.benchmarks[name])
            groups.append(
                f"--benchmark {name} --data {data} --out-json {shlex.quote(str(out_json))}"
                f" --out-scores {shlex.quote(str(out_scores))}"
            )
        return " ".join(groups)

    @property
    def grouped_models(self) -> list[str]:
        """Models one eval_rm job scores all RMs of (``eval.jobs: per_model``).

        Only models with every configured objective to evaluate: a model whose other
        objectives are imported keeps one job per RM, so a job's outputs never depend on
        which pairs an import covers. With one objective and one seed the two layouts are the
        same job (rule eval_rm).
        """
        if self.options["jobs"] != "per_model" or len(self.objectives) * len(self.seeds) < 2:
            return []
        by: dict[str, set[str]] = {}
        for m, o in self.pairs:
            by.setdefault(m, set()).add(o)
        return [m for m, objs in by.items() if objs == set(self.objectives)]

    def common_args(self) -> str:
        """eval_rm.py's scorer options, the same for every RM of a study."""
        o = self.options
        args = (
            f"--batch-size {o['batch_size']} --max-tokens {o['max_tokens']}"
            f" --max-length {o['max_length']} --dtype {shlex.quote(str(o['dtype']))}"
            f" --n-boot {o['n_boot']} --seed {o['seed']}"
        )
        if o["limit_per_subset"]:
            args += f" --limit-per-subset {o['limit_per_subset']}"
        return args

    def rm_args(
        self, model: str, objective: str, rm: str, selected: str,
        jsons: Sequence[str], scores: Sequence[str], flags: str = "",
    ) -> str:
        """eval_rm.py's arguments scoring one RM on every benchmark (outputs in config order)."""
        q = shlex.quote
        parts = [
            self.benchmark_args(jsons, scores),
            f"--rm {q(str(rm))} --selected {q(str(selected))} --model {q(model)}"
            f" --objective {q(objective)}",
            flags,
            self.common_args(),
        ]
        return " ".join(p for p in parts if p)

    def model_args(
        self, model: str, objectives: Sequence[tuple[str, int]], rms: Sequence[str],
        selected: Sequence[str], jsons: Sequence[str], scores: Sequence[str], flags: str = "",
    ) -> str:
        """eval_rm.py's arguments scoring several RMs of ``model`` in one call.

        ``objectives`` names each RM's objective and seed as ``(objective, seed)``; ``rms``
        and ``selected`` are in that order; ``jsons`` and ``scores`` are the job's outputs
        ``results/eval/{benchmark}/{objective}/{model}/seed{seed}...`` in any order (each
        RM's are picked by its objective and seed, then kept in config benchmark order).
        """
        sets = []
        for (obj, seed), rm, sel in zip(objectives, rms, selected, strict=True):
            tail = (obj, model, f"seed{seed}")

            def mine(path: str) -> bool:
                p = Path(path)
                return (p.parent.parent.name, p.parent.name, p.name.split(".")[0]) == tail

            js = [j for j in jsons if mine(j)]
            ss = [s for s in scores if mine(s)]
            sets.append(self.rm_args(model, obj, rm, sel, js, ss, flags))
        return f" {NEXT_RM} ".join(sets)

    @property
    def makes_table(self) -> bool:
        """Whether rm_scores.csv is built: the primary benchmark is scored or imported."""
        return bool(self.import_path) or (PRIMARY in self.benchmarks and bool(self.pairs))


def eval_settings(study: Study, trained_models: Sequence[str]) -> EvalSettings:
    # Every option's default is the schema's (section_settings); `benchmarks` is read apart.
    cfg: Mapping[str, Any] = section_settings(study.config, "eval")
    opts = {k: v for k, v in cfg.items() if k != "benchmarks"}
    if opts["seed"] is None:
        opts["seed"] = int(study.config.get("seed", 0))
    if opts["import_precedence"] not in PRECEDENCE:
        raise ConfigError(
            f"{study.source}: field 'eval.import_precedence': {opts['import_precedence']!r};"
            f" use {', '.join(PRECEDENCE)}"
        )
    if opts["jobs"] not in JOB_LAYOUTS:
        raise ConfigError(
            f"{study.source}: field 'eval.jobs': {opts['jobs']!r}; use {', '.join(JOB_LAYOUTS)}"
        )
    raw = dict(cfg.get("benchmarks", {}) or {})
    unknown = [b for b in raw if b not in BENCHMARKS]
    if unknown:
        raise ConfigError(
            f"{study.source}: field 'eval.benchmarks': unknown benchmark(s) {', '.join(unknown)};"
            f" use {', '.join(BENCHMARKS)}"
        )
    benchmarks: dict[str, dict[str, Any]] = {}
    derived: dict[str, dict[str, Any]] = {}
    for name, entry in raw.items():
        entry = dict(entry or {})
        src = entry.pop("derive_from", None)
        if src is not None:
            if name == PRIMARY or src != PRIMARY or PRIMARY not in raw:
                raise ConfigError(
                    f"{study.source}: field 'eval.benchmarks.{name}.derive_from': only"
                    f" rewardbench2 and rmbench can be derived, from a configured {PRIMARY}"
                )
            derived[name] = {"source": _data_part(raw[PRIMARY])}
            entry["path"] = DERIVED_PATH.format(benchmark=name)
        elif "path" not in entry and "hub" not in entry:
            raise ConfigError(
                f"{study.source}: field 'eval.benchmarks.{name}': give 'path', 'hub' or"
                f" 'derive_from: {PRIMARY}'"
            )
        benchmarks[name] = entry
    from rmselect.rm.rules import rm_config, seeds

    objectives = list(rm_config(study.config)["objectives"])
    imported = None
    path = opts["import"]
    if path:
        try:
            imported = read_import(path, study.model_names)
        except ResultsImportError as err:
            raise ConfigError(f"{study.source}: field 'eval.import': {err}") from None
    try:
        pairs = evaluated_pairs(
            list(trained_models),
            objectives,
            imported,
            opts["import_precedence"],
            bool(opts["train_and_evaluate"]),
        )
    except ValueError as err:
        raise ConfigError(f"{study.source}: {err}") from None
    if not benchmarks:
        pairs = []
    return EvalSettings(
        benchmarks=benchmarks,
        derived=derived,
        options=opts,
        pairs=pairs,
        imported=imported,
        import_path=path,
        objectives=objectives,
        seeds=seeds(study.config),
    )


def model_flags(spec: ModelSpec) -> str:
    """eval_rm.py flags from a model-table row: chat-template override, remote code, the
    row's attention kernel (none when the column is empty: the loader's ``auto``)."""
    flags = []
    if spec.chat_template:
        flags.append(f"--chat-template {shlex.quote(spec.chat_template)}")
    if spec.trust_remote_code:
        flags.append("--trust-remote-code")
    if spec.attn_implementation and spec.attn_implementation != "auto":
        flags.append(f"--attn-implementation {shlex.quote(spec.attn_implementation)}")
    return " ".join(flags)


def _data_part(entry: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("path", "hub", "name", "split", "data_files", "revision")
    return {k: entry[k] for k in keys if k in entry}


def covered_by_import(study: Study) -> set[tuple[str, str]]:
    """(model, objective) pairs whose RM results come from ``eval.import`` and win precedence.

    For the rm stage: these pairs need no trained RM for the score table.
    """
    cfg = study.config.get("eval", {}) or {}
    path = cfg.get("import")
    if not path or cfg.get("import_precedence", "imported") != "imported":
        return set()
    df = read_import(path, study.model_names)
    return set(zip(df["model"].to_list(), df["objective"].to_list()))
