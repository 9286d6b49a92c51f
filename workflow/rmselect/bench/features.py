"""The feature table: one row per model, one column per feature.

``results/tables/features.csv``: ``model``, one column per benchmark (in config order; the
value is the benchmark's ``score``: normalised 0-100 where a baseline is known, else raw x
100), then aggregates, then features only imported from published scores, then ``params_b``,
``tokens_t``, ``presence_<domain>`` and (probe stage on) ``probe_zero_shot``, ``probe_linear``
columns. Empty cell = missing, never 0.

``results/tables/features_sources.csv``: long form ``model, feature, value, source`` for every
non-missing value, ``source`` one of

* ``run-small`` / ``run-full``: our lm-eval / code run in that mode;
* ``imported``: the published-scores CSV (used only where we have no run value);
* ``derived``: an aggregate (mean of its component features; only when all are present and
  no imported value exists);
* ``checkpoint``: parameters counted from safetensors headers; ``table``: the model table;
* ``presence``: the mean presence score of a domain corpus;
* ``probe``: a probe feature of the base model (:mod:`rmselect.probe.score`), accuracy x 100.

``results/tables/features_published.csv``: the published-scores import report
(:mod:`rmselect.bench.published`), written even when no published CSV is configured (then
with its header only).
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import polars as pl

from rmselect import cli
from rmselect.bench.published import REPORT_COLUMNS, Imported, import_published, summarise_report
from rmselect.cli import opt
from rmselect.io import read_json, write_table

log = logging.getLogger("rmselect.bench.features")

SOURCES = ("run-small", "run-full", "imported", "derived", "checkpoint", "table", "presence",
           "probe")
#: Feature column -> field of the probe stage's results/probe/{model}.json (0-1, stored x 100).
PROBE_COLUMNS = {"probe_zero_shot": "zero_shot", "probe_linear": "linear_probe"}


def read_probes(probe_dir: str | Path, models: Sequence[str]) -> dict[str, dict[str, float]]:
    """``model -> {probe_zero_shot, probe_linear}`` (0-100) from the probe stage's JSON files."""
    out: dict[str, dict[str, float]] = {}
    for m in models:
        rec = read_json(Path(probe_dir) / f"{m}.json")
        out[m] = {c: 100.0 * float(rec[k]) for c, k in PROBE_COLUMNS.items()}
    return out


