"""Toy data: contract columns, RewardBench subsets, preference sign, disjoint splits, tasks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from rmselect.datasets_io import load_frame
from rmselect.conventions import ATTRIBUTES as HS2_ATTRS
from rmselect.conventions import PREFERENCE_SIGN, REWARDBENCH_SECTIONS, REWARDBENCH_SUBSETS
from rmselect.toy.data import DOMAINS, write_data
from rmselect.toy.helpsteer2 import preferred_response
from rmselect.toy.pairs import REFUSALS, STYLES, Pools, fact_answer, fact_pairs, split_pools
from rmselect.toy.rewardbench import JUDGED_SUBSETS, REFUSAL_SUBSETS
from rmselect.toy.tasks import TASKS, code_problems
from rmselect.toy.world import make_world

SIZES = {"preference_train": 400, "preference_validation": 60, "helpsteer2_train": 150,
         "helpsteer2_validation": 40, "rewardbench_per_subset": 6, "sft": 20, "dpo": 20,
         "domain_docs": 10}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("toydata")
    w = make_world(21, 12, 12, 12)
    write_data(w, 21, root / "data", root / "tasks", root / "domains", SIZES)
    return w, root


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_contract_columns(built):
    _, root = built
    d = root / "data"
    hs = load_frame({"path": str(d / "helpsteer2.jsonl")})
    assert hs.columns == ["prompt", "response", *HS2_ATTRS, "split"]
    for a in HS2_ATTRS:
        assert hs[a].dtype.is_integer() and hs[a].min() >= 0 and hs[a].max() <= 4
    assert sorted(hs["split"].unique().to_list()) == ["train", "validation"]
    assert (hs["split"] == "train").sum() == 150
    pref = load_frame({"path": str(d / "helpsteer2_preference.jsonl")})
    assert pref.columns == ["prompt", "response_1", "response_2", "preference_strength", "split"]
    assert pref["preference_strength"].dtype.is_integer()
    assert set(pref["preference_strength"].unique().to_list()) <= set(range(-3, 4))
    rb = load_frame({"path": str(d / "rewardbench.jsonl")})
    assert rb.columns == ["prompt", "chosen", "rejected", "subset", "id"]
    assert rb["id"].n_unique() == rb.height
    assert (rb["chosen"] != rb["rejected"]).all()
    sft = _rows(d / "sft.jsonl")
    assert [m["role"] for m in sft[0]["messages"]] == ["user", "assistant"]
    assert set(_rows(d / "dpo.jsonl")[0]) == {"prompt", "chosen", "rejected"}
    for dom in DOMAINS:
        docs = _rows(root / "domains" / f"{dom}.jsonl")
        assert len(docs) == 10 and all(set(r) == {"text"} and r["text"] for r in docs)


def test_all_23_rewardbench_subsets(built):
    _, root = built
    rb = _rows(root / "data" / "rewardbench.jsonl")
    counts = {}
    for r in rb:
        counts[r["subset"]] = counts.get(r["subset"], 0) + 1
    assert len(REWARDBENCH_SUBSETS) == 23
    assert set(counts) == set(REWARDBENCH_SUBSETS)
    assert all(c == 6 for c in counts.values())
    assert {"math-prm", "hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python", "hep-rust"} \
        == set(REWARDBENCH_SECTIONS["reasoning"])


def test_preference_sign_negative_prefers_response_1(built):
    w, root = built
    assert PREFERENCE_SIGN == -1
    rows = _rows(root / "data" / "helpsteer2_preference.jsonl")
    checked = 0
    for r in rows:
        s = r["preference_strength"]
        if s == 0:
            assert preferred_response(r) is None
            continue
        best = preferred_response(r)
        assert best == (r["response_1"] if s < 0 else r["response_2"])
        if r["prompt"].startswith("What is ") and r["prompt"][8:9].isdigit():
            a, op, b = r["prompt"][8:-1].split()
            true = eval(f"{int(a)} {op} {int(b)}")  # noqa: S307 - our own generated digits
            other = r["response_2"] if best is r["response_1"] else r["response_1"]
            assert str(true) in best.replace(f"{a} {op} {b}", "")
            assert str(true) not in other.replace(f"{a} {op} {b}", "").split(" ")
            checked += 1
        if r["prompt"].startswith("What color is the "):
            thing = r["prompt"][len("What color is the "):-1]
            color = w.entities[thing]["color"]
            other = r["response_2"] if best is r["response_1"] else r["response_1"]
            if color in best and color not in other:
                checked += 1
            else:  # coherence / off-topic / tie pairs keep the true colour on the good side
                assert color in best.lower()
    assert checked >= 10
    # Both signs occur, so position is no shortcut.
    signs = [r["preference_strength"] < 0 for r in rows if r["preference_strength"]]
    assert 0.3 < sum(signs) / len(signs) < 0.7


def test_every_fact_answer_ends_with_its_value():
    """The reward token closes the answer right after the stated value, in every style."""
    import random

    w = make_world(21, 12, 12, 12)
    rng = random.Random(0)
    for e, attr, v in w.facts():
        for style in STYLES:
            answer = fact_answer(rng, w, e, attr, v, style)
            assert answer.endswith(f" {v}"), (style, answer)


def test_fact_pairs_are_mirrored_and_differ_in_the_value_alone():
    import random

    w = make_world(21, 12, 12, 12)
    p: Pools = split_pools(w, 21)["train"]
    rng = random.Random(3)
    mirrored = 0
    for _ in range(200):
        e, attr, v = rng.choice(p.facts)
        pairs = fact_pairs(rng, w, p, e, attr, v)
        for pair in pairs:
            # Same words up to the value: only the stated value separates the answers.
            assert pair.good.rsplit(" ", 1)[0] == pair.bad.rsplit(" ", 1)[0]
            assert pair.good.endswith(f" {w.entities[_entities_in(w, pair.prompt).pop()][attr]}")
        if len(pairs) == 2:
            mirrored += 1
            a, b = pairs
            assert a.good.rsplit(" ", 1)[1] == b.bad.rsplit(" ", 1)[1]
            assert a.bad.rsplit(" ", 1)[1] == b.good.rsplit(" ", 1)[1]
    assert mirrored >= 150


def test_no_value_is_a_shortcut_in_the_rm_train_pairs(built):
    """Each stated value is as often the better as the worse answer of a train fact pair."""
    from collections import Counter

    w, root = built
    values = {str(v) for _, _, v in w.facts()}
    good, bad = Counter(), Counter()
    for r in _rows(root / "data" / "helpsteer2_preference.jsonl"):
        if r["split"] != "train" or not r["preference_strength"]:
            continue
        best = preferred_response(r)
        other = r["response_2"] if best is r["response_1"] else r["response_1"]
        vb, vo = best.rsplit(" ", 1)[-1], other.rsplit(" ", 1)[-1]
        if vb in values and vo in values and best.rsplit(" ", 1)[0] == other.rsplit(" ", 1)[0]:
            good[vb] += 1
            bad[vo] += 1
    assert sum(good.values()) >= 60
    # Only unmirrored pairs (near-miss years, the split's last pair) break the balance.
    imbalance = sum(abs(good[v] - bad[v]) for v in values)
    assert imbalance <= 0.15 * sum(good.values()), (imbalance, sum(good.values()))


def test_rewardbench_fact_subsets_judge_the_value_alone(built):
    """In every judged fact subset the answers share every word but the last, the true value
    (of an eval entity) on the chosen side; the RM data's fact pairs have the same form."""
    w, root = built
    rows = [r for r in _rows(root / "data" / "rewardbench.jsonl") if r["subset"] in JUDGED_SUBSETS]
    assert len(JUDGED_SUBSETS) == 8 and len(rows) == 6 * 8
    for r in rows:
        head_c, v_c = r["chosen"].rsplit(" ", 1)
        head_r, v_r = r["rejected"].rsplit(" ", 1)
        assert head_c == head_r and v_c != v_r, r
        (e,) = _entities_in(w, r["prompt"])
        assert w.splits[e] == "eval"
        values = {str(x) for x in w.entities[e].values()}
        assert v_c in values and v_r not in values, r


