"""Read the reward at the last real token of each sequence.

The classic bug is to find that token from ``pad_token_id``: when pad == eos the EOS that
closes a response is mistaken for padding, and with left padding "the first pad" is at the
start. We use the attention mask only, which is right for left and right padding alike.
"""

from __future__ import annotations

import torch


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last position whose mask is 1, per row (left or right padding)."""
    if attention_mask.dim() != 2:
        raise ValueError("attention_mask must be (batch, length)")
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (positions.unsqueeze(0) * attention_mask.long()).argmax(dim=-1)


def pool_last(hidden_or_logits: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Gather ``(batch, length, d)`` at :func:`last_token_index` → ``(batch, d)``."""
    idx = last_token_index(attention_mask)
    return hidden_or_logits[torch.arange(hidden_or_logits.shape[0], device=idx.device), idx]
