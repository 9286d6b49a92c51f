"""Loading Hugging Face models and tokenizers the same way in every stage.

Security defaults: ``trust_remote_code`` stays off unless the model-table row opts in, and
weights load from safetensors only (``use_safetensors=True``), never from pickles.

Attention kernel: every load picks one (:func:`resolve_attn_implementation`). ``auto`` is
``sdpa`` unless the architecture needs ``eager`` for correctness (attention-logit softcapping,
Gemma-2: sdpa cannot cap the logits; transformers 5 refuses sdpa for Gemma-2, older versions
silently dropped the cap), and ``sdpa`` asked for such a model gives ``eager`` with a
warning; ``flash_attention_2`` (which caps) is used when asked for and the ``flash_attn``
package and a CUDA device are present, else ``auto``'s choice with a warning.

Load failures (a path that is a file, a truncated ``*.safetensors``, a folder without a
config) are :class:`ModelLoadError`: one line naming the model and the file, which every
entry point prints without a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rmselect.conventions import ATTN_IMPLEMENTATIONS


class ModelLoadError(ValueError):
    """A model or tokenizer that cannot be loaded; the message names the model and file."""


def check_ref(ref: str | Path) -> None:
    """Refuse a local path that is a file, and name any unreadable ``*.safetensors`` in a
    local folder (transformers reports a truncated file as a bare ``SafetensorError``)."""
    p = Path(ref)
    if p.is_file():
        raise ModelLoadError(
            f"model {ref}: is a file, not a model folder; give the folder that holds"
            " config.json and the weights"
        )
    if not p.is_dir():
        return  # a hub id: resolved (offline) by transformers
    from safetensors import SafetensorError, safe_open

    for f in sorted(p.glob("*.safetensors")):
        try:
            with safe_open(str(f), framework="pt"):
                pass  # opening checks the header against the file's length
        except (SafetensorError, OSError) as err:
            raise ModelLoadError(
                f"model {ref}: weights file {f.name} cannot be read ({_first_line(err)});"
                " it is probably truncated: copy or download it again"
            ) from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


def _load(what: str, ref: str | Path, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` with any failure turned into one :class:`ModelLoadError`."""
    check_ref(ref)
    try:
        return fn(*args, **kwargs)
    except ModelLoadError:
        raise
    except Exception as err:  # transformers/safetensors/hub raise many types
        raise ModelLoadError(f"model {ref}: cannot load its {what}: {_first_line(err)}") from None


def load_tokenizer(ref: str | Path, trust_remote_code: bool = False, padding_side: str = "right"):
    """Tokenizer with a pad token (the EOS when none exists; pooling never relies on pad id)."""
    from transformers import AutoTokenizer

    tok = _load("tokenizer", ref, AutoTokenizer.from_pretrained, str(ref),
                trust_remote_code=trust_remote_code)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = padding_side
    return tok




def needs_eager(config: Any) -> str | None:
    """Why ``config``'s architecture needs eager attention (None when it does not).

    sdpa cannot apply ``attn_logit_softcapping`` (Gemma-2): the logits would not be capped,
    and the model would compute something else than it was trained with.
    """
    cfg = config.get_text_config() if hasattr(config, "get_text_config") else config
    cap = getattr(cfg, "attn_logit_softcapping", None)
    if cap:
        return f"attention-logit softcapping ({cap}) is implemented by eager attention only"
    return None


def flash_attention_available() -> bool:
    """Whether flash-attention 2 can run here (the package, a CUDA device)."""
    from transformers.utils import is_flash_attn_2_available

    return bool(torch.cuda.is_available() and is_flash_attn_2_available())


def resolve_attn_implementation(requested: str | None, config: Any, name: str = "model",
                                warn: Any = None) -> str:
    """The attention kernel for ``config``: see the module docstring. ``warn(msg)`` gets a
    line when the request cannot be honoured (default: stderr)."""
    import sys

    requested = requested or "auto"
    if requested not in ATTN_IMPLEMENTATIONS:
        raise ModelLoadError(f"model {name}: attn_implementation {requested!r} is not one of "
                             f"{', '.join(ATTN_IMPLEMENTATIONS)}")
    say = warn or (lambda m: sys.stderr.write(f"rmselect: warning: {m}\n"))
    eager_reason = needs_eager(config)
    if requested == "flash_attention_2":
        if flash_attention_available():
            return requested
        say(f"model {name}: flash_attention_2 asked for but flash_attn or CUDA is missing; "
            f"using {'eager' if eager_reason else 'sdpa'}")
        requested = "auto"
    if requested == "sdpa" and eager_reason:
        say(f"model {name}: sdpa asked for, but {eager_reason}; using eager")
        return "eager"
    if requested == "auto":
        return "eager" if eager_reason else "sdpa"
    return requested


def default_dtype() -> torch.dtype:
    """bf16 on a GPU that supports it, fp32 on CPU (bf16 matmuls on CPU are slow and lossy)."""
    from rmselect.device import bf16_supported

    if bf16_supported(torch.cuda.is_available()):
        return torch.bfloat16
    return torch.float32


def load_causal_lm(ref: str | Path, trust_remote_code: bool = False, dtype: Any = None,
                   attn_implementation: str | None = "auto"):
    from transformers import AutoModelForCausalLM

    return _load_weights(AutoModelForCausalLM, ref, trust_remote_code, dtype,
                         attn_implementation)


def load_sequence_classifier(
    ref: str | Path, num_labels: int | None = None, trust_remote_code: bool = False,
    dtype: Any = None, attn_implementation: str | None = "auto",
):
    from transformers import AutoModelForSequenceClassification

    kwargs: dict[str, Any] = {}
    if num_labels is not None:
        kwargs["num_labels"] = num_labels
    return _load_weights(AutoModelForSequenceClassification, ref, trust_remote_code, dtype,
                         attn_implementation, **kwargs)


def load_config(ref: str | Path, trust_remote_code: bool = False) -> Any:
    from transformers import AutoConfig

    return _load("config", ref, AutoConfig.from_pretrained, str(ref),
                 trust_remote_code=trust_remote_code)


def _load_weights(auto_cls: Any, ref: str | Path, trust_remote_code: bool, dtype: Any,
                  attn_implementation: str | None = "auto", **kwargs: Any):
    """``auto_cls.from_pretrained`` from safetensors only, in the default dtype unless given,
    with the attention kernel :func:`resolve_attn_implementation` picks (remote-code models
    keep their own unless one is asked for by name)."""
    if attn_implementation and not (trust_remote_code and attn_implementation == "auto"):
        config = load_config(ref, trust_remote_code)
        kwargs["attn_implementation"] = resolve_attn_implementation(
            attn_implementation, config, str(ref))
    return _load(
        "weights", ref, auto_cls.from_pretrained,
        str(ref),
        trust_remote_code=trust_remote_code,
        dtype=dtype or default_dtype(),
        use_safetensors=True,
        **kwargs,
    )
