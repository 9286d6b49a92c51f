"""Reward-model training on the DeepSpeed engine (Bradley-Terry or 5-attribute regression).

One call trains one (model, objective, learning rate) run into ``--out`` (the run dir
``results/rm/{objective}/{model}/lr{lr}/``):

* ``run.json`` – written last (the only Snakemake output): configuration, world size,
  ``micro x accumulation x ranks``, per-evaluation validation accuracy, checkpoint dirs.
* ``metrics.jsonl`` – one line per step (loss, lr, tokens/s, padding fraction, memory) and
  one per evaluation (``val_accuracy``).
* ``val_preds/step{N}.parquet`` – every evaluation point's validation predictions (what
  the selection ranks points by, regression's merge-vector search included).
* ``ckpt/step{N}/`` – an HF ``AutoModelForSequenceClassification`` dir for the run's best
  ``--keep-checkpoints`` evaluation points so far (:mod:`rmselect.rm.checkpoint`).
* ``ds/`` – the DeepSpeed state (model, optimizer, LR schedule, step), saved every
  ``--ds-save-minutes``: a rerun of a killed job resumes from it and, given the same seed
  and ranks, ends with the same metrics. Not written at the last step (nor kept) unless
  ``--keep-ds-checkpoint``.

With ``--max-steps B`` (a successive-halving rung, :mod:`rmselect.rm.halving`) the run stops
at the first evaluation point at or after ``B`` and keeps ``ds/``; the summary (``--result``,
e.g. ``rung0.json``: the run.json keys plus ``complete``, ``max_steps``, ``stop_step``) lists
the evaluations up to there, and the DeepSpeed state is saved at that point. The step
budget is not part of the resume signature: a later call with a larger budget resumes and
trains on with the same schedule (warm-up then constant, independent of the run length)
and the same batch plan, so a run continued through every rung equals a full run. A call whose checkpoint is already past its budget
trains nothing and reports the evaluations up to the budget.

The entry point is rank/world-size agnostic: under ``torchrun`` (or srun setting
``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT``) each process is one
rank; started plainly it is a single rank on a free local port.

Precision (``--precision``, config ``rm.precision``): ``auto`` is bf16 on CUDA (DeepSpeed's
bf16 mode) and fp32 on CPU; ``bf16`` on CPU loads the weights in bfloat16 and trains them
as they are (torch runs bf16 matmuls on CPU; DeepSpeed's bf16 optimizer wants an
accelerator), ``fp32`` forces float32 everywhere. The optimizer is ``torch.optim.AdamW`` handed to
``deepspeed.initialize`` as the client optimizer (``DeepSpeedCPUAdam`` for ``--offload``
optimizer or param on GPUs, with torch and OpenMP threads set to the job's CPUs per rank);
the learning rate warms up linearly for ``--warmup-steps`` optimizer steps and then stays
constant.

This module is the entry point and the fit loop; the command line and run configuration
live in :mod:`rmselect.rm.run_config`, the tokenized data in :mod:`rmselect.rm.prepare`,
validation and the packing probe in :mod:`rmselect.rm.evaluate`, the checkpoints in
:mod:`rmselect.rm.checkpoint`, the losses in :mod:`rmselect.rm.losses` and the shared
training runtime in :mod:`rmselect.runtime`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from rmselect import runtime
from rmselect.device import use_bf16
from rmselect.runtime import Log, lr_factor, max_mem_mb, truncate_metrics

# The run declaration, the data, the evaluation and the checkpoints have their own modules;
# their names stay importable from here (tests, bench/ and scripts use ``train.<name>``).
from rmselect.rm.checkpoint import (  # noqa: F401
    Retention,
    SaveClock,
    export_hf,
    save_checkpoint,
    save_state,
    write_val_preds,
)
from rmselect.rm.evaluate import _forward_rows, decide_packing, evaluate, val_metrics  # noqa: F401
from rmselect.rm.prepare import Prepared, Shared, prepare_data  # noqa: F401
from rmselect.rm.run_config import (  # noqa: F401
    OBJECTIVES,
    PRECISIONS,
    RunConfig,
    build_parser,
    cfg_trust,
    eval_points,
    run_config,
    run_seeds,
)

#: Exit status of a run stopped by ``--stop-after-steps`` (a simulated kill).
STOPPED_EXIT = 75


# --------------------------------------------------------------------------- engine


def train_dtype(precision: str, cuda: bool) -> Any:
    """The weights' dtype of a run: bf16 for ``bf16`` (and ``auto`` on CUDA), else fp32."""
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    bf16 = use_bf16(precision, cuda)
    return torch.bfloat16 if bf16 else torch.float32


