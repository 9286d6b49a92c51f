"""Presence score of a document under a causal LM (PAPER.md §6), batched by length.

Definition (what this module computes, exactly)
-----------------------------------------------
The document is tokenised **without** special tokens: ``t_1 … t_L``. Only the first
``n = min(L, N)`` tokens are used (``N`` = ``max_tokens``, 2048 by default; shorter documents
use their own length). With ``prefix="auto"`` (the default) one context token ``t_0`` is
prepended — the tokenizer's BOS token, or its EOS token when it has no BOS (as lm-eval does for
rolling log-likelihoods) — so that the first document token has a context and **is included**:

    S = (1/n) Σ_{i=1..n} log p(t_i | t_0, t_1 … t_{i-1})        n_tokens = n

``t_0`` itself is never scored. With ``prefix="none"`` (or a tokenizer with neither BOS nor
EOS) nothing is prepended and the first token, which has no context, is **excluded**:

    S = (1/(n-1)) Σ_{i=2..n} log p(t_i | t_1 … t_{i-1})          n_tokens = n - 1

``n_tokens`` in the output is always the number of log-probabilities averaged. Documents with
no scorable token are dropped and counted. Log-probabilities are natural logs, computed in
float32 from the model's logits (its own final-logit transform, e.g. Gemma-2's softcapping,
applied), over slices of positions (:mod:`rmselect.logprobs`): never the full
``batch × length × vocabulary`` logits. When ``N`` (+1 for the prefix) exceeds the model's
``max_position_embeddings``, ``N`` is lowered to fit and the change is logged.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import polars as pl
import torch

from rmselect import cli
from rmselect.cli import opt

log = logging.getLogger("rmselect.presence")

PREFIX_MODES = ("auto", "none")
#: A token is rarely longer than this many characters; texts are cut to ``N * CHARS_PER_TOKEN``
#: characters before tokenising (re-tokenised in full when the cut text is too short).
CHARS_PER_TOKEN = 64


@dataclass(frozen=True)
class DocScore:
    n_tokens: int
    score: float


def prefix_token_id(tokenizer: Any, prefix: str = "auto") -> int | None:
    """The context token prepended to every document (see the module docstring)."""
    if prefix not in PREFIX_MODES:
        raise ValueError(f"presence prefix must be one of {PREFIX_MODES}, got {prefix!r}")
    if prefix == "none":
        return None
    for tid in (getattr(tokenizer, "bos_token_id", None), getattr(tokenizer, "eos_token_id", None)):
        if tid is not None:
            return int(tid)
    return None


def encode_document(tokenizer: Any, text: str, max_tokens: int, prefix_id: int | None) -> list[int]:
    """Token ids fed to the model: ``[t_0] + t_1..t_n`` (or ``t_1..t_n`` without prefix)."""
    cut = text[: max_tokens * CHARS_PER_TOKEN]
    ids = tokenizer(cut, add_special_tokens=False)["input_ids"]
    if len(ids) < max_tokens and len(cut) < len(text):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    ids = list(ids[:max_tokens])
    return ([prefix_id] + ids) if prefix_id is not None else ids


def length_batches(lengths: Sequence[int], batch_tokens: int) -> list[list[int]]:
    """Indices grouped longest-first so that ``len(batch) * longest <= batch_tokens``.

    A single sequence longer than ``batch_tokens`` gets a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        longest = lengths[cur[0]] if cur else lengths[i]
        if cur and (len(cur) + 1) * longest > batch_tokens:
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


