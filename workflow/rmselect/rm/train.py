"""Reward-model training on the DeepSpeed engine (Bradley-Terry or 5-attribute regression).

One call trains one (model, objective, learning rate) run into ``--out`` (the run dir
``results/rm/{objective}/{model}/lr{lr}/``):

* ``run.json`` – written last (the only Snakemake output): configuration, world size,
  ``micro x accumulation x ranks``, per-evaluation validation accuracy, checkpoint dirs.
* ``metrics.jsonl`` – one line per step (loss, lr, tokens/s, padding fraction, memory) and
  one per evaluation (``val_accuracy``).
* ``ckpt/step{N}/`` – an HF ``AutoModelForSequenceClassification`` dir per evaluation point
  (regression: plus ``val_preds.parquet`` for the merge-vector search).
* ``ds/`` – the DeepSpeed checkpoint of the last evaluation point (model, optimizer, LR
  schedule, step): a rerun of a killed job resumes from it and, given the same seed and
  ranks, ends with the same metrics. Removed at the end unless ``--keep-ds-checkpoint``.

With ``--max-steps B`` (a successive-halving rung, :mod:`rmselect.rm.halving`) the run stops
at the first evaluation point at or after ``B`` and keeps ``ds/``; the summary (``--result``,
e.g. ``rung0.json``: the run.json keys plus ``complete``, ``max_steps``, ``stop_step``) lists
the evaluations up to there. The step budget is not part of the resume signature: a later
call with a larger budget resumes and trains on with the same schedule (warm-up then
constant, independent of the run length) and the same batch plan, so a run continued
through every rung equals a full run. A call whose checkpoint is already past its budget
trains nothing and reports the evaluations up to the budget.

The entry point is rank/world-size agnostic: under ``torchrun`` (or srun setting
``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT``) each process is one
rank; started plainly it is a single rank on a free local port.

Precision (``--precision``, config ``rm.precision``): ``auto`` is bf16 on CUDA (DeepSpeed's
bf16 mode) and fp32 on CPU; ``bf16`` on CPU loads the weights in bfloat16 and trains them
as they are (torch runs bf16 matmuls on CPU; DeepSpeed's bf16 optimizer wants an
accelerator), ``fp32`` forces float32 everywhere. The optimizer is ``torch.optim.AdamW`` handed to
``deepspeed.initialize`` as the client optimizer (``DeepSpeedCPUAdam`` only for optimizer
offload on GPUs); the learning rate warms up linearly for ``--warmup-steps`` optimizer steps
and then stays constant.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from rmselect import runtime
from rmselect.runtime import Log, lr_factor, max_mem_mb, truncate_metrics

OBJECTIVES = {"bt": 1, "regression": 5}
#: Exit status of a run stopped by ``--stop-after-steps`` (a simulated kill).
STOPPED_EXIT = 75


# --------------------------------------------------------------------------- arguments


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="train_rm.py",
        description="Train one reward model (one base model, objective and learning rate) "
        "with DeepSpeed; resumes from the run dir's checkpoint when one exists.",
    )
    a = p.add_argument
    a("--model", required=True, help="base model: HF dir or hub id")
    a("--model-name", default=None, help="model name for messages and run.json")
    a("--objective", required=True, choices=sorted(OBJECTIVES))
    a("--lr", required=True, type=float, help="peak learning rate")
    a("--out", required=True, action="append",
      help="run directory (run.json is written last); repeat it with --seed to train "
      "several seeds of the same run in one process (imports and data loaded once)")
    a("--train-data", required=True,
      help="config data-set entry as JSON: HelpSteer2-Preference for bt, HelpSteer2 for regression")
    a("--val-data", required=True, help="config data-set entry (JSON) of HelpSteer2-Preference")
    a("--global-batch", type=int, default=64, help="pairs (bt) or rows (regression) per step")
    a("--micro-batch", type=int, default=4, help="pairs/rows per rank per forward")
    a("--epochs", type=int, default=1)
    a("--warmup-steps", type=int, default=20)
    a("--eval-every", type=int, default=20, help="evaluate and checkpoint every N steps (and at the end)")
    a("--max-length", type=int, default=4096, help="token budget per rendered text")
    a("--zero-stage", type=int, default=0, choices=[0, 1, 2, 3])
    a("--offload-optimizer", action="store_true", help="ZeRO optimizer offload to CPU")
    a("--grad-checkpointing", action="store_true")
    a("--weight-decay", type=float, default=0.0)
    a("--grad-clip", type=float, default=1.0, help="0 disables clipping")
    a("--seed", type=int, action="append", default=None,
      help="training seed (data order, head initialisation); one per --out (default 0, "
      "the study's default seed)")
    a("--mega-batch", type=int, default=8, help="global batches sorted together by length")
    a("--eval-batch", type=int, default=32, help="sequences per validation forward")
    a("--packing", action=argparse.BooleanOptionalAction, default=True,
      help="pack a micro-batch's sequences into rows (block-diagonal attention) instead of "
      "padding each to the longest")
    a("--merge-grid-step", type=float, default=0.05,
      help="regression: grid step of the merge-weight search used for the logged accuracy")
    a("--chat-template", default=None, help="chat template override (file or Jinja)")
    a("--precision", default="auto", choices=list(PRECISIONS),
      help="auto: bf16 on CUDA, fp32 on CPU; bf16 / fp32 force one (bf16 works on CPU too)")
    a("--trust-remote-code", action="store_true")
    a("--max-train-examples", type=int, default=None)
    a("--max-val-pairs", type=int, default=None)
    a("--keep-ds-checkpoint", action="store_true", help="keep ds/ after a finished run")
    a("--tensorboard", action="store_true", help="also log to <out>/tb when tensorboard is installed")
    a("--threads", type=int, default=None, help="torch CPU threads per rank (default: OMP_NUM_THREADS or 1)")
    a("--log-every", type=int, default=1, help="progress line on stderr every N steps")
    a("--stop-after-steps", type=int, default=None,
      help="debug: exit with status 75 after this step, as if killed (tests resume)")
    a("--max-steps", type=int, default=None,
      help="successive-halving rung: stop at the first evaluation point at or after this "
      "step and keep ds/, so a later call with a larger budget continues the same run (same "
      "LR schedule and data order); the summary then says complete: false")
    a("--result", default=None,
      help="where to write the run summary (default <out>/run.json; rungs: rung{r}.json)")
    return p


@dataclass
class RunConfig:
    """Everything that determines a run's numbers (hashed into the resume signature)."""

    model: str
    objective: str
    lr: float
    train_data: dict[str, Any]
    val_data: dict[str, Any]
    global_batch: int
    micro_batch: int
    epochs: int
    warmup_steps: int
    eval_every: int
    max_length: int
    zero_stage: int
    offload_optimizer: bool
    grad_checkpointing: bool
    weight_decay: float
    grad_clip: float
    seed: int
    mega_batch: int
    packing: bool
    chat_template: str | None
    max_train_examples: int | None
    max_val_pairs: int | None
    world_size: int = 1
    precision: str = "auto"
    extra: dict[str, Any] = field(default_factory=dict)

    def signature(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- helpers


def eval_points(n_steps: int, every: int) -> list[int]:
    """Steps (1-based counts of optimizer steps) after which to evaluate and checkpoint."""
    pts = list(range(every, n_steps + 1, every)) if every > 0 else []
    if not pts or pts[-1] != n_steps:
        pts.append(n_steps)
    return pts


# --------------------------------------------------------------------------- data


@dataclass
class Prepared:
    """Token ids of the run's data."""

    train_ids: list[list[int]]  # bt: chosen ids; regression: response ids
    train_rej: list[list[int]] | None  # bt only
    targets: list[tuple[float, ...]] | None  # regression only
    val_chosen: list[list[int]]
    val_rejected: list[list[int]]
    truncation: dict[str, Any]

    def length(self, i: int) -> int:
        if self.train_rej is not None:
            return max(len(self.train_ids[i]), len(self.train_rej[i]))
        return len(self.train_ids[i])

    def rows(self, idx: Sequence[int]) -> list[list[int]]:
        """Sequences of a micro-batch: all chosen then all rejected (bt), or the rows."""
        if self.train_rej is not None:
            return [self.train_ids[i] for i in idx] + [self.train_rej[i] for i in idx]
        return [self.train_ids[i] for i in idx]


def prepare_data(cfg: RunConfig, tok: Any, template: str | None) -> Prepared:
    from rmselect.rm import data as D

    tr_stats, va_stats = D.TruncationStats(), D.TruncationStats()
    if cfg.objective == "bt":
        pairs = D.load_pairs(cfg.train_data, "train", cfg.max_train_examples)
        prompts = [p.prompt for p in pairs]
        ch = D.tokenize_responses(tok, prompts, [p.chosen for p in pairs], template,
                                  cfg.max_length, tr_stats)
        rj = D.tokenize_responses(tok, prompts, [p.rejected for p in pairs], template,
                                  cfg.max_length, tr_stats)
        targets = None
    else:
        rows = D.load_rated(cfg.train_data, "train", cfg.max_train_examples)
        ch = D.tokenize_responses(tok, [r.prompt for r in rows], [r.response for r in rows],
                                  template, cfg.max_length, tr_stats)
        rj = None
        targets = [r.scores for r in rows]
    val = D.load_pairs(cfg.val_data, "validation", cfg.max_val_pairs)
    vp = [p.prompt for p in val]
    vc = D.tokenize_responses(tok, vp, [p.chosen for p in val], template, cfg.max_length, va_stats)
    vr = D.tokenize_responses(tok, vp, [p.rejected for p in val], template, cfg.max_length, va_stats)
    return Prepared(ch, rj, targets, vc, vr,
                    {"train": tr_stats.as_dict(), "validation": va_stats.as_dict()})


# --------------------------------------------------------------------------- engine


PRECISIONS = ("auto", "bf16", "fp32")


def train_dtype(precision: str, cuda: bool) -> Any:
    """The weights' dtype of a run: bf16 for ``bf16`` (and ``auto`` on CUDA), else fp32."""
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    bf16 = precision == "bf16" or (precision == "auto" and cuda)
    return torch.bfloat16 if bf16 else torch.float32


def ds_config(cfg: RunConfig, accum: int, cuda: bool) -> dict[str, Any]:
    """The run's DeepSpeed configuration (:func:`rmselect.runtime.ds_config`).

    DeepSpeed's bf16 mode (fp32 master weights) on CUDA; on CPU a bf16 run trains the bf16
    weights directly (the engine's bf16 optimizer needs an accelerator).
    """
    return runtime.ds_config(
        global_batch=cfg.global_batch, micro_batch=cfg.micro_batch, accumulation=accum,
        zero_stage=cfg.zero_stage, grad_clip=cfg.grad_clip,
        bf16=bool(cuda) and cfg.precision != "fp32",
        offload_optimizer=cfg.offload_optimizer, pin_memory=cuda)


def _forward_rows(engine: Any, rows: list[list[int]], pad_id: int, device: Any,
                  pack: bool = False, kappa: float = 1024.0) -> tuple[Any, int]:
    """Rewards of ``rows`` (one forward) and the number of positions computed."""
    from rmselect.rm.data import pack_rows, pad_batch

    if pack:
        pk = pack_rows(rows, pad_id, kappa)
        out = engine(pk.input_ids.to(device), position_ids=pk.position_ids.to(device),
                     last_row=pk.last_row.to(device), last_col=pk.last_col.to(device))
        return out, int(pk.input_ids.numel())
    ids, mask = pad_batch(rows, pad_id, "right")
    return engine(ids.to(device), mask.to(device)), int(ids.numel())


def decide_packing(engine: Any, cfg: RunConfig, args: argparse.Namespace, pad_id: int,
                   device: Any, kappa: float, dtype: Any, log: "Log") -> dict[str, Any]:
    """Packing only where it is proven: off for remote-code models (their masks are their
    own), else on only when packed and padded rewards of two probe sequences agree
    (:func:`rmselect.rm.model.packing_agrees`); otherwise padding, with a warning.

    Returns ``{"requested", "used", "reason"}`` (written into run.json). Every rank runs the
    same probe and reaches the same decision.
    """
    from rmselect.rm.model import packing_agrees

    out = {"requested": cfg.packing, "used": False, "reason": "not requested (--no-packing)"}
    if not cfg.packing:
        return out
    if args.trust_remote_code:
        out["reason"] = "trust_remote_code model: its attention mask is its own code"
        log.info(f"warning: packing off, padded batches instead ({out['reason']})")
        return out

    def forward(rows: list[list[int]], pack: bool) -> Any:
        return _forward_rows(engine, rows, pad_id, device, pack, kappa)[0]

    engine.eval()
    ok, diff = packing_agrees(forward, int(engine.module.hf.config.vocab_size), dtype)
    engine.train()
    if ok:
        out.update(used=True, reason=f"packed and padded rewards agree (max diff {diff:.2g})")
    else:
        out["reason"] = (f"packed and padded rewards differ by {diff:.3g}: the model does not"
                         " keep packed sequences apart")
        log.info(f"warning: packing off, padded batches instead ({out['reason']})")
    return out


def evaluate(engine: Any, prep: Prepared, pad_id: int, batch: int, rank: int, world: int,
             device: Any) -> Any:
    """Rewards of every validation sequence, ``(2 x pairs, labels)``: chosen then rejected.

    Sequences are sorted by length and cut into batches dealt round-robin to ranks; every
    rank runs the same number of forwards (ZeRO-3 gathers parameters collectively), the
    last ones repeating a batch when a rank has none left.
    """
    import numpy as np
    import torch
    import torch.distributed as dist

    seqs = prep.val_chosen + prep.val_rejected
    order = sorted(range(len(seqs)), key=lambda i: (len(seqs[i]), i))
    batches = [order[i : i + batch] for i in range(0, len(order), batch)]
    n_rounds = math.ceil(len(batches) / world)
    mine: list[tuple[list[int], np.ndarray]] = []
    engine.eval()
    with torch.no_grad():
        for r in range(n_rounds):
            j = r * world + rank
            real = j < len(batches)
            idx = batches[j] if real else batches[0]
            out, _ = _forward_rows(engine, [seqs[i] for i in idx], pad_id, device)
            if real:
                mine.append((idx, out.float().cpu().numpy()))
    engine.train()
    gathered: list[Any] = [None] * world
    if world > 1:
        dist.all_gather_object(gathered, mine)
    else:
        gathered = [mine]
    n_labels = next(o for part in gathered for _, o in part).shape[1]
    scores = np.zeros((len(seqs), n_labels), dtype=np.float64)
    for part in gathered:
        for idx, out in part:
            scores[idx] = out
    return scores


def val_metrics(scores: Any, n_pairs: int, objective: str, grid_step: float) -> dict[str, Any]:
    """Validation accuracy (bt: r_chosen > r_rejected; regression: best merge weights)."""
    import numpy as np

    from rmselect.rm.merge import search

    ch, rj = scores[:n_pairs], scores[n_pairs:]
    if objective == "bt":
        return {"val_accuracy": float(np.mean(ch[:, 0] > rj[:, 0])), "weights": None}
    res = search(ch - rj, grid_step)
    return {"val_accuracy": res.accuracy, "weights": list(res.weights)}


def write_val_preds(path: Path, scores: Any, n_pairs: int) -> None:
    """Regression validation predictions: ``pair_id, side, a0..a4``."""
    import polars as pl

    from rmselect.io import write_table

    n_lab = scores.shape[1]
    df = pl.DataFrame(
        {
            "pair_id": list(range(n_pairs)) * 2,
            "side": ["chosen"] * n_pairs + ["rejected"] * n_pairs,
            **{f"a{j}": scores[:, j].tolist() for j in range(n_lab)},
        }
    )
    write_table(path, df)


def export_hf(engine: Any, cfg: RunConfig, tok: Any, template: str, out_dir: Path, rank: int) -> None:
    """Write the current weights as an HF sequence-classification dir (rank 0)."""
    from rmselect.rm.model import save_hf

    hf = engine.module.hf
    state = None
    if cfg.zero_stage == 3:
        full = engine._zero3_consolidated_16bit_state_dict()
        if rank == 0:
            state = {k[len("hf."):]: v for k, v in full.items() if k.startswith("hf.")}
    if rank == 0:
        save_hf(hf, tok, out_dir, state_dict=state, chat_template=template)


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Train the runs; a bad data set or model is one line on stderr and exit status 2."""
    from rmselect.datasets_io import DatasetError
    from rmselect.hf import ModelLoadError

    try:
        return _main(argv)
    except (DatasetError, ModelLoadError) as err:
        sys.stderr.write(f"train_rm: error: {err}\n")
        sys.stderr.flush()
        return 2


@dataclass
class Shared:
    """What every seed of one (model, objective, lr) shares: loaded once per process."""

    name: str
    tok: Any
    template: str
    prep: Prepared
    setup_s: float


def run_seeds(args: argparse.Namespace) -> list[tuple[int, Path]]:
    """The ``(seed, run dir)`` pairs of this call: ``--seed``/``--out`` given in pairs."""
    seeds = args.seed or [0]
    if len(seeds) != len(args.out):
        raise SystemExit(f"train_rm: error: {len(seeds)} --seed for {len(args.out)} --out; "
                         "give one --seed per run directory")
    if len(set(seeds)) != len(seeds) or len(set(args.out)) != len(args.out):
        raise SystemExit("train_rm: error: --seed values and --out dirs must be distinct")
    if args.result and len(seeds) > 1:
        raise SystemExit("train_rm: error: --result is for a single run (one --seed)")
    return [(int(s), Path(o)) for s, o in zip(seeds, args.out)]


def run_config(args: argparse.Namespace, seed: int, world: int) -> RunConfig:
    """The run's configuration (what its resume signature hashes)."""
    return RunConfig(
        model=args.model, objective=args.objective, lr=args.lr,
        train_data=json.loads(args.train_data), val_data=json.loads(args.val_data),
        global_batch=args.global_batch, micro_batch=args.micro_batch, epochs=args.epochs,
        warmup_steps=args.warmup_steps, eval_every=args.eval_every, max_length=args.max_length,
        zero_stage=args.zero_stage, offload_optimizer=args.offload_optimizer,
        grad_checkpointing=args.grad_checkpointing, weight_decay=args.weight_decay,
        grad_clip=args.grad_clip, seed=seed, mega_batch=args.mega_batch,
        packing=args.packing,
        chat_template=args.chat_template, max_train_examples=args.max_train_examples,
        max_val_pairs=args.max_val_pairs, world_size=world, precision=args.precision,
        extra={"merge_grid_step": args.merge_grid_step, "eval_batch": args.eval_batch},
    )


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    runs = run_seeds(args)
    t_start = time.time()
    # one torch thread per rank unless told otherwise (ranks share the cores)
    rt = runtime.start(args.threads or int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    shared = load_shared(args, run_config(args, runs[0][0], rt.world), rt, t_start)
    for seed, out in runs:
        rc = train_run(args, rt, shared, seed, out)
        if rc:
            return rc
    rt.close()
    return 0


def load_shared(args: argparse.Namespace, cfg: RunConfig, rt: runtime.Runtime,
                t_start: float) -> Shared:
    """Tokenizer, chat template and tokenized data: loaded before any run dir is touched,
    so a bad data set or model leaves nothing behind, and once for all seeds."""
    from rmselect.hf import load_tokenizer
    from rmselect.rm.format import resolve_template
    from rmselect.rm.model import prepare_tokenizer

    log = Log(rt.rank, Path(os.devnull), None, prefix="train_rm")
    tok = prepare_tokenizer(load_tokenizer(args.model, cfg_trust(args)))
    template = resolve_template(tok, cfg.chat_template)
    prep = prepare_data(cfg, tok, template)
    if prep.train_ids:
        # What the model is trained on, as text: the chat template (its default system
        # prompt, role markers) and the token the reward is read at are visible in the log.
        first = tok.decode(prep.train_ids[0])
        log.info(f"first training text ({len(prep.train_ids[0])} tokens): {first!r}")
    name = args.model_name or Path(args.model).name
    return Shared(name, tok, template, prep, time.time() - t_start)


def _open_run(out: Path, sig: str, cfg: RunConfig, rt: runtime.Runtime, log: Log) -> bool:
    """Whether the run resumes (its DeepSpeed checkpoint matches ``sig``); otherwise the
    run dir is cleared of an older run's files."""
    from rmselect.io import write_json

    ds_dir, state_file = out / "ds", out / "resume.json"
    resume = False
    if rt.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        old = json.loads(state_file.read_text()) if state_file.exists() else None
        if old and old.get("signature") == sig and (ds_dir / "latest").exists():
            resume = True
        else:
            if old or ds_dir.exists() or (out / "ckpt").exists():
                log.info("no matching checkpoint: starting fresh (old run files removed)")
            for p in (ds_dir, out / "ckpt", out / "metrics.jsonl", out / "tb", out / "run.json"):
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            write_json(state_file, {"signature": sig, "config": asdict(cfg)})
    if rt.world > 1:
        import torch.distributed as dist

        flag = [resume]
        dist.broadcast_object_list(flag, src=0)
        resume = bool(flag[0])
    return resume


def build_engine(args: argparse.Namespace, cfg: RunConfig, shared: Shared,
                 rt: runtime.Runtime, accum: int) -> tuple[Any, Any, float]:
    """``(engine, dtype, kappa)``: the seeded model (head initialised from ``cfg.seed``)
    wrapped by DeepSpeed with AdamW and the warm-up schedule."""
    import deepspeed
    import torch

    from rmselect.rm import data as D
    from rmselect.rm.model import RewardModel, attention_ratio, load_for_training

    torch.manual_seed(cfg.seed)
    dtype = train_dtype(cfg.precision, rt.cuda)
    hf = load_for_training(args.model, OBJECTIVES[cfg.objective], shared.tok, cfg_trust(args),
                           dtype, D.ATTRIBUTES if cfg.objective == "regression" else None)
    if cfg.grad_checkpointing:
        hf.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = RewardModel(hf)
    kappa = attention_ratio(hf.config)
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.offload_optimizer and rt.cuda:
        from deepspeed.ops.adam import DeepSpeedCPUAdam

        opt = DeepSpeedCPUAdam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, adamw_mode=True)
    else:
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg.warmup_steps))
    engine, _, _, _ = deepspeed.initialize(
        model=model, optimizer=opt, lr_scheduler=sched, config=ds_config(cfg, accum, rt.cuda))
    return engine, dtype, kappa


