"""Token log-probabilities of a causal LM without full-vocabulary logits.

``model(input_ids).logits`` materialises ``batch × length × vocabulary`` logits: 32,768
tokens × Gemma's 256k vocabulary × 2 bytes ≈ 16.8 GB, and Gemma-2's final-logit softcapping
makes two or three more copies. Presence scores and the probe's zero-shot feature need one
number per position, ``log p(t_{i+1} | t_≤i)``, so this module runs the trunk (the model's base
model, ``model.base_model``) to its last hidden state, keeps the positions that have a target,
and applies the LM head, the model's own logit transform and ``log_softmax`` over slices of at
most :func:`chunk_positions` positions. Peak logit memory is then ``chunk × vocabulary``
floats, whatever the batch.

The logit transform is the one the model's ``forward`` applies after its head, read from the
config:

* ``final_logit_softcapping`` (Gemma-2, Gemma-3): ``cap · tanh(logits / cap)``;
* ``logit_scale`` (Cohere): ``logits · scale``;
* ``logits_scaling`` (Granite): ``logits / scaling``.

A model whose head or trunk cannot be found (``get_output_embeddings()`` is None, e.g. some
remote-code models) falls back to the full forward; :func:`split_lm` says which one applies.
So does a model whose own forward transforms the logits some other way: before its first
batch, :func:`checked_split` compares the split on a few tokens with ``model(...).logits``
and keeps the full forward (with a warning) when they differ. Log-probabilities are computed
in float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import logging

import torch

log = logging.getLogger("rmselect.logprobs")

#: Bytes of float32 logits one slice may hold (several copies are live during log_softmax:
#: the head's output, its float32 copy/softcap, the log-softmax result).
LOGIT_BYTES = 256 * 2**20
#: Live float32 copies of a slice's logits counted against :data:`LOGIT_BYTES`.
LOGIT_COPIES = 3


@dataclass(frozen=True)
class SplitLM:
    """The trunk, the LM head and the head's logit transform of a causal LM."""

    trunk: Any
    head: Any
    softcap: float | None = None
    scale: float = 1.0

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """float32 logits of ``hidden`` (``[positions, hidden]``), transformed as the model does."""
        out = self.head(hidden)
        if self.scale != 1.0:
            out = out * self.scale
        if self.softcap:
            out = torch.tanh(out / self.softcap) * self.softcap
        return out.float()


def split_lm(model: Any) -> SplitLM | None:
    """Trunk, head and logit transform of ``model``; None when it cannot be split safely."""
    cfg = getattr(model, "config", None)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    trunk = getattr(model, "base_model", None)
    if head is None or trunk is None or trunk is model:
        return None
    softcap = getattr(cfg, "final_logit_softcapping", None)
    scale = float(getattr(cfg, "logit_scale", None) or 1.0)
    if getattr(cfg, "logits_scaling", None):
        scale /= float(cfg.logits_scaling)
    return SplitLM(trunk, head, float(softcap) if softcap else None, scale)


@torch.no_grad()
def checked_split(model: Any, ids: torch.Tensor, mask: torch.Tensor) -> SplitLM | None:
    """:func:`split_lm`, verified once per model against its own forward on the first row's
    first (up to 8) tokens; None (full forward) when they disagree by more than 1e-3."""
    cached = getattr(model, "_rmselect_split", False)
    if cached is not False:
        return cached
    split = split_lm(model)
    if split is not None:
        n = int(min(8, int(mask[0].sum())))
        probe_ids, probe_mask = ids[:1, :n], mask[:1, :n]
        full = model(input_ids=probe_ids, attention_mask=probe_mask).logits[0].float()
        hid = split.trunk(input_ids=probe_ids, attention_mask=probe_mask, use_cache=False)[0][0]
        diff = (torch.log_softmax(full, -1) - torch.log_softmax(split.logits(hid), -1)).abs().max()
        if not torch.isfinite(diff) or float(diff) > 1e-3:
            log.warning("%s: the trunk + head split differs from the model's logits by %.3g; "
                        "using full-vocabulary logits", type(model).__name__, float(diff))
            split = None
    try:
        model._rmselect_split = split
    except AttributeError:  # pragma: no cover - exotic modules refusing attributes
        pass
    return split


