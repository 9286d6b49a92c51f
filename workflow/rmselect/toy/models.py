"""Toy model specs, configs and deterministic pre-training.

A toy model is a row of the model table whose ``source`` is a toy spec::

    toy:arch=llama,hidden=128,layers=3,heads=4,steps=240

Spec keys (:data:`SPEC_KEYS`):

``arch``      ``llama`` | ``qwen2`` | ``gpt_neox`` (required)
``hidden``    hidden size (required; a multiple of ``heads``)
``layers``    number of transformer blocks (required)
``heads``     attention heads (required)
``steps``     pre-training optimizer steps: the pre-training budget (required)
``kv_heads``  key/value heads (llama, qwen2; default ``heads``; must divide ``heads``)
``ffn``       MLP width (default 4×hidden for gpt_neox, ~8/3×hidden rounded to 16 otherwise)
``batch``     sequences per step (default 8)
``seq``       tokens per sequence (default 128)
``lr``        peak AdamW learning rate (default 5e-3; 10 % warm-up, cosine to 10 %)
``ctx``       ``max_position_embeddings`` (default 512)

Pre-training tokens = steps × batch × seq. Input and output embeddings are tied.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import tempfile
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch

from rmselect import cli
from rmselect.cli import opt
from rmselect.toy.spec import (  # noqa: F401  (re-exported: the spec API lives here too)
    ARCHS,
    DEFAULTS,
    MODEL_FILES,
    REQUIRED_KEYS,
    SPEC_KEYS,
    parse_spec,
    toy_config,
)
from rmselect.toy.world import unescape_doc


def model_seed(base_seed: int, name: str) -> int:
    """A per-model seed: stable across runs and Python versions (crc32, not hash())."""
    return (int(base_seed) * 1_000_003 + zlib.crc32(name.encode())) % (2**31 - 1)


@contextmanager
def deterministic(seed: int) -> Iterator[None]:
    """Seed python, numpy and torch; one CPU thread; deterministic kernels.

    The previous thread count and deterministic-algorithms flag are restored on exit, so a
    caller (e.g. a test process) keeps its own settings.
    """
    threads = torch.get_num_threads()
    det = torch.are_deterministic_algorithms_enabled()
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(det)


def read_corpus(path: str | Path) -> list[str]:
    with open(path) as fh:
        return [unescape_doc(line.rstrip("\n")) for line in fh if line.strip()]


def pack(docs: list[str], tokenizer, seq: int, rng: np.random.Generator | None) -> torch.Tensor:
    """Token blocks ``[n, seq]``: BOS + doc + EOS, concatenated (shuffled by ``rng``) and cut."""
    enc = tokenizer(docs, add_special_tokens=False)["input_ids"]
    order = rng.permutation(len(enc)) if rng is not None else np.arange(len(enc))
    flat: list[int] = []
    for i in order:
        flat.append(tokenizer.bos_token_id)
        flat.extend(enc[i])
        flat.append(tokenizer.eos_token_id)
    n = len(flat) // seq
    return torch.tensor(flat[: n * seq], dtype=torch.long).view(n, seq)


@torch.no_grad()
def lm_loss(model, blocks: torch.Tensor, batch: int = 16) -> float:
    """Mean next-token loss (nats/token) over ``blocks``."""
    model.eval()
    tot, n = 0.0, 0
    for i in range(0, len(blocks), batch):
        x = blocks[i : i + batch]
        out = model(input_ids=x, labels=x)
        k = x.numel() - x.shape[0]
        tot += float(out.loss) * k
        n += k
    return tot / max(n, 1)


def pretrain(
    name: str,
    spec: Mapping[str, Any],
    tokenizer_dir: str | Path,
    train_txt: str | Path,
    heldout_txt: str | Path,
    out_dir: str | Path,
    seed: int,
    log=print,
) -> dict[str, Any]:
    """Pre-train toy model ``name`` and save it as an HF model dir (atomically, file by file).

    Returns the ``pretrain.json`` record.
    """
    s = parse_spec(spec, name)
    with deterministic(model_seed(seed, name)):
        return _pretrain(name, s, tokenizer_dir, train_txt, heldout_txt, out_dir, seed, log)


def _pretrain(name, s, tokenizer_dir, train_txt, heldout_txt, out_dir, seed, log) -> dict[str, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    t0, c0 = time.time(), time.process_time()
    mseed = model_seed(seed, name)
    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    ids = {"bos": tok.bos_token_id, "eos": tok.eos_token_id, "pad": tok.pad_token_id}
    cfg = toy_config(s, vocab_size=len(tok), special_ids=ids)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    n_params = sum(p.numel() for p in model.parameters())

    rng = np.random.default_rng(mseed)
    train_docs = read_corpus(train_txt)
    held_blocks = pack(read_corpus(heldout_txt), tok, s["seq"], None)[:48]
    seq, batch, steps = s["seq"], s["batch"], s["steps"]
    blocks = pack(train_docs, tok, seq, rng)
    epoch, cursor = 0, 0

    opt = torch.optim.AdamW(model.parameters(), lr=s["lr"], betas=(0.9, 0.95), weight_decay=0.01)
    warm = max(1, steps // 10)

    def lr_at(step: int) -> float:
        if step < warm:
            return s["lr"] * (step + 1) / warm
        prog = (step - warm) / max(1, steps - warm)
        return s["lr"] * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * prog)))

    model.train()
    losses: list[float] = []
    for step in range(steps):
        if cursor + batch > len(blocks):
            epoch += 1
            blocks = pack(train_docs, tok, seq, rng)
            cursor = 0
        x = blocks[cursor : cursor + batch]
        cursor += batch
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 50 == 0 or step == steps - 1:
            log(f"{name}: step {step + 1}/{steps} loss {losses[-1]:.4f}")

    train_eval = pack(train_docs, tok, seq, None)[:48]
    record = {
        "model": name,
        "spec": s,
        "seed": mseed,
        "params": n_params,
        "params_b": n_params / 1e9,
        "steps": steps,
        "epochs": epoch + cursor / max(1, len(blocks)),
        "tokens": steps * batch * seq,
        "tokens_t": steps * batch * seq / 1e12,
        "final_step_loss": losses[-1],
        "train_loss": lm_loss(model, train_eval),
        "heldout_loss": lm_loss(model, held_blocks),
    }
    model.generation_config = GenerationConfig(
        bos_token_id=ids["bos"], eos_token_id=ids["eos"], pad_token_id=ids["pad"],
        max_new_tokens=64, do_sample=False,
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tok.save_pretrained(str(tmp))
        record["wall_s"] = round(time.time() - t0, 3)
        record["cpu_s"] = round(time.process_time() - c0, 3)
        (tmp / "pretrain.json").write_text(json.dumps(record, indent=2) + "\n")
        # Weights first, config.json and pretrain.json last: a dir with pretrain.json is complete.
        names = sorted(p.name for p in tmp.iterdir())
        names.sort(key=lambda n: (n in ("config.json", "pretrain.json"), n))
        for n in names:
            os.replace(tmp / n, out_dir / n)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"{name}: {n_params} params, held-out loss {record['heldout_loss']:.4f}, "
        f"{record['wall_s']:.1f} s")
    return record


@dataclass
class PretrainArgs:
    """Pre-train one toy model from its toy spec (deterministic given the seed) and save it as a
    Hugging Face model directory with pretrain.json."""

    model: str = opt("model name (table row)")
    spec: str = opt("toy:arch=...,hidden=...,layers=...,heads=...,steps=...")
    tokenizer: str = opt("toy tokenizer directory")
    train: str = opt("corpus train.txt")
    heldout: str = opt("corpus heldout.txt")
    seed: int = opt("toy.seed")
    out: str = opt("output model directory")


def main(argv: list[str] | None = None) -> int:
    return cli.run(PretrainArgs, run_pretrain, argv, prog="toy_pretrain.py")


def run_pretrain(a: PretrainArgs) -> int:
    from rmselect.config import parse_toy_spec

    spec = parse_toy_spec(a.spec if a.spec.startswith("toy:") else "toy:" + a.spec)
    pretrain(a.model, spec, a.tokenizer, a.train, a.heldout, a.out, a.seed)
    return 0