def save_checkpoint(engine: Any, cfg: RunConfig, shared: Shared, rt: runtime.Runtime,
                    out: Path, step: int, epoch: int, scores: Any, vm: dict[str, Any],
                    evals: list[dict[str, Any]], t_eval: float) -> dict[str, Any]:
    """One evaluation point: the HF checkpoint (regression: plus validation predictions)
    and the DeepSpeed checkpoint a rerun resumes from (older ones removed)."""
    ck = out / "ckpt" / f"step{step}"
    export_hf(engine, cfg, shared.tok, shared.template, ck, rt.rank)
    if rt.rank == 0 and cfg.objective == "regression":
        write_val_preds(ck / "val_preds.parquet", scores, len(shared.prep.val_chosen))
    ev = {"step": step, "epoch": epoch, **vm, "checkpoint": str(ck),
          "eval_s": time.time() - t_eval}
    evals.append(ev)
    ds_dir = out / "ds"
    engine.save_checkpoint(str(ds_dir), tag=f"step{step}",
                           client_state={"step": step, "evals": evals})
    rt.barrier()
    if rt.rank == 0:
        for d in ds_dir.iterdir():
            if d.is_dir() and d.name != f"step{step}":
                shutil.rmtree(d, ignore_errors=True)
    return ev


def train_run(args: argparse.Namespace, rt: runtime.Runtime, shared: Shared, seed: int,
              out: Path) -> int:
    """Train one run (one seed) into ``out``: resume, fit, evaluate and save, summary."""
    import numpy as np
    import torch
    import torch.distributed as dist

    from rmselect.io import write_json
    from rmselect.rm import data as D
    from rmselect.rm.losses import rm_loss

    t_start = time.time()
    rank, world, device = rt.rank, rt.world, rt.device
    cfg = run_config(args, seed, world)
    prep = shared.prep
    accum = D.accumulation_steps(cfg.global_batch, cfg.micro_batch, world)
    sig = cfg.signature()
    log = Log(rank, out / "metrics.jsonl", out / "tb" if args.tensorboard else None,
              prefix="train_rm")
    log.info(f"{shared.name} {cfg.objective} lr={cfg.lr:g} seed {seed}: global batch "
             f"{cfg.global_batch} = micro {cfg.micro_batch} x accumulation {accum} x {world} "
             f"rank(s); zero {cfg.zero_stage}; {'cuda' if rt.cuda else 'cpu'} "
             f"{str(train_dtype(cfg.precision, rt.cuda)).replace('torch.', '')}")
    n_train = len(prep.train_ids)
    plan = D.batch_plan([prep.length(i) for i in range(n_train)], cfg.global_batch,
                        cfg.micro_batch, world, cfg.epochs, cfg.seed, cfg.mega_batch)
    n_steps = len(plan)
    points = eval_points(n_steps, cfg.eval_every)
    stop = n_steps if args.max_steps is None else next(
        p for p in points if p >= min(max(1, args.max_steps), n_steps))
    log.info(f"{n_train} training examples, {len(prep.val_chosen)} validation pairs, "
             f"{n_steps} steps, evaluations at {points}; "
             f"{'packed (if the probe agrees)' if cfg.packing else 'padded'} batches; "
             f"truncation {prep.truncation}")

    engine, dtype, kappa = build_engine(args, cfg, shared, rt, accum)
    resume = _open_run(out, sig, cfg, rt, log)
    pad_id = shared.tok.pad_token_id
    packing = decide_packing(engine, cfg, args, pad_id, device, kappa, dtype, log)
    ds_dir = out / "ds"
    evals: list[dict[str, Any]] = []
    start = 0
    if resume:
        _, client = engine.load_checkpoint(str(ds_dir), load_optimizer_states=True,
                                           load_lr_scheduler_states=True)
        if client is None:
            raise RuntimeError(f"{ds_dir}: DeepSpeed checkpoint could not be loaded; delete it")
        start, evals = int(client["step"]), list(client["evals"])
        if rank == 0:
            truncate_metrics(out / "metrics.jsonl", start)
            for d in (out / "ckpt").glob("step*"):
                if int(d.name[4:]) > start:
                    shutil.rmtree(d, ignore_errors=True)
        log.info(f"resumed from {ds_dir} at step {start}")
    if start > stop:  # the checkpoint is past this rung's budget: nothing to train
        log.info(f"checkpoint at step {start} is past the budget {stop}: reporting up to {stop}")

    # ---- fit
    n_val = len(prep.val_chosen)
    engine.train()
    for st in plan[start:stop]:
        t0 = time.time()
        losses = []
        positions = 0
        for mb in st.for_rank(rank):
            out_t, n_pos = _forward_rows(engine, prep.rows(mb), pad_id, device,
                                         packing["used"], kappa)
            positions += n_pos
            loss = rm_loss(cfg.objective, out_t, mb, prep.targets)
            engine.backward(loss)
            engine.step()
            losses.append(float(loss.detach()))
        stats = [float(np.mean(losses)), float(positions)]
        if world > 1:
            lt = torch.tensor(stats, dtype=torch.float64, device=device)
            dist.all_reduce(lt)
            stats = [float(lt[0]) / world, float(lt[1])]
        loss_v, positions = stats[0], int(stats[1])
        step = st.index + 1
        dt = time.time() - t0
        tokens = sum(len(x) for acc in st.micro for mb in acc for x in prep.rows(mb))
        row = {"step": step, "epoch": st.epoch, "loss": loss_v,
               "lr": cfg.lr * lr_factor(st.index, cfg.warmup_steps),
               "tokens": tokens, "tokens_per_s": tokens / max(dt, 1e-9),
               "padding_fraction": 1.0 - tokens / max(positions, 1),
               "max_mem_mb": max_mem_mb(rt.cuda), "step_s": dt}
        log.metric(row)
        if rank == 0 and (step % max(1, args.log_every) == 0 or step == n_steps):
            log.info(f"step {step}/{n_steps} loss {loss_v:.4f} lr {row['lr']:.3g} "
                     f"{row['tokens_per_s']:.0f} tok/s pad {row['padding_fraction']:.1%}")
        if step in points:
            # ---- evaluate, then save
            t_eval = time.time()
            scores = evaluate(engine, prep, pad_id, args.eval_batch, rank, world, device)
            vm = val_metrics(scores, n_val, cfg.objective, args.merge_grid_step)
            save_checkpoint(engine, cfg, shared, rt, out, step, st.epoch, scores, vm, evals,
                            t_eval)
            log.metric({"step": step, "val_accuracy": vm["val_accuracy"],
                        "weights": vm["weights"]})
            log.info(f"step {step}: validation accuracy {vm['val_accuracy']:.4f}")
        if args.stop_after_steps is not None and step >= args.stop_after_steps and step < n_steps:
            log.info(f"stopping after step {step} (--stop-after-steps)")
            log.close()
            rt.barrier()
            return STOPPED_EXIT

    # ---- summary
    rt.barrier()
    complete = stop == n_steps
    evals = [e for e in evals if e["step"] <= stop]
    if rank == 0:
        best = max(evals, key=lambda e: (e["val_accuracy"], -e["step"]))
        steps_rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()
                      if ln.strip()]
        tps = [r["tokens_per_s"] for r in steps_rows if "tokens_per_s" in r]
        pads = [r["padding_fraction"] for r in steps_rows if "padding_fraction" in r]
        if complete and not args.keep_ds_checkpoint:
            shutil.rmtree(ds_dir, ignore_errors=True)
        rung = ({"complete": complete, "max_steps": args.max_steps, "stop_step": stop}
                if args.max_steps is not None or args.result else {})
        write_json(Path(args.result) if args.result else out / "run.json", {
            "model": shared.name, "model_ref": args.model, "objective": cfg.objective,
            "lr": cfg.lr, "seed": seed,
            "signature": sig, "config": asdict(cfg), "world_size": world,
            "micro_batch": cfg.micro_batch, "accumulation": accum,
            "global_batch": cfg.global_batch,
            "batch": f"{cfg.micro_batch} x {accum} x {world} = {cfg.global_batch}",
            "device": "cuda" if rt.cuda else "cpu", "dtype": str(dtype).replace("torch.", ""),
            "n_train": n_train, "n_val_pairs": n_val, "steps": n_steps,
            "truncation": prep.truncation, "packing": packing,
            "padding_fraction": float(np.mean(pads)) if pads else None,
            "tokens_per_s_median": float(np.median(tps)) if tps else None,
            "evals": evals, "best": best,
            "checkpoints": [e["checkpoint"] for e in evals],
            "wall_s": time.time() - t_start, "setup_s": shared.setup_s, **rung,
        })
        log.info(f"done in {time.time() - t_start:.1f}s; best step {best['step']} "
                 f"val accuracy {best['val_accuracy']:.4f}")
    log.close()
    del engine
    if rt.cuda:
        torch.cuda.empty_cache()
    return 0


def cfg_trust(args: argparse.Namespace) -> bool:
    return bool(args.trust_remote_code)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
