"""Exact solvers of the selection model's penalised least squares, along alpha paths.

The objective is scikit-learn's ``ElasticNet`` one, on a centred design ``Z`` (n × p) and
centred target ``y``::

    1/(2n)·||y − Zw||² + α·ρ·||w||₁ + α(1 − ρ)/2·||w||²

Coordinate descent (``ElasticNet``) stops at a relative duality gap of 1e-4 or after
``max_iter`` sweeps. With n ≈ 36 models and p up to ~12,000 correlated polynomial terms it
runs out of sweeps at every alpha below ~0.01 and returns an iterate that depends on
``max_iter`` (coefficients 0.1–10 away from the optimum; seconds per fit). Here ridge and
the elastic net are solved to machine precision and the lasso until its optimality (KKT)
conditions hold to 1e-6·α, with every alpha of the grid in one call:

* ρ = 0 (ridge): w = Zᵀ(ZZᵀ + nα·I)⁻¹y, the solution ``Ridge(nα)`` gives in closed form,
  from one eigendecomposition of the n × n matrix ZZᵀ.
* 0 < ρ < 1: the dual in the n-vector θ (the residual y − Zw),
  max −½||θ||² + θᵀy − 1/(2λ₂)·||S_λ₁(Zᵀθ)||² with λ₁ = nαρ, λ₂ = nα(1 − ρ) and S the soft
  threshold, is concave with a piecewise-linear gradient; semismooth Newton (each step one
  n × n solve of I + Z_A Z_Aᵀ/λ₂ over the active terms A) with an Armijo line search converges
  in a few steps; w = S_λ₁(Zᵀθ)/λ₂. Alphas are solved from the largest down, each started from
  the previous θ.
* ρ = 1 (lasso): proximal-point steps with a shrinking proximal weight, each an elastic net
  solved as above (:func:`lasso_proximal`), alphas from the largest down, each started from
  the previous solution, until the lasso's optimality (KKT) conditions hold to 1e-6·α.

:func:`rmselect.analysis.selection_model` tests compare each against ``ElasticNet`` run to a
tight tolerance.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
from sklearn.linear_model import enet_path
from threadpoolctl import ThreadpoolController

#: Convergence of the dual Newton: squared gradient norm relative to max(1, ||y||²).
NEWTON_TOL = 1e-20
NEWTON_MAX_ITER = 500


_CONTROLLER: list[ThreadpoolController] = []


def single_threaded_blas():  # noqa: ANN201 (a context manager)
    """Context limiting BLAS to one thread (the library scan is done once per process)."""
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1, user_api="blas")


def ridge_path(Z: np.ndarray, y: np.ndarray, alphas: Sequence[float]) -> list[np.ndarray]:
    """Ridge coefficients (``Ridge(alpha * n)``) for each alpha, from one n × n eigensystem.

    w = Zᵀ(ZZᵀ + nα·I)⁻¹y (the kernel form of the closed-form solution; n ≪ p here).
    """
    n = len(y)
    ev, U = np.linalg.eigh(Z @ Z.T)
    uy = U.T @ y
    return [Z.T @ (U @ (uy / (np.maximum(ev, 0.0) + a * n))) for a in alphas]


def _soft(c: np.ndarray, t: float) -> np.ndarray:
    return np.sign(c) * np.maximum(np.abs(c) - t, 0.0)


def enet_dual_newton(
    Zt: np.ndarray, y: np.ndarray, alpha: float, l1_ratio: float,
    theta: np.ndarray | None = None, K: np.ndarray | None = None,
    shift: np.ndarray | None = None, max_iter: int = NEWTON_MAX_ITER,
) -> tuple[np.ndarray, np.ndarray]:
    """(w, θ) of the elastic net at 0 < l1_ratio < 1 by semismooth Newton on the dual.

    ``Zt`` is the transposed design (p × n, C order: rows are terms); ``K`` = ZZᵀ, used to
    form the Newton matrix from the inactive terms when they are fewer. ``shift`` = v
    centres the ridge term at v (penalty λ₂/2·||w − v||², the proximal step of
    :func:`lasso_proximal`): w = S_λ₁(Zᵀθ + λ₂v)/λ₂.
    """
    n = len(y)
    lam1, lam2 = n * alpha * l1_ratio, n * alpha * (1.0 - l1_ratio)
    th = y.copy() if theta is None else theta.copy()
    K = Zt.T @ Zt if K is None else K
    b = 0.0 if shift is None else lam2 * shift

    def parts(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        c = Zt @ t + b
        s = _soft(c, lam1)
        return c, s, float(-0.5 * t @ t + t @ y - 0.5 / lam2 * s @ s)

    c, s, D = parts(th)
    scale = max(1.0, float(y @ y))
    for _ in range(max_iter):
        act = np.abs(c) > lam1
        ZA = Zt[act]
        g = y - th - ZA.T @ s[act] / lam2
        gg = float(g @ g)
        if gg <= NEWTON_TOL * scale:
            break
        if 2 * int(act.sum()) > len(act):
            Zi = Zt[~act]
            KA = K - Zi.T @ Zi
        else:
            KA = ZA.T @ ZA
        d = np.linalg.solve(np.eye(n) + KA / lam2, g)
        step, gd = 1.0, float(g @ d)
        while True:
            c2, s2, D2 = parts(th + step * d)
            if D2 >= D + 1e-4 * step * gd or step < 1e-10:
                break
            step *= 0.5
        if D2 <= D and step < 1e-10:  # no ascent left: at the optimum to rounding
            break
        th, c, s, D = th + step * d, c2, s2, D2
    return s / lam2, th


def lasso_path(Z: np.ndarray, y: np.ndarray, alphas: Sequence[float],
               max_iter: int = 10000) -> list[np.ndarray]:
    """Lasso coefficients at each alpha (in the given order), each checked against the
    lasso's optimality (KKT) conditions.

    Alphas are solved from the largest down, each by :func:`lasso_proximal` started from the
    previous alpha's solution (continuation). LARS (``lars_path``) was used here before: on a
    few models and thousands of nearly collinear polynomial terms its path saturates or drops
    regressors long before the grid's small alphas (KKT violations of 10²–10³ × alpha on the
    paper-scale study), and re-solving those from zero took most of the analysis' time. A
    solution that still fails the check is re-solved by coordinate descent
    (:func:`_lasso_cd`, the reference's solver).
    """
    out: list[np.ndarray] = [np.empty(0)] * len(alphas)
    w: np.ndarray | None = None
    for i in np.argsort(alphas)[::-1]:
        a = float(alphas[i])
        w_new = lasso_proximal(Z, y, a, w0=w)
        if w_new is None or not _lasso_kkt(Z, y, w_new, a):
            w_new = _lasso_cd(Z, y, a, max_iter)
        out[i] = w = w_new
    return out


def lasso_proximal(Z: np.ndarray, y: np.ndarray, alpha: float,
                   max_outer: int = 300, w0: np.ndarray | None = None) -> np.ndarray | None:
    """The lasso by the proximal point method: w_{k+1} = argmin lasso(w) + σ_k/2·||w − w_k||²,
    each step an elastic net solved exactly by :func:`enet_dual_newton`.

    σ starts at max(α/10, 1e-4) on standardised terms and shrinks 0.3× per step (down to
    α/1000): the fixed point is the lasso optimum whatever σ, and a shrinking σ makes the
    method converge superlinearly (the augmented Lagrangian view of SSNAL, Li, Sun & Toh
    2018), 3–7 steps here instead of up to hundreds at a fixed σ. Stops when the lasso's KKT
    conditions hold; None if they do not after ``max_outer`` steps. ``w0`` starts the
    iteration (the previous alpha's solution; the dual start is then its residual).
    """
    sigma = max(0.1 * alpha, 1e-4)
    Zt = np.ascontiguousarray(Z.T)
    K = Z @ Z.T
    if w0 is None:
        w, th = np.zeros(Z.shape[1]), y.copy()
    else:
        w, th = w0.copy(), y - Z @ w0
    for _ in range(max_outer):
        a_en, l1 = alpha + sigma, alpha / (alpha + sigma)  # λ₁ = nα, λ₂ = nσ
        w, th = enet_dual_newton(Zt, y, a_en, l1, th, K, shift=w, max_iter=50)
        if _lasso_kkt(Z, y, w, alpha):
            return w
        sigma = max(0.3 * sigma, 1e-3 * alpha)
    return None


def _lasso_kkt(Z: np.ndarray, y: np.ndarray, w: np.ndarray, alpha: float,
               rtol: float = 1e-6) -> bool:
    """Whether ``w`` satisfies the lasso's optimality conditions to ``rtol`` · alpha."""
    if not np.all(np.isfinite(w)):
        return False
    g = Z.T @ (y - Z @ w) / len(y)
    act = w != 0
    ok_in = np.all(np.abs(g[~act]) <= alpha * (1 + rtol))
    ok_act = np.all(np.abs(g[act] - alpha * np.sign(w[act])) <= alpha * rtol)
    return bool(ok_in and ok_act)


def _lasso_cd(Z: np.ndarray, y: np.ndarray, alpha: float, max_iter: int) -> np.ndarray:
    """The lasso by coordinate descent (``ElasticNet``'s solver), the last fallback."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, coefs, _ = enet_path(np.asfortranarray(Z), y, l1_ratio=1.0, alphas=[alpha],
                                max_iter=max_iter, tol=1e-4, precompute=False)
    return coefs[:, 0]


def solve_path(
    Z: np.ndarray, y: np.ndarray, alphas: Sequence[float], l1_ratio: float
) -> list[tuple[np.ndarray, float]]:
    """(coef, intercept) at each alpha (in the given order) for an uncentred (Z, y).

    BLAS runs single-threaded here: these are many small products (n ≈ 36 rows), where
    OpenBLAS threads cost far more than they save (20× slower on a busy 2-core machine);
    parallelism comes from running folds in separate processes.
    """
    with single_threaded_blas():
        return _solve_path(Z, y, alphas, l1_ratio)


def _solve_path(
    Z: np.ndarray, y: np.ndarray, alphas: Sequence[float], l1_ratio: float
) -> list[tuple[np.ndarray, float]]:
    xm, ym = Z.mean(axis=0), float(np.mean(y))
    Zc, yc = Z - xm, y - ym
    if l1_ratio == 0:
        coefs = ridge_path(Zc, yc, alphas)
    elif l1_ratio == 1:
        coefs = lasso_path(Zc, yc, alphas)
    else:
        coefs = [np.empty(0)] * len(alphas)
        theta = None
        Zt = np.ascontiguousarray(Zc.T)
        K = Zc @ Zc.T
        for i in np.argsort(alphas)[::-1]:
            coefs[i], theta = enet_dual_newton(Zt, yc, float(alphas[i]), l1_ratio, theta, K)
    return [(c, float(ym - xm @ c)) for c in coefs]
