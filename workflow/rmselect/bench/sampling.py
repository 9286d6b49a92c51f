"""Seeded random subsamples for small-scale screening.

Small mode evaluates ``n`` items per leaf subtask, drawn uniformly without replacement with a
generator seeded by (study seed, leaf task name). The draw does not depend on the model, so
every model sees the same items and small-mode scores are comparable across models. Indices
are returned sorted: lm-eval 0.4.13 maps evaluated documents back to ``samples[task][i]`` in
dataset order, so unsorted indices would mislabel ``doc_id`` in its logged samples.
"""

from __future__ import annotations

import hashlib
import random


def derived_seed(seed: int, key: str) -> int:
    """A stable 64-bit seed from the study seed and a name (independent of PYTHONHASHSEED)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def subsample_indices(n_total: int, n: int, seed: int, key: str) -> list[int] | None:
    """Sorted indices of ``n`` of ``n_total`` items, or ``None`` when ``n >= n_total`` (all)."""
    if n_total < 0 or n < 1:
        raise ValueError(f"need n_total >= 0 and n >= 1, got {n_total}, {n}")
    if n >= n_total:
        return None
    rng = random.Random(derived_seed(seed, key))
    return sorted(rng.sample(range(n_total), n))
