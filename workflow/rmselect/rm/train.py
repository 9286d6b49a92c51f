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

from rmselect.cluster.launch import free_port

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
    a("--out", required=True, help="run directory (run.json is written last)")
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
    a("--seed", type=int, default=42)
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


# --------------------------------------------------------------------------- distributed


def dist_env() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from the launcher; single rank when none set them."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", LOCAL_WORLD_SIZE="1")
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ["MASTER_PORT"] = str(free_port())  # only read by DeepSpeed's env check
    os.environ.setdefault("LOCAL_RANK", os.environ["RANK"])
    return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])


def _prepare_runtime(threads: int | None) -> bool:
    """Environment before torch/deepspeed import; returns whether CUDA is used."""
    repo = Path(__file__).resolve().parents[3]
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(repo / ".torch_extensions"))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    import torch

    cuda = torch.cuda.is_available()
    if not cuda:
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
        n = threads or int(os.environ.get("OMP_NUM_THREADS", "1") or 1)
        torch.set_num_threads(max(1, n))
    return cuda


def _skip_cpu_shm_op() -> None:
    """On CPU, do not build DeepSpeed's shared-memory allreduce extension.

    It only speeds up intra-node CPU allreduce (a ~2 min compile on first use); gloo does
    the job for training. Set ``RMSELECT_DS_SHM=1`` to use it anyway.
    """
    if os.environ.get("RMSELECT_DS_SHM") == "1":
        return
    import importlib

    # (``import deepspeed.comm.torch as m`` would bind the real torch: deepspeed.comm has
    # an attribute named torch.)
    ds_torch = importlib.import_module("deepspeed.comm.torch")
    ds_torch.build_shm_op = lambda: None  # type: ignore[assignment]


# --------------------------------------------------------------------------- helpers


