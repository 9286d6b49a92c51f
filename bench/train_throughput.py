#!/usr/bin/env python
"""Reward-model training throughput: our DeepSpeed trainer vs TRL's RewardTrainer.

Both train the same base model (same initial head) on the same preference pairs, tokenized
once by our pipeline (chat template, BOS rule) and kept only when they fit ``--max-length``
(TRL gets the token ids directly as ``chosen_ids``/``rejected_ids``), with the same global
batch, micro batch, learning-rate schedule, fp32 on CPU and one thread. Prints, for each,
steady-state real (non-pad) tokens per second (steps after the first) and the padding
fraction of the tensors it fed the model, then the ratio.

    .venv/bin/python bench/train_throughput.py                       # toy zoo model
    .venv/bin/python bench/train_throughput.py --model results/toy/models/toyllama-2-m
    .venv/bin/python bench/humaneval_pairs.py --out /tmp/he           # real text, real lengths
    .venv/bin/python bench/train_throughput.py --model results/models/smollm2-135m \
        --data /tmp/he/preference.jsonl --global-batch 8 --micro-batch 8 --steps 3 \
        --max-length 512 --threads 2 --repeats 1                     # SmolLM2-135M, ~10 min

Without the toy zoo it builds a tiny random model and synthetic pairs (tests/support/tiny_rm.py).
TRL's real tokens and padded positions are counted at the model's forward, per step.
Goals: ours >= 1.3x TRL's tokens/s with padding <= 5% (issue 3, toy zoo); >= 2x on a real
checkpoint (issue 19, SmolLM2-135M-Instruct; results in docs/measured.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(REPO / "tests"))  # support.tiny_rm: test-only models
os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(REPO / ".torch_extensions"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="results/toy/models/toyqwen-1-l")
    p.add_argument("--data", default="results/toy/data/helpsteer2_preference.jsonl")
    p.add_argument("--global-batch", type=int, default=16)
    p.add_argument("--micro-batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=24, help="optimizer steps for each trainer")
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--repeats", type=int, default=2,
                   help="alternate TRL and ours this many times; the best run of each counts "
                   "(the machine is shared, so the best is the least disturbed)")
    p.add_argument("--json", default=None, help="also write the numbers here")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="cuda: both trainers in bf16 on one GPU (TRL with autocast, ours with "
                   "DeepSpeed's bf16 mode)")
    p.add_argument("--zero-stage", type=int, default=0, help="our trainer's ZeRO stage")
    p.add_argument("--attn", default="auto", help="attention implementation of both trainers")
    p.add_argument("--worker", choices=["trl", "ours"], default=None, help=argparse.SUPPRESS)
    p.add_argument("--work", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def prepare(args, work: Path):
    """Pairs that fit, as texts (for our trainer) and token ids (for TRL)."""
    from rmselect.hf import load_tokenizer
    from rmselect.rm import data as D
    from rmselect.rm.format import resolve_template
    from rmselect.rm.model import prepare_tokenizer
    from support import tiny_rm

    model, data = Path(args.model), Path(args.data)
    if not (model / "config.json").exists() or not data.exists():
        print(f"[bench] {model} or {data} missing: using a tiny random model and synthetic pairs")
        model = tiny_rm.make_model(work / "tiny", hidden=64, layers=2, heads=4)
        data = tiny_rm.write_preference_data(work / "pairs.jsonl", 1200, 16, min_len=4, max_len=40)
    tok = prepare_tokenizer(load_tokenizer(model))
    tpl = resolve_template(tok, None)
    pairs = D.load_pairs({"path": str(data)}, "train")
    prompts = [p.prompt for p in pairs]
    ch = D.tokenize_responses(tok, prompts, [p.chosen for p in pairs], tpl, None)
    rj = D.tokenize_responses(tok, prompts, [p.rejected for p in pairs], tpl, None)
    keep = [i for i in range(len(pairs)) if max(len(ch[i]), len(rj[i])) <= args.max_length]
    need = args.steps * args.global_batch
    if len(keep) < need:
        raise SystemExit(f"only {len(keep)} fitting pairs, need {need}; lower --steps")
    keep = keep[:need]
    rows = [{"prompt": pairs[i].prompt, "response_1": pairs[i].chosen,
             "response_2": pairs[i].rejected, "preference_strength": -1, "split": "train"}
            for i in keep]  # -1: response_1 (the chosen one) preferred
    rows += [{**r, "split": "validation"} for r in rows[:32]]
    pairs_file = work / "bench_pairs.jsonl"
    pairs_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return model, tok, pairs_file, [ch[i] for i in keep], [rj[i] for i in keep]


def run_trl(args, model_dir: Path, tok, chosen, rejected, work: Path) -> dict:
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import RewardConfig, RewardTrainer
    from trl.trainer.reward_trainer import DataCollatorForPreference

    from rmselect.rm.model import load_for_training

    torch.manual_seed(args.seed)
    cuda = getattr(args, "device", "cpu") == "cuda"
    model = load_for_training(model_dir, 1, tok, attn_implementation=getattr(args, "attn", "auto"))
    ds = Dataset.from_dict({"chosen_ids": chosen, "rejected_ids": rejected})
    # Counted at the model's forward (not the collator, which the data loader may call a
    # batch ahead), so each step's real tokens are the ones that step trained on.
    seen = {"positions": 0, "real": 0}

    def count(module, args_, kwargs):
        mask = kwargs["attention_mask"]
        seen["positions"] += mask.numel()
        seen["real"] += int(mask.sum())

    model.register_forward_pre_hook(count, with_kwargs=True)
    times: list[float] = []
    real: list[int] = []
    positions: list[int] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, a, state, control, **kw):
            self.t = time.perf_counter()
            self.r, self.p = seen["real"], seen["positions"]

        def on_step_end(self, a, state, control, **kw):
            times.append(time.perf_counter() - self.t)
            real.append(seen["real"] - self.r)
            positions.append(seen["positions"] - self.p)

    cfg = RewardConfig(
        output_dir=str(work), per_device_train_batch_size=args.micro_batch,
        gradient_accumulation_steps=args.global_batch // args.micro_batch,
        learning_rate=args.lr, lr_scheduler_type="constant_with_warmup", warmup_steps=2,
        max_steps=args.steps, num_train_epochs=1, logging_steps=10**6, save_strategy="no",
        eval_strategy="no", report_to=[], bf16=cuda, fp16=False, gradient_checkpointing=False,
        use_cpu=not cuda, dataloader_num_workers=0, max_length=None, seed=args.seed,
        disable_tqdm=True, max_grad_norm=1.0, weight_decay=0.0,
    )
    trainer = RewardTrainer(model=model, args=cfg, train_dataset=ds, processing_class=tok,
                            data_collator=DataCollatorForPreference(pad_token_id=tok.pad_token_id),
                            callbacks=[Timer()])
    trainer.train()
    # Steady state as for ours: the steps after the first, each with its own real tokens.
    steady = times[1:]
    return {"tokens_per_s": sum(real[1:]) / sum(steady),
            "padding_fraction": 1.0 - sum(real[1:]) / sum(positions[1:]),
            "step_s": sum(steady) / len(steady), "steps": len(times)}


def run_ours(args, model_dir: Path, pairs_file: Path, work: Path) -> dict:
    from rmselect.rm import train

    out = work
    data = json.dumps({"path": str(pairs_file)})
    argv = ["--model", str(model_dir), "--objective", "bt", "--lr", str(args.lr), "--out", str(out),
            "--train-data", data, "--val-data", data, "--global-batch", str(args.global_batch),
            "--micro-batch", str(args.micro_batch), "--warmup-steps", "2",
            "--eval-every", str(10**6), "--max-length", str(args.max_length),
            "--seed", str(args.seed), "--threads", str(args.threads), "--log-every", str(10**6),
            "--mega-batch", "8", "--zero-stage", str(getattr(args, "zero_stage", 0)),
            "--attn-implementation", getattr(args, "attn", "auto")]
    assert train.main(argv) == 0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "loss" in r][1:]
    positions = sum(r["tokens"] / (1 - r["padding_fraction"]) for r in steps)
    return {"tokens_per_s": sum(r["tokens"] for r in steps) / sum(r["step_s"] for r in steps),
            "padding_fraction": 1.0 - sum(r["tokens"] for r in steps) / positions,
            "step_s": sum(r["step_s"] for r in steps) / len(steps), "steps": len(steps) + 1,
            "max_mem_mb": max(r["max_mem_mb"] for r in rows if "max_mem_mb" in r)}


def _worker(args) -> int:
    """One trainer in this (fresh) process; numbers to <work>/<worker>.json."""
    import torch

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    model_dir, tok, pairs_file, chosen, rejected = prepare(args, work)
    sub = work / f"{args.worker}_run"
    if args.worker == "trl":
        res = run_trl(args, model_dir, tok, chosen, rejected, sub)
    else:
        res = run_ours(args, model_dir, pairs_file, sub)
    (work / f"{args.worker}.json").write_text(json.dumps(res))
    return 0


def _command(args, which: str, work: Path) -> tuple[list[str], dict]:
    """The command line and environment of one trainer's fresh process."""
    cmd = [sys.executable, __file__, "--worker", which, "--work", str(work)]
    for k in ("model", "data", "global_batch", "micro_batch", "steps", "max_length", "lr",
              "threads", "seed", "device", "zero_stage", "attn"):
        cmd += [f"--{k.replace('_', '-')}", str(getattr(args, k))]
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = str(args.threads)
    return cmd, env


