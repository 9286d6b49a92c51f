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
