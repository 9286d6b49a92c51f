"""Per-stage work counting for the projection: what each rule of a study processes.

One function per stage (RM grid, RM evaluation, benchmarks, presence, post-training,
probe), each returning :class:`rmselect.plan.cost_model.Work` items; the counting rules are
in :mod:`rmselect.plan.projection`'s docstring.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import polars as pl

from rmselect.config import ConfigError, Study
from rmselect.plan import cost_model
from rmselect.plan.cost_model import Work
from rmselect.plan.sizes import (
    _capped,
    _eval_points,
    _local,
    _mean_len,
    _read_rows,
    _stated,
    _steps,
    _text_tokens,
    data_size,
)


def rm_work(study: Study, cfg: Mapping[str, Any], root: Path) -> list[Work]:
    """The RM grid: every trained model × objective × learning rate × seed (rule rm_train)."""
    return _merge(rm_runs(study, cfg, root))


def rm_runs(study: Study, cfg: Mapping[str, Any], root: Path) -> list[Work]:
    """:func:`rm_work` before merging: one item per (model, objective), with its steps."""
    from rmselect.rm.rules import lr_grid, rm_config, seeds

    rc = rm_config(study.config)
    n_seeds = len(seeds(study.config))
    cap = rc.get("max_length")
    pref = data_size(study, cfg, "helpsteer2_preference", root)
    rated = data_size(study, cfg, "helpsteer2", root) if "regression" in rc["objectives"] else None
    val_pairs = min(pref.val_rows, rc["max_val_pairs"]) if rc.get("max_val_pairs") else pref.val_rows
    out = []
    for model in study.trained_models():
        spec = study.model(model)
        for obj in rc["objectives"]:
            size = pref if obj == "bt" else rated
            assert size is not None
            n = size.rows
            if rc.get("max_train_examples"):
                n = min(n, int(rc["max_train_examples"]))
            epochs = rc["epochs"][obj] if isinstance(rc["epochs"], Mapping) else rc["epochs"]
            seqs = 2 if obj == "bt" else 1
            tok = _capped(size.tokens, cap)
            steps = _steps(n, int(rc["global_batch"]), float(epochs))
            evals = _eval_points(steps, int(rc["eval_every"]))
            lrs = len(lr_grid(study.config, obj, model)) * n_seeds  # runs
            train = lrs * steps * int(rc["global_batch"]) * seqs * tok * (1 + float(cfg["padding"]))
            val = lrs * evals * val_pairs * 2 * _capped(pref.tokens, cap)
            w = Work("rm_train", "rm_train", model, spec.params_b, runs=lrs,
                     train_tokens=train, forward_tokens=val, steps=steps, seqs=seqs,
                     objective=obj)
            w.notes.append(
                f"{obj}: {lrs // n_seeds} LR x {n_seeds} seed(s) x {steps} steps x {rc['global_batch']} x {seqs} seq x "
                f"{tok:.0f} tok ({n} examples {size.source}); val {evals} x {val_pairs} pairs"
            )
            out.append(w)
    return out


def _merge(items: list[Work]) -> list[Work]:
    """One row per (stage, rule, model): tokens and runs summed, notes joined."""
    by: dict[tuple[str, str, str], Work] = {}
    for w in items:
        key = (w.stage, w.rule, w.model)
        if key not in by:
            by[key] = w
            continue
        b = by[key]
        b.runs += w.runs
        b.train_tokens += w.train_tokens
        b.forward_tokens += w.forward_tokens
        b.decode_tokens += w.decode_tokens
        b.notes += w.notes
    return list(by.values())


def eval_work(study: Study, cfg: Mapping[str, Any], root: Path) -> list[Work]:
    """Scoring the selected RM of every evaluated (model, objective) on every benchmark."""
    from rmselect.eval.settings import eval_settings

    ev = eval_settings(study, study.trained_models())
    if not ev.benchmarks:
        return []
    cap = int(ev.options.get("max_length") or 0) or None
    limit = ev.options.get("limit_per_subset")
    sizes: dict[str, tuple[int, int, float, str]] = {}
    for name, entry in ev.benchmarks.items():
        stated = dict((cfg.get("eval") or {}).get(name) or {})
        path = _local(entry, root)
        seqs = int(stated.get("sequences", 2))
        if path is not None and name not in ev.derived:
            df = _read_rows(path)
            rows = df.height
            if limit and "subset" in df.columns:
                rows = int(df.group_by("subset").len()["len"].clip(upper_bound=int(limit)).sum())
            chars = _mean_len(df, ["prompt"]) + (_mean_len(df, ["chosen"])
                                                 + _mean_len(df, ["rejected"])) / 2
            sizes[name] = (rows, seqs, _text_tokens(chars, cfg), f"counted in {entry['path']}")
        else:
            s = _stated(cfg, "eval", name, f"eval.benchmarks.{name}")
            sizes[name] = (int(s["rows"]), seqs, float(s["tokens"]), "stated in plan.eval")
    out = []
    k = len(ev.seeds)  # one RM per training seed
    for model, obj in ev.pairs:
        spec = study.model(model)
        r = "eval_rm_model" if model in ev.grouped_models else "eval_rm"
        for name, (rows, seqs, tok, src) in sizes.items():
            w = Work("eval", r, model, spec.params_b, runs=1,
                     forward_tokens=k * rows * seqs * _capped(tok, cap))
            w.notes.append(f"{obj} {name}: {k} seed(s) x {rows} rows x {seqs} seq x "
                           f"{_capped(tok, cap):.0f} tok ({src})")
            out.append(w)
    merged = _merge(out)
    for w in merged:  # one job per RM (or per model), not per benchmark
        w.runs = k * sum(1 for m, _ in ev.pairs if m == w.model) if w.rule == "eval_rm" else 1
    return merged


def _task_plan(cfg: Mapping[str, Any], task: str) -> dict[str, Any]:
    b = cfg.get("benchmarks") or {}
    base = dict(cost_model.plan_defaults()["benchmarks"]["default"])
    base.update(b.get("default") or {})
    base.update((b.get("tasks") or {}).get(task) or {})
    return base


def bench_work(study: Study, cfg: Mapping[str, Any], root: Path) -> list[Work]:
    """Upstream benchmarks of every model (configured mode), plus screening's other mode."""
    from rmselect.bench.spec import bench_config

    bc = bench_config(study.config)
    per_model = bc.jobs == "per_model"
    runs = [(bc.mode, bc.run_tasks, list(study.model_names),
             "bench_model" if per_model else "bench_run")]
    if bc.screening_enabled:
        runs.append((bc.other_mode(), list(bc.screening.get("tasks") or bc.run_tasks),
                     list(bc.screening.get("models") or study.model_names),
                     "bench_model_screen" if per_model else "bench_screen_run"))
    out = []
    for mode, tasks, models, rule in runs:
        for task in tasks:
            spec = bc.tasks[task]
            tp = _task_plan(cfg, task)
            if mode == "full":
                items = int(tp.get("full_items") or spec.n * int(tp["subtasks"]))
            else:
                items = spec.n * int(tp["subtasks"])
            fewshot = spec.fewshot if spec.fewshot is not None else int(tp["fewshot"])
            context = (fewshot + 1) * float(tp["tokens"])
            gen = float(tp["generate"]) or (float(spec.max_new_tokens) if spec.kind == "code" else 0.0)
            if gen:
                fwd, dec = items * context, items * gen
            else:
                fwd, dec = items * int(tp["choices"]) * context, 0.0
            for model in models:
                w = Work("benchmarks", rule, model, study.model(model).params_b,
                         runs=1, forward_tokens=fwd, decode_tokens=dec,
                         decode_batch=int(cfg["decode_batch"]))
                w.notes.append(
                    f"{task} ({mode}): {items} items x {fewshot + 1} x {tp['tokens']} tok"
                    + (f" + {gen:.0f} generated" if gen else f" x {tp['choices']} choices")
                )
                out.append(w)
    merged = _merge(out)
    if per_model:
        for w in merged:
            w.runs = 1
    return merged


