"""Toy specs, configs and pre-training on a reduced zoo (tiny world, tiny models)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from rmselect.config import ConfigError, parse_toy_spec
from rmselect.toy import toy_config
from rmselect.toy.models import MODEL_FILES, parse_spec, pretrain
from rmselect.toy.tokenizer import load_toy_tokenizer, save_tokenizer, train_tokenizer
from rmselect.toy.world import write_world
from rmselect.rm.format import render

TINY = "arch={arch},hidden=32,layers=1,heads=2,seq=32,batch=4,steps={steps}"


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """World, corpus and tokenizer of a reduced zoo (a few seconds)."""
    root = tmp_path_factory.mktemp("toyzoo")
    write_world(5, root / "world.json", root / "train.txt", root / "heldout.txt", 6, 6, 6, 600, 60)
    from rmselect.toy.models import read_corpus

    save_tokenizer(train_tokenizer(read_corpus(root / "train.txt"), 300), root / "tok")
    return root


def _train(zoo: Path, name: str, arch: str, steps: int, seed: int, out: Path) -> dict:
    spec = parse_toy_spec("toy:" + TINY.format(arch=arch, steps=steps))
    return pretrain(name, spec, zoo / "tok", zoo / "train.txt", zoo / "heldout.txt", out, seed,
                    log=lambda *_: None)


def test_parse_spec_defaults_and_errors():
    s = parse_spec({"arch": "llama", "hidden": "64", "layers": "2", "heads": "4", "steps": "10"})
    assert (s["batch"], s["seq"], s["kv_heads"], s["ffn"]) == (8, 128, 4, 176)
    assert parse_spec({"arch": "gpt_neox", "hidden": 64, "layers": 2, "heads": 4, "steps": 1})["ffn"] == 256
    with pytest.raises(ConfigError, match="model 'm1'.*unknown toy spec key.*widht"):
        parse_spec({"arch": "llama", "hidden": 64, "layers": 2, "heads": 4, "steps": 1, "widht": 3}, "m1")
    with pytest.raises(ConfigError, match="lacks steps"):
        parse_spec({"arch": "llama", "hidden": 64, "layers": 2, "heads": 4})
    with pytest.raises(ConfigError, match="arch='mamba'"):
        parse_spec({"arch": "mamba", "hidden": 64, "layers": 2, "heads": 4, "steps": 1})
    with pytest.raises(ConfigError, match="multiple of heads"):
        parse_spec({"arch": "llama", "hidden": 66, "layers": 2, "heads": 4, "steps": 1})


@pytest.mark.parametrize("arch,model_type", [("llama", "llama"), ("qwen2", "qwen2"),
                                             ("gpt_neox", "gpt_neox")])
def test_toy_config_architectures(arch, model_type):
    cfg = toy_config({"arch": arch, "hidden": 64, "layers": 2, "heads": 4, "steps": 5},
                     vocab_size=500, special_ids={"bos": 1, "eos": 2, "pad": 0})
    assert cfg.model_type == model_type
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.vocab_size) == (64, 2, 500)
    assert (cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id) == (1, 2, 0)


def test_tokenizer_specials_and_chat_template(zoo):
    tok = load_toy_tokenizer(zoo / "tok")
    ids = {tok.bos_token_id, tok.eos_token_id, tok.pad_token_id, tok.unk_token_id}
    assert len(ids) == 4 and None not in ids
    text = render(tok, "What is 2 + 3?", "2 + 3 = 5.")
    assert text == "<|bos|><|user|>\nWhat is 2 + 3?<|end|>\n<|assistant|>\n2 + 3 = 5.<|end|>"
    enc = tok(text, add_special_tokens=False)["input_ids"]
    assert enc[0] == tok.bos_token_id and enc[-1] == tok.eos_token_id
    gen = tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False,
                                  add_generation_prompt=True)
    assert gen.endswith("<|end|>\n<|assistant|>\n")
    assert tok.decode(tok("Kelto 1874\n\treturn x", add_special_tokens=False)["input_ids"]) \
        == "Kelto 1874\n\treturn x"


def test_pretrain_deterministic_loadable_and_budget_ordered(zoo, tmp_path):
    from transformers import AutoModelForCausalLM

    a = _train(zoo, "toyllama-1-s", "llama", 4, 9, tmp_path / "a")
    b = _train(zoo, "toyllama-1-s", "llama", 4, 9, tmp_path / "b")
    c = _train(zoo, "toyllama-1-s", "llama", 4, 10, tmp_path / "c")
    for f in MODEL_FILES:
        assert (tmp_path / "a" / f).exists(), f
    assert _sha(tmp_path / "a" / "model.safetensors") == _sha(tmp_path / "b" / "model.safetensors")
    assert _sha(tmp_path / "a" / "config.json") == _sha(tmp_path / "b" / "config.json")
    assert _sha(tmp_path / "a" / "model.safetensors") != _sha(tmp_path / "c" / "model.safetensors")
    assert a["heldout_loss"] == b["heldout_loss"] != c["heldout_loss"]
    assert a["tokens"] == 4 * 4 * 32
    # The caller's torch settings survive pre-training.
    assert not torch.are_deterministic_algorithms_enabled()
    # A bigger budget in the same family gives a strictly lower held-out loss.
    more = _train(zoo, "toyllama-1-s", "llama", 40, 9, tmp_path / "d")
    assert more["heldout_loss"] < a["heldout_loss"] - 0.2
    rec = json.loads((tmp_path / "d" / "pretrain.json").read_text())
    assert rec["steps"] == 40 and rec["params"] == more["params"]
    m = AutoModelForCausalLM.from_pretrained(tmp_path / "d", use_safetensors=True)
    assert sum(p.numel() for p in m.parameters()) == rec["params"]


@pytest.mark.parametrize("arch", ["qwen2", "gpt_neox"])
def test_other_architectures_train_and_load(zoo, tmp_path, arch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rec = _train(zoo, f"toy{arch}", arch, 3, 1, tmp_path)
    m = AutoModelForCausalLM.from_pretrained(tmp_path, use_safetensors=True)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    assert m.config.model_type == arch
    assert m.generation_config.eos_token_id == tok.eos_token_id
    x = tok(render(tok, "Q?", "A."), return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = m(**x)
    assert out.logits.shape[-1] == len(tok)
    assert rec["heldout_loss"] > 0