@torch.no_grad()
def sequence_logprobs(
    model: Any, sequences: Sequence[Sequence[int]], batch_tokens: int = 16384, pad_id: int = 0,
    chunk: int | None = None,
) -> list[torch.Tensor | None]:
    """log p(t_i | t_<i) for positions 1..len-1 of each sequence (position 0 = context), in
    length-sorted padded batches; None for sequences of length < 2. The head runs over slices
    of ``chunk`` positions (:mod:`rmselect.logprobs`; default: sized by the vocabulary), so
    no ``batch × length × vocabulary`` logits are built.
    """
    from rmselect.logprobs import batch_logprobs

    device = next(model.parameters()).device
    out: list[torch.Tensor | None] = [None] * len(sequences)
    lengths = [len(s) for s in sequences]
    for batch in length_batches(lengths, batch_tokens):
        batch = [i for i in batch if lengths[i] >= 2]
        if not batch:
            continue
        width = max(lengths[i] for i in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, i in enumerate(batch):
            ids[row, : lengths[i]] = torch.tensor(sequences[i], dtype=torch.long)
            mask[row, : lengths[i]] = 1
        ids, mask = ids.to(device), mask.to(device)
        spans = [(0, lengths[i] - 1) for i in batch]
        fwd = batch_logprobs(model, ids, mask, spans, chunk=chunk)
        for row, i in enumerate(batch):
            out[i] = fwd.logprobs[row]
    return out


def score_sequences(
    model: Any, sequences: Sequence[Sequence[int]], batch_tokens: int = 16384, pad_id: int = 0,
    chunk: int | None = None,
) -> list[DocScore]:
    """Mean log p(t_i | t_<i) over positions 1..len-1 of each sequence
    (:func:`sequence_logprobs`); sequences of length < 2 get ``n_tokens = 0`` and a NaN
    score."""
    return [DocScore(0, math.nan) if lp is None else DocScore(len(lp), float(lp.mean().item()))
            for lp in sequence_logprobs(model, sequences, batch_tokens, pad_id, chunk)]


def fit_max_tokens(model: Any, max_tokens: int, prefix_id: int | None) -> int:
    """Lower ``max_tokens`` so that prefix + tokens fit the model's position limit."""
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    extra = 1 if prefix_id is not None else 0
    if isinstance(limit, int) and limit > 0 and max_tokens + extra > limit:
        log.warning("max_tokens %d + prefix exceeds the model's %d positions; using %d",
                    max_tokens, limit, limit - extra)
        return limit - extra
    return max_tokens


def score_texts(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    max_tokens: int = 2048,
    prefix: str = "auto",
    batch_tokens: int = 16384,
) -> list[DocScore]:
    """Presence score of every text (module docstring); order follows ``texts``."""
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    pid = prefix_token_id(tokenizer, prefix)
    max_tokens = fit_max_tokens(model, max_tokens, pid)
    seqs = [encode_document(tokenizer, t, max_tokens, pid) for t in texts]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return score_sequences(model, seqs, batch_tokens=batch_tokens, pad_id=int(pad))


def score_frame(model: Any, tokenizer: Any, docs: pl.DataFrame, **kwargs: Any) -> tuple[pl.DataFrame, int]:
    """``doc_id, n_tokens, score`` for a ``doc_id, text`` frame; also the number dropped."""
    scores = score_texts(model, tokenizer, docs["text"].to_list(), **kwargs)
    df = pl.DataFrame(
        {
            "doc_id": docs["doc_id"].cast(pl.Int64),
            "n_tokens": pl.Series([s.n_tokens for s in scores], dtype=pl.Int64),
            "score": pl.Series([s.score for s in scores], dtype=pl.Float64),
        }
    )
    kept = df.filter(pl.col("n_tokens") > 0)
    return kept, df.height - kept.height


# --------------------------------------------------------------------------- entry point


@dataclass(kw_only=True)
class PresenceArgs:
    """Presence scores of one model on shards of sampled domain corpora
    (results/presence/corpus/<domain>/part-NNNNN.parquet): for each --corpus, writes the
    matching --out (doc_id, n_tokens, score) and --meta (provenance), loading the model once.
    Reads local files only; never the network."""

    model: str = opt("model dir or hub id to score with")
    name: str = opt("model name (for messages and provenance)")
    corpus: list[str] = opt("sampled shard: parquet with doc_id, text (repeat for several)",
                            repeat=True)
    out: list[str] = opt("results/presence/<model>/shards/<domain>/part-NNNNN.parquet, one per "
                         "--corpus", repeat=True)
    meta: list[str] = opt("provenance JSON of each shard, one per --corpus", repeat=True)
    max_tokens: int = opt("N: tokens scored per document", default=2048)
    batch_tokens: int = opt("padded tokens per trunk forward", default=16384)
    prefix: str = opt("context token before the first document token (see module docs)",
                      default="auto", choices=PREFIX_MODES)
    trust_remote_code: bool = opt(default=False)
    device: str | None = opt("cuda | cpu (default: cuda when available)", default=None)


def build_parser() -> argparse.ArgumentParser:
    return cli.build_parser(PresenceArgs, prog="presence_score.py")


def main(argv: Sequence[str] | None = None) -> int:
    from rmselect.device import pick_device
    from rmselect.hf import load_causal_lm, load_tokenizer
    from rmselect.io import write_json, write_table
    from rmselect.logprobs import chunk_positions, vocab_size

    args = cli.parse(PresenceArgs, argv, prog="presence_score.py")
    device = str(pick_device(args.device))  # a job holding GPUs without CUDA stops here
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not (len(args.corpus) == len(args.out) == len(args.meta)) or not args.corpus:
        raise SystemExit("presence: give one --out and one --meta per --corpus")
    for corpus in args.corpus:
        if not Path(corpus).exists():
            raise SystemExit(f"presence: {corpus} is missing; run presence_sample for its domain")
    tok = load_tokenizer(args.model, trust_remote_code=args.trust_remote_code)
    model = load_causal_lm(args.model, trust_remote_code=args.trust_remote_code)
    model.to(device).eval()
    for corpus, out, meta in zip(args.corpus, args.out, args.meta):
        t0 = time.time()
        docs = pl.read_parquet(corpus)
        missing = {"doc_id", "text"} - set(docs.columns)
        if missing:
            raise SystemExit(f"presence: {corpus}: missing column(s) "
                             f"{', '.join(sorted(missing))}; rerun presence_sample for this domain")
        df, dropped = score_frame(model, tok, docs, max_tokens=args.max_tokens,
                                  prefix=args.prefix, batch_tokens=args.batch_tokens)
        write_table(Path(out), df)
        write_json(Path(meta), {
            "model": args.name, "source": str(args.model), "corpus": str(corpus),
            "max_tokens": args.max_tokens, "prefix": args.prefix,
            "prefix_token_id": prefix_token_id(tok, args.prefix), "device": device,
            "logit_chunk": chunk_positions(vocab_size(model)), "n_docs": df.height,
            "dropped": dropped, "tokens": int(df["n_tokens"].sum()) if df.height else 0,
            "wall_s": round(time.time() - t0, 3)})
        log.info("%s / %s: %d docs scored, %d dropped", args.name, corpus, df.height, dropped)
    return 0