def presence_work(study: Study, cfg: Mapping[str, Any], root: Path) -> list[Work]:
    """Presence scores: each domain's documents (``n_docs``, or the domain's own) up to
    ``max_tokens`` per scoring model."""
    from rmselect.dag import presence as prsmk

    pc = prsmk.settings(study)
    if not pc["domains"]:
        return []
    per_doc = dict((cfg.get("presence") or {}).get("tokens_per_doc") or {})
    cap = int(pc["max_tokens"])
    doc_tok: dict[str, tuple[int, float, str]] = {}
    for dom, entry in pc["domains"].items():
        path = _local(entry, root)
        if path is not None:
            df = _read_rows(path)
            n = min(prsmk.domain_docs(pc, dom), df.height)
            chars = _mean_len(df, [str(entry.get("text_column", "text"))])
            tok = _capped(chars / float(cfg["chars_per_token"]), cap)
            doc_tok[dom] = (n, tok, f"counted in {entry['path']}")
        elif dom in per_doc:
            doc_tok[dom] = (prsmk.domain_docs(pc, dom), _capped(per_doc[dom], cap), "stated")
        else:
            doc_tok[dom] = (prsmk.domain_docs(pc, dom), float(cap), "max_tokens (no stated mean)")
    plan = prsmk.plan(study, pc)
    out = presence_sample_work(pc, cfg)
    fits = presence_shard_fits(study, pc, cfg, {d: t for d, (_, t, _) in doc_tok.items()})
    for model in prsmk.presence_models(study, pc):
        if plan[model] != model:
            continue
        pb = prsmk.params_b(study, pc, model)
        if not pb:
            raise ConfigError(f"config: field 'presence.reference_models': '{model}' needs params_b")
        tokens = sum(n * t for n, t, _ in doc_tok.values())
        jobs = len(doc_tok) * len(prsmk.shard_ids(pc))  # every domain has the same shards
        w = Work("presence", "presence_score", model, pb, runs=jobs, forward_tokens=tokens)
        w.notes.append("; ".join(f"{d}: {n} docs x {t:.0f} tok ({s})"
                                 for d, (n, t, s) in doc_tok.items()))
        if model in fits:
            w.notes.append(fits[model])
        out.append(w)
    return out


