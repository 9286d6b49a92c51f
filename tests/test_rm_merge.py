"""Regression merge-weight search: exhaustive, exact, finds a planted best vector."""

from __future__ import annotations

import numpy as np
import pytest

from rmselect.rm import merge


def test_grid_values():
    assert len(merge.grid_values(0.05)) == 21
    assert merge.grid_values(0.25).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    with pytest.raises(ValueError, match="divide 1"):
        merge.grid_values(0.3)


def test_finds_planted_best_vector_on_the_paper_grid():
    # w* in grid units (7, 1, 16, 3, -11) / 20: gcd 1 and 2x leaves the grid, so no other
    # grid vector is a positive multiple of it; labels follow w* exactly.
    w_star = np.array([0.35, 0.05, 0.8, 0.15, -0.55])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(800, 5))
    margin = x @ w_star
    x = x[np.abs(margin) > 1e-6]
    diff = x * np.sign(x @ w_star)[:, None]  # every pair correct under w*
    res = merge.search(diff, 0.05)
    assert res.n_vectors == 21**5 == 4_084_101
    assert res.weights == tuple(w_star.tolist())
    assert res.accuracy == 1.0
    assert merge.pair_accuracy(diff, [0.35, 0.05, 0.8, 0.2, -0.55]) < 1.0  # a neighbour is worse


def test_matches_brute_force_on_a_coarse_grid_including_ties_and_zero_verbosity():
    rng = np.random.default_rng(3)
    diff = rng.normal(size=(300, 5))
    diff[:40, 4] = 0.0  # c == 0 rows
    diff[40:60] = 0.0  # exact ties: never correct
    diff[60:80] = np.round(diff[60:80] * 4) / 4  # boundary cases on the grid
    for step in (0.25, 0.5, 1.0):
        fast, slow = merge.search(diff, step), merge.search_bruteforce(diff, step)
        assert fast.accuracy == pytest.approx(slow.accuracy)
        assert fast.weights == slow.weights  # first best in grid order
    zero = merge.search(np.zeros((5, 5)), 0.5)
    assert zero.accuracy == 0.0  # a tie is wrong


def test_verbosity_weight_is_non_positive():
    rng = np.random.default_rng(1)
    diff = rng.normal(size=(200, 5))
    diff[:, 4] = -np.abs(diff[:, 4]) * 5  # chosen responses are much shorter
    diff[:, :4] *= 0.01
    res = merge.search(diff, 0.1)
    assert res.weights[4] < 0 and all(w >= 0 for w in res.weights[:4])
    assert res.accuracy == 1.0


def test_bad_shapes():
    with pytest.raises(ValueError, match=r"\(pairs, 5\)"):
        merge.search(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="no validation pairs"):
        merge.search(np.zeros((0, 5)))


def test_exact_ties_at_the_interval_boundary_are_wrong():
    # In float, 49 * (1/49) = 0.9999999999999999, so floor(-a * (1/c)) puts the boundary of
    # pair P one grid step too low and counts its exact tie (k1 = 1, k5 = 1: -49 + 49 = 0) as
    # correct. P is truly correct only at k1 = 0, k5 = 1; the two Q pairs whenever k1 = 1.
    # True best: 2/3, first at (1, 0, 0, 0, 0); the misread boundary gives (1, 0, 0, 0, -1) 3/3.
    assert 49.0 * (1.0 / 49.0) < 1.0
    p = [-49.0, 0.0, 0.0, 0.0, -49.0]
    q = [1.0, 0.0, 0.0, 0.0, 0.0]
    diff = np.array([p, q, q])
    fast, slow = merge.search(diff, 1.0), merge.search_bruteforce(diff, 1.0)
    assert slow.weights == (1.0, 0.0, 0.0, 0.0, 0.0)
    assert fast.weights == slow.weights
    assert fast.accuracy == pytest.approx(2 / 3)
    # The mirror case for c < 0 (verbosity difference > 0): ties counted on the other side.
    for x in (49.0, 98.0, 3.0, 0.1):
        d2 = np.array([[x, 0, 0, 0, x], [-x, 0, 0, 0, -x], [1, 0, 0, 0, 0], [0, 0, 0, 0, -1]])
        for step in (1.0, 0.5, 0.25):
            f2, s2 = merge.search(d2, step), merge.search_bruteforce(d2, step)
            assert f2.weights == s2.weights and f2.accuracy == pytest.approx(s2.accuracy)
