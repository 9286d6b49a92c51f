"""Plan-time checks of what the config and the model table already show (issue 30).

Each check raises :class:`rmselect.schema.ConfigError` with one line that names the file,
row, field or model and what to do, before any job runs: ``snakemake -n`` on a bad config
exits non-zero at DAG-build time with nothing written. The schema catches types and ranges;
these checks catch what needs several fields (or the file system) at once:

* :func:`check_size_groups`: size groups that overlap, a model no group covers (file, row,
  model), a group default in another group, or one that gets no RM (a recommendation
  candidate);
* :func:`check_names_case`: two model names equal up to case (they collide on
  case-insensitive file systems);
* :func:`check_variant_order`: ``posttrain.variants`` parents that form a cycle (named as
  one) or name a later variant;
* :func:`check_batches`: ``global_batch`` not divisible by micro batch x ranks, for every
  size tier and rank count the plan uses (RM training and post-training);
* :func:`check_chat_templates`: a ``chat_template`` is an existing file or a literal Jinja
  template (contains ``{{`` or ``{%``), never a path-looking string that is not a file;
* :func:`check_population`: too few models for the cross-model analyses;
* :func:`check_lmeval_tasks`: an lm-eval task known neither to the installed lm-eval nor to
  its ``include_path`` (a fast scan of the task YAMLs, 0.3 s; lm-eval's ``TaskManager``
  confirms a miss, its names cached per lm-eval version: :func:`lm_eval_registry`).

:func:`check_plan` runs the study-level ones; :func:`rmselect.config.load_study` runs the
structural ones (size groups, case, variant order) itself.
"""

from __future__ import annotations

import json
import math
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

from rmselect.schema import REPO_ROOT, ConfigError

#: A chat-template literal contains Jinja syntax; anything else must be a file.
JINJA = ("{{", "{%", "{#")
#: Fewest models a correlation (t-test with n - 2 df) needs.
MIN_CORRELATION_MODELS = 3


# --------------------------------------------------------------------------- model table


def table_rows(models: Iterable[Any]) -> dict[str, int]:
    """1-based file line of each table model (header = line 1; variants come after)."""
    return {m.name: i + 2 for i, m in enumerate(models) if not m.source.startswith("variant:")}


def where_model(config: Mapping[str, Any], name: str, rows: Mapping[str, int]) -> str:
    """``models.tsv row 4 (model 'x')``, or ``posttrain.variants (model 'x')`` for a variant."""
    if name in rows:
        return f"{config.get('models', 'model table')} row {rows[name]} (model '{name}')"
    return f"posttrain.variants (model '{name}')"


def check_names_case(names: Iterable[str], source: str) -> None:
    """Two model names equal up to case are one name on case-insensitive file systems."""
    seen: dict[str, str] = {}
    for n in names:
        k = n.casefold()
        if k in seen and seen[k] != n:
            raise ConfigError(
                f"{source}: model names '{seen[k]}' and '{n}' differ only in case (their"
                " results/ folders collide on case-insensitive file systems); rename one"
            )
        seen.setdefault(k, n)


def _variant_name(v: Mapping[str, Any]) -> str:
    return str(v.get("name") or f"{v['parent']}-{v['stage']}")


def check_variant_order(config: Mapping[str, Any], base: Iterable[str], source: str) -> None:
    """Variant parents must be table models or earlier variants; a loop is named as a cycle."""
    variants = list((config.get("posttrain") or {}).get("variants") or [])
    names = [_variant_name(v) for v in variants]
    parent_of = {n: str(v["parent"]) for n, v in zip(names, variants)}
    known = set(base)
    for i, (n, v) in enumerate(zip(names, variants)):
        p = str(v["parent"])
        if p in known:
            known.add(n)
            continue
        if p not in parent_of:
            known.add(n)
            continue  # unknown parent: config.py names it
        path, cur = [n], p
        while cur in parent_of and cur not in path:
            path.append(cur)
            cur = parent_of[cur]
        if cur in path:
            cycle = " -> ".join(path[path.index(cur):] + [cur])
            raise ConfigError(
                f"{source}: field 'posttrain.variants[{i}].parent': cycle through variants"
                f" {cycle}; a variant's parent must be a table model or an earlier variant"
            )
        raise ConfigError(
            f"{source}: field 'posttrain.variants[{i}].parent': '{p}' is a variant listed"
            f" after '{n}'; list posttrain.variants parents first"
        )


