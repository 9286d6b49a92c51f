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
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import polars as pl

from rmselect.config import REPO_ROOT, ConfigError, Study

# --------------------------------------------------------------------------- GPU profiles


@dataclass(frozen=True)
class GpuProfile:
    """One accelerator: dense bf16 peak, memory bandwidth and the assumed utilisation."""

    name: str
    #: Dense (no sparsity) bf16 tensor-core peak, TFLOP/s.
    peak_tflops: float
    #: Memory bandwidth, GB/s (bounds decoding).
    mem_bw_gbs: float
    #: Assumed model-FLOPs utilisation of training jobs and of forward-only jobs.
    mfu_train: float
    mfu_forward: float
    #: Where the peak figure comes from.
    source: str = ""

    def seconds(self, w: "Work") -> float:
        """GPU-seconds of one work item on this profile (see the module docstring)."""
        peak = self.peak_tflops * 1e12
        n = w.params_b * 1e9
        t = 6 * n * w.train_tokens / (peak * self.mfu_train)
        t += 2 * n * w.forward_tokens / (peak * self.mfu_forward)
        if w.decode_tokens:
            per_token = max(
                2 * n / (peak * self.mfu_forward),
                2 * n / (self.mem_bw_gbs * 1e9 * w.decode_batch),
            )
            t += per_token * w.decode_tokens
        return t


#: Shipped profiles; ``plan.profiles.<name>`` overrides fields or adds profiles.
PROFILES: dict[str, dict[str, Any]] = {
    "A6000": {
        "peak_tflops": 154.8, "mem_bw_gbs": 768.0, "mfu_train": 0.30, "mfu_forward": 0.40,
        "source": "NVIDIA RTX A6000 datasheet: 309.7 TFLOPS tensor with sparsity, so 154.8 "
        "dense bf16/fp16 with fp32 accumulate (GA102 whitepaper; cross-check: the A40, same "
        "GA102 at 1740 vs 1800 MHz boost, lists 149.7 dense bf16 x 1800/1740 = 154.9); "
        "768 GB/s GDDR6",
    },
    "A100": {
        "peak_tflops": 312.0, "mem_bw_gbs": 2039.0, "mfu_train": 0.40, "mfu_forward": 0.45,
        "source": "NVIDIA A100 datasheet, SXM 80GB: 312 TFLOPS bf16 dense (624 sparse); "
        "2,039 GB/s HBM2e",
    },
    "H100": {
        "peak_tflops": 989.0, "mem_bw_gbs": 3350.0, "mfu_train": 0.35, "mfu_forward": 0.40,
        "source": "NVIDIA H100 datasheet, SXM: 1,979 TFLOPS bf16 with sparsity, 989 dense; "
        "3.35 TB/s HBM3",
    },
    "H200": {
        "peak_tflops": 989.0, "mem_bw_gbs": 4800.0, "mfu_train": 0.35, "mfu_forward": 0.40,
        "source": "NVIDIA H200 datasheet, SXM: 1,979 TFLOPS bf16 with sparsity, 989 dense "
        "(the H100's compute); 4.8 TB/s HBM3e",
    },
}

#: Defaults of the ``plan:`` config section (config/schemas/config.schema.yaml documents them).
DEFAULTS: dict[str, Any] = {
    "profile": "A6000",
    "profiles": {},
    "chars_per_token": 4.0,
    "template_tokens": 30,
    "padding": 0.05,
    "decode_batch": 16,
    "data": {
        # HelpSteer2 card: 20,324 train rows; ~2,200 characters per prompt + response.
        "helpsteer2": {"train": 20324, "tokens": 600},
        # HelpSteer2-Preference: 7,118 train / 373 val pairs (../shared/DATA_LAYOUTS.md).
        "helpsteer2_preference": {"train": 7118, "validation": 373, "tokens": 600},
    },
    "eval": {
        "rewardbench": {"rows": 2985, "sequences": 2, "tokens": 350},
        "rewardbench2": {"rows": 1865, "sequences": 4, "tokens": 400},
        "rmbench": {"rows": 1327, "sequences": 6, "tokens": 450},
    },
    "benchmarks": {"default": {"subtasks": 1, "choices": 1, "tokens": 150, "generate": 0,
                               "fewshot": 0}, "tasks": {}},
    "presence": {"tokens_per_doc": {}},
    "posttrain": {},
}
BENCH_FIELDS = ("subtasks", "choices", "tokens", "generate", "fewshot", "full_items")


