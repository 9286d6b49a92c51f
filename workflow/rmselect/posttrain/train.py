"""A small DeepSpeed training loop for SFT and DPO variants of a causal LM.

* **SFT**: token-level cross-entropy on assistant tokens only (:mod:`rmselect.posttrain.data`).
* **DPO** (Rafailov et al. 2023): ``-log σ(β[(log π(y_w|x) - log π_ref(y_w|x)) -
  (log π(y_l|x) - log π_ref(y_l|x))])`` with sequence log-probs summed over response tokens.
  The reference is the **parent**, frozen: since the policy starts as the parent, the
  reference log-probs are computed once with the initial weights (eval mode, no grad) before
  the first update, so no second copy of the model is held. Dropout is switched off for DPO.

Optimiser: ``torch.optim.AdamW`` passed to DeepSpeed as a client optimiser (no fused-Adam
build, works on CPU), constant learning rate after ``warmup_steps`` linear warm-up.
One optimiser step = ``global_batch`` examples = micro_batch × accumulation × ranks; steps =
``floor(n_examples / global_batch) × epochs`` (at least 1), capped by ``max_steps``. Examples
are shuffled per epoch with the seed. Runs as one process (CPU, or one GPU) or under
``torchrun`` (several GPUs, NCCL; ZeRO stage from the recipe). On CPU DeepSpeed uses its CPU
accelerator and gloo.

Checkpoints and resume (the RM trainer's machinery, :func:`rmselect.runtime.open_resume`):
every ``checkpoint_every`` optimiser steps the DeepSpeed state (model, optimiser, schedule,
the loss history so far) goes to ``<out-dir>/../train_state/ds/`` (only the newest kept);
a rerun of a killed job with the same recipe, parent, seed, ranks and template resumes from
it and ends with the same losses and weights. The DPO reference log-probs are computed once,
each rank scoring its block of the pairs (gathered onto every rank), and kept in
``train_state/ref_logps.safetensors`` for the resumed run. ``train_state/`` is removed when
the variant is written.

Output: ``--out-dir`` (``results/variants/{model}/model``) becomes a normal HF causal-LM dir
(config.json, model.safetensors, tokenizer with the chat template used in training), written
atomically; ``--train-json`` records recipe, parent, steps, per-step loss, final loss, wall s.
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from rmselect import cli, runtime
from rmselect.device import use_bf16
from rmselect.posttrain.args import PosttrainArgs
from rmselect.posttrain.data import IGNORE_INDEX, PreferencePair, Sequence_

log = logging.getLogger("rmselect.posttrain")

#: Exit status of a run stopped by ``--stop-after-steps`` (a simulated kill).
STOPPED_EXIT = 75


# --------------------------------------------------------------------------- batching


def collate(seqs: Sequence[Sequence_], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids, attention_mask, labels``."""
    width = max(len(s.input_ids) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    labels = torch.full((len(seqs), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        n = len(s.input_ids)
        ids[i, :n] = torch.tensor(s.input_ids)
        labels[i, :n] = torch.tensor(s.labels)
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def token_logps(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-position log p(label_t | <t) (shifted) and the mask of positions with a label."""
    logits = logits[:, :-1].float()
    target = labels[:, 1:]
    mask = target != IGNORE_INDEX
    lp = torch.log_softmax(logits, dim=-1).gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return lp * mask, mask


def sft_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over labelled (assistant) tokens."""
    return F.cross_entropy(
        logits[:, :-1].float().reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
        ignore_index=IGNORE_INDEX,
    )


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed log-prob of the labelled tokens of each sequence."""
    lp, _ = token_logps(logits, labels)
    return lp.sum(-1)


def dpo_loss(
    pol_c: torch.Tensor, pol_r: torch.Tensor, ref_c: torch.Tensor, ref_r: torch.Tensor, beta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean DPO (sigmoid) loss and the per-pair implicit reward margin."""
    margin = beta * ((pol_c - ref_c) - (pol_r - ref_r))
    return -F.logsigmoid(margin).mean(), margin


#: LR factor: linear warm-up, then constant 1 (the schedule every trainer shares).
schedule = runtime.lr_factor


def plan_steps(n_examples: int, global_batch: int, epochs: float, max_steps: int | None) -> int:
    if n_examples < global_batch:
        raise ValueError(
            f"only {n_examples} training examples for a global batch of {global_batch}; "
            "lower the recipe's global_batch or add data"
        )
    steps = max(1, int(math.floor(n_examples / global_batch * epochs)))
    return min(steps, int(max_steps)) if max_steps else steps


def step_indices(n_examples: int, global_batch: int, steps: int, seed: int) -> list[list[int]]:
    """Example indices of every optimiser step: per-epoch seeded permutations, drop-last."""
    rng = random.Random(seed)
    out: list[list[int]] = []
    per_epoch = n_examples // global_batch
    while len(out) < steps:
        perm = list(range(n_examples))
        rng.shuffle(perm)
        for b in range(per_epoch):
            if len(out) == steps:
                break
            out.append(perm[b * global_batch : (b + 1) * global_batch])
    return out


# --------------------------------------------------------------------------- engine


def ds_config(recipe: dict[str, Any], world: int, bf16: bool) -> dict[str, Any]:
    """The recipe's DeepSpeed configuration (:func:`rmselect.runtime.ds_config`)."""
    micro = int(recipe["micro_batch"])
    gb = int(recipe["global_batch"])
    if gb % (micro * world):
        raise ValueError(
            f"global_batch {gb} is not a multiple of micro_batch {micro} x {world} rank(s)"
        )
    return runtime.ds_config(
        global_batch=gb, micro_batch=micro, accumulation=gb // (micro * world),
        zero_stage=int(recipe.get("zero_stage") or 0),
        grad_clip=float(recipe.get("grad_clip") or 0.0), bf16=bf16)


# --------------------------------------------------------------------------- training


def _pair_logps(engine: Any, pairs: Sequence[PreferencePair], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    seqs = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    batch = {k: v.to(engine.device) for k, v in collate(seqs, pad_id).items()}
    logits = engine(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    lp = sequence_logps(logits, batch["labels"])
    return lp[: len(pairs)], lp[len(pairs) :]


def reference_logps(engine: Any, pairs: Sequence[PreferencePair], micro: int, pad_id: int,
                    rank: int = 0, world: int = 1) -> torch.Tensor:
    """``(n, 2)`` summed log-probs of chosen/rejected under the initial (parent) weights.

    Each rank scores only its block of pairs (:func:`reference_shard`), then the blocks are
    gathered onto every rank (:func:`gather_shards`): computed once, not once per rank."""
    was_training = engine.module.training
    engine.module.eval()

    def score(idx: list[int]) -> torch.Tensor:
        c, r = _pair_logps(engine, [pairs[i] for i in idx], pad_id)
        return torch.stack([c.float(), r.float()], dim=1).cpu()

    with torch.no_grad():
        mine = reference_shard(score, len(pairs), micro, rank, world)
    engine.module.train(was_training)
    if world == 1:
        return mine[: len(pairs)]
    dev = engine.device
    blocks = [torch.zeros_like(mine, device=dev) for _ in range(world)]
    torch.distributed.all_gather(blocks, mine.to(dev))
    return gather_shards([b.cpu() for b in blocks], len(pairs))


def shard_bounds(n: int, rank: int, world: int) -> tuple[int, int, int]:
    """Rank ``rank``'s block ``[lo, hi)`` of ``n`` items and the block size ``ceil(n/world)``."""
    per = -(-n // world)
    lo = min(n, rank * per)
    return lo, min(n, lo + per), per


def reference_shard(score: Callable[[list[int]], torch.Tensor], n: int, micro: int,
                    rank: int, world: int) -> torch.Tensor:
    """``(ceil(n/world), 2)``: ``score`` of this rank's block, ``micro`` items per call.

    Every rank makes the same number of calls (ZeRO-3 gathers the weights in each forward,
    a collective): a rank whose block is short scores item 0 again and drops it."""
    lo, hi, per = shard_bounds(n, rank, world)
    out = torch.zeros(per, 2, dtype=torch.float32)
    for c in range(-(-per // micro)):
        idx = list(range(lo + c * micro, min(hi, lo + (c + 1) * micro)))
        vals = score(idx or [0])
        out[c * micro : c * micro + len(idx)] = vals[: len(idx)]
    return out


def gather_shards(blocks: Sequence[torch.Tensor], n: int) -> torch.Tensor:
    """Rank blocks (in rank order, padded to one size) -> the ``(n, 2)`` table."""
    return torch.cat(list(blocks), dim=0)[:n]


def run_signature(recipe: dict[str, Any], parent: str, seed: int, world: int,
                  template: str) -> str:
    """What a resumed run must share with the run that saved the checkpoint (the checkpoint
    schedule is not part of it)."""
    import hashlib

    keep = {k: v for k, v in recipe.items() if k != "checkpoint_every"}
    blob = json.dumps({"recipe": keep, "parent": str(parent), "seed": seed, "world": world,
                       "template": template}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _reference(engine: Any, examples: Sequence[PreferencePair], micro: int, pad_id: int,
               rt: Any, path: Path, resume: bool) -> torch.Tensor:
    """The DPO reference log-probs: computed once (sharded, gathered) and kept in
    ``path`` next to the DeepSpeed checkpoint, so a resumed run (whose weights are no longer
    the parent's) reads them back."""
    from safetensors.torch import load_file, save_file

    if resume and path.exists():
        return load_file(str(path))["ref"]
    ref = reference_logps(engine, examples, micro, pad_id, rt.rank, rt.world)
    if rt.rank == 0:
        tmp = path.with_suffix(".tmp")
        save_file({"ref": ref.contiguous()}, str(tmp))
        tmp.replace(path)
    rt.barrier()
    return ref


def train(
    recipe: dict[str, Any],
    parent: str,
    out_dir: str | Path,
    train_json: str | Path,
    seed: int,
    trust_remote_code: bool = False,
    chat_template: str | None = None,
    name: str = "",
    parent_name: str = "",
    stop_after_steps: int | None = None,
) -> dict[str, Any]:
    """Train one variant of ``parent`` with ``recipe`` and write it (module docstring).

    ``stop_after_steps``: return after that step's checkpoint, as if killed (tests)."""
    from rmselect.datasets_io import load_frame
    from rmselect.hf import load_causal_lm, load_tokenizer
    from rmselect.io import atomic_path, write_json
    from rmselect.posttrain.data import dpo_examples, sft_examples
    from rmselect.posttrain.data import POSTTRAIN_FALLBACK_TEMPLATE
    from rmselect.rm.format import FALLBACK_TEMPLATE, resolve_template

    t0 = time.time()
    rt = runtime.start()
    use_cuda, rank, world = rt.cuda, rt.rank, rt.world
    import deepspeed

    stage = recipe["stage"]
    torch.manual_seed(seed)
    tok = load_tokenizer(parent, trust_remote_code=trust_remote_code)
    template = resolve_template(tok, chat_template)
    if template == FALLBACK_TEMPLATE:
        template = POSTTRAIN_FALLBACK_TEMPLATE
    what = f"posttrain.recipes.{recipe.get('name', stage)}.data"
    df = load_frame(recipe["data"])
    if recipe.get("max_examples"):
        df = df.head(int(recipe["max_examples"]))
    maker = sft_examples if stage == "sft" else dpo_examples
    examples, dropped = maker(df, tok, template, int(recipe["max_length"]), what=what)
    steps = plan_steps(len(examples), int(recipe["global_batch"]), float(recipe["epochs"]),
                       recipe.get("max_steps"))
    bf16 = use_bf16(recipe.get("precision", "auto"), use_cuda)
    # bf16 weights when training in bf16 (DeepSpeed keeps fp32 master weights in the
    # optimiser): halves host memory while every rank loads the parent.
    model = load_causal_lm(parent, trust_remote_code=trust_remote_code,
                           dtype=torch.bfloat16 if bf16 else torch.float32)
    if recipe.get("gradient_checkpointing"):
        model.gradient_checkpointing_enable()
    if stage == "dpo":
        runtime.disable_dropout(model)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(recipe["lr"]),
                                  weight_decay=float(recipe["weight_decay"]))
    warm = int(recipe["warmup_steps"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: schedule(s, warm))
    cfg = ds_config(recipe, world, bf16)
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer,
                                           lr_scheduler=scheduler, config=cfg)
    micro = int(recipe["micro_batch"])
    pad_id = int(tok.pad_token_id if tok.pad_token_id is not None else 0)
    state_dir = Path(out_dir).parent / "train_state"
    resume = runtime.open_resume(
        state_dir, run_signature(recipe, parent, seed, world, template), {"recipe": recipe}, rt,
        [state_dir / "ref_logps.safetensors"], log.info)
    ref = (_reference(engine, examples, micro, pad_id, rt, state_dir / "ref_logps.safetensors",
                      resume) if stage == "dpo" else None)
    plan = step_indices(len(examples), int(recipe["global_batch"]), steps, seed)
    history: list[dict[str, Any]] = []
    start = 0
    if resume:
        client = runtime.load_ds_state(engine, state_dir / "ds")
        start, history = int(client["step"]), list(client["history"])
        log.info("resumed from %s at step %d", state_dir / "ds", start)
    every = int(recipe.get("checkpoint_every") or 0)
    per_rank = len(plan[0]) // world
    for step, idx in enumerate(plan):
        if step < start:
            continue
        mine = idx[rank * per_rank : (rank + 1) * per_rank]
        losses, accs = [], []
        for s in range(0, len(mine), micro):
            chunk = mine[s : s + micro]
            if stage == "sft":
                batch = {k: v.to(engine.device) for k, v in collate([examples[i] for i in chunk], pad_id).items()}
                logits = engine(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                loss = sft_loss(logits, batch["labels"])
            else:
                pc, pr = _pair_logps(engine, [examples[i] for i in chunk], pad_id)
                r = ref[chunk].to(engine.device)  # type: ignore[index]
                loss, margin = dpo_loss(pc.float(), pr.float(), r[:, 0], r[:, 1], float(recipe["beta"]))
                accs.append(float((margin > 0).float().mean().item()))
            engine.backward(loss)
            engine.step()
            losses.append(float(loss.item()))
        row: dict[str, Any] = {"step": step + 1, "loss": _mean_all(losses, world),
                               "lr": float(scheduler.get_last_lr()[0])}
        if accs:
            row["reward_accuracy"] = _mean_all(accs, world)
        history.append(row)
        if rank == 0:
            log.info("step %d/%d loss %.4f", step + 1, steps, row["loss"])
        if every and (step + 1) % every == 0 and step + 1 < steps:
            runtime.save_ds_state(engine, state_dir / "ds", step + 1,
                                  {"step": step + 1, "history": history}, rt)
        if stop_after_steps is not None and step + 1 >= stop_after_steps and step + 1 < steps:
            log.info("stopping after step %d (--stop-after-steps)", step + 1)
            rt.barrier()
            return {"stopped_at": step + 1}
    state = engine._zero3_consolidated_16bit_state_dict() if int(recipe.get("zero_stage") or 0) == 3 else None
    info: dict[str, Any] = {}
    if rank == 0:
        if not getattr(tok, "chat_template", None):
            tok.chat_template = template  # the variant carries the template it was trained with
        with atomic_path(out_dir) as tmp:
            engine.module.save_pretrained(tmp, state_dict=state, safe_serialization=True)
            tok.save_pretrained(tmp)
        info = {
            "model": name, "parent": parent_name, "parent_path": str(parent), "stage": stage,
            "recipe": recipe, "seed": seed, "examples": len(examples), "dropped_examples": dropped,
            "steps": steps, "world_size": world, "micro_batch": micro,
            "gradient_accumulation_steps": cfg["gradient_accumulation_steps"], "bf16": bf16,
            "initial_loss": history[0]["loss"], "final_loss": history[-1]["loss"],
            "history": history, "wall_s": round(time.time() - t0, 3),
        }
        write_json(train_json, info)
        shutil.rmtree(state_dir, ignore_errors=True)  # done: nothing to resume
    if world > 1:
        torch.distributed.barrier()
    return info


def _mean_all(values: Sequence[float], world: int) -> float:
    v = sum(values) / max(1, len(values))
    if world > 1:
        t = torch.tensor([v], dtype=torch.float64)
        if torch.cuda.is_available():
            t = t.cuda()
        torch.distributed.all_reduce(t)
        v = float(t.item()) / world
    return v


# --------------------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(PosttrainArgs, _main, argv, prog="posttrain_train.py")


def _main(args: PosttrainArgs) -> int:
    from rmselect import runlock

    recipe = dict(args.recipe)
    if recipe.get("stage") not in ("sft", "dpo"):
        raise SystemExit(f"posttrain: recipe stage must be sft or dpo, got {recipe.get('stage')!r}")
    # one process per variant folder (results/variants/{model}/); see rmselect.runlock
    if not runlock.under_torchrun():
        runlock.die_with_parent()
    locks = runlock.hold([Path(args.out_dir).parent], "post-training", prog="posttrain")
    try:
        return _train(args, recipe)
    finally:
        runlock.release_all(locks)


def _train(args: PosttrainArgs, recipe: dict[str, Any]) -> int:
    seed = int(recipe["seed"]) if recipe.get("seed") is not None else args.seed
    if recipe.get("zero_stage") is None:
        recipe["zero_stage"] = args.zero_stage
    info = train(recipe, args.parent, args.out_dir, args.train_json, seed,
                 trust_remote_code=args.trust_remote_code, chat_template=args.chat_template,
                 name=args.name, parent_name=args.parent_name,
                 stop_after_steps=args.stop_after_steps)
    return STOPPED_EXIT if "stopped_at" in info else 0
