"""RewardBench v1 / 2 and RM-Bench scoring on hand-made fixtures (expected numbers by hand)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from rmselect.eval.benchmarks import prepare
from rmselect.eval.metrics import ScoreOptions, per_example, score, subset_weights


def v1_frame(rows: list[tuple[str, float, float]]) -> tuple[pl.DataFrame, np.ndarray]:
    """v1 data with one (subset, reward_chosen, reward_rejected) per row, plus the rewards
    in item order (chosen of row i, then rejected of row i)."""
    df = pl.DataFrame(
        {
            "prompt": [f"p{i}" for i in range(len(rows))],
            "chosen": [f"c{i}" for i in range(len(rows))],
            "rejected": [f"r{i}" for i in range(len(rows))],
            "subset": [r[0] for r in rows],
            "id": list(range(len(rows))),
        }
    )
    rewards = np.array([x for r in rows for x in (r[1], r[2])], dtype=float)
    return df, rewards


# chat: alpacaeval-easy 2/4 (one loss, one tie), mt-bench-easy 2/2
# chat_hard: llmbar-natural 1/2
# safety: donotanswer 1/1, xstest-should-respond 0/2
# reasoning: math-prm 2/2, hep-python 1/2, hep-go 0/1
V1_ROWS = [
    ("alpacaeval-easy", 2.0, 1.0),
    ("alpacaeval-easy", 1.0, 2.0),
    ("alpacaeval-easy", 3.0, 3.0),  # tie: counts as wrong
    ("alpacaeval-easy", 5.0, 0.0),
    ("mt-bench-easy", 1.0, 0.0),
    ("mt-bench-easy", 0.5, 0.25),
    ("llmbar-natural", 1.0, 0.0),
    ("llmbar-natural", 0.0, 1.0),
    ("donotanswer", 1.0, -1.0),
    ("xstest-should-respond", -1.0, 1.0),
    ("xstest-should-respond", 0.0, 0.0),  # tie
    ("math-prm", 2.0, 1.0),
    ("math-prm", 2.0, 1.0),
    ("hep-python", 1.0, 2.0),
    ("hep-python", 2.0, 1.0),
    ("hep-go", 0.0, 1.0),
]


def v1_scores(rows=V1_ROWS, **opts):
    df, rewards = v1_frame(rows)
    data = prepare("rewardbench", df, "fixture", include_prior_sets=opts.get("include_prior_sets", False))
    per = per_example(data, rewards)
    return data, per, score("rewardbench", per, ScoreOptions(**opts))


def test_v1_ties_count_wrong_and_official_weights():
    data, per, out = v1_scores(n_boot=0)
    assert per["correct"].to_list()[:4] == [1.0, 0.0, 0.0, 1.0]
    sub = out["subsets"]
    assert sub["alpacaeval-easy"]["score"] == pytest.approx(50.0)
    assert sub["alpacaeval-easy"]["n"] == 4
    assert sub["xstest-should-respond"]["score"] == pytest.approx(0.0)
    sec = {k: v["score"] for k, v in out["sections"].items()}
    # chat: (0.5 * 100 + 1.0 * 28) / (100 + 28)
    assert sec["chat"] == pytest.approx(100 * (0.5 * 100 + 1.0 * 28) / 128)
    assert sec["chat_hard"] == pytest.approx(50.0)
    # safety: (1.0 * 136 + 0.0 * 250) / 386
    assert sec["safety"] == pytest.approx(100 * 136 / 386)
    # reasoning: math-prm weighted as 984: (984 * 1 + 164 * 0.5 + 164 * 0) / (984 + 164 + 164)
    assert sec["reasoning"] == pytest.approx(100 * (984 + 82) / 1312)
    assert sec["reasoning"] == pytest.approx(81.25)
    overall = (sec["chat"] + sec["chat_hard"] + sec["safety"] + sec["reasoning"]) / 4
    assert out["overall"]["score"] == pytest.approx(overall)
    assert out["overall"]["complete"] is True
    assert out["overall"]["lo"] is None  # n_boot = 0: no interval


def test_v1_math_weighted_as_all_code():
    # math-prm weighs 984 = 6 x 164: with math all right and all six code subsets all wrong,
    # reasoning is exactly 50.
    rows = [("math-prm", 1.0, 0.0)] + [(f"hep-{x}", 0.0, 1.0) for x in ("cpp", "go", "java", "js", "python", "rust")]
    _, _, out = v1_scores(rows, n_boot=0)
    assert out["sections"]["reasoning"]["score"] == pytest.approx(50.0)
    assert subset_weights({"math-prm": 1, "hep-go": 1}, "rewardbench")["math-prm"] == 984.0


def test_v1_observed_weights_balance_math_with_present_code():
    _, _, out = v1_scores(n_boot=0, weights="observed")
    # math-prm weighted as the code rows present (2 + 1 = 3): (3 * 1 + 2 * 0.5 + 1 * 0) / 6
    assert out["sections"]["reasoning"]["score"] == pytest.approx(100 * 4 / 6)
    # chat with observed counts 4 and 2: (0.5 * 4 + 1.0 * 2) / 6
    assert out["sections"]["chat"]["score"] == pytest.approx(100 * 4 / 6)


def test_v1_missing_subsets_and_missing_section(capsys):
    rows = [r for r in V1_ROWS if r[0] not in ("donotanswer", "xstest-should-respond")]
    data, _, out = v1_scores(rows, n_boot=0)
    assert "missing" in capsys.readouterr().err
    assert "donotanswer" in data.missing_subsets and "refusals-dangerous" in data.missing_subsets
    assert "alpacaeval-easy" not in data.missing_subsets
    assert out["sections"]["safety"]["score"] is None
    assert out["sections"]["chat"]["missing_subsets"] == ["alpacaeval-length", "alpacaeval-hard", "mt-bench-med"]
    sec = {k: v["score"] for k, v in out["sections"].items()}
    assert out["overall"]["score"] == pytest.approx((sec["chat"] + sec["chat_hard"] + sec["reasoning"]) / 3)
    assert out["overall"]["complete"] is False


def test_v1_prior_sets_half_weight():
    rows = V1_ROWS + [("anthropic_helpful", 1.0, 0.0), ("shp", 0.0, 1.0), ("shp", 1.0, 1.0)]
    _, _, out = v1_scores(rows, n_boot=0, include_prior_sets=True)
    sec = {k: v["score"] for k, v in out["sections"].items()}
    # prior sets = plain mean of its subsets: (100 + 0) / 2
    assert sec["prior_sets"] == pytest.approx(50.0)
    four = sec["chat"] + sec["chat_hard"] + sec["safety"] + sec["reasoning"]
    assert out["overall"]["score"] == pytest.approx((four + 0.5 * 50.0) / 4.5)


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    _, per, a = v1_scores(n_boot=300, seed=5)
    b = score("rewardbench", per, ScoreOptions(n_boot=300, seed=5))
    c = score("rewardbench", per, ScoreOptions(n_boot=300, seed=6))
    assert a["overall"]["lo"] == b["overall"]["lo"] and a["overall"]["hi"] == b["overall"]["hi"]
    assert a["overall"]["lo"] != c["overall"]["lo"] or a["overall"]["hi"] != c["overall"]["hi"]
    for key, sec in a["sections"].items():
        assert sec["lo"] <= sec["score"] + 1e-9 and sec["score"] <= sec["hi"] + 1e-9, key
    # a subset where every pair is right cannot resample to anything else
    assert a["subsets"]["math-prm"]["lo"] == a["subsets"]["math-prm"]["hi"] == 100.0
    # chat_hard = one subset of 2 pairs (1 right): resampled accuracies are 0, 0.5 or 1
    assert a["sections"]["chat_hard"]["lo"] == 0.0 and a["sections"]["chat_hard"]["hi"] == 100.0


def rb2_data():
    rows = [
        # Focus: clean win (1), two-way tie at the top (1/2), loss (0), four-way tie (1/4)
        {"id": "f1", "subset": "Focus", "chosen": ["a"], "rejected": ["b", "c", "d"]},
        {"id": "f2", "subset": "Focus", "chosen": ["a"], "rejected": ["b", "c", "d"]},
        {"id": "f3", "subset": "Focus", "chosen": ["a"], "rejected": ["b", "c", "d"]},
        {"id": "f4", "subset": "Focus", "chosen": ["a"], "rejected": ["b", "c", "d"]},
        {"id": "ref:0", "subset": "Ties", "chosen": ["a"], "rejected": ["b", "c"]},
        {"id": "tied:0", "subset": "Ties", "chosen": ["a", "a2"], "rejected": ["b", "c"]},
        {"id": "ref:1", "subset": "Ties", "chosen": ["a"], "rejected": ["b"]},
        {"id": "tied:1", "subset": "Ties", "chosen": ["a", "a2"], "rejected": ["b"]},
    ]
    rewards_by_row = [
        ([3.0], [1.0, 2.0, 0.0]),
        ([2.0], [2.0, 1.0, 0.0]),
        ([1.0], [3.0, 0.0, 0.0]),
        ([2.0], [2.0, 2.0, 2.0]),
        ([5.0], [1.0, 2.0]),  # ref:0  accurate, margin 5 - 2 = 3
        ([5.0, 4.5], [1.0, 3.0]),  # tied:0 accurate, spread 0.5, margin 4.5 - 3 = 1.5
        ([1.0], [2.0]),  # ref:1  wrong, margin -1
        ([3.0, 1.0], [0.0]),  # tied:1 accurate, spread 2, margin 1
    ]
    df = pl.DataFrame([{**r, "prompt": "p"} for r in rows])
    data = prepare("rewardbench2", df, "fixture")
    by_item = []
    for ex, role, slot in data.items.select("example", "role", "slot").iter_rows():
        c, rj = rewards_by_row[ex]
        by_item.append((c if role == "chosen" else rj)[slot])
    return data, np.array(by_item)


def test_rewardbench2_best_of_4_and_ties():
    data, rewards = rb2_data()
    per = per_example(data, rewards)
    assert per.filter(pl.col("subset") == "Focus")["correct"].to_list() == [1.0, 0.5, 0.0, 0.25]
    out = score("rewardbench2", per, ScoreOptions(n_boot=0))
    assert out["subsets"]["Focus"]["score"] == pytest.approx(100 * (1 + 0.5 + 0 + 0.25) / 4)
    # Ties: tied acc 1, ref acc 1/2; margin > spread on prompt 0 only (1.5 > 0.5; and
    # min(3, 1.5) > 0.5), not on prompt 1 (1 < 2; min(-1, 1) < 2); tie-break term
    # mean(tanh(1.5 / 0.5 - 1), tanh(-1 / 2 - 1)).
    ties = 0.3 * 1 + 0.3 * 0.5 + 0.2 * 0.5 + 0.2 * 0.5 + 0.01 * (math.tanh(2) + math.tanh(-1.5)) / 2
    assert out["subsets"]["Ties"]["score"] == pytest.approx(100 * ties)
    assert out["sections"]["ties"]["score"] == pytest.approx(100 * ties)
    assert out["overall"]["score"] == pytest.approx((43.75 + 100 * ties) / 2)
    assert out["sections"]["math"]["score"] is None
    boot = score("rewardbench2", per, ScoreOptions(n_boot=50, seed=1))
    assert boot["sections"]["ties"]["lo"] <= boot["sections"]["ties"]["hi"]


def test_rmbench_easy_normal_hard():
    rows = [
        ("chat", [3.0, 2.0, 1.0], [2.5, 1.5, 0.5]),  # hard 1, normal 1, easy 0; 6/9 cells
        ("chat", [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]),  # all ties: 0
        ("safety-refuse", [2.0, 2.0, 2.0], [1.0, 1.0, 1.0]),  # all 1
        ("safety-response", [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]),
        ("safety-response", [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]),
        ("safety-response", [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]),
    ]
    df = pl.DataFrame(
        {
            "id": [str(i) for i in range(len(rows))],
            "prompt": ["p"] * len(rows),
            "chosen": [["c", "cd", "cm"]] * len(rows),
            "rejected": [["r", "rd", "rm"]] * len(rows),
            "domain": [r[0] for r in rows],
        }
    )
    data = prepare("rmbench", df, "fixture")
    rewards = []
    for ex, role, slot in data.items.select("example", "role", "slot").iter_rows():
        rewards.append((rows[ex][1] if role == "chosen" else rows[ex][2])[slot])
    per = per_example(data, np.array(rewards))
    assert per["hard"][0] == 1.0 and per["normal"][0] == 1.0 and per["easy"][0] == 0.0
    assert per["correct"][0] == pytest.approx(6 / 9)
    out = score("rmbench", per, ScoreOptions(n_boot=0))
    sec = {k: v["score"] for k, v in out["sections"].items()}
    assert sec["chat"] == pytest.approx(100 * (6 / 9 + 0) / 2)
    assert sec["safety"] == pytest.approx(25.0)  # pooled: (1 + 0 + 0 + 0) / 4
    assert sec["math"] is None and sec["code"] is None
    assert out["overall"]["score"] == pytest.approx((100 / 3 + 25.0) / 2)
    # views = mean over domains present: easy (0 + 0.25) / 2, normal (0.5 + 0.25) / 2
    assert sec["easy"] == pytest.approx(12.5)
    assert sec["normal"] == pytest.approx(37.5)
    assert sec["hard"] == pytest.approx(37.5)
