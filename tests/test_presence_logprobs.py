"""Chunked token log-probabilities (rmselect.logprobs) against the full-vocabulary forward.

Tiny random Gemma-2 (final-logit softcapping on, at a cap small enough that it changes the
logits), Llama and Qwen2 models in float32: the chunked log-probs equal
``log_softmax(model(ids).logits)`` to 1e-5 for every chunk size, and the largest logit tensor
the head produces shrinks with the chunk size (measured by a hook on the head).
"""

from __future__ import annotations

import pytest
import torch

from rmselect import logprobs as lpm

VOCAB = 512


def _model(arch: str):
    from transformers import (Gemma2Config, Gemma2ForCausalLM, LlamaConfig, LlamaForCausalLM,
                              Qwen2Config, Qwen2ForCausalLM)

    common = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                  pad_token_id=0)
    torch.manual_seed(0)
    if arch == "gemma2":
        cfg = Gemma2Config(**common, head_dim=8, final_logit_softcapping=0.5,
                           attn_logit_softcapping=50.0, query_pre_attn_scalar=8,
                           sliding_window=16, attn_implementation="eager")
        model = Gemma2ForCausalLM(cfg)
        with torch.no_grad():  # logits of several units, so the cap of 0.5 bites hard
            model.lm_head.weight.mul_(50.0)
    elif arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common, tie_word_embeddings=False))
    else:
        model = Qwen2ForCausalLM(Qwen2Config(**common))
    return model.float().eval()


def _batch(lengths=(23, 40, 7)):
    g = torch.Generator().manual_seed(1)
    width = max(lengths)
    ids = torch.zeros(len(lengths), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, n in enumerate(lengths):
        ids[r, :n] = torch.randint(1, VOCAB, (n,), generator=g)
        mask[r, :n] = 1
    spans = [(1, n - 1) for n in lengths]  # a response starting after one context token
    return ids, mask, spans


@pytest.mark.parametrize("arch", ["gemma2", "llama", "qwen2"])
@pytest.mark.parametrize("chunk", [1, 7, 64, 10_000])
def test_chunked_logprobs_equal_the_full_forward(arch, chunk):
    model = _model(arch)
    ids, mask, spans = _batch()
    full = lpm.full_logprobs(model, ids, mask, spans)
    got = lpm.batch_logprobs(model, ids, mask, spans, chunk=chunk).logprobs
    for f, c in zip(full, got):
        assert f.shape == c.shape
        assert torch.allclose(f, c, atol=1e-5, rtol=0), (f - c).abs().max()


def test_gemma2_softcap_is_applied_and_matters():
    model = _model("gemma2")
    split = lpm.split_lm(model)
    assert split is not None and split.softcap == pytest.approx(0.5)
    ids, mask, spans = _batch()
    with_cap = torch.cat(lpm.batch_logprobs(model, ids, mask, spans).logprobs)
    no_cap = lpm.SplitLM(split.trunk, split.head, None, 1.0)
    with torch.no_grad():
        hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
        h = torch.cat([hidden[r, a:b] for r, (a, b) in enumerate(spans)])
        t = torch.cat([ids[r, a + 1 : b + 1] for r, (a, b) in enumerate(spans)])
        without = lpm.gather_logprobs(no_cap, h, t, 16)
    # capped logits lie in (-0.5, 0.5): every log-prob is within 1 nat of log(1/V)
    assert (with_cap + torch.log(torch.tensor(float(VOCAB)))).abs().max() < 1.0
    assert (with_cap - without).abs().max() > 1.0


def test_hidden_states_are_the_full_forwards():
    model = _model("qwen2")
    ids, mask, spans = _batch()
    ref = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    got = lpm.batch_logprobs(model, ids, mask, spans, output_hidden_states=True).hidden_states
    assert len(ref) == len(got)
    for a, b in zip(ref, got):
        assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("arch", ["gemma2", "llama"])
def test_peak_logit_memory_falls_with_chunk_size(arch):
    model = _model(arch)
    ids, mask, spans = _batch((60, 60, 60, 60))
    positions = sum(b - a for a, b in spans)
    peaks = {}
    for chunk in (positions, 32, 4):
        largest = [0]

        def hook(_mod, _inp, out, largest=largest):
            largest[0] = max(largest[0], out.numel() * out.element_size())

        h = model.get_output_embeddings().register_forward_hook(hook)
        try:
            lpm.batch_logprobs(model, ids, mask, spans, chunk=chunk)
        finally:
            h.remove()
        peaks[chunk] = largest[0]
        assert largest[0] == lpm.logit_peak_bytes(VOCAB, positions, chunk)
    assert peaks[positions] > peaks[32] > peaks[4]
    assert peaks[4] * positions // 4 == peaks[positions]
    # the full forward's logits are batch x width x vocab, larger still
    assert peaks[positions] <= ids.numel() * VOCAB * 4


def test_chunk_positions_scale_with_vocabulary():
    # 256 MiB over 3 float32 copies: Gemma's 256k vocabulary gets 85 positions, Llama-2's 32k 682
    assert lpm.chunk_positions(256_000) == 256 * 2**20 // (12 * 256_000) == 87
    assert lpm.chunk_positions(32_000) == 699
    assert lpm.chunk_positions(10**12) == 1


def _old_score_sequences(model, sequences, batch_tokens, pad_id=0):
    """The presence scorer before chunking (full logits), kept here as the reference."""
    from rmselect.presence.score import length_batches

    out = {}
    lengths = [len(s) for s in sequences]
    for batch in length_batches(lengths, batch_tokens):
        width = max(lengths[i] for i in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, i in enumerate(batch):
            ids[row, : lengths[i]] = torch.tensor(sequences[i])
            mask[row, : lengths[i]] = 1
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits
        for row, i in enumerate(batch):
            n = lengths[i]
            lp = torch.log_softmax(logits[row, : n - 1].float(), dim=-1)
            out[i] = float(lp.gather(-1, ids[row, 1:n, None]).mean())
    return [out[i] for i in range(len(sequences))]


@pytest.mark.parametrize("arch", ["gemma2", "qwen2"])
def test_presence_scores_unchanged_by_chunking(arch):
    from rmselect.presence.score import score_sequences

    model = _model(arch)
    g = torch.Generator().manual_seed(3)
    seqs = [torch.randint(1, VOCAB, (int(n),), generator=g).tolist()
            for n in torch.randint(2, 90, (12,), generator=g)]
    old = _old_score_sequences(model, seqs, batch_tokens=200)
    new = [s.score for s in score_sequences(model, seqs, batch_tokens=200, chunk=13)]
    assert max(abs(a - b) for a, b in zip(old, new)) < 1e-5


def test_a_model_with_an_unknown_logit_transform_falls_back_to_full_logits():
    model = _model("llama")
    real_forward = model.forward

    def scaled(*a, **k):  # a forward that rescales its logits in a way no config states
        out = real_forward(*a, **k)
        out.logits = out.logits * 3.0
        return out

    model.forward = scaled
    ids, mask, spans = _batch()
    full = lpm.full_logprobs(model, ids, mask, spans)
    got = lpm.batch_logprobs(model, ids, mask, spans, chunk=5).logprobs
    assert model._rmselect_split is None
    for f, c in zip(full, got):
        assert torch.allclose(f, c, atol=1e-5)
    assert lpm.checked_split(_model("llama"), ids, mask) is not None