def ds_config(cfg: RunConfig, accum: int, cuda: bool) -> dict[str, Any]:
    """The run's DeepSpeed configuration (:func:`rmselect.runtime.ds_config`).

    DeepSpeed's bf16 mode (fp32 master weights) on CUDA; on CPU a bf16 run trains the bf16
    weights directly (the engine's bf16 optimizer needs an accelerator).
    """
    return runtime.ds_config(
        global_batch=cfg.global_batch, micro_batch=cfg.micro_batch, accumulation=accum,
        zero_stage=cfg.zero_stage, grad_clip=cfg.grad_clip,
        bf16=bool(cuda) and use_bf16(cfg.precision, cuda),
        offload=cfg.offload, pin_memory=cuda)


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


def _main(argv: Sequence[str] | None = None) -> int:
    from rmselect import runlock

    args = build_parser().parse_args(argv)
    runs = run_seeds(args)
    # one process per run folder (a second one exits here, naming the holder), and no
    # trainer outliving the job's shell wrapper (torchrun stops its ranks itself)
    if not runlock.under_torchrun():
        runlock.die_with_parent()
    locks = runlock.hold([out for _, out in runs], "RM run", prog="train_rm")
    try:
        t_start = time.time()
        # one torch thread per rank unless told otherwise (ranks share the cores)
        rt = runtime.start(args.threads or int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
        if args.offload != "none" and rt.cuda:
            # DeepSpeedCPUAdam (and ZeRO's host-side work) runs on the CPU cores of the rank
            runtime.set_cpu_threads(runtime.cpus_per_rank())
        shared = load_shared(args, run_config(args, runs[0][0], rt.world), rt, t_start)
        for seed, out in runs:
            rc = train_run(args, rt, shared, seed, out)
            if rc:
                return rc
        rt.close()
        return 0
    finally:
        runlock.release_all(locks)


def load_shared(args: argparse.Namespace, cfg: RunConfig, rt: runtime.Runtime,
                t_start: float) -> Shared:
    """Tokenizer, chat template and tokenized data: loaded before any run dir is touched,
    so a bad data set or model leaves nothing behind, and once for all seeds."""
    from rmselect.hf import load_tokenizer
    from rmselect.rm.format import resolve_template
    from rmselect.rm.model import prepare_tokenizer

    log = Log(rt.rank, Path(os.devnull), None, prefix="train_rm")
    tok = prepare_tokenizer(load_tokenizer(args.model, cfg_trust(args)),
                            name=args.model_name or args.model)
    template = resolve_template(tok, cfg.chat_template)
    prep = prepare_data(cfg, tok, template, args.identical_pairs)
    if any(prep.identical_dropped.values()):
        log.info(f"dropped pairs with identical responses and a non-zero strength: "
                 f"{prep.identical_dropped} (rm.identical_pairs: drop)")
    if prep.train_ids:
        # What the model is trained on, as text: the chat template (its default system
        # prompt, role markers) and the token the reward is read at are visible in the log.
        first = tok.decode(prep.train_ids[0])
        log.info(f"first training text ({len(prep.train_ids[0])} tokens): {first!r}")
    name = args.model_name or Path(args.model).name
    return Shared(name, tok, template, prep, time.time() - t_start)


def _open_run(out: Path, sig: str, cfg: RunConfig, rt: runtime.Runtime, log: Log) -> bool:
    """Whether the run resumes (its DeepSpeed checkpoint matches ``sig``); otherwise the
    run dir is cleared of an older run's files (:func:`rmselect.runtime.open_resume`)."""
    clear = [out / "ckpt", out / "val_preds", out / "metrics.jsonl", out / "tb", out / "run.json"]
    return runtime.open_resume(out, sig, {"config": asdict(cfg)}, rt, clear, log.info)


def build_engine(args: argparse.Namespace, cfg: RunConfig, shared: Shared,
                 rt: runtime.Runtime, accum: int) -> tuple[Any, Any, float]:
    """``(engine, dtype, kappa)``: the seeded model (head initialised from ``cfg.seed``)
    wrapped by DeepSpeed with AdamW and the warm-up schedule."""
    import deepspeed
    import torch

    from rmselect.rm import data as D
    from rmselect.rm.model import RewardModel, attention_ratio, head_of, load_for_training

    torch.manual_seed(cfg.seed)
    dtype = train_dtype(cfg.precision, rt.cuda)
    hf = load_for_training(args.model, OBJECTIVES[cfg.objective], shared.tok, cfg_trust(args),
                           dtype, D.ATTRIBUTES if cfg.objective == "regression" else None,
                           attn_implementation=cfg.attn_implementation)
    if cfg.zero_stage == 3 and dtype != torch.float32:
        # ZeRO-3 partitions every parameter into one buffer of one dtype: the head joins the
        # trunk's 16-bit dtype (on CUDA DeepSpeed casts it anyway and keeps an fp32 master);
        # it still computes in fp32 (rmselect.rm.model.head_fp32), so rewards do not tie.
        head_of(hf).to(dtype)
    if cfg.grad_checkpointing:
        hf.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = RewardModel(hf)
    kappa = attention_ratio(hf.config)
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.offload != "none" and rt.cuda:
        from deepspeed.ops.adam import DeepSpeedCPUAdam

        opt = DeepSpeedCPUAdam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, adamw_mode=True)
    else:
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg.warmup_steps))
    engine, _, _, _ = deepspeed.initialize(
        model=model, optimizer=opt, lr_scheduler=sched, config=ds_config(cfg, accum, rt.cuda))
    return engine, dtype, kappa


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
             f"rank(s); zero {cfg.zero_stage}; attention {cfg.attn_implementation}; "
             f"{'cuda' if rt.cuda else 'cpu'} "
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
    retention = Retention(args.keep_checkpoints)
    start = 0
    if resume:
        client = runtime.load_ds_state(engine, ds_dir)
        start, evals = int(client["step"]), list(client["evals"])
        retention.state_saved(evals)
        if rank == 0:
            truncate_metrics(out / "metrics.jsonl", start)
            for d in (out / "val_preds").glob("step*.parquet"):
                if int(d.stem[4:]) > start:
                    d.unlink(missing_ok=True)
            retention.prune(out / "ckpt", evals)  # points past the resume step, and extras
        log.info(f"resumed from {ds_dir} at step {start}")
    if start > stop:  # the checkpoint is past this rung's budget: nothing to train
        log.info(f"checkpoint at step {start} is past the budget {stop}: reporting up to {stop}")

    # ---- fit
    n_val = len(prep.val_chosen)
    clock = SaveClock(args.ds_save_minutes)
    engine.train()
    for st in plan[start:stop]:
        t0 = time.time()
        losses = []
        positions = 0
        for mb in st.for_rank(rank):
            out_t, n_pos = _forward_rows(engine, prep.rows(mb), pad_id, device,
                                         packing["used"], kappa, packing["n_rows"])
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
                            t_eval, retention)
            log.metric({"step": step, "val_accuracy": vm["val_accuracy"],
                        "weights": vm["weights"]})
            log.info(f"step {step}: validation accuracy {vm['val_accuracy']:.4f}")
        # ---- the resume point: on the clock; at a rung's stop (the next rung continues
        # from it); never at the last step unless it is kept (it would be deleted at once)
        if step == n_steps:
            due = args.keep_ds_checkpoint
        else:
            due = step == stop or clock.due(rt)
        if due:
            t_save = time.time()
            save_state(engine, rt, out, step, evals, retention)
            clock.reset()
            log.info(f"step {step}: DeepSpeed state saved ({time.time() - t_save:.1f}s)")
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
            # first the state (a rerun can then only start fresh), then the dirs it protected
            shutil.rmtree(ds_dir, ignore_errors=True)
            retention.state_dropped()
        if start <= stop:  # (a call past its budget leaves the newer state's dirs alone)
            retention.prune(out / "ckpt", evals)
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
            "checkpoints": [e["checkpoint"] for e in evals
                            if Path(e["checkpoint"], "config.json").exists()],
            "wall_s": time.time() - t_start, "setup_s": shared.setup_s, **rung,
        })
        log.info(f"done in {time.time() - t_start:.1f}s; best step {best['step']} "
                 f"val accuracy {best['val_accuracy']:.4f}")
    log.close()
    del engine
    if rt.cuda:
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
