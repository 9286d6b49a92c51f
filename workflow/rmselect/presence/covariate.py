"""The regression estimator of a domain's mean presence score, with a covariate known for
every document of the sampling pool.

A presence feature is a model's mean score over a domain. Documents differ far more from
each other than the scoring noise within one (docs/cost.md: a per-document sd of 0.5–0.76
nats on real text), so a plain mean needs ~20,000 documents per domain for a 95 % half-width
of 0.01 nats. Much of that spread is how *predictable* a document is, which a compressor
sees too: the zlib ratio of a document's first characters (:func:`zlib_ratio`) correlates
with SmolLM2's per-document score at ρ ≈ −0.8 (docs/cost.md). The sampler computes it, on
CPU, for every document of the pool it draws from (``manifest.json``: pool size, mean, sd)
and for each sampled document (the corpus shards' ``covariate`` column). The domain mean is
then estimated by the textbook regression estimator under double sampling (Cochran,
*Sampling Techniques*, 3rd ed., §7.1 and §12.6):

    ȳ_reg = ȳ + b · (X̄_pool − x̄),   b = the least-squares slope of y on x in the sample,

with variance ``S_e² (1/n − 1/n') + S_y² / n'`` (``S_e²`` the residual variance, ``n'``
the pool size), i.e. ``S_y² (1 − ρ²) / n + ρ² S_y² / n'``. The estimator is consistent
whatever the covariate; a useless covariate only leaves the plain mean's variance. Where
the sample is the whole pool (the toy zoo's 64 documents of 64) the adjustment is zero.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np


#: The two-sided 95 % normal quantile (rmselect.presence.precision uses it too). This module
#: imports nothing of the package: the sampling rule's code hash follows its imports.
Z95 = 1.959963984540054
#: Name of the covariate (the corpus column and the manifest's ``covariate.name``).
NAME = "zlib_ratio"
#: Characters per scored token the covariate reads: a document's first ``max_tokens × 4``
#: characters approximate the text the scorer sees (4 characters per token in English).
CHARS_PER_TOKEN = 4
#: zlib level: 1 is the fastest and correlates as well as 6 or 9 (docs/cost.md).
LEVEL = 1


def zlib_ratio(text: str, chars: int) -> float:
    """Compressed over raw UTF-8 bytes of the first ``chars`` characters (1.0 for empty)."""
    raw = text[:chars].encode()
    return len(zlib.compress(raw, LEVEL)) / len(raw) if raw else 1.0


@dataclass
class Moments:
    """Count, sum and sum of squares of the covariate over a pool (the sampler's
    ``StreamCounts.x_n, x_sum, x_sq``) and the mean and sd they give."""

    n: int = 0
    total: float = 0.0
    sq: float = 0.0

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else math.nan

    @property
    def sd(self) -> float:
        if self.n < 2:
            return math.nan
        return math.sqrt(max(0.0, (self.sq - self.total * self.total / self.n) / (self.n - 1)))


@dataclass(frozen=True)
class Estimate:
    """A domain mean and its 95 % half-width, with what they rest on."""

    estimate: float
    halfwidth: float
    estimator: str  # "regression" or "mean"
    mean: float  # the plain mean of the scored documents
    halfwidth_mean: float
    slope: float | None = None
    r2: float | None = None
    pool_docs: int | None = None


def plain(y: np.ndarray, z: float = Z95) -> Estimate:
    """The plain mean and its half-width ``z · s / √n``."""
    n = len(y)
    m = float(np.mean(y)) if n else math.nan
    hw = z * float(np.std(y, ddof=1)) / math.sqrt(n) if n > 1 else math.nan
    return Estimate(m, hw, "mean", m, hw)


def regression(y: np.ndarray, x: np.ndarray, pool_mean: float, pool_docs: int,
               z: float = Z95) -> Estimate:
    """The double-sampling regression estimate of the pool's population mean (module
    docstring); the plain mean where fewer than 3 documents or a constant covariate leave
    no slope."""
    base = plain(y, z)
    n = len(y)
    if n < 3 or pool_docs < n or not math.isfinite(pool_mean) or float(np.var(x)) <= 0.0:
        return base
    xc, yc = x - x.mean(), y - y.mean()
    b = float(xc @ yc / (xc @ xc))
    resid = yc - b * xc
    s_e2 = float(resid @ resid) / (n - 2)
    s_y2 = float(yc @ yc) / (n - 1)
    var = s_e2 * (1.0 / n - 1.0 / pool_docs) + s_y2 / pool_docs
    r2 = 1.0 - float(resid @ resid) / float(yc @ yc) if float(yc @ yc) > 0 else 0.0
    return Estimate(float(y.mean() + b * (pool_mean - x.mean())), z * math.sqrt(max(var, 0.0)),
                    "regression", base.mean, base.halfwidth, b, r2, int(pool_docs))


def n_for_halfwidth(std: float, r2: float, halfwidth: float, pool_docs: int,
                    z: float = Z95) -> int | None:
    """Documents for a ``z``-level half-width of at most ``halfwidth`` with the regression
    estimator: ``n = S²(1 − R²) / (h²/z² − R² S² / n')``; None when the pool is too small
    for ``halfwidth`` (its own term ``R² S² / n'`` already exceeds it, or the n exceeds the
    pool): sample a larger pool (``pool_docs``)."""
    if halfwidth <= 0:
        raise ValueError(f"halfwidth must be positive, got {halfwidth}")
    r2 = min(max(r2, 0.0), 1.0)
    room = (halfwidth / z) ** 2 - r2 * std * std / pool_docs
    if room <= 0:
        return None
    n = max(3, math.ceil(std * std * (1.0 - r2) / room))
    return n if n <= pool_docs else None
