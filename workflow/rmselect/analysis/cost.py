"""Compute spent per stage and per model, from Snakemake ``benchmark:`` files (§ cost table).

Inputs: every ``results/cost/<rule>/<wildcards>.tsv`` (columns ``s, h:m:s, max_rss, ...,
cpu_time``; an optional ``gpu_s`` column is summed when a job records it; a file with several
rows — ``repeat()`` — counts its mean) plus, optionally, JSON files with a ``gpu_s`` field
(``analysis.cost.gpu_json``: ``{glob, stage, rule}``; the model is the name found in the path),
e.g. the benchmark outputs.

* rule → stage: the first stage in ``analysis.cost.stages`` (``{stage: [rule-name prefixes]}``)
  with a prefix of the rule name; otherwise ``other``.
* model: the longest model name of the model table that appears in the file's path relative
  to the rule folder as a whole path/name component (delimited by ``/ _ , =`` or the
  extension); ``(none)`` for jobs without a model. (``eval_rm`` writes one file per
  ``{objective}/{model}`` job, which scores every benchmark; with ``eval.jobs: per_model``,
  one file ``{model}`` per job scoring all the model's RMs.)

* ``gpu_s``: GPU-seconds a job recorded itself (``gpu_s`` column or JSON field);
  ``gpu_s_alloc``: wall seconds × the GPUs the job was allocated (``--gpus``: the GPU count
  that ``rmselect.cluster.resources`` gives the job's stage — the stage names ``rm_train,
  posttrain, eval, benchmarks, presence`` are resource kinds — for its model; 0 on CPU runs).

* ``projected_flops``, ``projected_s``: what :mod:`rmselect.plan.projection` projected for
  the same (stage, rule, model) from the configuration alone — FLOPs, and seconds of work on
  the study's ``plan.profile`` (GPU-seconds on a GPU profile; on the toy zoo's ``cpu``
  profile, comparable with ``wall_s``). Projected work that no measured job matches keeps
  its own row (``jobs`` 0); measured rules the projection does not model (CPU stages) have
  empty projected columns. Projected and measured side by side is how the projection's
  assumptions (MFU, token means) are checked after a run.

``cost.csv``: stage, rule, model, jobs, wall_s, cpu_s, max_rss_mb (largest), gpu_s,
gpu_s_alloc, projected_flops, projected_s.
``cost_summary.csv``: quantity, wall_s, cpu_s, gpu_s, gpu_s_alloc, projected_flops,
projected_s: one row per stage, ``total``,
``screening`` (rules with a prefix in ``analysis.cost.screening``; paper: ``bench_``,
``presence_``), ``rm_grid`` (prefixes in ``analysis.cost.rm_grid``; ``rm_train``) and
``screening_to_rm_grid_ratio`` (screening ÷ rm_grid; empty when the RM grid cost is 0).
"""

from __future__ import annotations

import glob
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import polars as pl

from rmselect import cli
from rmselect.analysis.args import ModelsArgs
from rmselect.analysis.data import AnalysisError
from rmselect.cli import opt
from rmselect.io import write_table

log = logging.getLogger(__name__)

DEFAULT_STAGES: dict[str, list[str]] = {
    "toy": ["toy_"],
    "posttrain": ["posttrain"],
    "rm_train": ["rm_train"],
    "rm_select": ["rm_select", "rm_merge"],
    "eval": ["eval"],
    "benchmarks": ["bench_", "features_"],
    "presence": ["presence_"],
    "probe": ["probe_"],
    "analysis": ["analysis", "recommend"],
}

COLUMNS = {
    "stage": pl.String,
    "rule": pl.String,
    "model": pl.String,
    "jobs": pl.Int64,
    "wall_s": pl.Float64,
    "cpu_s": pl.Float64,
    "max_rss_mb": pl.Float64,
    "gpu_s": pl.Float64,
    "gpu_s_alloc": pl.Float64,
}
SUMS = ("wall_s", "cpu_s", "gpu_s", "gpu_s_alloc")
PROJECTED = {"projected_flops": pl.Float64, "projected_s": pl.Float64}
KEYS = ["stage", "rule", "model"]