def _groups(config: Mapping[str, Any]) -> list[tuple[int, str, float, float]]:
    out = []
    for i, g in enumerate(config.get("size_groups") or []):
        out.append((i, str(g["name"]), float(g.get("min_b", 0.0)),
                    float(g.get("max_b", math.inf))))
    return out


def check_size_groups(config: Mapping[str, Any], models: Mapping[str, Any], source: str,
                      candidates: Iterable[str] = ()) -> None:
    """Size groups are disjoint, cover every model, and each default is an RM of its group."""
    groups = _groups(config)
    for a in groups:
        for b in groups:
            if a[0] < b[0] and a[2] < b[3] and b[2] < a[3]:
                raise ConfigError(
                    f"{source}: field 'size_groups[{b[0]}]': '{b[1]}' [{b[2]:g}, {b[3]:g}) B"
                    f" overlaps size_groups[{a[0]}] '{a[1]}' [{a[2]:g}, {a[3]:g}) B; make one"
                    " group's max_b the next one's min_b"
                )
    rows = table_rows(models.values())

    def group_of(params_b: float) -> tuple[int, str, float, float] | None:
        return next((g for g in groups if g[2] <= params_b < g[3]), None)

    spans = ", ".join(f"[{g[2]:g}, {g[3]:g})" for g in sorted(groups, key=lambda g: g[2]))
    for name, m in models.items():
        if group_of(m.params_b) is None:
            raise ConfigError(
                f"{where_model(config, name, rows)}: no size group covers {m.params_b} B"
                f" parameters (field 'params_b'; {source} size_groups cover {spans}); extend"
                " 'size_groups' or fix params_b"
            )
    cand = set(candidates)
    for i, g in enumerate(config.get("size_groups") or []):
        d = g.get("default")
        if not d or d not in models:
            continue
        own = group_of(models[d].params_b)
        if own is not None and own[0] != i:
            raise ConfigError(
                f"{source}: field 'size_groups[{i}].default': model '{d}' ({models[d].params_b:g}"
                f" B) lies in group '{own[1]}', not '{g['name']}'; choose a model of this group"
            )
        if d in cand:
            raise ConfigError(
                f"{source}: field 'size_groups[{i}].default': model '{d}' is a recommendation"
                " candidate (recommend.candidates) and gets no RM, so every gain of group"
                f" '{g['name']}' would be empty; choose a trained model as the default"
            )


# --------------------------------------------------------------------------- study level


def check_batches(study: Any) -> None:
    """``global_batch`` divisible by micro batch x ranks for every RM and post-training job."""
    from rmselect.cluster.resources import resources_for
    from rmselect.rm.rules import nproc, rm_config, size_settings

    cfg = study.config
    rc = rm_config(cfg)
    gb = int(rc["global_batch"])
    rows = table_rows(study.models.values())
    seen: set[tuple[int, int]] = set()
    for name in study.trained_models():
        spec = study.model(name)
        size = size_settings(cfg, spec.params_b)
        gpus = int(resources_for("rm_train", spec.params_b, cfg, name,
                                 model_extra=spec.extra)["gpu"])
        world = gpus if gpus else nproc(cfg, 0)
        micro = int(size["micro_batch"])
        if (micro, world) in seen:
            continue
        seen.add((micro, world))
        if gb % (micro * world):
            raise ConfigError(
                f"{study.source}: field 'rm.global_batch': {gb} is not divisible by micro_batch"
                f" {micro} (rm.by_size, max_b {size['max_b']}) x {world} rank(s) ="
                f" {micro * world} for {where_model(cfg, name, rows)}; make rm.global_batch a"
                f" multiple of {micro * world} or change rm.by_size micro_batch"
            )
    if not study.variants():
        return
    from rmselect.posttrain.recipes import resolve_recipe

    for name in study.variants():
        spec = study.model(name)
        recipe = resolve_recipe(cfg, spec)
        gpus = int(resources_for("posttrain", spec.params_b, cfg, name,
                                 model_extra=spec.extra)["gpu"])
        world = max(1, gpus)
        rgb, micro = int(recipe["global_batch"]), int(recipe["micro_batch"])
        if rgb % (micro * world):
            key = spec.produce or spec.stage
            raise ConfigError(
                f"{study.source}: field 'posttrain.recipes.{key}.global_batch': {rgb} is not"
                f" divisible by micro_batch {micro} x {world} rank(s) = {micro * world} for"
                f" variant '{name}'; make it a multiple of {micro * world}"
            )


