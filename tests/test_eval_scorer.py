"""The reward scorer on tiny random-init RMs built in the test (no downloads)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from rmselect.eval.scorer import (
    ScorerError,
    length_batches,
    load_reward_model,
    render_texts,
    score_texts,
    tokenize,
)
from support.tiny_eval import build_tiny_rm

CORPUS = [
    "the cat sat on the mat",
    "two plus two is four",
    "a reward model scores a response",
    "please answer the question politely",
] * 5
PROMPTS = ["what is two plus two", "say hi", "tell me about cats and mats and more cats", "q"]
RESPONSES = ["four", "hi there friend, how are you today", "", "the cat sat on the mat " * 6]


@pytest.fixture(scope="module")
def bt_dir(tmp_path_factory):
    return build_tiny_rm(tmp_path_factory.mktemp("bt"), CORPUS, num_labels=1, seed=1)


@pytest.fixture(scope="module")
def bt(bt_dir):
    return load_reward_model(bt_dir, dtype="float32", device="cpu")


def unpadded_reward(rm, ids):
    """Reward of one unpadded sequence read at its very last token (the ground truth)."""
    with torch.no_grad():
        h = rm.model.model(input_ids=torch.tensor([ids])).last_hidden_state
        return float(rm.model.score(h[:, -1]).float()[0, 0])


def test_length_batches_sorted_capped_and_complete():
    lengths = [5, 50, 7, 50, 1, 30, 8]
    batches = length_batches(lengths, batch_size=3, max_tokens=100)
    flat = [int(i) for b in batches for i in b]
    assert sorted(flat) == list(range(7))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    assert flat[:2] == [1, 3]  # stable among equal lengths
    for b in batches:
        assert len(b) <= 3 and len(b) * max(lengths[i] for i in b) <= 100 or len(b) == 1


def _padded(lengths, batches):
    return sum(len(b) * max(lengths[i] for i in b) for b in batches)


def test_least_padding_is_the_best_cut_with_no_more_batches_than_filling():
    """Brute force over every contiguous cut of the sorted lengths (small cases)."""
    rng = np.random.default_rng(0)
    for case in range(300):
        lengths = rng.integers(1, 60, size=int(rng.integers(1, 10))).tolist()
        batch_size = int(rng.integers(1, 5))
        max_tokens = [None, int(rng.integers(20, 200))][case % 2]
        fill = length_batches(lengths, batch_size, max_tokens)
        least = length_batches(lengths, batch_size, max_tokens, least_padding=True)
        flat = [int(i) for b in least for i in b]
        assert flat == [int(i) for b in fill for i in b]  # the same sorted order, re-cut
        assert len(least) <= len(fill)
        for b in least:
            width = max(lengths[i] for i in b)
            assert len(b) == 1 or (len(b) <= batch_size and (not max_tokens or len(b) * width <= max_tokens))
        srt = sorted(lengths, reverse=True)
        n, best = len(srt), None
        for k in range(len(fill)):
            for inner in itertools.combinations(range(1, n), k):
                cuts = [0, *inner, n]
                parts = [srt[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
                if all(len(q) == 1 or (len(q) <= batch_size and (not max_tokens or len(q) * q[0] <= max_tokens))
                       for q in parts):
                    cost = sum(len(q) * q[0] for q in parts)
                    best = cost if best is None else min(best, cost)
        assert _padded(lengths, least) == best <= _padded(lengths, fill)
    # where filling pads a lot, the re-cut pads less with as many forwards
    lengths = [100, 60, 55, 50, 10]
    fill = length_batches(lengths, 4, None)
    least = length_batches(lengths, 4, None, least_padding=True)
    assert (_padded(lengths, fill), _padded(lengths, least)) == (410, 340) and len(least) == 2


def test_least_padding_gives_the_same_rewards(bt):
    texts = render_texts(bt, PROMPTS * 3, RESPONSES[::-1] * 3)
    a = score_texts(bt, texts, batch_size=5, progress=False)
    b = score_texts(bt, texts, batch_size=5, progress=False, least_padding=True)
    np.testing.assert_allclose(a.rewards, b.rewards, atol=1e-5)
    assert b.n_batches <= a.n_batches and b.padded_tokens <= a.padded_tokens


def test_matches_model_logits_and_unpadded_truth(bt):
    texts = render_texts(bt, PROMPTS, RESPONSES)
    res = score_texts(bt, texts, batch_size=64, progress=False)
    ids, _ = tokenize(bt, texts)
    truth = np.array([unpadded_reward(bt, x) for x in ids])
    np.testing.assert_allclose(res.rewards, truth, atol=1e-5)
    # the model's own pooled logits agree when pad != eos (right padding, pad id distinct)
    n = max(len(x) for x in ids)
    pad = bt.tokenizer.pad_token_id
    input_ids = torch.tensor([x + [pad] * (n - len(x)) for x in ids])
    mask = torch.tensor([[1] * len(x) + [0] * (n - len(x)) for x in ids])
    with torch.no_grad():
        own = bt.model(input_ids=input_ids, attention_mask=mask).logits[:, 0].numpy()
    np.testing.assert_allclose(res.rewards, own, atol=1e-5)
    assert len(set(np.round(res.rewards, 6))) == len(texts)  # distinct, in input order


def test_batching_does_not_change_rewards_or_order(bt):
    texts = render_texts(bt, PROMPTS * 3, RESPONSES[::-1] * 3)
    a = score_texts(bt, texts, batch_size=64, progress=False).rewards
    b = score_texts(bt, texts, batch_size=1, progress=False).rewards
    c = score_texts(bt, texts, batch_size=5, max_tokens=120, progress=False)
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(a, c.rewards, atol=1e-5)
    assert c.n_batches > 3


def test_pad_equal_to_eos_still_reads_the_closing_eos(tmp_path, capsys):
    path = build_tiny_rm(tmp_path / "rm", CORPUS, num_labels=1, seed=2, pad_is_eos=True)
    rm = load_reward_model(path, dtype="float32", device="cpu")
    texts = render_texts(rm, PROMPTS, RESPONSES)
    assert all(t.endswith(rm.tokenizer.eos_token) for t in texts)
    ids, _ = tokenize(rm, texts)
    res = score_texts(rm, texts, progress=True)
    truth = np.array([unpadded_reward(rm, x) for x in ids])
    np.testing.assert_allclose(res.rewards, truth, atol=1e-5)
    # the pad-id search of the stock head skips the closing EOS and reads another token
    with torch.no_grad():
        stock = rm.model(input_ids=torch.tensor([ids[0]])).logits[0, 0].item()
    assert abs(stock - truth[0]) > 1e-4
    assert "scored 4/4 texts" in capsys.readouterr().err


def test_regression_rewards_use_merge_weights(tmp_path):
    w = [0.5, 0.25, 0.0, 1.0, -0.75]
    path = build_tiny_rm(tmp_path / "reg", CORPUS, num_labels=5, weights=w, seed=3)
    rm = load_reward_model(path, dtype="float32", device="cpu")
    assert rm.num_labels == 5 and rm.weights.tolist() == w
    res = score_texts(rm, render_texts(rm, PROMPTS, RESPONSES), progress=False)
    np.testing.assert_allclose(res.rewards, res.outputs @ np.array(w), atol=1e-12)
    other = load_reward_model(path, weights=[1, 0, 0, 0, 0], dtype="float32", device="cpu")
    res1 = score_texts(other, render_texts(other, PROMPTS, RESPONSES), progress=False)
    np.testing.assert_allclose(res1.rewards, res.outputs[:, 0], atol=1e-5)


def test_regression_without_weights_is_a_clear_error(tmp_path):
    path = build_tiny_rm(tmp_path / "reg", CORPUS, num_labels=5, seed=3)
    (path / "rmselect.json").write_text(json.dumps({"weights": None}))
    with pytest.raises(ScorerError, match=r"5 outputs but no merge weights.*rmselect.json"):
        load_reward_model(path, device="cpu")
    with pytest.raises(ScorerError, match="3 merge weights for 5 outputs"):
        load_reward_model(path, weights=[1, 2, 3], device="cpu")


def test_truncation_keeps_the_end_and_respects_position_limit(tmp_path):
    path = build_tiny_rm(tmp_path / "short", CORPUS, max_positions=16, seed=4)
    rm = load_reward_model(path, max_length=2048, dtype="float32", device="cpu")
    assert rm.max_length == 16  # capped at the model's position limit
    texts = render_texts(rm, ["long " * 40], ["end"])
    ids, cut = tokenize(rm, texts)
    assert cut == 1 and len(ids[0]) == 16
    full = rm.tokenizer(texts[0], add_special_tokens=False)["input_ids"]
    assert ids[0][-5:] == full[-5:]  # the end of the response survives
    assert np.isfinite(score_texts(rm, texts, progress=False).rewards).all()


def test_fallback_to_the_models_own_pooling_agrees(bt_dir):
    # a model without a recognisable head falls back to forward().logits with a pad id
    # that occurs in no real token; both paths give the same rewards
    from dataclasses import replace

    rm = load_reward_model(bt_dir, dtype="float32", device="cpu")
    texts = render_texts(rm, PROMPTS, RESPONSES)
    ours = score_texts(rm, texts, progress=False).rewards
    fallback = score_texts(replace(rm, wrapped=None), texts, progress=False).rewards
    np.testing.assert_allclose(ours, fallback, atol=1e-5)
