"""Tokens of reward-model texts: render, encode and truncate from the left.

The truncation convention (the end of the text, where the reward is read, always survives)
is stated in :mod:`rmselect.rm.data`'s docstring; :class:`TruncationStats` counts the cut
texts for the trainer's log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence


from rmselect.rm.format import render


@dataclass
class TruncationStats:
    """How many texts were cut, and how many of those lost part of the response."""

    texts: int = 0
    truncated: int = 0
    response_cut: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"texts": self.texts, "truncated": self.truncated, "response_cut": self.response_cut}


def special_prefix(tokenizer: Any) -> list[int]:
    """Token ids the tokenizer puts before any text (e.g. ``[bos]``), possibly empty."""
    bare = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for k in range(len(full) - len(bare) + 1):
        if full[k : k + len(bare)] == bare:
            return list(full[:k])
    return []


def encode_rendered(
    tokenizer: Any,
    texts: Sequence[str],
    response_starts: Sequence[int] | None = None,
    max_length: int | None = None,
    stats: TruncationStats | None = None,
) -> list[list[int]]:
    """Token ids of rendered chat texts, the way training and evaluation both must do it.

    The special prefix (BOS) is added only when the rendered text does not already start
    with it (chat templates such as Llama-3's write it themselves). Texts longer than
    ``max_length`` are cut from the left after the prefix (see the module docstring);
    ``response_starts`` (character offsets) lets the count of cut responses be exact.
    """
    prefix = special_prefix(tokenizer)
    bos = getattr(tokenizer, "bos_token_id", None)
    want_offsets = response_starts is not None and max_length is not None
    enc = tokenizer(
        list(texts), add_special_tokens=False, return_offsets_mapping=want_offsets
    )
    out: list[list[int]] = []
    for i, ids in enumerate(enc["input_ids"]):
        ids = list(ids)
        head = prefix if prefix and ids[: len(prefix)] != prefix else []
        full = head + ids
        # Kept in front of any cut: the tokenizer's prefix, or a BOS the template wrote.
        n_head = len(prefix) if prefix else int(bool(full) and full[0] == bos)
        if stats is not None:
            stats.texts += 1
        if max_length is not None and len(full) > max_length:
            if max_length <= n_head:
                raise ValueError(f"max_length {max_length} leaves no room after the special prefix")
            cut = len(full) - max_length
            if stats is not None:
                stats.truncated += 1
                if want_offsets:
                    start = response_starts[i]  # type: ignore[index]
                    offs = enc["offset_mapping"][i]
                    n_prompt = len(head) + sum(1 for (_a, b) in offs if b <= start)
                    if cut > n_prompt - n_head:
                        stats.response_cut += 1
            full = full[:n_head] + full[n_head + cut :]
        out.append(full)
    return out


def render_pairs(
    tokenizer: Any, prompts: Sequence[str], responses: Sequence[str], template: str | None
) -> tuple[list[str], list[int]]:
    """Rendered texts and the character offset where each response starts."""
    texts, starts = [], []
    for p, r in zip(prompts, responses):
        t = render(tokenizer, p, r, template)
        pos = t.rfind(r) if r else -1
        texts.append(t)
        starts.append(pos if pos >= 0 else len(t))
    return texts, starts


def tokenize_responses(
    tokenizer: Any,
    prompts: Sequence[str],
    responses: Sequence[str],
    template: str | None,
    max_length: int | None,
    stats: TruncationStats | None = None,
) -> list[list[int]]:
    """Render and encode (prompt, response) texts with the training truncation policy."""
    texts, starts = render_pairs(tokenizer, prompts, responses, template)
    return encode_rendered(tokenizer, texts, starts, max_length, stats)
