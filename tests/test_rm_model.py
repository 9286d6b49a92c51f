"""Pooling at the last real token (left/right padding, pad == eos) and agreement with plain
transformers after saving."""

from __future__ import annotations

import pytest
import torch

from rmselect.rm import data as D
from rmselect.rm import model as M
from rmselect.rm.pooling import last_token_index
from support import tiny_rm

PROMPTS = ["tell me about the sum ?", "what about the capital ?", "tell me ?"]
RESPONSES = ["correct answer .", "the answer is wrong and vague and rude and lazy .", "a ."]


@pytest.fixture(scope="module", params=["llama", "gpt_neox"])
def base(request, tmp_path_factory):
    """A tiny base model whose tokenizer's pad token is its EOS."""
    path = tmp_path_factory.mktemp(request.param)
    tiny_rm.make_model(path, arch=request.param, pad_is_eos=True)
    return path


def _rm(path, labels=1):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path))
    assert tok.pad_token == tok.eos_token  # the hard case
    M.prepare_tokenizer(tok)
    assert tok.pad_token == M.PAD_TOKEN and tok.pad_token_id != tok.eos_token_id
    torch.manual_seed(0)
    hf = M.load_for_training(path, labels, tok)
    assert hf.config.pad_token_id == tok.pad_token_id
    with torch.no_grad():  # a non-trivial head so that a wrong token changes the score
        M.head_of(hf).weight.normal_()
    return tok, hf, M.RewardModel(hf).eval()


def test_last_token_index_with_eos_inside_and_both_paddings():
    right = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    left = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert last_token_index(right).tolist() == [2, 4]
    assert last_token_index(left).tolist() == [4, 4]


@torch.no_grad()
def test_reward_is_read_at_the_last_real_token_for_any_padding(base):
    tok, _, rm = _rm(base)
    ids = D.tokenize_responses(tok, PROMPTS, RESPONSES, None, None)
    assert all(s[-1] == tok.eos_token_id for s in ids)  # texts end with EOS (= old pad)
    single = torch.cat([rm(torch.tensor([s]), torch.ones(1, len(s), dtype=torch.long)) for s in ids])
    assert single.std() > 1e-3  # different texts, different rewards
    for side in ("right", "left"):
        for pad in (tok.pad_token_id, tok.eos_token_id):  # also padding with EOS itself
            x, m = D.pad_batch(ids, pad, side)
            torch.testing.assert_close(rm(x, m), single, atol=1e-5, rtol=1e-5)
    # Reading at the *first* EOS/pad (the classic bug) would give another number.
    x, m = D.pad_batch(ids, tok.eos_token_id, "right")
    bug_m = (x != tok.eos_token_id).long()
    assert not torch.allclose(rm(x, bug_m), single, atol=1e-4)


@torch.no_grad()
def test_packed_rows_give_the_same_rewards_as_separate_sequences(base):
    tok, _, rm = _rm(base, labels=5)
    ids = D.tokenize_responses(tok, PROMPTS * 3, RESPONSES * 3, None, None)
    single = torch.cat([rm(torch.tensor([s]), torch.ones(1, len(s), dtype=torch.long)) for s in ids])
    pk = D.pack_rows(ids, tok.pad_token_id)
    assert pk.input_ids.shape[0] < len(ids)  # several sequences share a row
    assert pk.padding_fraction < D.padding_fraction([ids])
    out = rm(pk.input_ids, position_ids=pk.position_ids, last_row=pk.last_row,
             last_col=pk.last_col)
    torch.testing.assert_close(out, single, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_plain_transformers_scores_equal_ours_after_saving(base, tmp_path):
    tok, hf, rm = _rm(base, labels=5)
    ids = D.tokenize_responses(tok, PROMPTS, RESPONSES, None, None)
    x, m = D.pad_batch(ids, tok.pad_token_id, "right")
    ours = rm(x, m)
    M.save_hf(hf, tok, tmp_path / "rm", chat_template=tok.chat_template)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    t2 = AutoTokenizer.from_pretrained(str(tmp_path / "rm"))
    h2 = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "rm")).eval()
    assert h2.config.num_labels == 5 and h2.config.pad_token_id == t2.pad_token_id
    for side in ("right", "left"):
        t2.padding_side = side
        enc = t2.pad({"input_ids": ids}, padding=True, return_tensors="pt")
        torch.testing.assert_close(h2(**enc).logits, ours, atol=1e-5, rtol=1e-5)
    # And straight from text with the saved tokenizer's defaults.
    texts = [t2.apply_chat_template([{"role": "user", "content": p},
                                     {"role": "assistant", "content": r}], tokenize=False)
             for p, r in zip(PROMPTS, RESPONSES)]
    assert D.encode_rendered(t2, texts) == ids
    t2.padding_side = "right"
    enc = t2(texts, padding=True, return_tensors="pt", add_special_tokens=False)
    torch.testing.assert_close(h2(**enc).logits, ours, atol=1e-5, rtol=1e-5)


