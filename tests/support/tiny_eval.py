"""Tiny random-init reward models for tests and the throughput bench (no downloads).

:func:`build_tiny_rm` trains a small BPE tokenizer with the ``tokenizers`` library on the
given texts, builds a random-init ``LlamaForSequenceClassification`` and saves both (plus
``rmselect.json`` with merge weights for multi-output RMs) the way the training stage saves
its ``final/`` folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n"
    "{% endfor %}{{ eos_token }}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 300):
    """A byte-level BPE ``PreTrainedTokenizerFast`` with bos/eos/pad and a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_rm(
    path: str | Path,
    texts: Sequence[str],
    num_labels: int = 1,
    weights: Sequence[float] | None = None,
    hidden: int = 32,
    layers: int = 2,
    heads: int = 2,
    max_positions: int = 512,
    seed: int = 0,
    pad_is_eos: bool = False,
    head_std: float = 1.0,
) -> Path:
    """Save a random-init tiny Llama RM (safetensors) with its tokenizer to ``path``."""
    import torch
    from transformers import AutoModelForSequenceClassification, LlamaConfig

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer(texts)
    if pad_is_eos:
        tok.pad_token = tok.eos_token
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_positions,
        num_labels=num_labels,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    model = AutoModelForSequenceClassification.from_config(cfg)
    with torch.no_grad():  # a visible head: random-init heads are near zero
        model.score.weight.normal_(0, head_std)
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    if weights is not None or num_labels > 1:
        w = list(weights) if weights is not None else [1.0] * num_labels
        (path / "rmselect.json").write_text(json.dumps({"weights": w}) + "\n")
    return path
