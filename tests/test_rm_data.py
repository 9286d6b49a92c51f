"""Reward-model data: preference sign, ties, truncation, length-grouped deterministic batches."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from rmselect.datasets_io import DatasetError
from rmselect.rm import data as D
from support import tiny_rm


def _frame(strengths):
    return pl.DataFrame(
        {
            "prompt": [f"p{i}" for i in range(len(strengths))],
            "response_1": [f"one{i}" for i in range(len(strengths))],
            "response_2": [f"two{i}" for i in range(len(strengths))],
            "preference_strength": strengths,
        }
    )


def test_negative_strength_prefers_response_1_and_ties_are_dropped():
    assert D.PREFERENCE_SIGN == -1  # HelpSteer2 card: -3 = "Response 1 is much better"
    pairs = D.pairs_from_frame(_frame([-3, -1, 0, 2, 3]))
    assert [p.prompt for p in pairs] == ["p0", "p1", "p3", "p4"]  # tie p2 dropped
    assert [p.chosen for p in pairs] == ["one0", "one1", "two3", "two4"]
    assert [p.rejected for p in pairs] == ["two0", "two1", "one3", "one4"]
    assert [p.strength for p in pairs] == [3, 1, 2, 3]


def test_bad_strength_names_the_field():
    with pytest.raises(DatasetError, match="preference_strength.*outside"):
        D.pairs_from_frame(_frame([5]))
    with pytest.raises(DatasetError, match="missing column"):
        D.pairs_from_frame(_frame([1]).drop("response_2"))


def test_splits_and_missing_split(tmp_path):
    p = tiny_rm.write_preference_data(tmp_path / "pref.jsonl", 10, 4, ties=2)
    assert len(D.load_pairs({"path": str(p)}, "train")) == 10
    assert len(D.load_pairs({"path": str(p)}, "validation")) == 4
    with pytest.raises(DatasetError, match="split == 'test'"):
        D.load_pairs({"path": str(p)}, "test")


def test_rated_rows(tmp_path):
    p = tiny_rm.write_rated_data(tmp_path / "hs2.jsonl", 7)
    rows = D.load_rated({"path": str(p)})
    assert len(rows) == 7 and all(len(r.scores) == 5 for r in rows)


@pytest.fixture(scope="module")
def tok():
    return tiny_rm.make_tokenizer()


def test_bos_not_doubled_and_added_when_missing(tok):
    bos = tok.bos_token_id
    assert D.special_prefix(tok) == [bos]
    text = D.render_pairs(tok, ["tell me about the sum ?"], ["the answer ."], None)[0][0]
    assert text.startswith("<|bos|>")
    ids = D.encode_rendered(tok, [text])[0]
    assert ids[0] == bos and ids[1] != bos
    ids2 = D.encode_rendered(tok, [text.replace("<|bos|>", "")])[0]
    assert ids2 == ids
    plain = tiny_rm.make_tokenizer(bos=False)  # no BOS anywhere: nothing added
    assert D.special_prefix(plain) == []
    t3 = D.render_pairs(plain, ["sum ?"], ["the answer ."], None)[0][0]
    assert D.encode_rendered(plain, [t3])[0] == plain(t3, add_special_tokens=False)["input_ids"]


def test_truncation_cuts_prompt_from_the_left_and_keeps_the_end(tok):
    prompt = " ".join(["the city"] * 20) + " ?"
    resp = "correct answer ."
    stats = D.TruncationStats()
    full = D.tokenize_responses(tok, [prompt], [resp], None, None)[0]
    cut = D.tokenize_responses(tok, [prompt], [resp], None, 12, stats)[0]
    assert len(full) > 12 and len(cut) == 12
    assert cut[0] == tok.bos_token_id  # prefix kept
    assert cut[1:] == full[-11:]  # the end (response + EOS) survives
    assert stats.as_dict() == {"texts": 1, "truncated": 1, "response_cut": 0}
    # A response longer than the budget loses its start too, and is counted.
    long_resp = " ".join(["answer"] * 30) + " ."
    D.tokenize_responses(tok, ["sum ?"], [long_resp], None, 12, stats)
    assert stats.as_dict() == {"texts": 2, "truncated": 2, "response_cut": 1}


def test_accumulation_must_divide():
    assert D.accumulation_steps(64, 4, 2) == 8
    with pytest.raises(ValueError, match="not divisible"):
        D.accumulation_steps(64, 3, 2)


def test_batch_plan_deterministic_world_size_independent_and_low_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(20, 400, size=1000).tolist()
    a = D.batch_plan(lengths, 64, 4, 1, 2, seed=7)
    b = D.batch_plan(lengths, 64, 4, 1, 2, seed=7)
    c = D.batch_plan(lengths, 64, 4, 4, 2, seed=7)  # 4 ranks, accumulation 4
    other = D.batch_plan(lengths, 64, 4, 1, 2, seed=8)
    assert len(a) == 2 * (1000 // 64)
    flat = lambda st: sorted(i for acc in st.micro for mb in acc for i in mb)  # noqa: E731
    assert [s.micro for s in a] == [s.micro for s in b]
    assert [flat(s) for s in a] == [flat(s) for s in c]  # same examples per step
    assert [flat(s) for s in a] != [flat(s) for s in other]
    assert len(c[0].micro) == 4 and len(c[0].micro[0]) == 4  # accum x ranks
    for st in a:  # every example at most once per epoch, each micro-batch of 4
        assert all(len(mb) == 4 for acc in st.micro for mb in acc)
    ep0 = [i for st in a if st.epoch == 0 for i in flat(st)]
    assert len(ep0) == len(set(ep0)) == 15 * 64
    mbs = [[[0] * lengths[i] for i in mb] for st in a for acc in st.micro for mb in acc]
    assert D.padding_fraction(mbs) < 0.05
    # Without length grouping (mega_batch=1 still sorts within a global batch) padding grows.
    random_mbs = []
    perm = rng.permutation(1000)
    for k in range(0, 960, 4):
        random_mbs.append([[0] * lengths[i] for i in perm[k : k + 4]])
    assert D.padding_fraction(random_mbs) > 0.2


def test_pack_rows_layout_and_low_padding():
    rng = np.random.default_rng(0)
    seqs = [list(range(1, int(n) + 1)) for n in rng.integers(16, 70, size=32)]
    one = D.pack_rows(seqs, 0)  # the default: one row, no padding (DataCollatorWithFlattening)
    assert one.input_ids.shape == (1, sum(map(len, seqs))) and one.padding_fraction == 0.0
    pk = D.pack_rows(seqs, 0, n_rows=None)  # dense-mask kernels: the cost model's rows
    assert pk.input_ids.shape[0] > 1
    assert pk.padding_fraction <= 0.05 < D.padding_fraction([seqs])
    for p in (one, pk):
        for i, s in enumerate(seqs):  # each sequence intact, positions restart at 0
            r, c = int(p.last_row[i]), int(p.last_col[i])
            start = c - len(s) + 1
            assert p.input_ids[r, start : c + 1].tolist() == s
            assert p.position_ids[r, start : c + 1].tolist() == list(range(len(s)))
    # A small kappa (attention dear) prefers narrower rows than a large one.
    narrow, wide = D.choose_layout([len(s) for s in seqs], 50.0), D.choose_layout(
        [len(s) for s in seqs], 1e6)
    assert narrow[1] <= wide[1]


def test_one_row_only_for_kernels_without_row_masks():
    assert not D.one_row_only("sdpa") and not D.one_row_only("eager")
    assert D.one_row_only("flash_attention_2") and D.one_row_only(None)


def test_pad_batch_sides():
    ids, mask = D.pad_batch([[5, 6, 7], [8]], 0, "right")
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    ids, mask = D.pad_batch([[5, 6, 7], [8]], 0, "left")
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_long_resolved_template_is_not_looked_up_as_a_path(tmp_path):
    """train.py resolves the tokenizer's template once and passes the text on to render():

    a real template (thousands of characters) must not be asked of the file system again
    (``OSError: File name too long`` on today's SmolLM2 template before the fix).
    """
    from rmselect.rm.format import resolve_template

    long_template = "{# " + "x" * 5000 + " #}{% for m in messages %}{{ m['content'] }}{% endfor %}"
    assert resolve_template(object(), long_template) == long_template
    one_line = "y" * 400  # no Jinja, one line, longer than NAME_MAX: refused, no OSError
    with pytest.raises(ValueError, match="neither an existing file nor a Jinja template"):
        resolve_template(object(), one_line)
    f = tmp_path / "t.jinja"
    f.write_text("{{ messages[0]['content'] }}")
    assert resolve_template(object(), str(f)) == "{{ messages[0]['content'] }}"
