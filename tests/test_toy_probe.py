"""Probes of toy base models (rmselect.toy.probe): the statistics on planted data, the pair
sign convention, and one end-to-end run on a tiny local model (no downloads)."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from rmselect.toy import probe


def test_linear_probe_recovers_a_planted_direction_and_not_noise():
    rng = np.random.default_rng(0)
    w = rng.normal(size=20)
    x = rng.normal(size=(400, 20))
    y = (x @ w > 0).astype(int)
    val, train = probe.linear_probe(x[:300], y[:300], x[300:], y[300:])
    assert val > 0.9 and train > 0.9
    y_noise = rng.integers(0, 2, size=400)
    val_noise, _ = probe.linear_probe(x[:300], y_noise[:300], x[300:], y_noise[300:])
    assert val_noise < 0.65


def test_preference_pairs_follow_the_sign_convention_and_drop_ties():
    rows = [
        {"prompt": "p", "response_1": "A", "response_2": "B", "preference_strength": -2, "split": "train"},
        {"prompt": "p", "response_1": "A", "response_2": "B", "preference_strength": 3, "split": "train"},
        {"prompt": "p", "response_1": "A", "response_2": "B", "preference_strength": 0, "split": "train"},
        {"prompt": "p", "response_1": "A", "response_2": "B", "preference_strength": -1, "split": "validation"},
    ]
    assert probe.preference_pairs(rows, "train") == [("p", "A", "B"), ("p", "B", "A")]
    assert probe.preference_pairs(rows, "validation") == [("p", "A", "B")]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from support.tiny_rm import make_model, write_preference_data

    root = tmp_path_factory.mktemp("probe")
    model = make_model(root / "model", seed=1)
    pref = write_preference_data(root / "pref.jsonl", n_train=60, n_val=40, seed=2, ties=2)
    # The benchmark stage's result for the recall task (CONTRACTS.md: only the fields read).
    bench = root / "benchmarks"
    for name in ("tiny", "a", "b"):
        (bench / name).mkdir(parents=True)
        (bench / name / "toy_facts.json").write_text(json.dumps({"raw_score": 0.625, "items_used": 40}))
    return model, pref, bench


def test_probe_model_on_a_tiny_model_reads_a_word_level_signal(tiny):
    model, pref, bench = tiny
    res = probe.probe_model("tiny", model, pref, bench / "tiny" / "toy_facts.json")
    assert (res.pairs_train, res.pairs_validation) == (60, 40)
    assert (res.recall, res.recall_n) == (0.625, 40)
    # Good and bad responses differ in their words; even random-init last-token states
    # carry that (attention averages the words), so a linear head reads it out.
    assert res.linear_probe > 0.7
    assert 0.0 <= res.zero_shot <= 1.0


def test_conversation_ids_are_the_rm_encoding_and_the_response_start_is_exact(tiny):
    from rmselect.rm.data import tokenize_responses

    model, _, _ = tiny
    lm = probe.LM(model)
    ids, start = lm.conversation("tell me about the year ?", "the answer is correct .")
    assert ids == tokenize_responses(lm.tok, ["tell me about the year ?"],
                                     ["the answer is correct ."], None, None)[0]
    assert lm.tok.convert_ids_to_tokens(ids[start:start + 3]) == ["the", "answer", "is"]


def test_cli_writes_one_row_per_model_and_names_bad_specs(tiny, tmp_path, capsys):
    model, pref, bench = tiny
    out = tmp_path / "probe.csv"
    assert probe.main(["--models", f"a={model}", f"b={model}", "--preference", str(pref),
                       "--recall-dir", str(bench), "--max-pairs", "20", "--out", str(out)]) == 0
    df = pl.read_csv(out)
    assert df["model"].to_list() == ["a", "b"]
    assert df["pairs_train"].to_list() == [20, 20]
    assert df["linear_probe"][0] == df["linear_probe"][1]  # deterministic
    with pytest.raises(SystemExit):
        probe.main(["--models", str(model), "--preference", str(pref), "--recall-dir",
                    str(bench), "--out", str(tmp_path / "x.csv")])
    assert "is not NAME=DIR" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        probe.main(["--models", f"c={model}", "--preference", str(pref), "--recall-dir",
                    str(bench), "--out", str(tmp_path / "x.csv")])
    assert "model 'c'" in capsys.readouterr().err and not (tmp_path / "x.csv").exists()


def test_read_pairs_one_forward_per_response_and_ties_are_not_wins(tiny):
    model, _, _ = tiny
    lm = probe.LM(model)
    x, y, zs = probe.read_pairs(lm, [("tell me about the code ?", "it is exact .", "it is exact .")])
    assert y.tolist() == [1, 0] and not x.any()  # identical responses: zero difference
    assert zs == 0.0  # a tie is no preference for the better response
    lp, state = lm.read("tell me about the code ?", "it is exact .")
    assert lp < 0 and state.shape == (2 * lm.model.config.hidden_size,)  # 2 layers
