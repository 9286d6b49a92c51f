"""Cost projection from the configuration alone: FLOPs and GPU-hours per stage and model.

Why: the paper spent ~4,500 A6000 GPU-hours, almost all of it on the RM grid, and nothing
told it beforehand. This module counts the work a validated :class:`rmselect.config.Study`
asks for, without running or downloading anything, so a study's cost (and the screening-to-
RM-grid ratio the paper's argument rests on) is known before the first job.

Counting rules (each one is also written into the CSV as an ``assumption`` row):

* **FLOPs.** Training ≈ 6·N per token (forward + backward), forward-only ≈ 2·N per token,
  N = ``params_b`` × 1e9 from the model table. Attention's sequence-length term and the
  recompute of gradient checkpointing are not counted as FLOPs: they lower the achievable
  MFU, which is the profile's business (MFU is model FLOPs ÷ peak, by definition).
* **GPU time.** ``train FLOPs / (peak × mfu_train) + forward FLOPs / (peak × mfu_forward)``
  plus decode time: a generated token costs ``max(2N / (peak × mfu_forward),
  2 bytes × N / (bandwidth × decode_batch))`` seconds — decoding streams the bf16 weights
  once per step for ``decode_batch`` sequences, so it is bandwidth-bound on every profile.
  GPU-seconds are GPU-time summed over devices: 8 GPUs for an hour = 8 GPU-hours.
* **Tokens.** From the data where the config names local files (rows counted, characters ÷
  ``plan.chars_per_token`` + ``plan.template_tokens`` per rendered text, capped at the
  stage's max length); from ``plan.data`` / ``plan.eval`` / ``plan.posttrain`` /
  ``plan.presence`` stated sizes and mean token lengths otherwise (hub data sets are not
  available offline). ``plan.padding`` adds the padded fraction of batched training tokens.
* **RM grid** (rule ``rm_train``): per trained model, objective and learning rate:
  ``epochs × ⌊examples / global_batch⌋`` steps of ``global_batch`` examples (the trainer
  drops an epoch's last partial batch), a BT example being two sequences; plus one
  validation pass (both sides of every validation pair, forward only) at every
  ``eval_every`` step and at the end (``rmselect.rm.run_config.eval_points``).
* **RM evaluation** (``eval_rm`` / ``eval_rm_model``): every evaluated (model, objective)
  scores every configured benchmark once: rows × sequences per row, forward only.
* **Benchmarks** (``bench_run`` / ``bench_model``; screening's other mode in
  ``bench_screen_run`` / ``bench_model_screen``): items (small mode: ``n`` × leaf subtasks;
  full: ``full_items``) × the context ``(fewshot + 1) × item tokens``, once per answer choice
  for log-likelihood tasks (lm-eval scores each choice as its own request); generation
  tasks prefill the context once and decode ``generate`` tokens per item.
* **Presence** (``presence_score``): every scored model (family reuse copies, it does not
  score) and reference model reads ``n_docs`` documents per domain up to ``max_tokens``.
* **Post-training** (``posttrain_variant``): SFT trains one sequence per example; DPO trains
  chosen and rejected and runs the frozen reference model forward on both.

Not counted: toy pre-training (the toy zoo's CPU stage), RM selection and merge-weight search
(CPU), analysis (CPU), model loading, checkpoint writing and queueing.

Layout: GPU profiles, ``plan`` settings and the work item in :mod:`rmselect.plan.cost_model`,
data sizes and step counts in :mod:`rmselect.plan.sizes`, per-stage counting in
:mod:`rmselect.plan.stages`; this module assembles the projection, its CSV and the printed
table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import polars as pl

from rmselect import cli
from rmselect.cli import opt
from rmselect.config import REPO_ROOT, Study, section_settings

# The arithmetic, the data sizes and the per-stage counting have their own modules; their
# names stay importable from here (scripts, tests and rmselect.analysis.cost use them).
from rmselect.plan.cost_model import (  # noqa: F401
    BENCH_FIELDS,
    PROFILES,
    GpuProfile,
    Work,
    plan_defaults,
    plan_settings,
    profiles,
)
from rmselect.plan.sizes import TextSize, data_size  # noqa: F401
from rmselect.plan.stages import (  # noqa: F401
    bench_work,
    eval_work,
    posttrain_work,
    presence_work,
    probe_work,
    rm_work,
)

# --------------------------------------------------------------------------- projection

STAGE_ORDER = ("posttrain", "rm_train", "eval", "benchmarks", "presence", "probe")
#: Stages whose work the paper's argument calls screening (before any RM is trained).
SCREENING = ("benchmarks", "presence")
RM_GRID = ("rm_train",)


def project(study: Study, root: Path = REPO_ROOT) -> tuple[list[Work], dict[str, GpuProfile], dict[str, Any]]:
    """Every work item of the study, the GPU profiles and the resolved ``plan`` settings."""
    cfg = plan_settings(study.config)
    profs = profiles(cfg)
    items: list[Work] = []
    items += posttrain_work(study, cfg, root)
    if section_settings(study.config, "eval")["train_and_evaluate"]:
        items += rm_work(study, cfg, root)
    items += eval_work(study, cfg, root)
    items += bench_work(study, cfg, root)
    items += presence_work(study, cfg, root)
    items += probe_work(study, cfg, root)
    for w in items:
        w.decode_batch = int(cfg["decode_batch"])
    return items, profs, cfg


def gpu_col(name: str) -> str:
    return f"gpu_h_{name}"


def projection_table(items: Sequence[Work], profs: Mapping[str, GpuProfile]) -> pl.DataFrame:
    """One row per (stage, rule, model): runs, tokens by kind, FLOPs, GPU-hours per profile."""
    rows = []
    for w in items:
        row: dict[str, Any] = {
            "stage": w.stage, "rule": w.rule, "model": w.model, "params_b": w.params_b,
            "runs": w.runs, "train_tokens": w.train_tokens, "forward_tokens": w.forward_tokens,
            "decode_tokens": w.decode_tokens, "flops": w.flops,
        }
        for p in profs.values():
            row[gpu_col(p.name)] = p.seconds(w) / 3600.0
        row["note"] = " | ".join(w.notes)
        rows.append(row)
    schema = {"stage": pl.String, "rule": pl.String, "model": pl.String,
              "params_b": pl.Float64, "runs": pl.Int64, "train_tokens": pl.Float64,
              "forward_tokens": pl.Float64, "decode_tokens": pl.Float64, "flops": pl.Float64}
    schema |= {gpu_col(p): pl.Float64 for p in profs} | {"note": pl.String}
    if not rows:
        return pl.DataFrame(schema=schema)
    order = {s: i for i, s in enumerate(STAGE_ORDER)}
    return (pl.DataFrame(rows, schema=schema)
            .with_columns(pl.col("stage").replace_strict(order, default=99).alias("_o"))
            .sort("_o", "rule", "model").drop("_o"))


def stage_totals(table: pl.DataFrame, profs: Mapping[str, GpuProfile]) -> pl.DataFrame:
    """Per stage, ``total``, ``screening``, ``rm_grid`` and ``screening_to_rm_grid_ratio``."""
    sums = ["runs", "train_tokens", "forward_tokens", "decode_tokens", "flops",
            *(gpu_col(p) for p in profs)]
    out = []

    def tot(df: pl.DataFrame, name: str) -> dict[str, Any]:
        return {"quantity": name} | {c: float(df[c].sum()) if df.height else 0.0 for c in sums}

    for st in STAGE_ORDER:
        sub = table.filter(pl.col("stage") == st)
        if sub.height:
            out.append(tot(sub, f"stage:{st}"))
    out.append(tot(table, "total"))
    s = tot(table.filter(pl.col("stage").is_in(SCREENING)), "screening")
    r = tot(table.filter(pl.col("stage").is_in(RM_GRID)), "rm_grid")
    ratio = {"quantity": "screening_to_rm_grid_ratio"} | {
        c: (s[c] / r[c] if r[c] and (c == "flops" or c.startswith("gpu_h_")) else None)
        for c in sums}
    out += [s, r, ratio]
    return pl.DataFrame(out, schema={"quantity": pl.String} | {c: pl.Float64 for c in sums})


def assumptions(cfg: Mapping[str, Any], profs: Mapping[str, GpuProfile]) -> list[tuple[str, str]]:
    """(key, statement) pairs written as ``assumption`` rows of the CSV."""
    out = [
        ("flops", "training 6*N per token; forward-only 2*N per token; N = params_b * 1e9 "
         "(attention and gradient-checkpointing recompute are left to the MFU)"),
        ("gpu_time", "train FLOPs / (peak * mfu_train) + forward FLOPs / (peak * mfu_forward)"
         " + decode tokens * max(2N/(peak*mfu_forward), 2 bytes*N/(bandwidth*decode_batch))"),
        ("tokens", f"local files: characters / {cfg['chars_per_token']} + "
         f"{cfg['template_tokens']} template tokens per text, capped at the stage's max "
         "length; hub data: plan.data/eval/presence/posttrain stated sizes"),
        ("padding", f"batched training tokens x (1 + {cfg['padding']})"),
        ("decode_batch", f"{cfg['decode_batch']} sequences decoded together"),
        ("benchmarks", "items x (fewshot+1) x item tokens, once per choice for log-likelihood "
         "tasks; generation tasks prefill once and decode `generate` tokens per item"),
        ("not_counted", "toy pre-training, rm_select merge search, analysis (CPU), model "
         "loading, checkpoint I/O, queueing, failed or repeated jobs"),
    ]
    for p in profs.values():
        out.append((f"profile:{p.name}",
                    f"peak {p.peak_tflops} TFLOP/s dense bf16, {p.mem_bw_gbs} GB/s, mfu_train "
                    f"{p.mfu_train}, mfu_forward {p.mfu_forward}; {p.source}"))
    return out


def projection_csv(study: Study, root: Path = REPO_ROOT) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The CSV frame (work rows, stage totals as ``(all)`` rows, assumptions) and the totals."""
    items, profs, cfg = project(study, root)
    table = projection_table(items, profs)
    totals = stage_totals(table, profs)
    tot_rows = totals.rename({"quantity": "stage"}).with_columns(
        pl.lit("(all)").alias("rule"), pl.lit("(all)").alias("model"),
        pl.lit(None, pl.Float64).alias("params_b"), pl.col("runs").cast(pl.Int64, strict=False),
        pl.lit("").alias("note"))
    assum = pl.DataFrame(
        [{"stage": "assumption", "rule": k, "model": "(all)", "note": v}
         for k, v in assumptions(cfg, profs)])
    full = pl.concat([table, tot_rows.select(table.columns), assum], how="diagonal_relaxed")
    return full, totals