def template_problem(value: str, root: Path = REPO_ROOT) -> str | None:
    """Why ``value`` is not a usable chat template (None when it is a file or Jinja text)."""
    if any(j in value for j in JINJA):
        return None
    p = Path(value).expanduser()
    try:
        if (p if p.is_absolute() else root / p).is_file():
            return None
    except OSError:
        pass
    return (f"{value!r} is neither an existing file nor a Jinja template (a literal must"
            " contain '{{' or '{%'); give the path of a template file relative to the"
            " repository, or the template text")


def check_chat_templates(study: Any, root: Path = REPO_ROOT) -> None:
    """Every ``chat_template`` of the model table is a file or literal Jinja."""
    rows = table_rows(study.models.values())
    for name, m in study.models.items():
        if m.chat_template and name in rows:
            why = template_problem(m.chat_template, root)
            if why:
                raise ConfigError(
                    f"{where_model(study.config, name, rows)}: field 'chat_template': {why}"
                )


def check_population(study: Any) -> None:
    """Enough models with RMs in ``analysis.population`` for correlations and selection."""
    cfg = study.config
    if not (cfg.get("eval") or {}).get("train_and_evaluate", True) or \
            (cfg.get("eval") or {}).get("import"):
        return  # imported RM scores: the population is read from the file at run time
    cand = set(study.candidates())
    pop = [n for n in study.population() if n not in cand]
    n = len(pop)
    sel = (cfg.get("analysis") or {}).get("selection") or {}
    outer = int(sel.get("outer_folds", 0) or 0)
    cv = int(sel.get("cv_folds", 0) or 0)
    need = [(MIN_CORRELATION_MODELS, "correlations (a t-test with n - 2 df)")]
    if outer:
        need.append((outer, f"selection (analysis.selection.outer_folds = {outer})"))
        if cv:
            # the smallest outer training fold must still split into cv_folds folds
            need.append((math.ceil(cv * outer / max(outer - 1, 1)),
                         f"selection (analysis.selection.cv_folds = {cv} inside"
                         f" {outer} outer folds)"))
    for k, what in need:
        if n < k:
            raise ConfigError(
                f"{study.source}: field 'analysis.population': {n} model(s) with RMs"
                f" ({', '.join(pop) or 'none'}) but {what} needs at least {k}; add models or"
                " widen analysis.population"
            )


@lru_cache(maxsize=8)
def _scan_tasks(folder: str) -> frozenset[str]:
    """Task, group and tag names declared in the YAML files under ``folder`` (a text scan)."""
    pat = re.compile(r"^[ \t-]*['\"]?(?:task|group|tag)['\"]?:[ \t]*['\"]?([^'\"\s#]+)", re.M)
    lists = re.compile(r"^(?:group|tag):[ \t]*\n((?:[ \t]+-[ \t]*\S+[ \t]*\n)+)", re.M)
    names: set[str] = set()
    for d, _, files in os.walk(folder):
        for f in files:
            if f.endswith((".yaml", ".yml")):
                try:
                    text = Path(d, f).read_text(encoding="utf-8", errors="replace")
                except OSError:
                    continue
                names.update(pat.findall(text))
                for block in lists.findall(text):
                    names.update(x.strip().lstrip("-").strip() for x in block.splitlines())
    return frozenset(names)


def _lm_eval_tasks_dir() -> str | None:
    import importlib.util

    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.origin:
        return None
    return str(Path(spec.origin).parent / "tasks")


def _cache_file() -> Path:
    import lm_eval

    version = getattr(lm_eval, "__version__", "unknown")
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "rmselect" / f"lm_eval_tasks-{version}.json"


