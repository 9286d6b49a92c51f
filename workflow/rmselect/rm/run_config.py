"""The RM trainer's run declaration: command line, run configuration and seeds.

Kept apart from the fit loop (:mod:`rmselect.rm.train`) so that what a run *is* (the fields
hashed into its resume signature, the ``--seed``/``--out`` pairs of one call, the evaluation
points) can be read and imported without the training code.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


OBJECTIVES = {"bt": 1, "regression": 5}


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


def eval_points(n_steps: int, every: int) -> list[int]:
    """Steps (1-based counts of optimizer steps) after which to evaluate and checkpoint."""
    pts = list(range(every, n_steps + 1, every)) if every > 0 else []
    if not pts or pts[-1] != n_steps:
        pts.append(n_steps)
    return pts


PRECISIONS = ("auto", "bf16", "fp32")


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


def cfg_trust(args: argparse.Namespace) -> bool:
    return bool(args.trust_remote_code)
