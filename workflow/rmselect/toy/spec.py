"""Toy model specs: the keys of a ``toy:...`` source, their validation and defaults, and
the ``transformers`` config they describe.

Kept apart from :mod:`rmselect.toy.models` (pre-training), so that the workflow's rule files
and every other torch-free caller read a spec without importing torch (seconds per process).
See :mod:`rmselect.toy.models` for the spec keys.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from rmselect.config import ConfigError

ARCHS = ("llama", "qwen2", "gpt_neox")
REQUIRED_KEYS = ("arch", "hidden", "layers", "heads", "steps")
SPEC_KEYS = REQUIRED_KEYS + ("kv_heads", "ffn", "batch", "seq", "lr", "ctx")
DEFAULTS: dict[str, Any] = {"batch": 8, "seq": 128, "lr": 5e-3, "ctx": 512}
#: Files of a saved toy model directory (the Snakemake outputs of ``toy_pretrain``).
MODEL_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "pretrain.json",
)


def parse_spec(spec: Mapping[str, Any], model: str = "<toy model>") -> dict[str, Any]:
    """Validate a toy spec dict (values may be strings) and fill defaults.

    Raises :class:`ConfigError` naming the model and the key.
    """
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise ConfigError(
            f"model '{model}': unknown toy spec key(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(SPEC_KEYS)}"
        )
    missing = [k for k in REQUIRED_KEYS if k not in spec]
    if missing:
        raise ConfigError(
            f"model '{model}': toy spec lacks {', '.join(missing)} "
            "(write e.g. toy:arch=llama,hidden=64,layers=2,heads=4,steps=100)"
        )
    out: dict[str, Any] = dict(DEFAULTS)
    out["arch"] = str(spec["arch"])
    if out["arch"] not in ARCHS:
        raise ConfigError(f"model '{model}': toy spec arch={out['arch']!r}; use one of {ARCHS}")
    for key in ("hidden", "layers", "heads", "steps", "kv_heads", "ffn", "batch", "seq", "ctx"):
        if key in spec:
            try:
                out[key] = int(spec[key])
            except (TypeError, ValueError):
                raise ConfigError(
                    f"model '{model}': toy spec {key}={spec[key]!r} is not an integer"
                ) from None
            if out[key] <= 0:
                raise ConfigError(f"model '{model}': toy spec {key} must be positive")
    if "lr" in spec:
        try:
            out["lr"] = float(spec["lr"])
        except (TypeError, ValueError):
            raise ConfigError(f"model '{model}': toy spec lr={spec['lr']!r} is not a number") from None
    out.setdefault("kv_heads", out["heads"])
    if out["hidden"] % out["heads"]:
        raise ConfigError(f"model '{model}': toy spec hidden must be a multiple of heads")
    if out["heads"] % out["kv_heads"]:
        raise ConfigError(f"model '{model}': toy spec kv_heads must divide heads")
    if "ffn" not in out:
        h = out["hidden"]
        out["ffn"] = 4 * h if out["arch"] == "gpt_neox" else int(math.ceil(8 * h / 3 / 16) * 16)
    if out["seq"] > out["ctx"]:
        raise ConfigError(f"model '{model}': toy spec seq must not exceed ctx")
    return out


def toy_config(spec: Mapping[str, Any], vocab_size: int = 768, special_ids: Mapping[str, int] | None = None):
    """A ``transformers`` ``PretrainedConfig`` for a toy spec (see module doc for keys).

    ``special_ids`` (``bos``, ``eos``, ``pad``) are written into the config when given.
    """
    from transformers import GPTNeoXConfig, LlamaConfig, Qwen2Config

    s = parse_spec(spec)
    ids = dict(special_ids or {})
    common: dict[str, Any] = dict(
        vocab_size=vocab_size,
        hidden_size=s["hidden"],
        num_hidden_layers=s["layers"],
        num_attention_heads=s["heads"],
        intermediate_size=s["ffn"],
        max_position_embeddings=s["ctx"],
        tie_word_embeddings=True,
        bos_token_id=ids.get("bos"),
        eos_token_id=ids.get("eos"),
        pad_token_id=ids.get("pad"),
    )
    if s["arch"] == "llama":
        return LlamaConfig(num_key_value_heads=s["kv_heads"], **common)
    if s["arch"] == "qwen2":
        return Qwen2Config(num_key_value_heads=s["kv_heads"], use_sliding_window=False, **common)
    return GPTNeoXConfig(**common)
