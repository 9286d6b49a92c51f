"""Does every job of a study fit its machine? Checked by `snakemake plan` before launch.

For every job kind (rule × model) the plan projects, on a node of ``resources.gpus_per_node``
GPUs of a profile (:mod:`rmselect.plan.cost_model`): peak GPU memory per rank, host memory of
the node, wall time of one job (compute at the profile's MFU + ZeRO communication at its
interconnect bandwidth) and disk written / kept (:mod:`rmselect.plan.memory` has the
formulas). Each figure is compared with what the job requests (``resources_for``: GPUs,
``mem_mb``, ``runtime``; ``resources.scratch_gb`` for disk); a job that breaks a limit is
printed as one line naming the limit, by how much, and what would fix it.

The same model chooses the RM trainer's ZeRO stage and micro batch where ``rm.by_size`` says
``auto`` (:func:`choose_train`): of the settings that fit the GPU, the one projected fastest
(ZeRO-2 unless ZeRO-3 at a larger micro batch communicates less), the global batch kept
exact through accumulation. It also says per model whether the RM trains on a one-GPU
workstation (``plan.workstations``) and with which settings.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import polars as pl

from rmselect.config import REPO_ROOT, Study, section_settings
from rmselect.plan import memory as M
from rmselect.plan.cost_model import GpuProfile, Work, plan_settings, profiles
from rmselect.plan.memory import GB

#: Context lm-eval assumes without benchmarks.max_length (Llama-3.1/3.2, Phi-3.5, Tulu-3).
MODEL_CONTEXT = 131_072
#: Rule -> resource kind (rmselect.cluster.resources); probe jobs are sized as presence jobs
#: but keep their own projected minutes (workflow/rules/probe.smk).
KIND = {"rm_train": "rm_train", "eval_rm": "eval", "eval_rm_model": "eval",
        "bench_run": "benchmarks", "bench_model": "benchmarks",
        "bench_screen_run": "benchmarks", "bench_model_screen": "benchmarks",
        "presence_score": "presence", "probe_model": "probe",
        "posttrain_variant": "posttrain"}


@dataclass
class Row:
    """One job kind on one machine: every figure, the limits and the verdict."""

    profile: str
    rule: str
    model: str
    params_b: float
    jobs: int
    ranks: int
    settings: str
    gpu_gb: float
    gpu_limit_gb: float
    host_gb: float
    host_limit_gb: float
    minutes: float
    runtime_limit_min: float
    disk_written_gb: float = 0.0
    disk_peak_gb: float = 0.0
    disk_kept_gb: float = 0.0
    disk_limit_gb: float | None = None
    breaks: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return "fits" if not self.breaks else "infeasible"


# --------------------------------------------------------------------------- settings


def _feas(config: Mapping[str, Any]) -> dict[str, Any]:
    return plan_settings(config)



def train_ranks(config: Mapping[str, Any], params_b: float, kind: str, gpus_per_node: int) -> int:
    """Ranks of a job: the tier's GPUs, at most the machine's (one on a CPU study)."""
    from rmselect.cluster.resources import resources_for

    gpus = int(resources_for(kind, params_b, config)["gpu"])
    return max(1, min(gpus, int(gpus_per_node))) if gpus else 1


def _time_s(prof: GpuProfile, shape: M.Shape, w: Work, runs: int, s: M.TrainSetup) -> float:
    """Wall seconds of one run: its GPU-seconds over its ranks + ZeRO traffic per step."""
    compute = prof.seconds(w) / max(1, runs) / s.ranks
    comm = 0.0
    if prof.interconnect_gbs:
        comm = w.steps * M.comm_bytes_per_step(shape, s.zero, s.ranks, s.accumulation) / (
            prof.interconnect_gbs * GB)
    return compute + comm


def _micro_choices(global_batch: int, ranks: int) -> list[int]:
    per = max(1, global_batch // max(1, ranks))
    return [m for m in range(per, 0, -1) if per % m == 0 and global_batch % (m * ranks) == 0]


def choose_train(shape: M.Shape, prof: GpuProfile, base: M.TrainSetup, overhead_gb: float,
                 steps: int = 1, zeros: Sequence[int] | None = None,
                 micros: Sequence[int] | None = None,
                 offloads: Sequence[str] = ("none",)) -> M.TrainSetup | None:
    """The fastest setting that fits ``prof``'s GPU memory (None: nothing fits).

    Tried: ZeRO 2 and 3 (or ``zeros``), every micro batch dividing ``global_batch / ranks``
    (or ``micros``), the ``offloads`` in order (the first that admits a fit wins). Among
    fits the least communication wins; ties go to ZeRO-2, then the larger micro batch.
    """
    if not prof.gpu_mem_gb:
        from rmselect.config import ConfigError

        raise ConfigError(f"config: field 'plan.profiles.{prof.name}.gpu_mem_gb' is needed to "
                          "size ZeRO stage / micro batch (rm.by_size: auto)")
    limit = prof.gpu_mem_gb * GB
    for off in offloads:
        best: tuple[float, int, int, M.TrainSetup] | None = None
        for z in zeros or ((3,) if off == "param" else (2, 3)):
            for m in micros or _micro_choices(base.global_batch, base.ranks):
                s = replace(base, zero=int(z), micro_batch=int(m), offload=off)
                try:
                    mem = M.train_memory(shape, s, overhead_gb)
                except ValueError:
                    continue
                if mem.gpu > limit:
                    continue
                key = (steps * M.comm_bytes_per_step(shape, s.zero, s.ranks, s.accumulation),
                       s.zero, -s.micro_batch, s)
                if best is None or key[:3] < best[:3]:
                    best = key
        if best is not None:
            return best[3]
    return None


def _offload_of(size: Mapping[str, Any], rc: Mapping[str, Any]) -> str:
    off = rc.get("offload")
    if off in M.OFFLOADS:
        return str(off)
    return "optimizer" if size.get("offload_optimizer") else "none"


def rm_setup(config: Mapping[str, Any], params_b: float, extra: Mapping[str, Any] | None,
             raw: Mapping[str, Any], seqs: int, ranks: int, prof: GpuProfile) -> M.TrainSetup:
    """The RM trainer's setting for one (model, objective): the ``rm.by_size`` row, with
    ``auto`` ZeRO stage / micro batch chosen by :func:`choose_train` on ``prof``."""
    rc = section_settings(config, "rm")
    plan = _feas(config)
    base = M.TrainSetup(zero=2 if raw["zero_stage"] == "auto" else int(raw["zero_stage"]),
                        ranks=ranks,
                        micro_batch=1 if raw["micro_batch"] == "auto" else int(raw["micro_batch"]),
                        seqs=seqs, max_length=int(rc["max_length"]),
                        grad_ckpt=bool(raw.get("grad_checkpointing")),
                        offload=_offload_of(raw, rc), global_batch=int(rc["global_batch"]))
    if raw["zero_stage"] != "auto" and raw["micro_batch"] != "auto":
        return base
    shape = M.shape_of(params_b, extra)
    got = choose_train(
        shape, prof, base, float(plan["gpu_overhead_gb"]),
        zeros=None if raw["zero_stage"] == "auto" else [base.zero],
        micros=None if raw["micro_batch"] == "auto" else [base.micro_batch],
        offloads=(base.offload,))
    # Nothing fits: keep the smallest setting, so that the plan reports it as infeasible.
    return got or replace(base, zero=3 if raw["zero_stage"] == "auto" else base.zero,
                          micro_batch=1 if raw["micro_batch"] == "auto" else base.micro_batch)


def _machine_gpus(config: Mapping[str, Any], cluster: Any = None) -> int:
    """GPUs of one machine: the site's ``gpus_per_node`` (RMSELECT_GPUS_PER_NODE or
    slurm/local.yaml) where set, else ``resources.gpus_per_node``."""
    site = getattr(cluster, "gpus_per_node", None)
    return int(site or section_settings(config, "resources")["gpus_per_node"])


def resolve_size(config: Mapping[str, Any], params_b: float, row: Mapping[str, Any],
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``rm.by_size`` row with ``auto`` replaced by the memory model's choice on the
    ``plan.profile`` GPU at the tier's ranks; BT pairs (2 sequences) size the micro batch."""
    if row.get("zero_stage") != "auto" and row.get("micro_batch") != "auto":
        return dict(row)
    from rmselect.cluster.site import cluster_settings

    plan = _feas(config)
    prof = profiles(plan)[plan["profile"]]
    gpn = _machine_gpus(config, cluster_settings())
    s = rm_setup(config, params_b, extra, row, 2, train_ranks(config, params_b, "rm_train", gpn),
                 prof)
    return {**row, "zero_stage": s.zero, "micro_batch": s.micro_batch}


