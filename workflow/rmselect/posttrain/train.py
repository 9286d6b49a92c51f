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

Output: ``--out-dir`` (``results/variants/{model}/model``) becomes a normal HF causal-LM dir
(config.json, model.safetensors, tokenizer with the chat template used in training), written
atomically; ``--train-json`` records recipe, parent, steps, per-step loss, final loss, wall s.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from rmselect import cli, runtime

from rmselect.posttrain.args import PosttrainArgs
from rmselect.posttrain.data import IGNORE_INDEX, PreferencePair, Sequence_

log = logging.getLogger("rmselect.posttrain")


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


def reference_logps(engine: Any, pairs: Sequence[PreferencePair], micro: int, pad_id: int) -> torch.Tensor:
    """``(n, 2)`` summed log-probs of chosen/rejected under the initial (parent) weights."""
    was_training = engine.module.training
    engine.module.eval()
    out = torch.zeros(len(pairs), 2, dtype=torch.float32)
    with torch.no_grad():
        for s in range(0, len(pairs), micro):
            c, r = _pair_logps(engine, pairs[s : s + micro], pad_id)
            out[s : s + micro, 0] = c.float().cpu()
            out[s : s + micro, 1] = r.float().cpu()
    engine.module.train(was_training)
    return out


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
) -> dict[str, Any]:
    """Train one variant of ``parent`` with ``recipe`` and write it (module docstring)."""
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
    bf16 = {"auto": use_cuda and torch.cuda.is_bf16_supported(), "bf16": True, "fp32": False}[
        recipe.get("precision", "auto")
    ]
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
    ref = reference_logps(engine, examples, micro, pad_id) if stage == "dpo" else None
    plan = step_indices(len(examples), int(recipe["global_batch"]), steps, seed)
    history: list[dict[str, Any]] = []
    per_rank = len(plan[0]) // world
    for step, idx in enumerate(plan):
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
    train(recipe, args.parent, args.out_dir, args.train_json, seed,
          trust_remote_code=args.trust_remote_code, chat_template=args.chat_template,
          name=args.name, parent_name=args.parent_name)
    return 0