def _num(v: float | None, ratio: bool = False) -> str:
    if v is None:
        return "-"
    if ratio:
        return f"{v:.3f}"
    return f"{v:,.1f}" if abs(v) >= 10 else f"{v:.3g}"


def format_table(totals: pl.DataFrame, profs: Sequence[str]) -> str:
    """The short table printed by ``snakemake plan``: FLOPs and GPU-hours per stage."""
    head = f"{'quantity':<28}{'FLOP':>10}" + "".join(f"{'GPU-h ' + p:>13}" for p in profs)
    lines = [head, "-" * len(head)]
    for row in totals.iter_rows(named=True):
        ratio = row["quantity"] == "screening_to_rm_grid_ratio"
        fl = row["flops"]
        fl_s = _num(fl, True) if ratio else (f"{fl:.2e}" if fl else "0")
        lines.append(f"{row['quantity']:<28}{fl_s:>10}"
                     + "".join(f"{_num(row[gpu_col(p)], ratio):>13}" for p in profs))
    return "\n".join(lines)


def feasibility_text(study: Study, out: str) -> str:
    """Write the feasibility CSV; the printed part: infeasible jobs, study disk, workstations."""
    from rmselect.cluster.site import cluster_settings
    from rmselect.io import write_table
    from rmselect.plan import feasibility as F

    df, lines, ws = F.report(study, cluster=cluster_settings())
    write_table(out, df)
    bad = [ln for ln in lines if ln.startswith("infeasible")]
    head = (f"feasibility ({', '.join(F.check_profiles(study.config))} nodes of "
            f"{section_settings(study.config, 'resources')['gpus_per_node']} GPUs; every "
            f"figure in {out}): "
            + (f"{len(bad)} limit(s) broken" if bad else "every job fits"))
    disk = [f"  {r['profile']}: {r['settings']}" for r in
            df.filter(pl.col("rule") == "(study)").iter_rows(named=True)]
    return "\n".join([head, *(f"  {ln}" for ln in bad), *disk,
                      "one-GPU workstations (RM training):", *(f"  {w}" for w in ws)])