def test_pad_row_added_only_when_needed(tmp_path):
    from transformers import AutoTokenizer

    tiny_rm.make_model(tmp_path / "spare", spare_rows=8)
    tok = M.prepare_tokenizer(AutoTokenizer.from_pretrained(str(tmp_path / "spare")))
    hf = M.load_for_training(tmp_path / "spare", 1, tok)
    assert hf.get_input_embeddings().num_embeddings == len(tok) - 1 + 8  # no resize
    tiny_rm.make_model(tmp_path / "tight")
    tok = M.prepare_tokenizer(AutoTokenizer.from_pretrained(str(tmp_path / "tight")))
    hf = M.load_for_training(tmp_path / "tight", 1, tok)
    assert hf.get_input_embeddings().num_embeddings == len(tok)  # grown by one row
    assert M.prepare_tokenizer(tok).pad_token_id == tok.pad_token_id  # idempotent


@pytest.fixture(scope="module")
def arch_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("archs")
    return {a: tiny_rm.make_model(root / a, arch=a) for a in ("llama", "qwen2", "gemma2")}


@pytest.mark.parametrize("kernel", ["eager", "sdpa"])
@pytest.mark.parametrize("arch", ["llama", "qwen2", "gemma2"])
@torch.no_grad()
def test_packed_rewards_equal_padded_per_architecture_and_kernel(arch_dirs, arch, kernel):
    """One row (the training layout for every kernel), the cost model's rows and three rows
    give the padded rewards to 1e-5 in fp32; Qwen2 and Gemma-2 with a 6-token sliding window
    on some layers, so sequences longer than it check the sliding mask too."""
    tok = M.prepare_tokenizer(tiny_rm.make_tokenizer())
    torch.manual_seed(0)
    hf = M.load_for_training(arch_dirs[arch], 1, tok, attn_implementation=kernel)
    # Gemma-2's softcapping needs eager: sdpa asked for it resolves to eager
    assert M.kernel_of(hf) == ("eager" if arch == "gemma2" else kernel)
    with torch.no_grad():
        M.head_of(hf).weight.normal_()
    rm = M.RewardModel(hf).eval()
    ids = D.tokenize_responses(tok, PROMPTS * 2, RESPONSES + ["a", "kind clear exact", "the"],
                               None, None)
    assert min(map(len, ids)) > 6  # longer than the sliding window
    x, m = D.pad_batch(ids, tok.pad_token_id)
    padded = rm(x, m)
    assert padded.std() > 1e-2
    for n_rows in (1, None, 3):
        pk = D.pack_rows(ids, tok.pad_token_id, kappa=30.0, n_rows=n_rows)
        out = rm(pk.input_ids, position_ids=pk.position_ids, last_row=pk.last_row,
                 last_col=pk.last_col)
        torch.testing.assert_close(out, padded, atol=1e-5, rtol=1e-5)
    # Without the position resets the second sequence of a row would see the first one.
    pk = D.pack_rows(ids, tok.pad_token_id, n_rows=1)
    flat = torch.arange(pk.input_ids.shape[1]).unsqueeze(0)
    leak = rm(pk.input_ids, position_ids=flat, last_row=pk.last_row, last_col=pk.last_col)
    assert (leak - padded).abs().max() > 1e-3