def _spawn(args, which: str, work: Path) -> dict:
    import subprocess

    cmd, env = _command(args, which, work)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{which} run failed:\n{proc.stderr[-3000:]}")
    return json.loads((work / f"{which}.json").read_text())


def spawn_both(args, work: Path) -> tuple[dict, dict]:
    """TRL and ours at the same time, each in its own process and folder (quicker; the
    two compete for the cores, so the timings are for smoke tests, not for comparison)."""
    import subprocess

    procs = {}
    for which in ("trl", "ours"):
        sub = work / which
        sub.mkdir(parents=True, exist_ok=True)
        cmd, env = _command(args, which, sub)
        procs[which] = (sub, subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.PIPE, text=True))
    out = {}
    for which, (sub, proc) in procs.items():
        _, err = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"{which} run failed:\n{err[-3000:]}")
        out[which] = json.loads((sub / f"{which}.json").read_text())
    return out["trl"], out["ours"]


def main(argv=None) -> int:
    args = parse(argv)
    if args.worker:
        return _worker(args)
    with tempfile.TemporaryDirectory(prefix="rm_bench_") as tmp:
        work = Path(tmp)
        model_dir, _, _, chosen, _ = prepare(args, work)
        print(f"[bench] model {model_dir}, {len(chosen)} pairs, global batch {args.global_batch}"
              f" (micro {args.micro_batch}), {args.steps} steps, {args.threads} thread(s); "
              f"each trainer in a fresh process, {args.repeats} round(s)", flush=True)
        trls, ourss = [], []
        for k in range(args.repeats):
            trls.append(_spawn(args, "trl", work))
            ourss.append(_spawn(args, "ours", work))
            print(f"[bench] round {k + 1}: TRL {trls[-1]['tokens_per_s']:.0f} tok/s, "
                  f"ours {ourss[-1]['tokens_per_s']:.0f} tok/s", flush=True)
        trl = max(trls, key=lambda r: r["tokens_per_s"])
        ours = max(ourss, key=lambda r: r["tokens_per_s"])
    ratio = ours["tokens_per_s"] / trl["tokens_per_s"]
    print(f"TRL RewardTrainer: {trl['tokens_per_s']:8.0f} tokens/s  padding {trl['padding_fraction']:.1%}"
          f"  ({trl['step_s']:.3f} s/step)")
    print(f"rmselect trainer : {ours['tokens_per_s']:8.0f} tokens/s  padding {ours['padding_fraction']:.1%}"
          f"  ({ours['step_s']:.3f} s/step)")
    print(f"ratio ours/TRL   : {ratio:.2f}x  (goals: >= 1.30x with padding <= 5% on the toy zoo,"
          " issue 3; >= 2x on a real checkpoint, issue 19)")
    if args.json:
        Path(args.json).write_text(json.dumps({"trl": trl, "ours": ours, "ratio": ratio,
                                               "args": vars(args)}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
