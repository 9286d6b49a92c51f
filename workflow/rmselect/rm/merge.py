"""Merge-vector search for regression RMs: one scalar from five attribute predictions.

A pair (chosen, rejected) is scored correct under weights ``w`` when
``(pred_chosen - pred_rejected) . w > 0`` (a tie is wrong, as in RewardBench). The grid is
``w_1..w_4 in {0, s, ..., 1}`` and ``w_5 in {0, -s, ..., -1}`` (verbosity is penalised);
with the paper's step ``s = 0.05`` that is 21^5 = 4,084,101 vectors.

The search is exhaustive and vectorised: ``D[:, 2:] @ G3`` (pairs x n^3) is computed once,
then for each block of ``(w_1, w_2)`` values the first two attributes are added as a
broadcast and the positives counted. Nothing is approximated, so the answer is the grid's
true best (the first one in grid order when several tie).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

N_ATTR = 5
#: Sign of each weight: the first four attributes count for a response, verbosity against.
WEIGHT_SIGNS = np.array([1.0, 1.0, 1.0, 1.0, -1.0])


@dataclass(frozen=True)
class MergeResult:
    weights: tuple[float, float, float, float, float]
    accuracy: float
    n_pairs: int
    n_vectors: int


def grid_values(step: float) -> np.ndarray:
    """``0, step, ..., 1``; ``1/step`` must be a whole number."""
    n = round(1.0 / step)
    if n < 1 or abs(n * step - 1.0) > 1e-9:
        raise ValueError(f"merge grid step {step} must divide 1 (e.g. 0.05, 0.1, 0.25)")
    return np.arange(n + 1, dtype=np.float64) / n


def pair_accuracy(diff: np.ndarray, weights: Sequence[float]) -> float:
    """Share of pairs with ``diff . w > 0`` (float64, the reference the search must match)."""
    d = np.asarray(diff, dtype=np.float64)
    return float(np.mean(d @ np.asarray(weights, dtype=np.float64) > 0))


def _settle(t: np.ndarray, a: np.ndarray, c: np.ndarray, correct_above: bool) -> None:
    """Move the boundary index ``t`` (in place) to where ``a + c k > 0`` changes truth.

    ``t`` comes from ``floor``/``ceil`` of ``-a / c`` computed as a product with ``1 / c``,
    which can land one step off when ``a + c k`` is exactly 0 (49 · (1/49) < 1 in float):
    a tie would then count as correct. The condition itself is evaluated at ``t - 1`` and
    ``t`` instead. With ``correct_above`` (c > 0) ``t`` becomes the smallest k that is
    correct; otherwise (c < 0) the smallest k that is not.
    """
    cc = c[:, None]
    if correct_above:
        t -= (a + cc * (t - 1)) > 0  # the step below is correct too
        t += (a + cc * t) <= 0  # t itself is not correct
    else:
        t -= (a + cc * (t - 1)) <= 0  # the step below is already not correct
        t += (a + cc * t) > 0  # t itself is still correct


def search(diff: np.ndarray, step: float = 0.05) -> MergeResult:
    """Best weight vector on the grid for the pair differences ``diff`` (pairs x 5).

    ``diff[i] = pred(chosen_i) - pred(rejected_i)``. In integer grid units
    ``w = k * step``, pair i is correct when ``a_i + k_5 c_i > 0`` with
    ``a_i = sum_{j<5} k_j d_ij`` and ``c_i = -d_i5``: for every ``(k_1..k_4)`` the
    ``k_5`` values that satisfy it form one interval, so each pair adds +1 on an interval
    (a difference array, cumulated) instead of being tested 21 times.
    """
    d = np.asarray(diff, dtype=np.float64)
    if d.ndim != 2 or d.shape[1] != N_ATTR:
        raise ValueError(f"diff must be (pairs, 5), got {d.shape}")
    if d.shape[0] == 0:
        raise ValueError("no validation pairs to search the merge weights on")
    vals = grid_values(step)
    n = len(vals)
    top = n - 1  # largest integer weight
    k = np.arange(n, dtype=np.float64)
    ds = d * WEIGHT_SIGNS
    c = ds[:, 4]
    # Rows grouped by the sign of c so every group is a contiguous slice.
    order = np.concatenate([np.flatnonzero(c > 0), np.flatnonzero(c < 0), np.flatnonzero(c == 0)])
    ds, c = ds[order], c[order]
    n_pos, n_neg = int((c > 0).sum()), int((c < 0).sum())
    g3 = np.stack(np.meshgrid(k, k, k, indexing="ij"), -1).reshape(-1, 3)  # (k2, k3, k4)
    base = ds[:, 1:4] @ g3.T  # (pairs, n^3)
    n_combo = g3.shape[0]
    width = n + 1  # k5 in 0..top plus one overflow slot for the difference array
    offs = (np.arange(n_combo, dtype=np.int64) * width)[None, :]
    inv_pos = (1.0 / c[:n_pos])[:, None]
    inv_neg = (1.0 / -c[n_pos : n_pos + n_neg])[:, None]
    a = np.empty_like(base)
    t = np.empty_like(base)
    ti = np.empty(base.shape, dtype=np.int64)
    best_acc, best = -1, (0, 0, 0)
    for k1 in range(n):
        np.add(base, (ds[:, 0] * k1)[:, None], out=a)  # score without the k5 term
        diff = np.zeros(n_combo * width, dtype=np.int64)
        if n_pos:  # c > 0: correct for k5 >= the smallest k with a + c k > 0
            sl = slice(0, n_pos)
            np.multiply(a[sl], -inv_pos, out=t[sl])
            np.floor(t[sl], out=t[sl])
            t[sl] += 1
            _settle(t[sl], a[sl], c[sl], correct_above=True)
            np.clip(t[sl], 0, top + 1, out=t[sl])
            np.add(t[sl], offs, out=ti[sl], casting="unsafe")
            diff += np.bincount(ti[sl].ravel(), minlength=n_combo * width)
        if n_neg:  # c < 0: correct for k5 below the smallest k with a + c k <= 0
            sl = slice(n_pos, n_pos + n_neg)
            np.multiply(a[sl], inv_neg, out=t[sl])
            np.ceil(t[sl], out=t[sl])
            _settle(t[sl], a[sl], c[sl], correct_above=False)
            np.clip(t[sl], 0, top + 1, out=t[sl])
            np.add(t[sl], offs, out=ti[sl], casting="unsafe")
            diff[::width] += n_neg
            diff -= np.bincount(ti[sl].ravel(), minlength=n_combo * width)
        if n_pos + n_neg < len(c):  # c == 0: correct for every k5 when a > 0
            diff[::width] += np.count_nonzero(a[n_pos + n_neg :] > 0, axis=0)
        counts = np.cumsum(diff.reshape(n_combo, width), axis=1)[:, :n]  # (n^3, n)
        flat = int(np.argmax(counts))
        if counts.flat[flat] > best_acc:
            best_acc = int(counts.flat[flat])
            best = (k1, *divmod(flat, n))
    k1, combo, k5 = best
    ints = np.array([k1, *g3[combo].astype(int), k5])
    w = tuple(float(round(v * WEIGHT_SIGNS[j] / top, 10)) for j, v in enumerate(ints))
    w = tuple(0.0 if x == 0 else x for x in w)  # no -0.0
    return MergeResult(
        weights=w,  # type: ignore[arg-type]
        accuracy=pair_accuracy(d, w),
        n_pairs=int(d.shape[0]),
        n_vectors=n**N_ATTR,
    )


def search_bruteforce(diff: np.ndarray, step: float) -> MergeResult:
    """Every grid vector scored directly (slow; a reference for tests on coarse grids)."""
    d = np.asarray(diff, dtype=np.float64)
    vals = grid_values(step)
    grid = np.stack(np.meshgrid(*([vals] * N_ATTR), indexing="ij"), -1).reshape(-1, N_ATTR)
    grid = grid * WEIGHT_SIGNS
    acc = np.mean(d @ grid.T > 0, axis=0)
    i = int(np.argmax(acc))
    w = tuple(0.0 if x == 0 else float(round(x, 10)) for x in grid[i])
    return MergeResult(w, float(acc[i]), int(d.shape[0]), len(grid))  # type: ignore[arg-type]


def pair_diff(chosen: np.ndarray, rejected: np.ndarray) -> np.ndarray:
    """``chosen - rejected`` predictions (pairs x 5)."""
    c, r = np.asarray(chosen, dtype=np.float64), np.asarray(rejected, dtype=np.float64)
    if c.shape != r.shape:
        raise ValueError(f"chosen {c.shape} and rejected {r.shape} predictions differ in shape")
    return c - r
