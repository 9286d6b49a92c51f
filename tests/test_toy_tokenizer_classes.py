"""The toy tokenizer gives the same ids whichever class AutoTokenizer picks for a model.

transformers v5 loads any `model_type: qwen2` checkpoint with Qwen2Tokenizer, which rebuilds
its own normalizer and pre-tokenizer from vocab and merges; llama and gpt_neox checkpoints
load the saved tokenizer.json as is. A toy tokenizer with another pre-tokenizer would be
read differently by toy Qwen models than it was during their pre-training.
"""

from __future__ import annotations

import json

from transformers import AutoTokenizer, GPTNeoXConfig, LlamaConfig, Qwen2Config

from rmselect.toy.tokenizer import train_tokenizer

TEXTS = [
    "The capital of Varnia is Kelto. 13 + 8 = 21. 127 * 3 = 381.",
    "def add_3(x):\n    return x + 3\n",
    "Mira Sol was born in 1874 and liked teal zorbs.",
] * 20


def test_same_ids_for_every_architecture(tmp_path):
    tok = train_tokenizer(TEXTS, vocab_size=400)
    probe = "13 + 8 = 21; 1874 teal Kelto\n    return x + 3 <|end|>"
    ids = {}
    for name, cfg in {
        "llama": LlamaConfig(vocab_size=400, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32),
        "qwen2": Qwen2Config(vocab_size=400, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32),
        "gpt_neox": GPTNeoXConfig(vocab_size=400, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32),
    }.items():
        d = tmp_path / name
        tok.save_pretrained(d)
        cfg.save_pretrained(d)
        loaded = AutoTokenizer.from_pretrained(d)
        ids[name] = (type(loaded).__name__, loaded(probe)["input_ids"])
    assert ids["qwen2"][0] == "Qwen2Tokenizer"  # the class v5 forces for qwen2
    assert ids["llama"][1] == ids["qwen2"][1] == ids["gpt_neox"][1]
    assert ids["qwen2"][1] == tok(probe)["input_ids"]
    # digits are single tokens (Qwen2 pre-tokenization), so "21" is two ids
    assert len(tok.tokenize("21")) == 2
    assert json.loads((tmp_path / "qwen2" / "tokenizer_config.json").read_text())["eos_token"] == "<|end|>"
