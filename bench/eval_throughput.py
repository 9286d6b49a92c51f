#!/usr/bin/env python
"""Throughput of our RM scorer vs a RewardBench-style naive loop, on the same RM and data.

Both paths score the same rendered (prompt, response) texts with the same tiny random-init
Llama RM built here (no downloads):

- naive: as RewardBench's ``run_rm.py`` with its pipeline — the chosen texts, then the
  rejected texts, each in input order, in batches of 64 padded to the batch's longest text,
  reward = the model's own pooled ``logits``;
- ours: :func:`rmselect.eval.scorer.score_texts` — chosen and rejected in one stream,
  sorted by length, batches of at most 64 rows and ``--max-tokens`` padded tokens, reward
  read at the last real token from the attention mask.

Prints pairs/second for each, the speed-up, and the largest reward difference (must be
<= 1e-5). The eval set is synthetic with a heavy-tailed length distribution like
RewardBench's (``--data`` scores a v1-format file instead, e.g. the toy set).

    .venv/bin/python bench/eval_throughput.py     # about 1-2 min on 2 idle CPU cores
    .venv/bin/python bench/eval_throughput.py --model results/models/smollm2-135m \
        --pairs 128                                 # a real checkpoint (base LM or RM dir)

``--model`` takes a trained RM (``final/``) or a base causal LM, which gets a seeded
reward head exactly as RM training would build it (``rmselect.rm.model.load_for_training``):
on a real checkpoint per-token compute dominates, not start-up or tiny matmuls, and the
speed-up follows the padded tokens of the two paths (printed with their padding fractions).
``--least-padding`` scores ours with the scorer's opt-in re-cut batches
(:func:`rmselect.eval.scorer.length_batches`); the pipeline fills each batch in turn.
Goal (issue 19): ours >= 3x the naive loop on SmolLM2-135M-Instruct (docs/measured.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(REPO / "tests"))  # support.tiny_eval: test-only models

WORDS = (
    "the a reward model scores answer question helpful safe code math cat mat because "
    "therefore step first second then result value function return list number proof"
).split()


def synthetic_pairs(n: int, seed: int) -> list[dict[str, str]]:
    """Pairs whose lengths (in words) are log-normal: median ~60, tail to ~900."""
    rng = np.random.default_rng(seed)

    def text(k: int) -> str:
        return " ".join(rng.choice(WORDS, size=max(1, k)))

    out = []
    for i in range(n):
        lp, lc, lr = rng.lognormal(3.0, 0.6), rng.lognormal(3.6, 0.9), rng.lognormal(3.6, 0.9)
        out.append(
            {
                "prompt": text(int(min(lp, 200))),
                "chosen": text(int(min(lc, 900))),
                "rejected": text(int(min(lr, 900))),
            }
        )
    return out


def as_reward_model(model: str, out: Path, seed: int) -> Path:
    """``model`` itself when it is an RM dir (one output head), else an RM built from the
    base LM the way training builds one (dedicated pad token, seeded head), saved to ``out``."""
    import torch
    from transformers import AutoConfig

    from rmselect.hf import load_tokenizer
    from rmselect.rm.model import load_for_training, prepare_tokenizer, save_hf

    cfg = AutoConfig.from_pretrained(model)
    if any(a.endswith("ForSequenceClassification") for a in (cfg.architectures or [])):
        return Path(model)
    torch.manual_seed(seed)
    tok = prepare_tokenizer(load_tokenizer(model))
    save_hf(load_for_training(model, 1, tok), tok, out)
    return out


def naive_scores(rm, texts: list[str], batch_size: int = 64) -> np.ndarray:
    """RewardBench-style: input order, fixed batches, pad to the batch's longest."""
    import torch

    tok, model = rm.tokenizer, rm.model
    out: list[float] = []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            enc = tok(
                texts[i : i + batch_size],
                padding=True,
                truncation=True,
                max_length=rm.max_length,
                add_special_tokens=False,  # the template already wrote BOS
                return_tensors="pt",
            )
            logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
            out.extend(logits[:, 0].float().tolist())
    return np.asarray(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=192, help="synthetic pairs (ignored with --data)")
    p.add_argument("--data", default=None, help="a RewardBench v1 .jsonl to use instead")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-tokens", type=int, default=16384)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--least-padding", action="store_true",
                   help="ours with the scorer's opt-in least-padding batch cuts")
    p.add_argument("--model", default=None,
                   help="a real checkpoint instead of the tiny random RM: an RM dir or a base LM dir")
    a = p.parse_args(argv)

    import torch

    from rmselect.eval.scorer import load_reward_model, render_texts, score_texts, tokenize
    from support.tiny_eval import build_tiny_rm

    if a.data:
        pairs = [json.loads(line) for line in Path(a.data).read_text().splitlines() if line.strip()]
    else:
        pairs = synthetic_pairs(a.pairs, a.seed)
    corpus = [x["prompt"] + " " + x["chosen"] for x in pairs[:200]]
    with tempfile.TemporaryDirectory() as tmp:
        if a.model:
            path = as_reward_model(a.model, Path(tmp) / "rm", a.seed)
            label = f"{a.model}"
        else:
            path = build_tiny_rm(
                Path(tmp) / "rm", corpus, hidden=a.hidden, layers=a.layers, heads=4,
                max_positions=4096, seed=a.seed, head_std=a.hidden**-0.5,
            )
            label = f"tiny Llama hidden {a.hidden}, {a.layers} layers"
        rm = load_reward_model(path, dtype="float32", device=a.device, max_length=4096)
    prompts = [x["prompt"] for x in pairs]
    chosen = render_texts(rm, prompts, [x["chosen"] for x in pairs])
    rejected = render_texts(rm, prompts, [x["rejected"] for x in pairs])
    ids, cut = tokenize(rm, chosen + rejected)
    if cut:
        # The naive loop cuts long texts from the right, ours from the left (the reward token
        # survives): compare on the pairs that fit the model's context only.
        n0 = len(pairs)
        keep = [i for i in range(n0) if len(ids[i]) < rm.max_length and len(ids[n0 + i]) < rm.max_length]
        pairs = [pairs[i] for i in keep]
        prompts = [prompts[i] for i in keep]
        chosen, rejected = [chosen[i] for i in keep], [rejected[i] for i in keep]
        ids, _ = tokenize(rm, chosen + rejected)
        print(f"{n0 - len(keep)} of {n0} pairs longer than the model's {rm.max_length} positions left out")
    lengths = np.array([len(x) for x in ids])
    print(
        f"eval set: {len(pairs)} pairs, {len(ids)} texts, tokens/text median {int(np.median(lengths))},"
        f" p90 {int(np.percentile(lengths, 90))}, max {lengths.max()};"
        f" RM: {label}, {rm.device}, torch threads"
        f" {torch.get_num_threads()}"
    )
    # warm-up (first calls allocate and pick kernels)
    naive_scores(rm, chosen[:4])
    score_texts(rm, chosen[:4], progress=False)

    t0 = time.perf_counter()
    naive = np.concatenate([naive_scores(rm, chosen, a.batch_size), naive_scores(rm, rejected, a.batch_size)])
    t_naive = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = score_texts(rm, chosen + rejected, batch_size=a.batch_size, max_tokens=a.max_tokens,
                       progress=False, least_padding=a.least_padding)
    t_ours = time.perf_counter() - t0

    diff = float(np.abs(naive - ours.rewards).max())
    scale = float(np.abs(naive).max())
    n = len(pairs)
    pad_naive = 0
    for part in (ids[:n], ids[n:]):
        for i in range(0, n, a.batch_size):
            b = part[i : i + a.batch_size]
            pad_naive += len(b) * max(len(x) for x in b)
    real = int(lengths.sum())
    print(f"naive (RewardBench run_rm style): {n / t_naive:8.2f} pairs/s  ({t_naive:.2f} s, padded tokens"
          f" {pad_naive}, padding {1 - real / pad_naive:.1%})")
    print(f"ours (length-sorted stream)     : {n / t_ours:8.2f} pairs/s  ({t_ours:.2f} s, padded tokens"
          f" {ours.padded_tokens}, padding {1 - real / ours.padded_tokens:.1%}, {ours.n_batches} batches"
          f"{', least-padding cuts' if a.least_padding else ''})")
    print(
        f"speed-up: {t_naive / t_ours:.2f}x   max |reward difference|: {diff:.2e}"
        f" (max |reward| {scale:.2f}); padded-token ratio {pad_naive / ours.padded_tokens:.2f}x;"
        " goal on a real checkpoint >= 3x (issue 19)"
    )
    ok = diff <= 1e-5
    print("scores agree to 1e-5" if ok else "SCORES DIFFER by more than 1e-5")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
