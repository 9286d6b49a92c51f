"""Tiny local models, tokenizers and data for tests and benchmarks (no downloads).

:func:`make_tokenizer` trains a word-level tokenizer with the ``tokenizers`` library and gives
it a chat template; :func:`make_model` saves a random-init Llama / Qwen2 / GPT-NeoX causal LM
of a few thousand parameters with it; :func:`write_preference_data` and
:func:`write_rated_data` write HelpSteer2-shaped JSONL files whose labels follow a simple,
learnable rule (good words beat bad words), so a short run must beat chance.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

GOOD = ["correct", "clear", "kind", "exact", "useful", "honest", "precise", "helpful"]
BAD = ["wrong", "vague", "rude", "sloppy", "useless", "false", "confusing", "lazy"]
FILLER = ["the", "a", "answer", "is", "of", "to", "and", "it", "this", "that", "we", "you",
          "city", "river", "number", "year", "code", "list", "name", "color"]
TOPICS = ["capital", "animal", "river", "sum", "product", "job", "color", "year", "poem", "code"]
TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} "
    "{% endfor %}{{ eos_token }}"
)


def make_tokenizer(out_dir: str | Path | None = None, pad_is_eos: bool = False, bos: bool = True,
                   extra_specials: tuple[str, ...] = ()):
    """A fast word-level tokenizer with a chat template (pad = eos when ``pad_is_eos``;
    ``extra_specials``: more special tokens, e.g. reserved ones, after the usual six)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<|bos|>", "<|eos|>", "<|user|>", "<|assistant|>", "<|system|>",
                *extra_specials]
    words = sorted(set(GOOD + BAD + FILLER + TOPICS + ["what", "about", "tell", "me", "?", "."]))
    vocab = {w: i for i, w in enumerate(specials + words)}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    from tokenizers import AddedToken

    tk.add_special_tokens([AddedToken(s, special=True) for s in specials])
    if bos:  # like Llama tokenizers: BOS added by the post-processor
        from tokenizers import processors

        tk.post_processor = processors.TemplateProcessing(
            single="<|bos|> $A", pair="<|bos|> $A $B", special_tokens=[("<|bos|>", 1)]
        )
    kwargs: dict[str, Any] = {"eos_token": "<|eos|>", "unk_token": "<unk>"}
    if bos:
        kwargs["bos_token"] = "<|bos|>"
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, **kwargs)
    tok.chat_template = TEMPLATE if bos else TEMPLATE.replace("{{ bos_token }}", "")
    if pad_is_eos:
        tok.pad_token = tok.eos_token
    if out_dir is not None:
        tok.save_pretrained(str(out_dir))
    return tok


def make_model(
    out_dir: str | Path,
    arch: str = "llama",
    hidden: int = 32,
    layers: int = 2,
    heads: int = 4,
    seed: int = 0,
    pad_is_eos: bool = False,
    spare_rows: int = 0,
) -> Path:
    """Save a random-init causal LM of ``arch`` (llama | qwen2 | gemma2 | gpt_neox) with a
    tokenizer. Qwen2 and Gemma-2 get a sliding window of 6 tokens on some layers (so that
    packed sequences longer than it exercise the sliding mask); Gemma-2 keeps its
    attention-logit softcapping."""
    import torch
    from transformers import (AutoModelForCausalLM, Gemma2Config, GPTNeoXConfig, LlamaConfig,
                              Qwen2Config)

    out = Path(out_dir)
    tok = make_tokenizer(out, pad_is_eos=pad_is_eos)
    common = dict(
        vocab_size=len(tok) + spare_rows,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=hidden * 2,
        max_position_embeddings=512,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    if arch == "llama":
        cfg = LlamaConfig(num_key_value_heads=heads, **common)
    elif arch == "qwen2":
        cfg = Qwen2Config(num_key_value_heads=heads, use_sliding_window=True, sliding_window=6,
                          max_window_layers=1, **common)
    elif arch == "gemma2":
        cfg = Gemma2Config(num_key_value_heads=heads // 2, head_dim=hidden // heads,
                           sliding_window=6, attn_logit_softcapping=5.0, **common)
    elif arch == "gpt_neox":
        cfg = GPTNeoXConfig(**common)
    else:
        raise ValueError(f"unknown tiny arch {arch!r}")
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg)
    model.save_pretrained(str(out), safe_serialization=True)
    return out


def _response(rng: random.Random, good: int, bad: int, length: int) -> str:
    words = [rng.choice(FILLER) for _ in range(length)]
    for _ in range(good):
        words.insert(rng.randrange(len(words) + 1), rng.choice(GOOD))
    for _ in range(bad):
        words.insert(rng.randrange(len(words) + 1), rng.choice(BAD))
    return " ".join(words) + " ."


def _prompt(rng: random.Random) -> str:
    return f"tell me about the {rng.choice(TOPICS)} ?"


def write_preference_data(path: str | Path, n_train: int, n_val: int, seed: int = 0,
                          min_len: int = 4, max_len: int = 12, ties: int = 0) -> Path:
    """HelpSteer2-Preference-shaped JSONL: the response with more good words wins.

    ``preference_strength`` follows the real sign convention (negative prefers
    ``response_1``); ``ties`` extra rows with strength 0 are added to each split.
    """
    rng = random.Random(seed)
    rows = []
    for split, n in (("train", n_train), ("validation", n_val)):
        for i in range(n + ties):
            length = rng.randint(min_len, max_len)
            win = _response(rng, 2, 0, length + rng.randint(-1, 1))
            lose = _response(rng, 0, 2, length + rng.randint(-1, 1))
            first_wins = rng.random() < 0.5
            if i >= n:
                strength = 0
            else:
                strength = -rng.randint(1, 3) if first_wins else rng.randint(1, 3)
            r1, r2 = (win, lose) if first_wins else (lose, win)
            rows.append({"prompt": _prompt(rng), "response_1": r1, "response_2": r2,
                         "preference_strength": strength, "split": split})
    return _write(path, rows)


def write_rated_data(path: str | Path, n_train: int, seed: int = 0) -> Path:
    """HelpSteer2-shaped JSONL: helpfulness/correctness rise with good words, verbosity with length."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n_train):
        good, bad = rng.randint(0, 2), rng.randint(0, 2)
        length = rng.randint(3, 12)
        q = max(0, min(4, 2 + good - bad))
        rows.append({"prompt": _prompt(rng), "response": _response(rng, good, bad, length),
                     "helpfulness": q, "correctness": q, "coherence": min(4, 2 + good),
                     "complexity": 1, "verbosity": min(4, length // 3), "split": "train"})
    return _write(path, rows)


def _write(path: str | Path, rows: list[dict[str, Any]]) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p
