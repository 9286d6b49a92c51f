"""Presence scores against hand-computed log-likelihoods of a model with hand-set logits.

The model is a one-layer Llama whose attention and MLP outputs are zeroed, whose embedding is
the identity and whose head is a bigram table: the logits after token k are L[k] exactly, so
p(next = favoured(k) | k) = 5 / (5 + 5·1) = 1/2 and every other token gets 1/10.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl
import pytest
import torch

from rmselect.presence import score as ps

VOCAB = {"<s>": 0, "</s>": 1, "a": 2, "b": 3, "c": 4, "<pad>": 5}
FAVOURED = {0: 2, 1: 2, 2: 3, 3: 4, 4: 2, 5: 2}  # <s>→a, a→b, b→c, c→a
LOG_HALF, LOG_TENTH = math.log(0.5), math.log(0.1)


def _tokenizer(bos: bool = True):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(VOCAB, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    kw = {"bos_token": "<s>"} if bos else {}
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", pad_token="<pad>", **kw)


def build_bigram_model(path: Path, bos: bool = True) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    v = len(VOCAB)
    cfg = LlamaConfig(vocab_size=v, hidden_size=v, intermediate_size=4, num_hidden_layers=1,
                      num_attention_heads=1, num_key_value_heads=1, head_dim=v,
                      max_position_embeddings=64, rms_norm_eps=1e-12, tie_word_embeddings=False,
                      bos_token_id=0, eos_token_id=1, pad_token_id=5)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    table = torch.zeros(v, v)
    for k, nxt in FAVOURED.items():
        table[k, nxt] = math.log(5.0)
    with torch.no_grad():
        model.model.embed_tokens.weight.copy_(torch.eye(v))
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        # RMSNorm turns the one-hot e_k into sqrt(v)·e_k, so the head column k is L[k]/sqrt(v).
        model.lm_head.weight.copy_(table.T / math.sqrt(v))
    model.save_pretrained(path)
    _tokenizer(bos).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def bigram(tmp_path_factory):
    from rmselect.hf import load_causal_lm, load_tokenizer

    path = build_bigram_model(tmp_path_factory.mktemp("bigram"))
    return load_causal_lm(path, dtype=torch.float32).eval(), load_tokenizer(path)


def test_first_token_is_scored_after_bos(bigram):
    model, tok = bigram
    # "a b b c" after <s>: a|<s> 1/2, b|a 1/2, b|b 1/10, c|b 1/2
    (s,) = ps.score_texts(model, tok, ["a b b c"], max_tokens=2048)
    assert s.n_tokens == 4  # shorter than N: its own length, first token included
    assert s.score == pytest.approx((3 * LOG_HALF + LOG_TENTH) / 4, abs=1e-5)


def test_prefix_none_excludes_first_token(bigram):
    model, tok = bigram
    (s,) = ps.score_texts(model, tok, ["a b b c"], max_tokens=2048, prefix="none")
    assert s.n_tokens == 3  # b|a, b|b, c|b
    assert s.score == pytest.approx((2 * LOG_HALF + LOG_TENTH) / 3, abs=1e-5)


def test_truncation_to_first_n_tokens(bigram):
    model, tok = bigram
    # N = 3: a|<s> 1/2, b|a 1/2, b|b 1/10; the trailing "a a" is never seen
    (s,) = ps.score_texts(model, tok, ["a b b a a"], max_tokens=3)
    assert s.n_tokens == 3
    assert s.score == pytest.approx((2 * LOG_HALF + LOG_TENTH) / 3, abs=1e-5)


def test_batching_by_length_does_not_change_scores(bigram):
    model, tok = bigram
    texts = ["a b b c", "c", "a b c a b c a", "b b b"]
    alone = [ps.score_texts(model, tok, [t])[0] for t in texts]
    batched = ps.score_texts(model, tok, texts, batch_tokens=8)  # several padded batches
    for x, y in zip(alone, batched):
        assert x.n_tokens == y.n_tokens
        assert x.score == pytest.approx(y.score, abs=1e-5)
    # "c" after <s>: p(c | <s>) = 1/10; "b b b": b|<s> 1/10, b|b 1/10, b|b 1/10
    assert batched[1].score == pytest.approx(LOG_TENTH, abs=1e-5)
    assert batched[3].score == pytest.approx(LOG_TENTH, abs=1e-5)


def test_eos_is_the_prefix_without_bos(tmp_path):
    from rmselect.hf import load_tokenizer

    tok = load_tokenizer(build_bigram_model(tmp_path, bos=False))
    assert tok.bos_token_id is None
    assert ps.prefix_token_id(tok, "auto") == VOCAB["</s>"]
    assert ps.prefix_token_id(tok, "none") is None
    with pytest.raises(ValueError, match="prefix"):
        ps.prefix_token_id(tok, "bos")


def test_length_batches_respect_token_budget():
    assert ps.length_batches([2, 5, 3, 5], 10) == [[1, 3], [2, 0]]
    assert ps.length_batches([12, 1], 10) == [[0], [1]]


def test_main_writes_parquet_and_provenance(tmp_path):
    from rmselect.presence.corpus import SampleArgs, write_corpus

    model_dir = build_bigram_model(tmp_path / "m")
    corpus = tmp_path / "dom.jsonl"
    docs = ["a b b c", "", "c", "a b c a b c"]
    corpus.write_text("".join(json.dumps({"body": d}) + "\n" for d in docs))
    entry = {"path": str(corpus), "text_column": "body"}
    write_corpus(SampleArgs(domain="toy", entry=json.dumps(entry), n_docs=10, seed=3,
                            shard_docs=10, out_dir=str(tmp_path / "corpus")))
    out = tmp_path / "out" / "part-00000.parquet"
    rc = ps.main(["--model", str(model_dir), "--name", "bigram", "--device", "cpu",
                  "--corpus", str(tmp_path / "corpus" / "part-00000.parquet"),
                  "--out", str(out), "--meta", str(out.with_suffix(".json"))])
    assert rc == 0
    df = pl.read_parquet(out)
    assert df.columns == ["doc_id", "n_tokens", "score"]
    assert df["doc_id"].to_list() == [0, 2, 3]  # the empty document (row 1) is skipped
    assert df["n_tokens"].to_list() == [4, 1, 6]
    assert df["score"][1] == pytest.approx(LOG_TENTH, abs=1e-5)
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["model"] == "bigram" and meta["n_docs"] == 3 and meta["dropped"] == 0
    assert meta["prefix_token_id"] == VOCAB["<s>"] and meta["tokens"] == 11


def test_bad_text_column_names_domain_and_leaves_nothing(tmp_path):
    from rmselect.presence.corpus import main as sample_main

    corpus = tmp_path / "dom.jsonl"
    corpus.write_text(json.dumps({"text": "a b"}) + "\n")
    out = tmp_path / "corpus" / "bad"
    with pytest.raises(SystemExit, match=r"presence domain 'bad'.*text column 'body'"):
        sample_main(["--domain", "bad", "--entry", json.dumps({"path": str(corpus),
                                                                "text_column": "body"}),
                     "--n-docs", "4", "--seed", "0", "--shard-docs", "2", "--out-dir", str(out)])
    assert not out.exists() or not any(out.iterdir())


def test_prefix_scores_are_the_stage_scores_over_each_prefix(bigram):
    """rmselect.presence.precision.prefix_scores: one forward, prefix means by hand."""
    import polars as pl

    from rmselect.presence.precision import prefix_scores

    model, tok = bigram
    docs = pl.DataFrame({"doc_id": [7, 9], "text": ["a b b c", "c c"]})
    df = prefix_scores(model, tok, docs, [2, 4], batch_tokens=8).sort("doc_id", "prefix")
    got = {(r["doc_id"], r["prefix"]): (r["n_tokens"], r["score"]) for r in df.iter_rows(named=True)}
    # "a b b c": first 2 = a|<s>, b|a (1/2 each); all 4 add b|b 1/10, c|b 1/2
    assert got[(7, 2)] == (2, pytest.approx(LOG_HALF, abs=1e-5))
    assert got[(7, 4)] == (4, pytest.approx((3 * LOG_HALF + LOG_TENTH) / 4, abs=1e-5))
    # "c c": c|<s>, c|c both 1/10; a prefix longer than the document is the document
    assert got[(9, 2)] == got[(9, 4)] == (2, pytest.approx(LOG_TENTH, abs=1e-5))
    full = ps.score_texts(model, tok, docs["text"].to_list(), max_tokens=4)
    assert [s.score for s in full] == pytest.approx(
        df.filter(pl.col("prefix") == 4)["score"].to_list(), abs=1e-6)