# --------------------------------------------------------------------------- rows


def _request(config: Mapping[str, Any], kind: str, params_b: float, model: str | None,
             extra: Mapping[str, Any] | None, cluster: Any, minutes: float) -> dict[str, Any]:
    """What the job asks for (first attempt), its runtime from ``minutes`` where
    ``resources.runtime_from: projection``."""
    from rmselect.cluster.resources import resources_for

    return resources_for(kind, params_b, config, model, model_extra=extra, cluster=cluster,
                         projected_min=minutes)


def _check(row: Row, prof: GpuProfile, ceiling_min: float | None) -> Row:
    over = row.gpu_gb - row.gpu_limit_gb
    if row.gpu_limit_gb and over > 0:  # a profile without gpu_mem_gb is not checked
        fix = ("rm.by_size zero_stage/micro_batch: auto (or ZeRO-3, a smaller micro batch, "
               "gradient checkpointing, rm.offload), or more GPUs in the tier"
               if row.rule.startswith(("rm_train", "posttrain")) else
               "fewer tokens per batch (" + _BATCH_FIELD.get(row.rule, "the batch size")
               + ") or more infer_gpus in the tier")
        row.breaks.append(
            f"GPU memory {row.gpu_gb:.1f} GB > {row.gpu_limit_gb:.0f} GB of one {prof.name} "
            f"(+{over:.1f} GB); fix: {fix}")
    if row.host_limit_gb and row.host_gb > row.host_limit_gb:
        row.breaks.append(
            f"host memory {row.host_gb:.0f} GB > mem_mb {row.host_limit_gb:.0f} GB "
            f"(+{row.host_gb - row.host_limit_gb:.0f} GB); fix: resources.mem_mb_per_gpu >= "
            f"{math.ceil(row.host_gb * 1000 / max(1, row.ranks))}")
    if row.minutes > row.runtime_limit_min:
        what = ("the site's runtime ceiling" if ceiling_min
                and row.runtime_limit_min >= ceiling_min else "runtime")
        fix = ("split the job (more, shorter jobs) or more GPUs per job"
               if what != "runtime" else
               f"a runtime of >= {math.ceil(row.minutes)} min (runtime from the projection: "
               "resources.runtime_from: projection)")
        row.breaks.append(
            f"time {row.minutes:,.0f} min > {what} {row.runtime_limit_min:,.0f} min "
            f"(x{row.minutes / max(1.0, row.runtime_limit_min):.1f}); fix: {fix}")
    if row.disk_limit_gb is not None and row.disk_peak_gb > row.disk_limit_gb:
        row.breaks.append(
            f"disk {row.disk_peak_gb:,.0f} GB > resources.scratch_gb {row.disk_limit_gb:,.0f}"
            f" (+{row.disk_peak_gb - row.disk_limit_gb:,.0f} GB); fix: rm.keep_checkpoints 1, "
            "a longer rm.ds_save_minutes, or more scratch")
    return row