def test_attention_kernel_per_architecture(arch_dirs):
    from transformers import AutoConfig

    from rmselect.hf import ModelLoadError, resolve_attn_implementation

    said: list[str] = []
    cfg = {a: AutoConfig.from_pretrained(str(p)) for a, p in arch_dirs.items()}
    assert resolve_attn_implementation("auto", cfg["llama"]) == "sdpa"
    assert resolve_attn_implementation("auto", cfg["qwen2"]) == "sdpa"
    assert resolve_attn_implementation("auto", cfg["gemma2"]) == "eager"
    assert resolve_attn_implementation("eager", cfg["llama"]) == "eager"
    assert resolve_attn_implementation("sdpa", cfg["gemma2"], "g2", said.append) == "eager"
    assert "g2" in said[-1] and "softcapping" in said[-1]
    if not torch.cuda.is_available():  # flash-attention needs CUDA: auto's choice, one warning
        assert resolve_attn_implementation("flash_attention_2", cfg["gemma2"], "g2",
                                           said.append) == "eager"
        assert "flash_attention_2" in said[-1]
    with pytest.raises(ModelLoadError, match="attn_implementation 'xformers'"):
        resolve_attn_implementation("xformers", cfg["llama"])


class _RefusesNewTokens:
    """Mixed into a tokenizer class: adding tokens raises, as Phi-3-small's tiktoken
    tokenizer does."""

    def add_special_tokens(self, *args, **kwargs):
        raise NotImplementedError("adding special tokens is not supported")

    def add_tokens(self, *args, **kwargs):
        raise NotImplementedError("adding tokens is not supported")


def _refusing(extra):
    tok = tiny_rm.make_tokenizer(pad_is_eos=True, extra_specials=extra)
    tok.__class__ = type("Refusing", (_RefusesNewTokens, type(tok)), {})
    with pytest.raises(NotImplementedError):
        tok.add_special_tokens({"pad_token": M.PAD_TOKEN})
    return tok


def test_pad_falls_back_to_an_unused_reserved_token_when_new_tokens_are_refused(tmp_path):
    tok = _refusing(("<|dummy_id_7|>", "<|reserved_special_token_1|>",
                     "<|reserved_special_token_0|>"))
    n = len(tok)
    M.prepare_tokenizer(tok)
    # the best-named unused token (reserved before dummy, lowest id first); no token added
    assert tok.pad_token == "<|reserved_special_token_1|>" and len(tok) == n
    assert tok.pad_token_id not in (tok.eos_token_id, tok.bos_token_id)
    assert M.prepare_tokenizer(tok).pad_token == "<|reserved_special_token_1|>"  # idempotent
    ids = D.tokenize_responses(tok, PROMPTS, RESPONSES, None, None)
    assert all(tok.pad_token_id not in s for s in ids)  # never produced by text
    # a model with it: padded rewards read at the last real token, as with our pad token
    path = tiny_rm.make_model(tmp_path / "m", pad_is_eos=True, spare_rows=3)  # rows for all ids
    tok.save_pretrained(str(path))
    hf = M.load_for_training(path, 1, tok)
    assert hf.config.pad_token_id == tok.pad_token_id
    rm = M.RewardModel(hf).eval()
    with torch.no_grad():
        single = torch.cat([rm(torch.tensor([s]), torch.ones(1, len(s), dtype=torch.long))
                            for s in ids])
        x, m = D.pad_batch(ids, tok.pad_token_id)
        torch.testing.assert_close(rm(x, m), single, atol=1e-5, rtol=1e-5)
        plain = hf(input_ids=x, attention_mask=m).logits  # HF's own pooling (last != pad)
        torch.testing.assert_close(plain, single, atol=1e-5, rtol=1e-5)


def test_refusing_tokenizer_without_reserved_tokens_is_one_clear_error():
    from rmselect.hf import ModelLoadError

    tok = _refusing(())
    with pytest.raises(ModelLoadError, match="model phi-3-small: its tokenizer refuses new"):
        M.prepare_tokenizer(tok, name="phi-3-small")
