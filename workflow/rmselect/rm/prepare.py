"""The RM trainer's tokenized data: what one run trains and validates on.

:class:`Prepared` holds the token ids of a run's training and validation data;
:class:`Shared` is what every seed of one (model, objective, lr) call shares, loaded once per
process by :func:`rmselect.rm.train.load_shared`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from rmselect.rm.run_config import RunConfig


@dataclass
class Prepared:
    """Token ids of the run's data."""

    train_ids: list[list[int]]  # bt: chosen ids; regression: response ids
    train_rej: list[list[int]] | None  # bt only
    targets: list[tuple[float, ...]] | None  # regression only
    val_chosen: list[list[int]]
    val_rejected: list[list[int]]
    truncation: dict[str, Any]
    #: Pairs dropped per split because their two responses are identical (rm.identical_pairs).
    identical_dropped: dict[str, int] = field(default_factory=dict)

    def length(self, i: int) -> int:
        if self.train_rej is not None:
            return max(len(self.train_ids[i]), len(self.train_rej[i]))
        return len(self.train_ids[i])

    def rows(self, idx: Sequence[int]) -> list[list[int]]:
        """Sequences of a micro-batch: all chosen then all rejected (bt), or the rows."""
        if self.train_rej is not None:
            return [self.train_ids[i] for i in idx] + [self.train_rej[i] for i in idx]
        return [self.train_ids[i] for i in idx]


def prepare_data(cfg: RunConfig, tok: Any, template: str | None,
                 identical: str = "drop") -> Prepared:
    from rmselect.rm import data as D

    tr_stats, va_stats = D.TruncationStats(), D.TruncationStats()
    tr_drop: dict[str, int] = {}
    va_drop: dict[str, int] = {}
    if cfg.objective == "bt":
        pairs = D.load_pairs(cfg.train_data, "train", cfg.max_train_examples, identical,
                             tr_drop)
        prompts = [p.prompt for p in pairs]
        ch = D.tokenize_responses(tok, prompts, [p.chosen for p in pairs], template,
                                  cfg.max_length, tr_stats)
        rj = D.tokenize_responses(tok, prompts, [p.rejected for p in pairs], template,
                                  cfg.max_length, tr_stats)
        targets = None
    else:
        rows = D.load_rated(cfg.train_data, "train", cfg.max_train_examples)
        ch = D.tokenize_responses(tok, [r.prompt for r in rows], [r.response for r in rows],
                                  template, cfg.max_length, tr_stats)
        rj = None
        targets = [r.scores for r in rows]
    val = D.load_pairs(cfg.val_data, "validation", cfg.max_val_pairs, identical, va_drop)
    vp = [p.prompt for p in val]
    vc = D.tokenize_responses(tok, vp, [p.chosen for p in val], template, cfg.max_length, va_stats)
    vr = D.tokenize_responses(tok, vp, [p.rejected for p in val], template, cfg.max_length, va_stats)
    return Prepared(ch, rj, targets, vc, vr,
                    {"train": tr_stats.as_dict(), "validation": va_stats.as_dict()},
                    {"train": tr_drop.get("identical", 0),
                     "validation": va_drop.get("identical", 0)})


@dataclass
class Shared:
    """What every seed of one (model, objective, lr) shares: loaded once per process."""

    name: str
    tok: Any
    template: str
    prep: Prepared
    setup_s: float
