"""SFT and DPO rows of the toy zoo (the post-training stage's data), from train pools."""

from __future__ import annotations

import random

from rmselect.toy.pairs import PAIR_MIX, Pair, Pools, draw_pair
from rmselect.toy.world import World


def _train_pairs(w: World, pools: dict[str, Pools], n: int, seed: int) -> list[Pair]:
    """``n`` non-tie pairs drawn from the train pools (shared by the SFT and DPO sets)."""
    rng = random.Random(seed)
    kinds = [k for k in PAIR_MIX if k != "tie"]
    weights = [PAIR_MIX[k] for k in kinds]
    return [draw_pair(rng, w, pools["train"], rng.choices(kinds, weights)[0]) for _ in range(n)]


def sft_rows(w: World, pools: dict[str, Pools], n: int, seed: int):
    """SFT conversations from train pools: the good side of a drawn pair."""
    return [
        {"messages": [{"role": "user", "content": p.prompt},
                      {"role": "assistant", "content": p.good}]}
        for p in _train_pairs(w, pools, n, seed)
    ]


def dpo_rows(w: World, pools: dict[str, Pools], n: int, seed: int):
    """DPO triples from train pools: the pair's good and bad sides."""
    return [
        {"prompt": p.prompt, "chosen": p.good, "rejected": p.bad}
        for p in _train_pairs(w, pools, n, seed)
    ]