@lru_cache(maxsize=1)
def lm_eval_registry() -> frozenset[str]:
    """Every task, group and tag name of the installed lm-eval (its ``TaskManager``).

    Building the index takes 10-25 s, so it is cached per lm-eval version under
    ``$XDG_CACHE_HOME/rmselect/`` (default ``~/.cache/rmselect/``) and only asked about names
    the fast YAML scan missed (some names are generated, not written in a YAML file).
    """
    cache = _cache_file()
    try:
        return frozenset(json.loads(cache.read_text()))
    except (OSError, ValueError):
        pass
    from lm_eval.tasks import TaskManager

    names = sorted(TaskManager().all_tasks)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(names))
        tmp.replace(cache)
    except OSError:
        pass  # a read-only home: no cache, the next plan asks lm-eval again
    return frozenset(names)


def _task_manager_knows(task: str, include: str | None) -> bool:
    """lm-eval's own registry (cached); an include path's tasks are in its YAML files."""
    try:
        return task in lm_eval_registry()
    except ImportError:  # pragma: no cover - lm-eval is a dependency
        return True


def check_lmeval_tasks(study: Any, root: Path = REPO_ROOT) -> None:
    """Each ``kind: lm_eval`` benchmark names a task lm-eval or its include_path defines.

    Tasks whose ``include_path`` is under ``results/`` are produced by the workflow (the toy
    zoo's) and checked once they exist.
    """
    from rmselect.bench.spec import bench_config

    tasks_dir = _lm_eval_tasks_dir()
    if tasks_dir is None:
        return
    for spec in bench_config(study.config).tasks.values():
        if spec.kind != "lm_eval":
            continue
        inc = None
        if spec.include_path:
            p = Path(spec.include_path)
            full = p if p.is_absolute() else root / p
            if not full.exists():
                if Path(spec.include_path).parts[:1] == ("results",):
                    continue
                raise ConfigError(
                    f"{study.source}: field 'benchmarks.tasks.{spec.name}.include_path':"
                    f" folder {spec.include_path} does not exist; fix the path"
                )
            inc = str(full)
        known = _scan_tasks(tasks_dir) | (_scan_tasks(inc) if inc else frozenset())
        if spec.task in known or _task_manager_knows(spec.task, inc):
            continue
        raise ConfigError(
            f"{study.source}: field 'benchmarks.tasks.{spec.name}': lm-eval task"
            f" '{spec.task}' is unknown to the installed lm-eval"
            f"{' and to include_path ' + spec.include_path if spec.include_path else ''};"
            " check the name (`lm_eval ls tasks`) or set task / include_path"
        )


#: Targets (a rule name or a path fragment) that build the cross-model analyses.
ANALYSIS_TARGETS = ("all", "analysis", "report", "recommend", "results/analysis",
                    "results/recommendation", "results/report")


def wants_analysis(targets: Iterable[str] | None) -> bool:
    """Whether a run with these command-line ``targets`` reaches the cross-model analyses
    (no target = rule ``all``). A run of one stage (``snakemake rm``, one RM's files) on a
    few models is not refused for a population only the analyses need."""
    targets = [str(t) for t in (targets or ())]
    return not targets or any(a in t for t in targets for a in ANALYSIS_TARGETS)


def command_line_targets(workflow: Any) -> list[str] | None:
    """The targets this Snakemake run was asked for (none: rule ``all``), or None when they
    cannot be known. The Snakefile is parsed before Snakemake hands the workflow its DAG
    settings, so the command line is read with Snakemake's own argument parser."""
    settings = getattr(workflow, "dag_settings", None)
    if settings is not None and settings.targets:
        return [str(t) for t in settings.targets]
    try:
        import sys

        from snakemake.cli import get_argument_parser

        args, _ = get_argument_parser().parse_known_args(sys.argv[1:])
        return [str(t) for t in (args.targets or [])]
    except (Exception, SystemExit):  # not the snakemake command line (the API, a test)
        return None


def check_plan(study: Any, root: Path = REPO_ROOT,
               targets: Iterable[str] | None = None) -> None:
    """Every study-level plan-time check (the Snakefile calls this after load_study, with
    the command line's targets)."""
    check_batches(study)
    check_chat_templates(study, root)
    if wants_analysis(targets):
        check_population(study)
    check_lmeval_tasks(study, root)