_BATCH_FIELD = {"presence_score": "presence.batch_tokens", "probe_model": "probe.batch_size",
                "eval_rm": "eval.max_tokens", "eval_rm_model": "eval.max_tokens",
                "bench_run": "benchmarks.max_length", "bench_model": "benchmarks.max_length"}


def _ceiling(cluster: Any) -> float | None:
    v = getattr(cluster, "runtime_ceiling", None) if cluster is not None else None
    return float(v) if v else None


def rm_rows(study: Study, prof: GpuProfile, gpn: int, root: Path,
            cluster: Any = None) -> list[Row]:
    from rmselect.plan.stages import rm_runs
    from rmselect.rm.rules import keep_checkpoints, rm_config, size_settings_raw

    cfg = study.config
    plan = _feas(cfg)
    rc = rm_config(cfg)
    out = []
    for w in rm_runs(study, plan, root):
        spec = study.model(w.model)
        shape = M.shape_of(w.params_b, spec.extra)
        ranks = train_ranks(cfg, w.params_b, "rm_train", gpn)
        # The DAG sizes one setting for both objectives on BT pairs (resolve_size); the run
        # itself processes w.seqs sequences per example.
        s = replace(rm_setup(cfg, w.params_b, spec.extra, size_settings_raw(cfg, w.params_b),
                             2, ranks, prof), seqs=w.seqs)
        mem = M.train_memory(shape, s, float(plan["gpu_overhead_gb"]))
        minutes = _time_s(prof, shape, w, w.runs, s) / 60.0
        req = _request(cfg, "rm_train", w.params_b, w.model, spec.extra, cluster,
                       job_minutes_of(study, cluster, prof.name).get(("rm_train", w.model),
                                                                    minutes))
        # every rank tokenizes the run's data: at most the tokens one run trains on
        host = M.host_train(shape, min(ranks, gpn), mem.host_offload, 1,
                            w.train_tokens / max(1, w.runs), float(plan["host_process_gb"]))
        hf, ds = M.checkpoint_bytes(shape)
        from rmselect.plan.sizes import _eval_points

        evals = _eval_points(w.steps, int(rc["eval_every"]))
        # HF dirs the run keeps, as the trainer is told (0: every evaluation point)
        m = keep_checkpoints(rc, w.objective) or evals
        ds_saves = max(1, math.ceil(minutes / float(rc["ds_save_minutes"])))
        out.append(_check(Row(
            profile=prof.name, rule=f"rm_train[{w.objective}]", model=w.model,
            params_b=w.params_b, jobs=w.runs, ranks=s.ranks,
            settings=(f"ZeRO-{s.zero} micro {s.micro_batch} x accum {s.accumulation} x "
                      f"{s.ranks} ranks = {s.global_batch}; {s.tokens} tok/micro; gc "
                      f"{'on' if s.grad_ckpt else 'off'}; offload {s.offload}"),
            gpu_gb=mem.gpu / GB, gpu_limit_gb=prof.gpu_mem_gb,
            host_gb=host / GB, host_limit_gb=float(req["mem_mb"]) / 1000.0,
            minutes=minutes, runtime_limit_min=float(req["runtime"]),
            disk_written_gb=(evals * hf + ds_saves * ds) / GB,
            disk_peak_gb=((m + 1) * hf + 2 * ds) / GB,
            disk_kept_gb=(m * hf) / GB + evals * 1e-3,
            disk_limit_gb=_scratch(cfg)), prof, _ceiling(cluster)))
    return out


