"""Render (prompt, response) with the base model's chat template.

Training and every evaluation use this one function, so an RM sees the same text layout
when it is scored as when it was trained.

Fallback for models without a chat template (documented in the README): each turn becomes
``<|role|>\\n{content}\\n`` and the text ends with the tokenizer's EOS token, so the reward
is read at a token that closes the response.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

FALLBACK_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{{ eos_token }}"
)


#: HelpSteer2's inline turn markers: a multi-turn prompt is ``{user 1}\n<extra_id_1>Assistant\n
#: {assistant 1}\n<extra_id_1>User\n{user 2}`` (the last assistant turn is the response).
TURN_MARKER = re.compile(r"\n?<extra_id_1>(User|Assistant)\n?")


def split_turns(prompt: str) -> list[dict[str, str]]:
    """The messages of a prompt; HelpSteer2's inline markers become alternating turns.

    A prompt without markers is one user turn. Left inline, the markers would reach the
    chat template as literal text inside one user message, so a multi-turn conversation
    would be scored as a single odd question.
    """
    parts = TURN_MARKER.split(prompt)
    msgs = [{"role": "user", "content": parts[0]}]
    for role, content in zip(parts[1::2], parts[2::2]):
        msgs.append({"role": role.lower(), "content": content})
    return msgs


def to_messages(prompt: str | Sequence[dict[str, str]], response: str) -> list[dict[str, str]]:
    """A conversation whose last turn is the assistant's response (see :func:`split_turns`)."""
    if isinstance(prompt, str):
        msgs = split_turns(prompt)
    else:
        msgs = [dict(m) for m in prompt]
    return msgs + [{"role": "assistant", "content": response}]


def resolve_template(tokenizer: Any, override: str | None = None) -> str:
    """The model table's override (a file path or literal Jinja), else the tokenizer's, else fallback."""
    if override:
        return _template_text(override)
    return getattr(tokenizer, "chat_template", None) or FALLBACK_TEMPLATE


def _template_text(override: str) -> str:
    """A template override is a path to a Jinja file or the Jinja text itself.

    Real chat templates run to thousands of characters; asking the file system whether such a
    string is a path raises ``OSError: File name too long``, so only a string without Jinja
    delimiters is looked up as a file.
    A string with neither Jinja syntax nor a file behind it (e.g. a mistyped path) is
    refused: used as the template text it would render every conversation as that string
    (rmselect.validate checks the model table for this at plan time).
    """
    from rmselect.validate import JINJA, template_problem

    if any(j in override for j in JINJA):
        return override
    try:
        p = Path(override)
        if p.is_file():
            return p.read_text()
    except OSError:
        pass
    raise ValueError(f"chat template override: {template_problem(override, Path.cwd())}")


def render(
    tokenizer: Any,
    prompt: str | Sequence[dict[str, str]],
    response: str,
    template_override: str | None = None,
) -> str:
    """The text an RM scores for ``response`` to ``prompt``."""
    return tokenizer.apply_chat_template(
        to_messages(prompt, response),
        chat_template=resolve_template(tokenizer, template_override),
        tokenize=False,
        add_generation_prompt=False,
    )