def plan_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``plan`` section merged over :data:`DEFAULTS` (nested tables merged per key)."""
    raw = dict(config.get("plan") or {})
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULTS.items()}
    for key, val in raw.items():
        if isinstance(out.get(key), dict) and isinstance(val, Mapping):
            merged = dict(out[key])
            for k, v in val.items():
                if isinstance(merged.get(k), dict) and isinstance(v, Mapping):
                    merged[k] = {**merged[k], **v}
                else:
                    merged[k] = v
            out[key] = merged
        else:
            out[key] = val
    return out


def profiles(cfg: Mapping[str, Any]) -> dict[str, GpuProfile]:
    """Shipped profiles with ``plan.profiles`` overrides and additions."""
    table = {k: dict(v) for k, v in PROFILES.items()}
    for name, over in (cfg.get("profiles") or {}).items():
        table[name] = {**table.get(name, {}), **dict(over)}
    out = {}
    for name, p in table.items():
        missing = [k for k in ("peak_tflops", "mem_bw_gbs", "mfu_train", "mfu_forward")
                   if k not in p]
        if missing:
            raise ConfigError(f"config: field 'plan.profiles.{name}': missing {', '.join(missing)}")
        out[name] = GpuProfile(name=name, peak_tflops=float(p["peak_tflops"]),
                               mem_bw_gbs=float(p["mem_bw_gbs"]),
                               mfu_train=float(p["mfu_train"]),
                               mfu_forward=float(p["mfu_forward"]),
                               source=str(p.get("source", "")))
    if cfg["profile"] not in out:
        raise ConfigError(f"config: field 'plan.profile': unknown profile {cfg['profile']!r}"
                          f" (known: {', '.join(out)})")
    return out


# --------------------------------------------------------------------------- work items


@dataclass
class Work:
    """The tokens one (stage, rule, model) processes, by kind of work."""

    stage: str
    rule: str
    model: str
    params_b: float
    runs: int = 0
    train_tokens: float = 0.0
    forward_tokens: float = 0.0
    decode_tokens: float = 0.0
    decode_batch: int = 16
    notes: list[str] = field(default_factory=list)

    @property
    def flops(self) -> float:
        n = self.params_b * 1e9
        return 6 * n * self.train_tokens + 2 * n * (self.forward_tokens + self.decode_tokens)


@dataclass(frozen=True)
class TextSize:
    """Rows of a data set and mean tokens per rendered text, with where they came from."""

    rows: int
    tokens: float
    source: str
    val_rows: int = 0


def _capped(tokens: float, cap: int | None) -> float:
    return min(float(tokens), float(cap)) if cap else float(tokens)


def _local(entry: Mapping[str, Any], root: Path) -> Path | None:
    if "path" not in entry:
        return None
    p = Path(entry["path"])
    p = p if p.is_absolute() else root / p
    return p if p.exists() else None


def _read_rows(path: Path) -> pl.DataFrame:
    from rmselect.datasets_io import _read_local

    return _read_local(path)


def _text_tokens(chars: float, cfg: Mapping[str, Any]) -> float:
    return chars / float(cfg["chars_per_token"]) + float(cfg["template_tokens"])


def _mean_len(df: pl.DataFrame, cols: Sequence[str]) -> float:
    """Mean characters of the concatenation of ``cols`` (missing columns count 0)."""
    if df.height == 0:
        return 0.0
    total = sum(df[c].cast(pl.String).str.len_chars().fill_null(0).sum()
                for c in cols if c in df.columns)
    return float(total) / df.height


def _stated(cfg: Mapping[str, Any], section: str, key: str, what: str) -> dict[str, Any]:
    table = cfg.get(section) or {}
    if key not in table:
        raise ConfigError(
            f"config: field 'plan.{section}.{key}' is missing: {what} is not a local file, "
            f"so state its size and mean tokens there"
        )
    return dict(table[key])


def data_size(study: Study, cfg: Mapping[str, Any], key: str, root: Path) -> TextSize:
    """HelpSteer2 (``helpsteer2``, rows) or HelpSteer2-Preference (pairs; train and val)."""
    entry = study.config["data"][key]
    path = _local(entry, root)
    if path is not None:
        df = _read_rows(path)
        if key == "helpsteer2_preference":
            if "preference_strength" in df.columns:
                df = df.filter(pl.col("preference_strength") != 0)
            split = df["split"] if "split" in df.columns else pl.Series(["train"] * df.height)
            tr = df.filter(split == "train")
            va = df.filter(split.is_in(["validation", "val"]))
            chars = _mean_len(tr, ["prompt"]) + (_mean_len(tr, ["response_1"])
                                                 + _mean_len(tr, ["response_2"])) / 2
            return TextSize(tr.height, _text_tokens(chars, cfg), f"counted in {entry['path']}",
                            va.height)
        if "split" in df.columns:
            df = df.filter(pl.col("split") == "train")
        chars = _mean_len(df, ["prompt", "response"])
        return TextSize(df.height, _text_tokens(chars, cfg), f"counted in {entry['path']}")
    s = _stated(cfg, "data", key, f"data.{key}")
    return TextSize(int(s["train"]), float(s["tokens"]), "stated in plan.data",
                    int(s.get("validation", 0)))


def _steps(examples: int, global_batch: int, epochs: float) -> int:
    return int(math.floor(epochs)) * (examples // global_batch) + (
        int((epochs - math.floor(epochs)) * examples) // global_batch
    )


def _eval_points(steps: int, every: int) -> int:
    from rmselect.rm.run_config import eval_points

    return len(eval_points(steps, every)) if steps > 0 else 0


# --------------------------------------------------------------------------- stages


def rm_work(study: Study, cfg: Mapping[str, Any], root: Path) -> list[Work]:
    """The RM grid: every trained model × objective × learning rate × seed (rule rm_train)."""
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
                     train_tokens=train, forward_tokens=val)
            w.notes.append(
                f"{obj}: {lrs // n_seeds} LR x {n_seeds} seed(s) x {steps} steps x {rc['global_batch']} x {seqs} seq x "
                f"{tok:.0f} tok ({n} examples {size.source}); val {evals} x {val_pairs} pairs"
            )
            out.append(w)
    return _merge(out)


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
    base = dict(DEFAULTS["benchmarks"]["default"])
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
    """Presence scores: ``n_docs`` documents per domain up to ``max_tokens`` per scoring model."""
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
            n = min(int(pc["n_docs"]), df.height)
            chars = _mean_len(df, [str(entry.get("text_column", "text"))])
            tok = _capped(chars / float(cfg["chars_per_token"]), cap)
            doc_tok[dom] = (n, tok, f"counted in {entry['path']}")
        elif dom in per_doc:
            doc_tok[dom] = (int(pc["n_docs"]), _capped(per_doc[dom], cap), "stated")
        else:
            doc_tok[dom] = (int(pc["n_docs"]), float(cap), "max_tokens (no stated mean)")
    plan = prsmk.plan(study, pc)
    out = []
    for model in prsmk.presence_models(study, pc):
        if plan[model] != model:
            continue
        pb = prsmk.params_b(study, pc, model)
        if not pb:
            raise ConfigError(f"config: field 'presence.reference_models': '{model}' needs params_b")
        tokens = sum(n * t for n, t, _ in doc_tok.values())
        w = Work("presence", "presence_score", model, pb, runs=1, forward_tokens=tokens)
        w.notes.append("; ".join(f"{d}: {n} docs x {t:.0f} tok ({s})"
                                 for d, (n, t, s) in doc_tok.items()))
        out.append(w)
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


# --------------------------------------------------------------------------- projection

STAGE_ORDER = ("posttrain", "rm_train", "eval", "benchmarks", "presence", "probe")
#: Stages whose work the paper's argument calls screening (before any RM is trained).
SCREENING = ("benchmarks", "presence")
RM_GRID = ("rm_train",)


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


def project(study: Study, root: Path = REPO_ROOT) -> tuple[list[Work], dict[str, GpuProfile], dict[str, Any]]:
    """Every work item of the study, the GPU profiles and the resolved ``plan`` settings."""
    cfg = plan_settings(study.config)
    profs = profiles(cfg)
    items: list[Work] = []
    items += posttrain_work(study, cfg, root)
    if (study.config.get("eval") or {}).get("train_and_evaluate", True):
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


def main(argv: Sequence[str] | None = None) -> int:
    import argparse
    import logging

    from rmselect.config import load_study
    from rmselect.io import write_table

    ap = argparse.ArgumentParser(prog="plan_cost.py", description="Cost projection of a study.")
    ap.add_argument("--config", required=True, help="JSON of the study config")
    ap.add_argument("--source", default="config", help="config file name, for messages")
    ap.add_argument("--out", required=True, help="results/plan/cost_projection.csv")
    ap.add_argument("--log", default=None, help="also write the printed table here")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    study = load_study(json.loads(a.config), a.source)
    full, totals = projection_csv(study)
    names = list(profiles(plan_settings(study.config)))
    text = (f"rmselect plan: {study.config.get('study', a.source)} — projected cost "
            f"(before anything runs; assumptions in {a.out})\n" + format_table(totals, names))
    write_table(a.out, full)
    print(text, flush=True)
    if a.log:
        Path(a.log).parent.mkdir(parents=True, exist_ok=True)
        Path(a.log).write_text(text + "\n")
    return 0