def posttrain_rows(study: Study, items: Sequence[Work], prof: GpuProfile, gpn: int,
                   cluster: Any = None) -> list[Row]:
    """Produced variants (SFT, DPO): full fine-tuning with the LM head's logits; DPO also
    holds the frozen reference model (bf16 weights over the ranks)."""
    from rmselect.dag.posttrain import variant_recipes

    cfg = study.config
    plan = _feas(cfg)
    recipes = variant_recipes(study)
    out = []
    for w in items:
        if w.rule != "posttrain_variant" or w.model not in recipes:
            continue
        rec = recipes[w.model]
        spec = study.model(w.model)
        shape = M.shape_of(w.params_b, spec.extra)
        from rmselect.cluster.resources import resources_for

        req0 = resources_for("posttrain", w.params_b, cfg, w.model, model_extra=spec.extra)
        ranks = max(1, min(int(req0["gpu"] or 1), gpn))
        zero = rec.get("zero_stage")
        s = M.TrainSetup(zero=int(req0["zero"] if zero is None else zero), ranks=ranks,
                         micro_batch=int(rec["micro_batch"]),
                         seqs=1 if rec["stage"] == "sft" else 2,
                         max_length=int(rec["max_length"]),
                         grad_ckpt=bool(rec.get("gradient_checkpointing")), logits=True,
                         global_batch=int(rec["global_batch"]))
        mem = M.train_memory(shape, s, float(plan["gpu_overhead_gb"]))
        ref = 2 * shape.params / ranks if rec["stage"] == "dpo" else 0.0
        steps = int(w.train_tokens / max(1.0, s.global_batch * s.seqs * s.max_length)) or 1
        w1 = replace(w, steps=steps)
        minutes = _time_s(prof, shape, w1, 1, s) / 60.0
        req = _request(cfg, "posttrain", w.params_b, w.model, spec.extra, cluster,
                       job_minutes_of(study, cluster, prof.name).get(("posttrain", w.model),
                                                                     minutes))
        host = M.host_train(shape, ranks, mem.host_offload, 0, 0, float(plan["host_process_gb"]))
        hf, ds = M.checkpoint_bytes(shape)
        out.append(_check(Row(
            profile=prof.name, rule="posttrain_variant", model=w.model, params_b=w.params_b,
            jobs=1, ranks=ranks,
            settings=(f"{rec['stage']}: ZeRO-{s.zero} micro {s.micro_batch} x accum "
                      f"{s.accumulation} x {ranks} ranks = {s.global_batch}; {s.tokens} "
                      f"tok/micro; logits"),
            gpu_gb=(mem.gpu + ref) / GB, gpu_limit_gb=prof.gpu_mem_gb, host_gb=host / GB,
            host_limit_gb=float(req["mem_mb"]) / 1000.0, minutes=minutes,
            runtime_limit_min=float(req["runtime"]), disk_written_gb=(hf + 2 * ds) / GB,
            disk_peak_gb=(hf + 2 * ds) / GB, disk_kept_gb=hf / GB,
            disk_limit_gb=_scratch(cfg)), prof, _ceiling(cluster)))
    return out