def read_presence(path: str | Path, domains: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """``model -> {presence_<domain>: estimate}`` from the presence stage's summary.csv (the
    domain-mean estimate, ``rmselect.presence.distributions.estimates``; ``mean`` in a
    summary without an ``estimate`` column)."""
    path = Path(path)
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        need = {"model", "domain", "mean"}
        if not need <= set(reader.fieldnames or []):
            raise ValueError(f"{path}: needs columns model, domain, mean; has {reader.fieldnames}")
        out: dict[str, dict[str, float]] = {}
        for row in reader:
            if domains and row["domain"] not in domains:
                continue
            v = (row.get("estimate") or row["mean"] or "").strip()
            if v:
                out.setdefault(row["model"], {})[f"presence_{row['domain']}"] = float(v)
    return out


def build(
    models: Sequence[str],
    tasks: Sequence[str],
    runs: Mapping[tuple[str, str], Mapping[str, Any]],
    params: Mapping[str, Mapping[str, Any]],
    table: Mapping[str, Mapping[str, Any]],
    imported: Imported | None = None,
    aggregates: Mapping[str, Sequence[str]] | None = None,
    presence: Mapping[str, Mapping[str, float]] | None = None,
    presence_domains: Sequence[str] = (),
    probes: Mapping[str, Mapping[str, float]] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Assemble ``features.csv`` (wide) and ``features_sources.csv`` (long).

    ``runs[(model, task)]`` is a result JSON of :mod:`rmselect.bench.run`; ``params[model]`` a
    params.json record (may be absent); ``table[model]`` has ``params_b`` and ``tokens_t``.
    """
    aggregates = dict(aggregates or {})
    imported = imported or Imported()
    extra = [
        f
        for vals in imported.values.values()
        for f in vals
        if f not in tasks and f not in aggregates
    ]
    extra = list(dict.fromkeys(extra))
    pres_cols = [f"presence_{d}" for d in presence_domains]
    probe_cols = list(PROBE_COLUMNS) if probes is not None else []
    columns = [*tasks, *aggregates, *extra, "params_b", "tokens_t", *pres_cols, *probe_cols]
    rows: list[dict[str, Any]] = []
    long: list[dict[str, Any]] = []
    for m in models:
        vals: dict[str, Any] = {c: None for c in columns}
        src: dict[str, str] = {}
        for t in tasks:
            rec = runs.get((m, t))
            if rec is not None and rec.get("score") is not None:
                vals[t] = float(rec["score"])
                src[t] = f"run-{rec.get('mode', 'small')}"
        for f, v in imported.values.get(m, {}).items():
            if f in vals and vals[f] is None:
                vals[f] = float(v)
                src[f] = "imported"
        for agg, parts in aggregates.items():
            if vals[agg] is not None:
                continue
            comp = [vals.get(p) for p in parts]
            if parts and all(c is not None for c in comp):
                vals[agg] = sum(comp) / len(comp)
                src[agg] = "derived"
        p = params.get(m)
        if p is not None and p.get("source") in ("safetensors", "hub-cache"):
            vals["params_b"] = float(p["params_b"])
            src["params_b"] = "checkpoint"
        elif table.get(m, {}).get("params_b") is not None:
            vals["params_b"] = float(table[m]["params_b"])
            src["params_b"] = "table"
        if table.get(m, {}).get("tokens_t") is not None:
            vals["tokens_t"] = float(table[m]["tokens_t"])
            src["tokens_t"] = "table"
        for c, v in (presence or {}).get(m, {}).items():
            if c in vals:
                vals[c] = float(v)
                src[c] = "presence"
        for c, v in (probes or {}).get(m, {}).items():
            vals[c] = float(v)
            src[c] = "probe"
        rows.append({"model": m, **vals})
        for c in columns:
            if vals[c] is not None:
                long.append({"model": m, "feature": c, "value": vals[c], "source": src[c]})
    schema = {"model": pl.Utf8, **{c: pl.Float64 for c in columns}}
    wide = pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)
    long_df = pl.DataFrame(
        long, schema={"model": pl.Utf8, "feature": pl.Utf8, "value": pl.Float64, "source": pl.Utf8}
    )
    return wide, long_df


@dataclass(kw_only=True)
class FeaturesArgs:
    """Assemble results/tables/features.csv (one row per model, one column per feature) and
    features_sources.csv from benchmark runs, parameter counts, published scores and presence
    scores."""

    models: dict[str, dict[str, Any]] = opt(
        "JSON: {model: {source, params_b, tokens_t}} in table order", json=True)
    tasks: list[str] = opt("JSON list of benchmark names (column order)", json=True)
    runs_dir: Path = opt("folder with {model}/{task}.json and {model}/params.json",
                         default=Path("results/benchmarks"))
    run_tasks: list[str] = opt(
        "JSON list of benchmarks that have run results (the others are imported)",
        default=[], json=True)
    aggregates: dict[str, list[str]] = opt("JSON {aggregate: [features]}", default={}, json=True)
    published: str = opt("JSON of benchmarks.published ('' for none)", default="")
    presence: str = opt("presence summary.csv ('' for none)", default="")
    presence_domains: list[str] = opt("JSON list of presence domains", default=[], json=True)
    probe_dir: str = opt("folder with the probe stage's {model}.json ('' for none)", default="")
    out: Path = opt("features.csv")
    out_sources: Path = opt("features_sources.csv")
    out_published: Path = opt("published-import report CSV")


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(FeaturesArgs, write_features, argv, prog="features_table.py")


def write_features(args: FeaturesArgs) -> int:
    """Read every source the study names, build the two tables and write them with the report."""
    models, tasks, run_tasks = args.models, args.tasks, args.run_tasks
    runs_dir = args.runs_dir
    runs: dict[tuple[str, str], Any] = {}
    params: dict[str, Any] = {}
    for m in models:
        for t in run_tasks:
            runs[(m, t)] = read_json(runs_dir / m / f"{t}.json")
        pj = runs_dir / m / "params.json"
        if pj.exists():
            params[m] = read_json(pj)
    imported = Imported()
    if args.published:
        pub = json.loads(args.published)
        imported = import_published(
            pub["path"], pub["name_column"], pub["columns"],
            {m: v.get("source", "") for m, v in models.items()}, pub.get("name_map"),
        )
        log.info("published scores: %s", summarise_report(imported))
        for r in imported.report:
            if r["kind"] not in ("matched",):
                log.warning("published scores: %s %s %s %s: %s", r["kind"], r["name"],
                            r["model"], r["feature"], r["detail"])
    domains = args.presence_domains
    presence = read_presence(args.presence, domains) if args.presence else None
    probes = read_probes(args.probe_dir, list(models)) if args.probe_dir else None
    wide, long = build(models, tasks, runs, params, models, imported,
                       args.aggregates, presence, domains, probes)
    for m in models:
        if m not in (presence or {}) and args.presence:
            log.warning("model %s has no presence scores", m)
    missing = long.group_by("model").len()
    log.info("features: %d models x %d columns; values per model: %s", wide.height,
             wide.width - 1, dict(missing.iter_rows()))
    write_table(args.out, wide)
    write_table(args.out_sources, long)
    write_table(
        args.out_published,
        pl.DataFrame(imported.report, schema={c: pl.Utf8 for c in REPORT_COLUMNS}),
    )
    return 0
