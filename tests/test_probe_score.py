"""Probe features (rmselect.probe.score): the read-out, the probe's honesty, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from rmselect.probe.score import ProbeSettings, ResponseReader, linear_probe
from support import tiny_rm


@pytest.fixture(scope="module")
def reader(tmp_path_factory):
    from rmselect.hf import load_causal_lm, load_tokenizer
    from rmselect.rm.format import resolve_template

    path = tmp_path_factory.mktemp("probe") / "m"
    tiny_rm.make_model(path, pad_is_eos=True)
    tok = load_tokenizer(path)
    model = load_causal_lm(path)
    return ResponseReader(model, tok, resolve_template(tok), ProbeSettings(batch_size=3))


def test_batched_read_equals_one_text_at_a_time(reader):
    """Right padding with pad == EOS must not move the read: every text's state and mean
    log-probability in a mixed-length batch equal those of a forward of that text alone."""
    import torch

    prompts = ["tell me about the city", "what", "the answer is the river of the year ?"]
    responses = ["it is correct and clear", "wrong", "a useful honest answer to this list"]
    logp, states = reader.read(prompts, responses)
    for i, (ids, start) in enumerate(reader.encode(prompts, responses)):
        x = torch.tensor([ids])
        with torch.no_grad():
            out = reader.model(input_ids=x, output_hidden_states=True)
        lp = out.logits[0, start - 1 : -1].log_softmax(-1).gather(-1, x[0, start:, None])
        assert logp[i] == pytest.approx(float(lp.mean()), abs=1e-5)
        np.testing.assert_allclose(states[i], out.hidden_states[-1][0, -1].numpy(), atol=1e-5)
    # The three texts differ in length, so padding was in play.
    assert len({len(ids) for ids, _ in reader.encode(prompts, responses)}) == 3


def test_response_start_survives_truncation(reader):
    """A text cut from the left keeps its response's tokens, and the start index follows."""
    long_prompt = " ".join(["the city"] * 40)
    (full, s_full), = reader.encode([long_prompt], ["correct clear answer"])
    short = ResponseReader(reader.model, reader.tok, reader.template, ProbeSettings(max_length=12))
    (cut, s_cut), = short.encode([long_prompt], ["correct clear answer"])
    assert len(cut) == 12 and len(full) > 12
    assert cut[s_cut:] == full[s_full:]


def _pairs_data(rng, n, d, signal):
    w = rng.normal(size=d)
    diff = rng.normal(size=(n, d)) + signal * w
    x = np.concatenate([diff, -diff])
    y = np.concatenate([np.ones(n, int), np.zeros(n, int)])
    return x, y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_linear_probe_finds_a_planted_direction_and_not_noise(seed):
    """Planted signal: held-out accuracy well above chance; pure noise in many dimensions
    (where a train fit is easy): held-out accuracy near chance, though train accuracy is
    high, because C is chosen by pair-grouped CV on train pairs only."""
    rng = np.random.default_rng(seed)
    xt, yt = _pairs_data(rng, 60, 20, 0.0)
    xv, yv = _pairs_data(rng, 200, 20, 0.0)
    w = rng.normal(size=20)
    xt_s, xv_s = xt + np.sign(yt - 0.5)[:, None] * w, xv + np.sign(yv - 0.5)[:, None] * w
    val, _, _ = linear_probe(xt_s, yt, xv_s, yv)
    assert val > 0.8
    noise_t = rng.normal(size=(60, 200))
    noise_v = rng.normal(size=(200, 200))
    val0, train0, _ = linear_probe(np.concatenate([noise_t, -noise_t]), yt[np.r_[0:60, 60:120]],
                                   np.concatenate([noise_v, -noise_v]), yv)
    assert abs(val0 - 0.5) < 0.12


def test_cli_writes_the_features_and_their_cost(tmp_path):
    model = tmp_path / "m"
    tiny_rm.make_model(model, pad_is_eos=True)
    data = tiny_rm.write_preference_data(tmp_path / "pref.jsonl", n_train=24, n_val=10, ties=2)
    out = tmp_path / "probe" / "m.json"
    cmd = [sys.executable, str(REPO / "workflow/scripts/probe_model.py"), "--model", str(model),
           "--name", "m", "--data", json.dumps({"path": str(data)}), "--out", str(out),
           "--batch-size", "4"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res["pairs_train"] == 24 and res["pairs_validation"] == 10  # ties dropped
    assert 0.0 <= res["zero_shot"] <= 1.0 and 0.0 <= res["linear_probe"] <= 1.0
    # One forward per response: 2 x 34 texts, tokens counted, FLOPs = 2 N per token.
    assert res["tokens"] > 68 and res["flops"] == pytest.approx(2 * res["params"] * res["tokens"])

    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(line for line in data.read_text().splitlines(True)
                           if '"validation"' not in line))
    out2 = tmp_path / "probe" / "bad.json"
    r = subprocess.run(cmd[:6] + ["--data", json.dumps({"path": str(bad)}), "--out", str(out2)],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert "probe: model 'm'" in r.stderr and "validation" in r.stderr
    assert "Traceback" not in r.stderr and not out2.exists()