def _scratch(cfg: Mapping[str, Any]) -> float | None:
    v = section_settings(cfg, "resources").get("scratch_gb")
    return float(v) if v else None


def _stage_tokens(study: Study, rule: str) -> tuple[int, bool, int, int, int]:
    """(tokens per forward batch, logits computed, KV-cache tokens, rows, longest sequence)
    of a forward job. lm-eval's ``batch_size: auto`` halves its batch until it fits, so a
    benchmark job needs one sequence of ``benchmarks.max_length`` (the model's context,
    :data:`MODEL_CONTEXT`, when null) to fit."""
    cfg = study.config
    if rule.startswith("eval_rm"):
        ev = section_settings(cfg, "eval")
        t = int(ev["batch_size"]) * int(ev["max_length"])
        if ev.get("max_tokens"):
            t = min(t, int(ev["max_tokens"]))
        return t, False, 0, 10_000, int(ev["max_length"])
    if rule.startswith("bench"):
        b = section_settings(cfg, "benchmarks")
        ctx = int(b.get("max_length") or MODEL_CONTEXT)
        return ctx, True, ctx, 10_000, ctx
    if rule == "presence_score":
        p = section_settings(cfg, "presence")
        docs = sum(int((e or {}).get("n_docs") or p["n_docs"]) for e in (p["domains"] or {}).values())
        return (int(p["batch_tokens"]), True, 0, docs or int(p["n_docs"]),
                int(p["max_tokens"]) + 1)
    p = section_settings(cfg, "probe")
    return (int(p["batch_size"]) * int(p["max_length"]), True, 0,
            2 * int(p["max_train_pairs"] or 0), int(p["max_length"]))


def forward_rows(study: Study, items: Sequence[Work], prof: GpuProfile, gpn: int,
                 cluster: Any = None) -> list[Row]:
    cfg = study.config
    plan = _feas(cfg)
    out = []
    for w in items:
        if w.rule not in KIND or w.rule in ("rm_train", "posttrain_variant"):
            continue
        key = KIND[w.rule]  # the projected minutes' key; the resource kind below
        kind = "presence" if key == "probe" else key
        tokens, logits, kv, rows, seq = _stage_tokens(study, w.rule)
        model = w.model if w.model in study.model_names else None
        extra = study.model(model).extra if model else None
        shape = M.shape_of(w.params_b, extra)
        from rmselect.cluster.resources import resources_for

        gpus = int(resources_for(kind, w.params_b, cfg, model, model_extra=extra)["gpu"] or 1)
        ranks = max(1, min(gpus, gpn))
        mem = M.infer_memory(shape, ranks, tokens, logits, kv, float(plan["gpu_overhead_gb"]),
                             seq)
        jobs = max(1, w.runs)
        minutes = prof.seconds(w) / jobs / ranks / 60.0
        req = _request(cfg, kind, w.params_b, model, extra, cluster,
                       job_minutes_of(study, cluster, prof.name).get((key, w.model), minutes))
        host = M.host_infer(shape, rows, 1000.0, float(plan["host_process_gb"]))
        note = "mean job" if jobs > 1 else "one job"
        out.append(_check(Row(
            profile=prof.name, rule=w.rule, model=w.model, params_b=w.params_b, jobs=jobs,
            ranks=ranks, settings=f"{tokens} tok/batch; logits {'yes' if logits else 'no'}; "
            f"{note}", gpu_gb=mem.gpu / GB, gpu_limit_gb=prof.gpu_mem_gb, host_gb=host / GB,
            host_limit_gb=float(req["mem_mb"]) / 1000.0, minutes=minutes,
            runtime_limit_min=float(req["runtime"])), prof, _ceiling(cluster)))
    return out