def stage_of(rule: str, stages: Mapping[str, Sequence[str]]) -> str:
    for stage, prefixes in stages.items():
        if any(rule.startswith(p) for p in prefixes):
            return stage
    return "other"


def model_of(relpath: str, models: Sequence[str]) -> str:
    """Longest model name appearing in ``relpath`` as a delimited component."""
    for m in sorted(models, key=len, reverse=True):
        if re.search(r"(^|[/_,=])" + re.escape(m) + r"($|[/_,=]|\.[A-Za-z]+$)", relpath):
            return m
    return "(none)"


def _num(df: pl.DataFrame, col: str) -> float:
    if col not in df.columns:
        return 0.0
    v = df[col].cast(pl.Float64, strict=False).drop_nulls()
    return float(v.mean()) if v.len() else 0.0


def read_benchmarks(
    cost_dir: str | Path, models: Sequence[str], stages: Mapping[str, Sequence[str]]
) -> list[dict[str, Any]]:
    root = Path(cost_dir)
    rows = []
    for f in sorted(root.rglob("*.tsv")) if root.exists() else []:
        rel = f.relative_to(root)
        rule = rel.parts[0] if len(rel.parts) > 1 else f.stem
        try:
            df = pl.read_csv(f, separator="\t", infer_schema_length=0)
        except Exception as err:
            raise AnalysisError(f"{f}: not a Snakemake benchmark TSV ({err}); delete it") from None
        if "s" not in df.columns:
            raise AnalysisError(f"{f}: lacks column 's' (wall seconds); not a benchmark file")
        sub = str(Path(*rel.parts[1:])) if len(rel.parts) > 1 else rel.name
        rows.append(
            {
                "stage": stage_of(rule, stages),
                "rule": rule,
                "model": model_of(sub, models),
                "wall_s": _num(df, "s"),
                "cpu_s": _num(df, "cpu_time"),
                "max_rss_mb": _num(df, "max_rss"),
                "gpu_s": _num(df, "gpu_s"),
            }
        )
    return rows


def read_gpu_json(specs: Sequence[Mapping[str, str]], models: Sequence[str]) -> list[dict]:
    rows = []
    for spec in specs:
        for f in sorted(glob.glob(spec["glob"], recursive=True)):
            try:
                obj = json.loads(Path(f).read_text())
            except (OSError, json.JSONDecodeError):
                log.warning("%s: unreadable JSON, skipped for GPU seconds", f)
                continue
            g = obj.get("gpu_s") if isinstance(obj, dict) else None
            if g is None:
                continue
            rows.append(
                {
                    "stage": spec.get("stage", "other"),
                    "rule": spec.get("rule", "(json)"),
                    "model": model_of(f, models),
                    "wall_s": 0.0,
                    "cpu_s": 0.0,
                    "max_rss_mb": 0.0,
                    "gpu_s": float(g),
                }
            )
    return rows


def cost_table(
    rows: list[dict[str, Any]], gpus: Mapping[str, Mapping[str, int]] | None = None
) -> pl.DataFrame:
    """Sum jobs per (stage, rule, model); ``gpus`` = {stage: {model: allocated GPUs}}."""
    if not rows:
        return pl.DataFrame(schema=COLUMNS)
    gpus = gpus or {}
    for r in rows:
        r["gpu_s_alloc"] = r["wall_s"] * float(gpus.get(r["stage"], {}).get(r["model"], 0))
    return (
        pl.DataFrame(rows)
        .group_by("stage", "rule", "model")
        .agg(
            pl.len().cast(pl.Int64).alias("jobs"),
            pl.col("wall_s").sum(),
            pl.col("cpu_s").sum(),
            pl.col("max_rss_mb").max(),
            pl.col("gpu_s").sum(),
            pl.col("gpu_s_alloc").sum(),
        )
        .sort("stage", "rule", "model")
        .select(list(COLUMNS))
    )