@dataclass(kw_only=True)
class PlanArgs:
    """Cost projection of a study."""

    config: str = opt("JSON of the study config")
    source: str = opt("config file name, for messages", default="config")
    out: str = opt("results/plan/cost_projection.csv")
    feasibility: str | None = opt("results/plan/feasibility.csv (GPU studies; "
                                  "rmselect.plan.feasibility)", default=None)
    log: str | None = opt("also write the printed table here", default=None)


def main(argv: Sequence[str] | None = None) -> int:
    import logging

    from rmselect.config import load_study
    from rmselect.io import write_table

    a = cli.parse(PlanArgs, argv, prog="plan_cost.py")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    study = load_study(json.loads(a.config), a.source)
    full, totals = projection_csv(study)
    names = list(profiles(plan_settings(study.config)))
    text = (f"rmselect plan: {study.config.get('study', a.source)} — projected cost "
            f"(before anything runs; assumptions in {a.out})\n" + format_table(totals, names))
    write_table(a.out, full)
    if a.feasibility and section_settings(study.config, "resources").get("gpu_tiers"):
        text += "\n\n" + feasibility_text(study, a.feasibility)
    print(text, flush=True)
    if a.log:
        Path(a.log).parent.mkdir(parents=True, exist_ok=True)
        Path(a.log).write_text(text + "\n")
    return 0