def sample_rows(study: Study, prof: GpuProfile, cluster: Any = None) -> list[Row]:
    """The CPU job sampling each streamed presence domain (rule ``presence_sample``): its
    wall time over its workers against the runtime it asks for and the site's ceiling, the
    text it holds against its memory (``rmselect.dag.presence``), and its disk: the shards it
    keeps (the sampled text) and, at its peak, the resumable candidates file beside them."""
    from rmselect.cluster.resources import resources_for
    from rmselect.dag import presence as dp
    from rmselect.presence.cost import sample_cost

    cfg = study.config
    pres = dp.settings(study)
    ceiling = _ceiling(cluster)
    base = float(resources_for("analysis", 0.0, cfg)["mem_mb"])  # the rule's base memory
    out = []
    for domain, entry in pres["domains"].items():
        if not entry.get("streaming"):
            continue
        cost = sample_cost(domain, entry, dp.domain_docs(pres, domain), _feas(cfg))
        if not math.isfinite(cost.cpu_s):
            continue
        workers = dp.sample_workers(pres, domain)
        limit = float(dp.sample_runtime(study, pres, domain))
        text_gb = dp.domain_docs(pres, domain) * dp.max_chars(pres) / 1e9
        row = Row(profile=prof.name, rule="presence_sample", model=f"corpus:{domain}",
                  params_b=0.0, jobs=1, ranks=1, settings=f"CPU, {workers} workers",
                  gpu_gb=0.0, gpu_limit_gb=0.0, host_gb=text_gb + base / 1000.0,
                  host_limit_gb=dp.sample_mem_mb(pres, domain, int(base)) / 1000.0,
                  minutes=cost.cpu_s / workers / 60.0, runtime_limit_min=limit,
                  disk_written_gb=text_gb, disk_peak_gb=2 * text_gb, disk_kept_gb=text_gb)
        if ceiling and limit > ceiling:  # the request itself is over what the site allows
            row.breaks.append(
                f"time: asks for {limit:,.0f} min > the site's runtime ceiling {ceiling:,.0f}"
                f" min; fix: presence.sample_workers >= "
                f"{math.ceil(workers * limit / ceiling)}")
        out.append(_check(row, prof, ceiling))
    return out


def feasibility(study: Study, profile: str, gpus_per_node: int | None = None,
                root: Path = REPO_ROOT, cluster: Any = None) -> list[Row]:
    """Every job kind of ``study`` on a node of ``gpus_per_node`` GPUs of ``profile``."""
    from rmselect.plan.projection import project

    cfg = study.config
    items, profs, _ = project(study, root)
    prof = profs[profile]
    gpn = int(gpus_per_node or _machine_gpus(cfg, cluster))
    rows: list[Row] = []
    if section_settings(cfg, "eval")["train_and_evaluate"]:
        rows += rm_rows(study, prof, gpn, root, cluster)
    rows += posttrain_rows(study, items, prof, gpn, cluster)
    rows += forward_rows(study, items, prof, gpn, cluster)
    rows += sample_rows(study, prof, cluster)
    return rows


_MINUTES: dict[tuple[int, str], dict[tuple[str, str], float]] = {}


def job_minutes_of(study: Study, cluster: Any = None, profile: str | None = None
                   ) -> dict[tuple[str, str], float]:
    """Projected minutes of one job per (resource kind, model) on ``profile`` (default
    ``plan.profile``; the longest job of the kind), cached per study: what
    ``resources.runtime_from: projection`` turns into each job's runtime. Empty for CPU
    studies (no gpu_tiers)."""
    cfg = study.config
    profile = profile or _feas(cfg)["profile"]
    key = (id(study), profile)
    if key in _MINUTES:
        return _MINUTES[key]
    _MINUTES[key] = {}  # while computing: requests fall back to the job's own minutes
    out: dict[tuple[str, str], float] = {}
    if section_settings(cfg, "resources").get("gpu_tiers"):
        for r in feasibility(study, profile, None, REPO_ROOT, cluster):
            kind = KIND.get(r.rule.split("[")[0])
            if kind is None:  # a CPU job (presence_sample) sizes its own runtime
                continue
            out[(kind, r.model)] = max(out.get((kind, r.model), 0.0), r.minutes)
    _MINUTES[key] = out
    return out