def _shape(w, text: str) -> str:
    for n in sorted(_entities_in(w, text), key=len, reverse=True):
        text = re.sub(rf"\b{re.escape(n)}\b", "<E>", text)
    return text


def test_rewardbench_refusal_requests_occur_in_the_rm_train_data(built):
    """Every harmful request of RewardBench's refusal subsets has the form of some train pair
    (other entities), refused there too: a refusal subset tests what the RM data taught,
    not a style prior it never saw."""
    w, root = built
    train = [r for r in _rows(root / "data" / "helpsteer2_preference.jsonl") if r["split"] == "train"]
    refused = {_shape(w, r["prompt"]) for r in train
               if r["preference_strength"] and preferred_response(r) in REFUSALS}
    rb = _rows(root / "data" / "rewardbench.jsonl")
    for subset in REFUSAL_SUBSETS:
        shapes = {_shape(w, r["prompt"]) for r in rb if r["subset"] == subset}
        assert shapes and shapes <= refused, (subset, shapes - refused)


def test_length_is_not_a_shortcut(built):
    _, root = built
    rows = [r for r in _rows(root / "data" / "helpsteer2_preference.jsonl") if r["preference_strength"]]
    longer = [len(preferred_response(r)) > len(r["response_1"] + r["response_2"]) / 2 for r in rows]
    assert 0.3 < sum(longer) / len(longer) < 0.7


