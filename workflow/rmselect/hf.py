"""Loading Hugging Face models and tokenizers the same way in every stage.

Security defaults: ``trust_remote_code`` stays off unless the model-table row opts in, and
weights load from safetensors only (``use_safetensors=True``), never from pickles.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def load_tokenizer(ref: str | Path, trust_remote_code: bool = False, padding_side: str = "right"):
    """Tokenizer with a pad token (the EOS when none exists; pooling never relies on pad id)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(ref), trust_remote_code=trust_remote_code)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = padding_side
    return tok


def default_dtype() -> torch.dtype:
    """bf16 on a GPU that supports it, fp32 on CPU (bf16 matmuls on CPU are slow and lossy)."""
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_causal_lm(ref: str | Path, trust_remote_code: bool = False, dtype: Any = None):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(
        str(ref),
        trust_remote_code=trust_remote_code,
        dtype=dtype or default_dtype(),
        use_safetensors=True,
    )


def load_sequence_classifier(
    ref: str | Path, num_labels: int | None = None, trust_remote_code: bool = False, dtype: Any = None
):
    from transformers import AutoModelForSequenceClassification

    kwargs: dict[str, Any] = {}
    if num_labels is not None:
        kwargs["num_labels"] = num_labels
    return AutoModelForSequenceClassification.from_pretrained(
        str(ref),
        trust_remote_code=trust_remote_code,
        dtype=dtype or default_dtype(),
        use_safetensors=True,
        **kwargs,
    )