def projected_minutes(study: Study, cluster: Any, kind: str, name: str | None
                      ) -> float | None:
    """The plan's projected minutes of one ``kind`` job of model ``name`` where
    ``resources.runtime_from: projection`` (else None): what the DAG passes to
    ``rmselect.cluster.resources.resources_for`` as ``projected_min``. ``kind`` is the
    resource kind or, for a rule sized as another kind, the rule's own (``probe``)."""
    if not name or section_settings(study.config, "resources")["runtime_from"] != "projection":
        return None
    return job_minutes_of(study, cluster).get((kind, name))


def study_disk_gb(rows: Sequence[Row], in_flight: int, prune: bool = True) -> float:
    """Peak disk of the study's RM grid, GB.

    A (model, objective) group keeps its runs' checkpoints until its selection; with
    ``rm.prune_checkpoints`` only the selected run's checkpoint stays afterwards. At most
    ``in_flight`` runs train at once, so at most ``ceil(in_flight / runs per group) + 1``
    groups are open (trained, not yet selected): the largest such groups keep every run's
    checkpoints, every other group one (all runs' without pruning), plus the transient peak
    (DeepSpeed states, the next HF checkpoint) of the ``in_flight`` largest runs."""
    rm = [r for r in rows if r.rule.startswith("rm_train")]
    if not rm:
        return 0.0
    if not prune:
        kept = sum(r.disk_kept_gb * r.jobs for r in rm)
    else:
        per_group = max(r.jobs for r in rm)
        open_groups = math.ceil(in_flight / per_group) + 1
        full = sorted((r.disk_kept_gb * r.jobs for r in rm), reverse=True)
        kept = sum(full[:open_groups]) + sum(
            r.disk_kept_gb for r in sorted(rm, key=lambda r: -r.disk_kept_gb * r.jobs)[open_groups:])
    extra = sorted((r.disk_peak_gb - r.disk_kept_gb for r in rm), reverse=True)[:in_flight]
    return kept + sum(extra)


def workstation(study: Study, prof: GpuProfile, root: Path = REPO_ROOT) -> list[dict[str, Any]]:
    """Per trained model: the RM setting that fits one GPU of ``prof`` (none, optimizer or
    parameter offload, the largest micro batch), or that nothing fits."""
    from rmselect.rm.rules import rm_config, size_settings_raw

    cfg = study.config
    plan = _feas(cfg)
    rc = rm_config(cfg)
    out = []
    for model in study.trained_models():
        spec = study.model(model)
        shape = M.shape_of(spec.params_b, spec.extra)
        raw = size_settings_raw(cfg, spec.params_b)
        base = M.TrainSetup(zero=2, ranks=1, micro_batch=1, seqs=2,
                            max_length=int(rc["max_length"]),
                            grad_ckpt=bool(raw.get("grad_checkpointing")),
                            global_batch=int(rc["global_batch"]))
        s = choose_train(shape, prof, base, float(plan["gpu_overhead_gb"]),
                         offloads=("none", "optimizer", "param"))
        row: dict[str, Any] = {"model": model, "params_b": spec.params_b,
                               "machine": f"1x {prof.name} {prof.gpu_mem_gb:.0f}GB"}
        if s is None:
            mem = M.train_memory(shape, replace(base, zero=3, offload="param"),
                                 float(plan["gpu_overhead_gb"]))
            row |= {"fits": False, "settings": "", "gpu_gb": mem.gpu / GB,
                    "host_gb": (mem.host_offload + M.host_train(shape, 1, 0, 0, 0, float(
                        plan["host_process_gb"]))) / GB}
        else:
            mem = M.train_memory(shape, s, float(plan["gpu_overhead_gb"]))
            row |= {"fits": True,
                    "settings": f"ZeRO-{s.zero} micro {s.micro_batch} x accum {s.accumulation}"
                    f"; offload {s.offload}", "gpu_gb": mem.gpu / GB,
                    "host_gb": (mem.host_offload + M.host_train(shape, 1, 0, 0, 0, float(
                        plan["host_process_gb"]))) / GB}
        out.append(row)
    return out


# --------------------------------------------------------------------------- output