def chunk_positions(vocab_size: int, logit_bytes: int = LOGIT_BYTES) -> int:
    """Positions per head slice so that ``LOGIT_COPIES`` float32 copies fit ``logit_bytes``."""
    return max(1, int(logit_bytes // (LOGIT_COPIES * 4 * max(1, int(vocab_size)))))


def vocab_size(model: Any) -> int:
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is not None and getattr(head, "weight", None) is not None:
        return int(head.weight.shape[0])
    return int(model.config.vocab_size)


def gather_logprobs(split: SplitLM, hidden: torch.Tensor, targets: torch.Tensor,
                    chunk: int) -> torch.Tensor:
    """``log p(targets[k] | hidden[k])`` (float32) for ``hidden [P, H]``, ``targets [P]``,
    computing the head over at most ``chunk`` positions at a time."""
    out = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)
    for a in range(0, hidden.shape[0], max(1, chunk)):
        b = min(a + chunk, hidden.shape[0])
        lp = torch.log_softmax(split.logits(hidden[a:b]), dim=-1)
        out[a:b] = lp.gather(-1, targets[a:b, None].to(lp.device)).squeeze(-1)
        del lp
    return out


@dataclass
class Forward:
    """Per-row token log-probabilities of one batch (and the trunk's hidden states if asked)."""

    logprobs: list[torch.Tensor]  # row r: log p(ids[r, s+1] | ids[r, ≤s]) for s in spans[r]
    hidden_states: tuple[torch.Tensor, ...] | None = None


@torch.no_grad()
def batch_logprobs(
    model: Any,
    ids: torch.Tensor,
    mask: torch.Tensor,
    spans: Sequence[tuple[int, int]],
    *,
    chunk: int | None = None,
    output_hidden_states: bool = False,
) -> Forward:
    """Log-probabilities of the tokens ``ids[r, a+1 : b+1]`` given their prefixes, for each
    row ``r`` with span ``(a, b)`` (positions ``a .. b-1`` predict them).

    ``chunk``: positions per head slice (default :func:`chunk_positions` of the model's
    vocabulary). Without a trunk/head split the full forward is used (same numbers).
    """
    split = checked_split(model, ids, mask)
    if split is None:
        out = model(input_ids=ids, attention_mask=mask, output_hidden_states=output_hidden_states)
        rows = []
        for r, (a, b) in enumerate(spans):
            lp = torch.log_softmax(out.logits[r, a:b].float(), dim=-1)
            rows.append(lp.gather(-1, ids[r, a + 1 : b + 1, None]).squeeze(-1))
        return Forward(rows, out.hidden_states if output_hidden_states else None)
    chunk = chunk or chunk_positions(vocab_size(model))
    out = split.trunk(input_ids=ids, attention_mask=mask, use_cache=False,
                      output_hidden_states=output_hidden_states)
    last = out[0]  # last_hidden_state (after the final norm)
    hidden = torch.cat([last[r, a:b] for r, (a, b) in enumerate(spans)])
    targets = torch.cat([ids[r, a + 1 : b + 1] for r, (a, b) in enumerate(spans)])
    flat = gather_logprobs(split, hidden, targets, chunk)
    rows = list(torch.split(flat, [b - a for a, b in spans]))
    return Forward(rows, out.hidden_states if output_hidden_states else None)


def full_logprobs(model: Any, ids: torch.Tensor, mask: torch.Tensor,
                  spans: Sequence[tuple[int, int]]) -> list[torch.Tensor]:
    """The reference: ``log_softmax(model(ids).logits)`` over the whole vocabulary."""
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
    return [torch.log_softmax(logits[r, a:b].float(), dim=-1)
            .gather(-1, ids[r, a + 1 : b + 1, None]).squeeze(-1) for r, (a, b) in enumerate(spans)]


def logit_peak_bytes(vocab: int, positions: int, chunk: int) -> int:
    """float32 bytes of the largest logit slice (``min(chunk, positions) × vocab × 4``)."""
    return int(min(chunk, positions) * vocab * 4)

