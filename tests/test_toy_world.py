"""Toy world and corpus: determinism, splits, every fact reaches the corpus."""

from __future__ import annotations

import json

from rmselect.toy.world import (
    ATTRIBUTES,
    escape_doc,
    load_world,
    make_corpus,
    make_world,
    unescape_doc,
    write_world,
)


def test_same_seed_same_world_different_seed_different():
    a = json.dumps(make_world(7, 8, 8, 8).to_json(), sort_keys=True)
    b = json.dumps(make_world(7, 8, 8, 8).to_json(), sort_keys=True)
    c = json.dumps(make_world(8, 8, 8, 8).to_json(), sort_keys=True)
    assert a == b
    assert a != c


def test_splits_disjoint_and_stratified():
    w = make_world(3, 10, 10, 10)
    for kind in ("country", "person", "thing"):
        per = {s: set(w.of_kind(kind, s)) for s in ("train", "validation", "eval")}
        assert all(per.values()), f"every split needs {kind}s: {per}"
        assert not (per["train"] & per["validation"] or per["train"] & per["eval"]
                    or per["validation"] & per["eval"])
        assert sum(map(len, per.values())) == 10
    # 10 countries x 2 + 10 people x 3 + 10 things x 2 attributes
    assert len(w.facts()) == 70
    assert {a for _, a, _ in w.facts()} == set(ATTRIBUTES)


def test_world_json_roundtrip(tmp_path):
    w = write_world(5, tmp_path / "w.json", tmp_path / "t.txt", tmp_path / "h.txt", 6, 6, 6, 50, 10)
    w2 = load_world(tmp_path / "w.json")
    assert w2.facts() == w.facts()
    assert w2.splits == w.splits
    assert len((tmp_path / "t.txt").read_text().splitlines()) == 50


def test_corpus_mentions_every_fact_of_every_split():
    w = make_world(11, 6, 6, 6)
    text = "\n".join(make_corpus(w, 3000, 1))
    missing = [(e, a, v) for e, a, v in w.facts() if e not in text or str(v) not in text]
    assert not missing
    # The values really are stated about their entities somewhere (not just both present).
    e, a, v = next(f for f in w.facts() if f[1] == "capital")
    assert f"The capital of {e} is {v}." in text or f"{v} is the capital of {e}." in text \
        or f"In {e}, the capital city is {v}." in text


def test_escape_roundtrip_keeps_one_document_per_line():
    doc = "def add_3(x):\n    return x + 3\\n literal"
    line = escape_doc(doc)
    assert "\n" not in line
    assert unescape_doc(line) == doc