def _entities_in(w, text):
    return {n for n in w.entities if re.search(rf"\b{re.escape(n)}\b", text)}


def test_splits_use_disjoint_entities(built):
    w, root = built
    pref = _rows(root / "data" / "helpsteer2_preference.jsonl")
    rb = _rows(root / "data" / "rewardbench.jsonl")
    for rows, split in (([r for r in pref if r["split"] == "train"], "train"),
                        ([r for r in pref if r["split"] == "validation"], "validation"),
                        (rb, "eval")):
        seen = set()
        for r in rows:
            seen |= _entities_in(w, r["prompt"])
        assert seen, split
        assert {w.splits[n] for n in seen} == {split}, split


def test_helpsteer_attributes_track_truth_and_coherence(built):
    _, root = built
    rows = _rows(root / "data" / "helpsteer2.jsonl")
    arith = [r for r in rows if r["prompt"].startswith("What is ") and r["prompt"][8:9].isdigit()]
    assert arith
    for r in arith:
        a, op, b = r["prompt"][8:-1].split()
        true = str(eval(f"{int(a)} {op} {int(b)}"))  # noqa: S307
        stated = r["response"].rstrip(".").split()[-1]
        assert (r["correctness"] == 4) == (stated == true)
    scrambled = [r for r in rows if r["coherence"] <= 1]
    assert scrambled and all(r["helpfulness"] <= 1 for r in scrambled)
    long = [r["verbosity"] for r in rows if len(r["response"].split()) > 16]
    short = [r["verbosity"] for r in rows if len(r["response"].split()) <= 2]
    assert long and short and min(long) > max(short)


def test_code_problems_canonical_solutions_pass():
    w = make_world(2, 5, 5, 5)
    probs = code_problems(w)
    assert len(probs) >= 20
    for p in probs:
        assert set(p) == {"task_id", "prompt", "canonical_solution", "test", "entry_point"}
        ns: dict = {}
        exec(p["prompt"] + p["canonical_solution"] + "\n" + p["test"], ns)  # noqa: S102
        ns["check"](ns[p["entry_point"]])
        bad: dict = {}
        exec(p["prompt"] + p["canonical_solution"].replace("x ", "x + 1 ", 1) + "\n" + p["test"], bad)  # noqa: S102
        with pytest.raises(AssertionError):
            bad["check"](bad[p["entry_point"]])


def test_lm_eval_task_files(built):
    _, root = built
    tasks = root / "tasks"
    for t in TASKS:
        text = (tasks / f"{t}.yaml").read_text()
        cfg = yaml.safe_load(text.replace("!function ", ""))
        assert cfg["task"] == t and cfg["output_type"] == "multiple_choice"
        assert cfg["dataset_path"] == "json" and cfg["test_split"] == "test"
        assert cfg["dataset_kwargs"]["data_files"]["test"] == f"{t}.jsonl"
        assert {m["metric"] for m in cfg["metric_list"]} == {"acc", "acc_norm"}
        items = _rows(tasks / f"{t}.jsonl")
        assert len(items) >= 40
        for it in items:
            assert 0 <= it["gold"] < len(it["choices"]) and len(set(it["choices"])) == len(it["choices"])
    assert (tasks / "toy_loader.py").exists()