def projected_frame(study_config: Mapping[str, Any], root: str | Path = ".") -> pl.DataFrame:
    """Projected FLOPs and seconds (on ``plan.profile``) per (stage, rule, model).

    Computed in the job from the study config, with the data files as they are now (the toy
    data exist by the time the analysis runs). A config the projection cannot price (a hub
    data set without stated size) gives an empty frame and a warning, not a failed table.
    """
    from rmselect.config import ConfigError, load_study
    from rmselect.plan.projection import project

    empty = pl.DataFrame(schema={k: pl.String for k in KEYS} | PROJECTED)
    if not study_config:
        return empty
    try:
        study = load_study(study_config, "config")
        items, profs, cfg = project(study, Path(root))
    except ConfigError as err:
        log.warning("cost: no projection (%s)", err)
        return empty
    prof = profs[cfg["profile"]]
    rows = [{"stage": w.stage, "rule": w.rule, "model": w.model,
             "projected_flops": w.flops, "projected_s": prof.seconds(w)} for w in items]
    return pl.DataFrame(rows, schema=empty.schema) if rows else empty


def with_projection(cost: pl.DataFrame, projected: pl.DataFrame) -> pl.DataFrame:
    """``cost`` with the projected columns joined on (stage, rule, model), outer."""
    out = cost.join(projected, on=KEYS, how="full", coalesce=True)
    return (out.with_columns(pl.col("jobs").fill_null(0))
            .sort(KEYS).select(list(COLUMNS) + list(PROJECTED)))


def summary(
    cost: pl.DataFrame, screening: Sequence[str], rm_grid: Sequence[str]
) -> pl.DataFrame:
    out = []
    cols = list(SUMS) + [c for c in PROJECTED if c in cost.columns]

    def tot(d: pl.DataFrame, name: str) -> dict[str, Any]:
        return {"quantity": name} | {c: float(d[c].fill_null(0).sum()) for c in cols}

    for st in cost["stage"].unique(maintain_order=True).sort().to_list():
        out.append(tot(cost.filter(pl.col("stage") == st), f"stage:{st}"))
    out.append(tot(cost, "total"))

    def by_prefix(prefixes: Sequence[str]) -> pl.DataFrame:
        return cost.filter(
            pl.col("rule").map_elements(
                lambda r: any(r.startswith(p) for p in prefixes), return_dtype=pl.Boolean
            )
        ) if cost.height else cost

    s, r = tot(by_prefix(screening), "screening"), tot(by_prefix(rm_grid), "rm_grid")
    out += [s, r]
    ratio = {"quantity": "screening_to_rm_grid_ratio"}
    for c in cols:
        ratio[c] = s[c] / r[c] if r[c] > 0 else None
    out.append(ratio)
    return pl.DataFrame(out, schema={"quantity": pl.String} | {c: pl.Float64 for c in cols})


@dataclass(kw_only=True)
class CostArgs(ModelsArgs):
    """Compute per stage and model from benchmark files."""

    cost_dir: str = opt("folder of the Snakemake benchmark files", default="results/cost")
    config: dict[str, Any] = opt("JSON of analysis.cost", default={}, json=True)
    gpus: dict[str, dict[str, int]] = opt("JSON {stage: {model: allocated GPUs}}", default={},
                                          json=True)
    study_config: dict[str, Any] = opt(
        "JSON of the whole study config, for the projected columns", default={}, json=True)
    out: str = opt("cost table CSV")
    out_summary: str = opt("cost summary CSV")


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(CostArgs, write_cost, argv, prog="analysis_cost.py")


def write_cost(a: CostArgs) -> int:
    cfg = a.config
    names = pl.read_csv(a.models)["model"].to_list()
    stages = cfg.get("stages") or DEFAULT_STAGES
    rows = read_benchmarks(a.cost_dir, names, stages)
    rows += read_gpu_json(cfg.get("gpu_json", []) or [], names)
    log.info("cost: %d benchmark/GPU records from %s", len(rows), a.cost_dir)
    cost = with_projection(cost_table(rows, a.gpus), projected_frame(a.study_config))
    summ = summary(cost, cfg.get("screening", ["bench_", "presence_"]),
                   cfg.get("rm_grid", ["rm_train"]))
    write_table(a.out, cost)
    write_table(a.out_summary, summ)
    return 0
