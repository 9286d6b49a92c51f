"""SFT and DPO examples as token ids with loss masks, rendered with the model's chat template.

SFT rows hold ``messages`` (a list of ``{role, content}``); the loss covers **assistant tokens
only**: every assistant turn's content and the template's end-of-turn text that follows it
(so the model learns to stop), never the system/user turns or the ``<assistant>`` header that
the generation prompt adds.

DPO rows hold ``prompt`` (a string, or a list of messages), ``chosen`` and ``rejected``
(strings: the final assistant turn; or conversations, see :func:`dpo_examples`). The log-probability of a response is summed over its
tokens only (same masking as SFT, last assistant turn).

Spans are found by rendering growing prefixes of the conversation: for assistant turn *i*,
the span runs from the end of ``render(messages[:i], add_generation_prompt=True)`` to the end
of ``render(messages[:i+1])``. This needs a template whose renderings of prefixes are prefixes
of the full rendering (true of the common templates); otherwise a clear error is raised.
Models without a chat template use :data:`POSTTRAIN_FALLBACK_TEMPLATE`.
Token labels come from the fast tokenizer's character offsets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import polars as pl

from rmselect.datasets_io import DatasetError, require_columns

IGNORE_INDEX = -100

#: Template for models without one (and no model-table override). It renders a conversation
#: that ends with an assistant turn exactly as ``rmselect.rm.format.FALLBACK_TEMPLATE`` does
#: for a single exchange (so the RM stage sees the layout the variant was trained on), but puts
#: EOS after every assistant turn instead of once at the end and supports the generation
#: prompt, which makes it prefix-stable. Produced variants carry it in their tokenizer.
POSTTRAIN_FALLBACK_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n"
    "{% if m['role'] == 'assistant' %}{{ eos_token }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


@dataclass(frozen=True)
class Sequence_:
    """Token ids and labels (``IGNORE_INDEX`` where no loss is taken)."""

    input_ids: list[int]
    labels: list[int]

    @property
    def n_loss_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE_INDEX)


@dataclass(frozen=True)
class PreferencePair:
    chosen: Sequence_
    rejected: Sequence_


def _render(tokenizer: Any, messages: Sequence[Mapping[str, str]], template: str, gen: bool) -> str:
    if not messages:
        return ""
    return tokenizer.apply_chat_template(
        [dict(m) for m in messages], chat_template=template, tokenize=False,
        add_generation_prompt=gen,
    )


def assistant_spans(
    tokenizer: Any, messages: Sequence[Mapping[str, str]], template: str, last_only: bool = False
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its assistant turns."""
    full = _render(tokenizer, messages, template, gen=False)
    spans: list[tuple[int, int]] = []
    idx = [i for i, m in enumerate(messages) if m.get("role") == "assistant"]
    if last_only:
        idx = idx[-1:]
    for i in idx:
        before = _render(tokenizer, messages[:i], template, gen=True)
        upto = _render(tokenizer, messages[: i + 1], template, gen=False)
        if not (upto.startswith(before) and full.startswith(upto)):
            raise DatasetError(
                "the chat template does not render conversation prefixes as prefixes of the "
                "whole conversation, so assistant tokens cannot be located; give the model a "
                "prefix-stable template (model table field 'chat_template')"
            )
        spans.append((len(before), len(upto)))
    return full, spans


def tokenize_spans(
    tokenizer: Any, text: str, spans: Sequence[tuple[int, int]], max_length: int
) -> Sequence_:
    """Token ids of ``text`` (no extra special tokens) labelled inside ``spans``, truncated."""
    if not getattr(tokenizer, "is_fast", False):
        raise DatasetError("post-training needs a fast tokenizer (character offsets)")
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])[:max_length]
    labels = []
    for tid, (start, _end) in zip(ids, enc["offset_mapping"]):
        inside = any(a <= start < b for a, b in spans)
        labels.append(int(tid) if inside else IGNORE_INDEX)
    return Sequence_(ids, labels)


def _messages(value: Any, where: str) -> list[dict[str, str]]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, (list, tuple)) and all(
        isinstance(m, Mapping) and "role" in m and "content" in m for m in value
    ):
        return [{"role": str(m["role"]), "content": str(m["content"])} for m in value]
    raise DatasetError(f"{where}: expected a string or a list of {{role, content}} messages")


def sft_examples(
    df: pl.DataFrame, tokenizer: Any, template: str, max_length: int, what: str = "SFT data"
) -> tuple[list[Sequence_], int]:
    """One :class:`Sequence_` per row with an assistant turn left after truncation; dropped."""
    require_columns(df, ["messages"], what)
    out, dropped = [], 0
    for i, msgs in enumerate(df["messages"].to_list()):
        where = f"{what} row {i} field 'messages'"
        msgs = _messages(msgs, where)
        if not any(m["role"] == "assistant" for m in msgs):
            raise DatasetError(f"{where}: no assistant turn to train on")
        text, spans = assistant_spans(tokenizer, msgs, template)
        seq = tokenize_spans(tokenizer, text, spans, max_length)
        if seq.n_loss_tokens == 0:
            dropped += 1
            continue
        out.append(seq)
    return out, dropped


def _side(prompt: list[dict[str, str]] | None, value: Any, where: str) -> list[dict[str, str]]:
    """The conversation of one DPO side: prompt + response, or a full conversation."""
    if isinstance(value, str):
        if prompt is None:
            raise DatasetError(f"{where}: a string response needs a 'prompt' column")
        return prompt + [{"role": "assistant", "content": value}]
    msgs = _messages(value, where)
    if not msgs or msgs[-1]["role"] != "assistant":
        raise DatasetError(f"{where}: the conversation must end with an assistant turn")
    if len(msgs) == 1:  # only the response: the prompt comes from the prompt column
        if prompt is None:
            raise DatasetError(f"{where}: a lone assistant turn needs a 'prompt' column")
        return prompt + msgs
    return msgs


def dpo_examples(
    df: pl.DataFrame, tokenizer: Any, template: str, max_length: int, what: str = "DPO data"
) -> tuple[list[PreferencePair], int]:
    """One :class:`PreferencePair` per row whose two responses survive truncation; dropped.

    ``chosen``/``rejected`` are strings (the response to ``prompt``), or conversations in the
    conversational preference format: a lone assistant turn (prompt from ``prompt``) or the
    full conversation ending with the response (``prompt`` then optional, e.g. Tulu 3's
    preference mixture).
    """
    require_columns(df, ["chosen", "rejected"], what)
    prompts = df["prompt"].to_list() if "prompt" in df.columns else [None] * df.height
    out, dropped = [], 0
    rows = df.select("chosen", "rejected").iter_rows(named=True)
    for i, (p, row) in enumerate(zip(prompts, rows)):
        prompt = _messages(p, f"{what} row {i} field 'prompt'") if p is not None else None
        seqs = []
        for side in ("chosen", "rejected"):
            msgs = _side(prompt, row[side], f"{what} row {i} field '{side}'")
            text, spans = assistant_spans(tokenizer, msgs, template, last_only=True)
            seqs.append(tokenize_spans(tokenizer, text, spans, max_length))
        if min(s.n_loss_tokens for s in seqs) == 0:
            dropped += 1
            continue
        out.append(PreferencePair(*seqs))
    return out, dropped
