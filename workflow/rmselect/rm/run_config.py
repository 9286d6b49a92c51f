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

from rmselect import cli
from rmselect.cli import opt
from rmselect.conventions import ATTN_IMPLEMENTATIONS
from rmselect.runtime import OFFLOAD_STAGE


OBJECTIVES = {"bt": 1, "regression": 5}
PRECISIONS = ("auto", "bf16", "fp32")
#: DeepSpeed offload modes (``rm.offload``): what ZeRO keeps in host memory.
OFFLOADS = tuple(OFFLOAD_STAGE)


@dataclass(kw_only=True)
class TrainArgs:
    """Train one reward model (one base model, objective and learning rate) with DeepSpeed;
    resumes from the run dir's checkpoint when one exists."""

    model: str = opt("base model: HF dir or hub id")
    model_name: str | None = opt("model name for messages and run.json", default=None)
    objective: str = opt("bt (Bradley-Terry pairs) or regression (HelpSteer2 attributes)",
                         choices=sorted(OBJECTIVES))
    lr: float = opt("peak learning rate")
    out: list[str] = opt(
        "run directory (run.json is written last); repeat it with --seed to train several "
        "seeds of the same run in one process (imports and data loaded once)", repeat=True)
    train_data: str = opt("config data-set entry as JSON: HelpSteer2-Preference for bt, "
                          "HelpSteer2 for regression")
    val_data: str = opt("config data-set entry (JSON) of HelpSteer2-Preference")
    global_batch: int = opt("pairs (bt) or rows (regression) per step", default=64)
    micro_batch: int = opt("pairs/rows per rank per forward", default=4)
    epochs: int = opt("passes over the training data", default=1)
    warmup_steps: int = opt("linear warm-up steps before the cosine decay", default=20)
    eval_every: int = opt("evaluate every N steps (and at the end): validation predictions "
                          "always, the HF checkpoint when among the best so far", default=20)
    max_length: int = opt("token budget per rendered text", default=4096)
    zero_stage: int = opt("DeepSpeed ZeRO stage", default=0, choices=[0, 1, 2, 3])
    weight_decay: float = opt("AdamW weight decay", default=0.0)
    grad_clip: float = opt("gradient-norm clip (0 disables clipping)", default=1.0)
    mega_batch: int = opt("global batches sorted together by length", default=8)
    eval_batch: int = opt("sequences per validation forward", default=32)
    merge_grid_step: float = opt(
        "regression: grid step of the merge-weight search used for the logged accuracy",
        default=0.05)
    offload: str = opt("DeepSpeed offload to CPU: none, optimizer (ZeRO >= 1) or param "
                       "(optimizer and parameters; ZeRO-3)", default="none", choices=OFFLOADS)
    grad_checkpointing: bool = opt("activation checkpointing", default=False)
    chat_template: str | None = opt("chat template override (file or Jinja)", default=None)
    precision: str = opt("auto: bf16 on CUDA, fp32 on CPU; bf16 / fp32 force one (bf16 works "
                         "on CPU too)", default="auto", choices=PRECISIONS)
    trust_remote_code: bool = opt("run the model's own code (only when its row opts in)",
                                  default=False)
    attn_implementation: str = opt(
        "attention kernel: auto (eager where the architecture needs it, e.g. Gemma-2's "
        "softcapping, else sdpa), eager, sdpa or flash_attention_2 (when installed)",
        default="auto", choices=list(ATTN_IMPLEMENTATIONS))
    max_train_examples: int | None = opt("use the first N training examples", default=None)
    max_val_pairs: int | None = opt("use the first N validation pairs", default=None)
    identical_pairs: str = opt("a pair with identical responses and a non-zero strength: "
                               "drop (counted in the log) or error", default="drop",
                               choices=["drop", "error"])
    keep_ds_checkpoint: bool = opt("keep ds/ after a finished run (saved at the last step)",
                                   default=False)
    keep_checkpoints: int = opt(
        "HF checkpoint dirs kept: the best N evaluation points so far by the logged validation "
        "accuracy (ties to the earlier step); 0 keeps every point", default=1)
    ds_save_minutes: float = opt(
        "save the DeepSpeed state (resume point) after the first step at least this many "
        "minutes after the previous save or the start; 0 = after every step", default=30.0)
    tensorboard: bool = opt("also log to <out>/tb when tensorboard is installed", default=False)
    seed: list[int] = opt(
        "training seed (data order, head initialisation); one per --out (default 0, the "
        "study's default seed)", repeat=True, default=[])
    packing: bool = opt("pack a micro-batch's sequences into rows (block-diagonal attention) "
                        "instead of padding each to the longest", default=True)
    threads: int | None = opt("torch CPU threads per rank (default: OMP_NUM_THREADS or 1)",
                              default=None)
    log_every: int = opt("progress line on stderr every N steps", default=1)
    stop_after_steps: int | None = opt(
        "debug: exit with status 75 after this step, as if killed (tests resume)", default=None)
    max_steps: int | None = opt(
        "successive-halving rung: stop at the first evaluation point at or after this step "
        "and keep ds/, so a later call with a larger budget continues the same run (same LR "
        "schedule and data order); the summary then says complete: false", default=None)
    result: str | None = opt(
        "where to write the run summary (default <out>/run.json; rungs: rung{r}.json)",
        default=None)


def build_parser() -> argparse.ArgumentParser:
    """The trainer's parser, derived from :class:`TrainArgs` (the one declaration)."""
    return cli.build_parser(TrainArgs, prog="train_rm.py")


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
    offload: str
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
    attn_implementation: str = "auto"
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


def check_offload(offload: str, zero_stage: int) -> None:
    """Offload needs ZeRO: the optimizer state from stage 1 on, the parameters at stage 3."""
    if offload not in OFFLOADS:
        raise ValueError(f"offload {offload!r} is not one of {', '.join(OFFLOADS)}")
    need = OFFLOAD_STAGE[offload]
    if zero_stage < need:
        raise ValueError(f"offload {offload!r} needs ZeRO stage >= {need}, got {zero_stage}; "
                         "raise rm.by_size's zero_stage or set rm.offload: none")


def run_config(args: argparse.Namespace, seed: int, world: int) -> RunConfig:
    """The run's configuration (what its resume signature hashes)."""
    check_offload(args.offload, args.zero_stage)
    return RunConfig(
        model=args.model, objective=args.objective, lr=args.lr,
        train_data=json.loads(args.train_data), val_data=json.loads(args.val_data),
        global_batch=args.global_batch, micro_batch=args.micro_batch, epochs=args.epochs,
        warmup_steps=args.warmup_steps, eval_every=args.eval_every, max_length=args.max_length,
        zero_stage=args.zero_stage, offload=args.offload,
        grad_checkpointing=args.grad_checkpointing, weight_decay=args.weight_decay,
        grad_clip=args.grad_clip, seed=seed, mega_batch=args.mega_batch,
        packing=args.packing,
        chat_template=args.chat_template, max_train_examples=args.max_train_examples,
        max_val_pairs=args.max_val_pairs, world_size=world, precision=args.precision,
        attn_implementation=args.attn_implementation,
        extra={"merge_grid_step": args.merge_grid_step, "eval_batch": args.eval_batch},
    )


def cfg_trust(args: argparse.Namespace) -> bool:
    return bool(args.trust_remote_code)