COLUMNS = ["profile", "rule", "model", "params_b", "jobs", "ranks", "settings", "gpu_gb",
           "gpu_limit_gb", "host_gb", "host_limit_gb", "minutes", "runtime_limit_min",
           "disk_written_gb", "disk_peak_gb", "disk_kept_gb", "disk_limit_gb", "verdict",
           "breaks"]


def frame(rows: Sequence[Row]) -> pl.DataFrame:
    recs = []
    for r in rows:
        d = asdict(r)
        d["breaks"] = " | ".join(r.breaks)
        d["verdict"] = r.verdict
        recs.append({k: d[k] for k in COLUMNS})
    schema = {c: pl.Float64 for c in COLUMNS} | {
        "profile": pl.String, "rule": pl.String, "model": pl.String, "settings": pl.String,
        "verdict": pl.String, "breaks": pl.String, "jobs": pl.Int64, "ranks": pl.Int64}
    return pl.DataFrame(recs, schema=schema, orient="row") if recs else pl.DataFrame(schema=schema)


def infeasible_lines(rows: Sequence[Row]) -> list[str]:
    """One line per job kind that cannot fit: the job, the limit, by how much, the fix."""
    out = []
    for r in rows:
        for b in r.breaks:
            out.append(f"infeasible on {r.profile} x{r.ranks if r.ranks > 1 else 1}: "
                       f"{r.rule} {r.model}: {b}")
    return out


def check_profiles(config: Mapping[str, Any]) -> list[str]:
    plan = _feas(config)
    names = list(plan["check_profiles"] or [])
    return names or [plan["profile"]]


def report(study: Study, root: Path = REPO_ROOT, cluster: Any = None
           ) -> tuple[pl.DataFrame, list[str], list[str]]:
    """The feasibility CSV frame (every checked profile), the infeasible lines and the
    workstation lines."""
    cfg = study.config
    plan = _feas(cfg)
    profs = profiles(plan)
    gpn = _machine_gpus(cfg, cluster)
    rows: list[Row] = []
    lines: list[str] = []
    for name in check_profiles(cfg):
        got = feasibility(study, name, gpn, root, cluster)
        rows += got
        lines += infeasible_lines(got)
        disk = study_disk_gb(got, int(plan["runs_in_flight"]),
                             bool(section_settings(cfg, "rm")["prune_checkpoints"]))
        # the sampled corpora stay for the whole study; every domain may sample at once
        disk += sum(r.disk_peak_gb for r in got if r.rule == "presence_sample")
        budget = plan.get("disk_tb")
        msg = f"study peak disk on {name}: {disk / 1000:,.2f} TB"
        if budget and disk / 1000 > float(budget):
            lines.append(f"infeasible on {name}: study disk {disk / 1000:,.1f} TB > plan.disk_tb "
                         f"{budget} TB; fix: rm.keep_checkpoints 1, prune after selection")
        rows.append(Row(profile=name, rule="(study)", model="(all)", params_b=0.0, jobs=0,
                        ranks=0, settings=msg, gpu_gb=0, gpu_limit_gb=0, host_gb=0,
                        host_limit_gb=0, minutes=0, runtime_limit_min=0, disk_peak_gb=disk,
                        disk_limit_gb=float(budget) * 1000 if budget else None))
    ws = []
    if section_settings(cfg, "eval")["train_and_evaluate"]:
        for name in plan["workstations"] or []:
            for w in workstation(study, profs[name], root):
                ws.append(f"{w['machine']}: {w['model']} ({w['params_b']} B) "
                          + (f"fits: {w['settings']} (GPU {w['gpu_gb']:.1f} GB, host "
                             f"{w['host_gb']:.0f} GB)" if w["fits"] else
                             f"does not fit even with parameter offload at micro batch 1 "
                             f"(GPU {w['gpu_gb']:.1f} GB)"))
    return frame(rows), lines, ws


def gate(study: Study, cluster: Any = None) -> tuple[str, list[str]]:
    """(``plan.on_infeasible``, the broken limits on ``plan.profile``'s machine) for the main
    DAG of a GPU study: ``warn`` prints them, ``error`` also refuses to start. No lines for
    CPU studies (no ``resources.gpu_tiers``)."""
    cfg = study.config
    plan = _feas(cfg)
    if not section_settings(cfg, "resources").get("gpu_tiers"):
        return plan["on_infeasible"], []
    return plan["on_infeasible"], infeasible_lines(feasibility(
        study, plan["profile"], _machine_gpus(cfg, cluster), REPO_ROOT, cluster))