class Log:
    """Progress on stderr (rank 0) and metrics.jsonl lines."""

    def __init__(self, rank: int, metrics_path: Path, tb_dir: Path | None):
        self.rank = rank
        self.t0 = time.time()
        self.path = metrics_path
        self.tb = None
        if rank == 0 and tb_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(tb_dir))
            except Exception as err:  # tensorboard not installed
                self.info(f"tensorboard disabled: {err}")

    def info(self, msg: str) -> None:
        if self.rank == 0:
            sys.stderr.write(f"[train_rm {time.time() - self.t0:6.1f}s] {msg}\n")
            sys.stderr.flush()

    def metric(self, row: dict[str, Any]) -> None:
        if self.rank != 0:
            return
        with self.path.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        if self.tb is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)):
                    self.tb.add_scalar(k, v, row["step"])

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def truncate_metrics(path: Path, last_step: int) -> None:
    """Keep only metric lines with ``step <= last_step`` (resume point)."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip()
            and json.loads(ln).get("step", 0) <= last_step]
    path.write_text("".join(ln + "\n" for ln in keep))


def max_mem_mb(cuda: bool) -> float:
    import torch

    if cuda:
        return torch.cuda.max_memory_allocated() / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def eval_points(n_steps: int, every: int) -> list[int]:
    """Steps (1-based counts of optimizer steps) after which to evaluate and checkpoint."""
    pts = list(range(every, n_steps + 1, every)) if every > 0 else []
    if not pts or pts[-1] != n_steps:
        pts.append(n_steps)
    return pts


def lr_factor(step: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` optimizer steps, then constant (step is 0-based)."""
    return 1.0 if warmup <= 0 else min(1.0, (step + 1) / warmup)


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
    zero: dict[str, Any] = {"stage": cfg.zero_stage}
    if cfg.zero_stage == 3:
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    if cfg.offload_optimizer and cfg.zero_stage > 0:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": cuda}
    conf: dict[str, Any] = {
        "train_batch_size": cfg.global_batch,
        "train_micro_batch_size_per_gpu": cfg.micro_batch,
        "gradient_accumulation_steps": accum,
        "zero_optimization": zero,
        "zero_allow_untested_optimizer": True,
        "zero_force_ds_cpu_optimizer": False,
        # DeepSpeed's bf16 mode (fp32 master weights) on CUDA; on CPU a bf16 run trains
        # the bf16 weights directly (the engine's bf16 optimizer needs an accelerator).
        "bf16": {"enabled": bool(cuda) and cfg.precision != "fp32"},
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    if cfg.grad_clip > 0:
        conf["gradient_clipping"] = cfg.grad_clip
    return conf


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
    """Train one run; a bad data set or model is one line on stderr and exit status 2."""
    from rmselect.datasets_io import DatasetError
    from rmselect.hf import ModelLoadError

    try:
        return _main(argv)
    except (DatasetError, ModelLoadError) as err:
        sys.stderr.write(f"train_rm: error: {err}\n")
        sys.stderr.flush()
        return 2


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    t_start = time.time()
    rank, world, local_rank = dist_env()
    cuda = _prepare_runtime(args.threads)

    import numpy as np
    import torch
    import deepspeed

    from rmselect.hf import load_tokenizer
    from rmselect.io import write_json
    from rmselect.rm import data as D
    from rmselect.rm.format import resolve_template
    from rmselect.rm.model import (
        RewardModel,
        attention_ratio,
        load_for_training,
        prepare_tokenizer,
    )

    if not cuda:
        _skip_cpu_shm_op()
    else:
        torch.cuda.set_device(local_rank)
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    from rmselect.distributed import init_lone_process_group

    init_lone_process_group("nccl" if cuda else "gloo")
    deepspeed.init_distributed(dist_backend="nccl" if cuda else "gloo", verbose=False)
    import torch.distributed as dist

    out = Path(args.out)
    name = args.model_name or Path(args.model).name
    cfg = RunConfig(
        model=args.model, objective=args.objective, lr=args.lr,
        train_data=json.loads(args.train_data), val_data=json.loads(args.val_data),
        global_batch=args.global_batch, micro_batch=args.micro_batch, epochs=args.epochs,
        warmup_steps=args.warmup_steps, eval_every=args.eval_every, max_length=args.max_length,
        zero_stage=args.zero_stage, offload_optimizer=args.offload_optimizer,
        grad_checkpointing=args.grad_checkpointing, weight_decay=args.weight_decay,
        grad_clip=args.grad_clip, seed=args.seed, mega_batch=args.mega_batch,
        packing=args.packing,
        chat_template=args.chat_template, max_train_examples=args.max_train_examples,
        max_val_pairs=args.max_val_pairs, world_size=world, precision=args.precision,
        extra={"merge_grid_step": args.merge_grid_step, "eval_batch": args.eval_batch},
    )
    accum = D.accumulation_steps(cfg.global_batch, cfg.micro_batch, world)
    sig = cfg.signature()
    log = Log(rank, out / "metrics.jsonl", out / "tb" if args.tensorboard else None)
    log.info(f"{name} {cfg.objective} lr={cfg.lr:g}: global batch {cfg.global_batch} = micro "
             f"{cfg.micro_batch} x accumulation {accum} x {world} rank(s); zero {cfg.zero_stage}; "
             f"{'cuda' if cuda else 'cpu'} "
             f"{str(train_dtype(cfg.precision, cuda)).replace('torch.', '')}")

    # ---- tokenizer, data, plan, model: loaded before the run dir is touched, so a bad
    # data set or model leaves nothing behind
    tok = prepare_tokenizer(load_tokenizer(args.model, cfg_trust(args)))
    template = resolve_template(tok, cfg.chat_template)
    prep = prepare_data(cfg, tok, template)
    if prep.train_ids:
        # What the model is trained on, as text: the chat template (its default system
        # prompt, role markers) and the token the reward is read at are visible in the log.
        first = tok.decode(prep.train_ids[0])
        log.info(f"first training text ({len(prep.train_ids[0])} tokens): {first!r}")
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

    torch.manual_seed(cfg.seed)
    dtype = train_dtype(cfg.precision, cuda)
    hf = load_for_training(args.model, OBJECTIVES[cfg.objective], tok, cfg_trust(args), dtype,
                           D.ATTRIBUTES if cfg.objective == "regression" else None)

    # ---- resume or start fresh
    ds_dir = out / "ds"
    state_file = out / "resume.json"
    resume = False
    if rank == 0:
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
    if world > 1:
        flag = [resume]
        dist.broadcast_object_list(flag, src=0)
        resume = bool(flag[0])

    # ---- engine
    if cfg.grad_checkpointing:
        hf.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = RewardModel(hf)
    kappa = attention_ratio(hf.config)
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.offload_optimizer and cuda:
        from deepspeed.ops.adam import DeepSpeedCPUAdam

        opt = DeepSpeedCPUAdam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, adamw_mode=True)
    else:
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg.warmup_steps))
    engine, _, _, _ = deepspeed.initialize(
        model=model, optimizer=opt, lr_scheduler=sched, config=ds_config(cfg, accum, cuda))

    packing = decide_packing(engine, cfg, args, tok.pad_token_id, device, kappa, dtype, log)

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

    # ---- train
    n_val = len(prep.val_chosen)
    pad_id = tok.pad_token_id
    engine.train()
    for st in plan[start:stop]:
        t0 = time.time()
        losses = []
        positions = 0
        for mb in st.for_rank(rank):
            rows = prep.rows(mb)
            out_t, n_pos = _forward_rows(engine, rows, pad_id, device, packing["used"], kappa)
            positions += n_pos
            if cfg.objective == "bt":
                r = out_t[:, 0].float()
                loss = -torch.nn.functional.logsigmoid(r[: len(mb)] - r[len(mb):]).mean()
            else:
                y = torch.tensor([prep.targets[i] for i in mb], dtype=torch.float32,
                                 device=device)
                loss = torch.nn.functional.mse_loss(out_t.float(), y)
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
               "max_mem_mb": max_mem_mb(cuda), "step_s": dt}
        log.metric(row)
        if rank == 0 and (step % max(1, args.log_every) == 0 or step == n_steps):
            log.info(f"step {step}/{n_steps} loss {loss_v:.4f} lr {row['lr']:.3g} "
                     f"{row['tokens_per_s']:.0f} tok/s pad {row['padding_fraction']:.1%}")
        if step in points:
            t_eval = time.time()
            scores = evaluate(engine, prep, pad_id, args.eval_batch, rank, world, device)
            vm = val_metrics(scores, n_val, cfg.objective, args.merge_grid_step)
            ck = out / "ckpt" / f"step{step}"
            export_hf(engine, cfg, tok, template, ck, rank)
            if rank == 0 and cfg.objective == "regression":
                write_val_preds(ck / "val_preds.parquet", scores, n_val)
            ev = {"step": step, "epoch": st.epoch, **vm, "checkpoint": str(ck),
                  "eval_s": time.time() - t_eval}
            evals.append(ev)
            log.metric({"step": step, "val_accuracy": vm["val_accuracy"],
                        "weights": vm["weights"]})
            log.info(f"step {step}: validation accuracy {vm['val_accuracy']:.4f}")
            engine.save_checkpoint(str(ds_dir), tag=f"step{step}",
                                   client_state={"step": step, "evals": evals})
            if world > 1:
                dist.barrier()
            if rank == 0:
                for d in ds_dir.iterdir():
                    if d.is_dir() and d.name != f"step{step}":
                        shutil.rmtree(d, ignore_errors=True)
        if args.stop_after_steps is not None and step >= args.stop_after_steps and step < n_steps:
            log.info(f"stopping after step {step} (--stop-after-steps)")
            log.close()
            if world > 1:
                dist.barrier()
            return STOPPED_EXIT

    # ---- finish
    if world > 1:
        dist.barrier()
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
            "model": name, "model_ref": args.model, "objective": cfg.objective, "lr": cfg.lr,
            "signature": sig, "config": asdict(cfg), "world_size": world,
            "micro_batch": cfg.micro_batch, "accumulation": accum,
            "global_batch": cfg.global_batch,
            "batch": f"{cfg.micro_batch} x {accum} x {world} = {cfg.global_batch}",
            "device": "cuda" if cuda else "cpu", "dtype": str(dtype).replace("torch.", ""),
            "n_train": n_train, "n_val_pairs": n_val, "steps": n_steps,
            "truncation": prep.truncation, "packing": packing,
            "padding_fraction": float(np.mean(pads)) if pads else None,
            "tokens_per_s_median": float(np.median(tps)) if tps else None,
            "evals": evals, "best": best,
            "checkpoints": [e["checkpoint"] for e in evals],
            "wall_s": time.time() - t_start, **rung,
        })
        log.info(f"done in {time.time() - t_start:.1f}s; best step {best['step']} "
                 f"val accuracy {best['val_accuracy']:.4f}")
    log.close()
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return 0


def cfg_trust(args: argparse.Namespace) -> bool:
    return bool(args.trust_remote_code)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
