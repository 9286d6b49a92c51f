"""Coverage at top-k on hand-ranked lists."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rmselect.analysis.coverage import (
    coverage_at_k,
    coverage_table,
    parse_filters,
    passes,
    inclusion,
)
from rmselect.analysis.data import Aligned

NAMES = ["a", "b", "c", "d", "e", "f"]
# truth ranking: a > b > c > d > e > f
TRUTH = np.array([90, 80, 70, 60, 50, 40.0])
# feature ranking: c > a > e > b > f > d
FEAT = np.array([5, 3, 6, 0, 4, 1.0])


def test_coverage_by_hand():
    # k=1: {c} vs {a} → 0; k=2: {c,a} vs {a,b} → 1/2; k=3: {c,a,e} vs {a,b,c} → 2/3
    # k=4: {c,a,e,b} vs {a,b,c,d} → 3/4; k=6: everything → 1
    expect = {1: 0.0, 2: 0.5, 3: 2 / 3, 4: 0.75, 6: 1.0}
    for k, v in expect.items():
        assert coverage_at_k(NAMES, FEAT, TRUTH, k) == pytest.approx(v), k
    assert math.isnan(coverage_at_k(NAMES, FEAT, TRUTH, 7))


def test_missing_values_shrink_the_population():
    f = FEAT.copy()
    f[2] = np.nan  # c unknown → population a,b,d,e,f; feature order e > a > b > f > d
    # k=2: {e,a} vs {a,b} → 1/2
    assert coverage_at_k(NAMES, f, TRUTH, 2) == pytest.approx(0.5)


def test_ties_give_the_expected_coverage_under_random_tie_breaking():
    # Two models tied for first place share the one slot: 1/2 each, whatever their names.
    assert inclusion(np.array([1.0, 1.0, 0.0]), 1).tolist() == [0.5, 0.5, 0.0]
    names = ["a", "b", "c", "d", "e", "f"]
    truth = np.array([90, 80, 70, 60, 50, 40.0])  # a > b > c > d > e > f
    # feature: a = 9 above a tie {b, d, e, f} = 5, c = 1 last
    feat = np.array([9, 5, 1, 5, 5, 5.0])
    # k = 2: feature top-2 = a + one of {b,d,e,f} (1/4 each); truth top-2 = {a, b}
    #   E|A ∩ B| = 1 (a) + 1/4 (b) = 1.25 → 0.625 (name order would pick b: 1.0)
    assert coverage_at_k(names, feat, truth, 2) == pytest.approx(0.625)
    # k = 3: a + two of the four (1/2 each); truth {a, b, c}: 1 + 1/2 + 0 = 1.5 → 0.5
    assert coverage_at_k(names, feat, truth, 3) == pytest.approx(0.5)
    # k = 5: a, b, d, e, f certain (the tie group fits): truth top-5 misses f → 4/5
    assert coverage_at_k(names, feat, truth, 5) == pytest.approx(0.8)
    # renaming the models does not change it
    assert coverage_at_k(["z", "y", "x", "w", "v", "u"], feat, truth, 2) == pytest.approx(0.625)
    # ties in the truth too: truth tie {b, c} for place 2 → b, c 1/2 each
    t2 = np.array([90, 80, 80, 60, 50, 40.0])
    # feature k=2: a 1, b/d/e/f 1/4; truth: a 1, b 1/2, c 1/2 → 1 + 1/8 = 1.125 → 0.5625
    assert coverage_at_k(names, feat, t2, 2) == pytest.approx(0.5625)


def test_filters():
    flt = parse_filters([{"name": "main", "thresholds": {"5": 0.4, "10": 0.7}}])
    assert flt == {"main": {5: 0.4, 10: 0.7}}
    assert passes({5: 0.4, 10: 0.7}, flt["main"])
    assert not passes({5: 0.4, 10: 0.6}, flt["main"])
    assert not passes({5: 0.8}, flt["main"])  # k=10 unknown → does not pass


def test_table_flags_per_feature():
    al = Aligned("bt", NAMES, ["good", "feat"], np.column_stack([TRUTH, FEAT]),
                 {"overall": TRUTH}, NAMES, np.ones(6), "drop_feature")
    df = coverage_table({"bt": al}, [2, 3], {"f": {2: 0.6, 3: 0.6}})
    good = df.filter(df["feature"] == "good")
    assert good["coverage"].to_list() == [1.0, 1.0] and good["passes_f"].all()
    assert not df["boundary_tie"].any()
    feat = df.filter(df["feature"] == "feat")
    assert feat["coverage"].to_list() == pytest.approx([0.5, 2 / 3])
    assert not feat["passes_f"].any()
    assert set(df["missing_policy"]) == {"drop_feature"}
