"""Correlation statistics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rmselect.analysis.correlations import (
    adjust,
    bootstrap_ci,
    correlations,
    partial_spearman,
    r_threshold,
    vector_pearson,
)
from rmselect.analysis.data import Aligned


def test_paper_threshold_n40():
    # t_crit(0.975, 38) = 2.0244; 2.0244 / sqrt(38 + 2.0244^2) = 0.3120; the paper's 0.316 is 2/sqrt(40)
    assert r_threshold(40) == pytest.approx(0.3120, abs=1e-4)
    assert 2 / math.sqrt(40) == pytest.approx(0.316, abs=5e-4) != r_threshold(40)
    # n = 5: t_crit(0.975, 3) = 3.1824 → 3.1824 / sqrt(3 + 10.128) = 0.8783
    assert r_threshold(5) == pytest.approx(0.8783, abs=1e-4)
    assert math.isnan(r_threshold(2))


def test_holm_and_bh_by_hand():
    p = [0.01, 0.04, 0.03]
    # Holm: sorted 0.01*3=0.03, 0.03*2=0.06, max(0.04*1, 0.06)=0.06
    assert adjust(p, "holm") == pytest.approx([0.03, 0.06, 0.06])
    # BH: 0.01*3/1=0.03, 0.03*3/2=0.045, 0.04*3/3=0.04 → step-up min: 0.03, 0.04, 0.04
    assert adjust(p, "fdr_bh") == pytest.approx([0.03, 0.04, 0.04])
    out = adjust([0.02, float("nan")], "holm")
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1])


def test_partial_spearman_by_hand():
    # Spearman: r_xy = 0.9, r_xz = 0.9, r_yz = 0.8 (sum d^2 = 2, 2, 4 with n = 5)
    # partial = (0.9 - 0.9*0.8) / sqrt((1-0.81)(1-0.64)) = 0.18 / sqrt(0.0684) = 0.68825
    x = np.array([1, 2, 3, 4, 5.0])
    y = np.array([2, 1, 3, 4, 5.0])
    z = np.array([1, 2, 3, 5, 4.0])
    r, p = partial_spearman(x, y, np.log(z))
    assert r == pytest.approx(0.68825, abs=1e-4)
    # t = r sqrt(2 / (1 - r^2)) = 1.3417 on 2 df → p = 0.3118
    assert p == pytest.approx(0.3118, abs=2e-3)


def test_vector_pearson_matches_known_value():
    # x = 1..5, y = 2,4,5,4,5: r = 6 / sqrt(10 * 6) = 0.7746
    r = vector_pearson(np.array([1, 2, 3, 4, 5.0]), np.array([2, 4, 5, 4, 5.0]))
    assert float(r) == pytest.approx(0.774597, abs=1e-6)
    assert np.isnan(vector_pearson(np.ones(4), np.arange(4.0)))


def test_bootstrap_ci_of_exact_line_is_one_and_contains_estimate():
    x = np.arange(10.0)
    lo, hi = bootstrap_ci(x, 2 * x + 1, "pearson", 200, 0.95, seed=1)
    assert lo == pytest.approx(1.0) and hi == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    y = x + rng.normal(0, 3, 10)
    r = float(np.corrcoef(x, y)[0, 1])
    lo, hi = bootstrap_ci(x, y, "spearman", 300, 0.95, seed=1)
    assert -1 <= lo < hi <= 1
    lo, hi = bootstrap_ci(x, y, "pearson", 300, 0.95, seed=1)
    assert lo <= r <= hi


def _aligned(X, y, names=None, params=None):
    n = len(y)
    names = names or [f"m{i}" for i in range(n)]
    return Aligned(
        objective="bt",
        models=names,
        features=[f"f{j}" for j in range(X.shape[1])],
        X=X,
        y={s: np.asarray(y, float) for s in ("chat", "chat_hard", "safety", "reasoning",
                                              "overall")},
        family=names,
        params_b=np.asarray(params if params is not None else np.arange(1, n + 1), float),
        missing_policy="impute",
    )


def test_table_uses_complete_pairs_and_families():
    X = np.array([[1, 5], [2, np.nan], [3, 1], [4, 2], [5, 9.0]])
    y = [10, 20, 30, 40, 50]
    df = correlations({"bt": _aligned(X, y)}, n_boot=50, seed=0)
    row = df.filter((df["section"] == "overall") & (df["feature"] == "f0")).row(0, named=True)
    assert row["n"] == 5 and row["pearson_r"] == pytest.approx(1.0)
    assert row["spearman_rho"] == pytest.approx(1.0)
    row1 = df.filter((df["section"] == "overall") & (df["feature"] == "f1")).row(0, named=True)
    assert row1["n"] == 4  # the missing value drops one pair
    # f1 vs y on the pairs (5,10),(1,30),(2,40),(9,50): ranks (3,1,2,4) vs (1,2,3,4) → 0.4
    assert row1["spearman_rho"] == pytest.approx(0.4)
    # Holm over the two-test family: min(1, 2 p) for the smaller, max with it for the other
    p = sorted([row["pearson_p"], row1["pearson_p"]])
    holm = sorted([row["pearson_p_holm"], row1["pearson_p_holm"]])
    assert holm[0] == pytest.approx(min(1, 2 * p[0]))
    assert holm[1] == pytest.approx(max(holm[0], p[1]))
    assert row["missing_policy"] == "impute"
    assert df.height == 2 * 5  # 2 features x 5 sections