def presence_sample_work(pc: Mapping[str, Any], cfg: Mapping[str, Any]) -> list[Work]:
    """One row per sampled domain (rule presence_sample, CPU: no FLOPs); its CPU-hours and
    network bytes are in the note (rmselect.presence.cost.sample_cost)."""
    from rmselect.dag.presence import domain_docs
    from rmselect.presence.cost import sample_cost

    out = []
    for dom, entry in pc["domains"].items():
        c = sample_cost(dom, entry, domain_docs(pc, dom), cfg)
        w = Work("presence", "presence_sample", f"corpus:{dom}", 0.0, runs=1)
        w.notes.append(f"CPU {c.cpu_s / 3600:.3g} h, network {c.network_bytes / 1e9:.4g} GB; "
                       f"{c.note}")
        out.append(w)
    return out


def presence_shard_fits(study: Study, pc: Mapping[str, Any], cfg: Mapping[str, Any],
                        tok_per_doc: Mapping[str, float]) -> dict[str, str]:
    """``{model: note}``: the slowest shard job's projected GPU time against its limit on
    ``plan.profile`` (rmselect.presence.cost.shard_fits)."""
    from rmselect.dag.presence import domain_shard_docs, scored_limits
    from rmselect.presence.cost import shard_fits

    prof = cost_model.profiles(cfg)[cfg["profile"]]
    out = {}
    shard_docs = {d: domain_shard_docs(pc, d) for d in tok_per_doc}
    for f in shard_fits(scored_limits(study, pc), tok_per_doc, shard_docs, prof):
        verdict = "fits" if f.fits else "EXCEEDS its limit"
        out[f.model] = (f"slowest shard ({f.domain}, {f.shard_docs} docs): {f.gpu_s / 60:.1f} "
                        f"GPU-min on {prof.name}, limit {f.limit_s / 60:.0f} min: {verdict}")
    return out


def posttrain_work(study: Study, cfg: Mapping[str, Any], root: Path) -> list[Work]:
    """Produced variants: SFT (one sequence) and DPO (policy trains two, reference forwards)."""
    from rmselect.dag.posttrain import variant_recipes

    out = []
    for name, rec in variant_recipes(study).items():
        spec = study.model(name)
        path = _local(rec["data"], root)
        if path is not None:
            df = _read_rows(path)
            rows = df.height
            if rec["stage"] == "sft":
                chars = (float(df["messages"].map_elements(
                    lambda m: sum(len(str(t.get("content", ""))) for t in m),
                    return_dtype=pl.Int64).mean() or 0) if "messages" in df.columns else 0.0)
            else:
                chars = _mean_len(df, ["prompt"]) + (_mean_len(df, ["chosen"])
                                                     + _mean_len(df, ["rejected"])) / 2
            tok, src = _text_tokens(chars, cfg), f"counted in {rec['data']['path']}"
        else:
            s = _stated(cfg, "posttrain", rec["name"], f"posttrain.recipes.{rec['name']}.data")
            rows, tok, src = int(s["rows"]), float(s["tokens"]), "stated in plan.posttrain"
        if rec.get("max_examples"):
            rows = min(rows, int(rec["max_examples"]))
        tok = _capped(tok, rec.get("max_length"))
        steps = _steps(rows, int(rec["global_batch"]), float(rec["epochs"]))
        if rec.get("max_steps"):
            steps = min(steps, int(rec["max_steps"]))
        seqs = 1 if rec["stage"] == "sft" else 2
        train = steps * int(rec["global_batch"]) * seqs * tok * (1 + float(cfg["padding"]))
        fwd = train if rec["stage"] == "dpo" else 0.0
        w = Work("posttrain", "posttrain_variant", name, spec.params_b, runs=1,
                 train_tokens=train, forward_tokens=fwd)
        w.notes.append(f"{rec['stage']}: {steps} steps x {rec['global_batch']} x {seqs} seq x "
                       f"{tok:.0f} tok ({rows} rows {src})"
                       + ("; frozen reference forward on both" if fwd else ""))
        out.append(w)
    return out


def probe_work(study: Study, cfg: Mapping[str, Any], root: Path) -> list[Work]:
    """Probe features: one forward per response of the probe's train and validation pairs."""
    from rmselect.dag.probe import settings as probe_settings

    pc = probe_settings(study)
    if not pc["enabled"]:
        return []
    size = data_size(study, cfg, "helpsteer2_preference", root)
    train = min(size.rows, int(pc["max_train_pairs"] or size.rows))
    val = min(size.val_rows, int(pc["max_val_pairs"] or size.val_rows))
    tok = _capped(size.tokens, int(pc["max_length"]))
    out = []
    for model in study.model_names:
        w = Work("probe", "probe_model", model, study.model(model).params_b, runs=1,
                 forward_tokens=2 * (train + val) * tok)
        w.notes.append(f"2 x ({train} train + {val} val pairs) x {tok:.0f} tok ({size.source})")
        out.append(w)
    return out
