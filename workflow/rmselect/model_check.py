"""Check a model's source before its first GPU job: config, tokenizer, weights present.

Rule ``model_check`` (workflow/rules/models.smk) runs this once per hub or local model of the
table, on a CPU in seconds, and every training, probe and benchmark job of that model waits
for it (an ``ancient`` input, so a rerun of the check never reruns them). It loads the
model's config and tokenizer and looks for its weight files, but loads no weights. A
problem is one line naming the model and what to do:

* a hub id that is not in the offline cache (``HF_HUB_OFFLINE=1``);
* a local folder without ``config.json``, tokenizer files or ``*.safetensors`` weights;
* a ``model_type`` the installed transformers does not know.

Toy models and post-training variants are produced by the workflow itself and not checked.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from rmselect import cli
from rmselect.cli import opt

#: Files any of which makes a tokenizer (fast, sentencepiece, BPE vocab).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt",
                   "tokenizer_config.json")
#: Weight files (safetensors only: rmselect.hf loads nothing else).
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")


class ModelSourceError(ValueError):
    """A model source that cannot serve a job (one line naming the model)."""


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def _cached(ref: str, filename: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(ref, filename)
    return isinstance(hit, str)


def check_model(ref: str, name: str, trust_remote_code: bool = False) -> dict[str, Any]:
    """What the check found (model type, tokenizer class, weight file); raises
    :class:`ModelSourceError` on the first problem."""
    import transformers
    from transformers import AutoConfig, AutoTokenizer

    who = f"model '{name}' ({ref})"
    p = Path(ref).expanduser()
    local = p.exists()
    offline = _offline()
    if local:
        if not p.is_dir():
            raise ModelSourceError(f"{who}: is a file, not a model folder; give the folder"
                                   " with config.json, the tokenizer and the weights")
        if not (p / "config.json").is_file():
            raise ModelSourceError(f"{who}: no config.json in the folder; copy the whole"
                                   " checkpoint folder")
        raw = json.loads((p / "config.json").read_text())
        if not any((p / f).is_file() for f in TOKENIZER_FILES):
            raise ModelSourceError(
                f"{who}: tokenizer files missing (none of {', '.join(TOKENIZER_FILES)});"
                " copy them from the base checkpoint into the folder")
        weights = next((f for f in WEIGHT_FILES if (p / f).is_file()), None) or next(
            (f.name for f in sorted(p.glob("*.safetensors"))), None)
        if weights is None:
            raise ModelSourceError(f"{who}: no *.safetensors weights in the folder; convert"
                                   " the checkpoint to safetensors (pickled .bin is refused)")
    else:
        raw = {}
        if offline and not _cached(ref, "config.json"):
            raise ModelSourceError(
                f"{who}: hub id not in the offline cache (HF_HUB_OFFLINE=1); download it"
                f" first (`huggingface-cli download {ref}`) or set HF_HOME to the cache")
        weights = None
        if offline:
            weights = next((f for f in WEIGHT_FILES if _cached(ref, f)), None)
            if weights is None:
                raise ModelSourceError(
                    f"{who}: config cached but no safetensors weights in the offline cache;"
                    f" download the full checkpoint (`huggingface-cli download {ref}`)")
    try:
        config = AutoConfig.from_pretrained(ref, trust_remote_code=trust_remote_code,
                                            local_files_only=offline)
    except (ValueError, KeyError) as err:
        mt = raw.get("model_type", "?")
        raise ModelSourceError(
            f"{who}: architecture model_type '{mt}' is unknown to the installed transformers"
            f" {transformers.__version__} ({_first_line(err)[:120]}); upgrade transformers, or"
            " set trust_remote_code: true in the model's row if it ships its own code"
        ) from None
    except OSError as err:
        raise ModelSourceError(f"{who}: cannot read its config: {_first_line(err)[:200]}") from None
    try:
        tok = AutoTokenizer.from_pretrained(ref, trust_remote_code=trust_remote_code,
                                            local_files_only=offline)
    except Exception as err:  # tokenizers raise many types
        raise ModelSourceError(
            f"{who}: tokenizer cannot be loaded ({_first_line(err)[:160]}); add the tokenizer"
            " files of the base checkpoint") from None
    return {"model": name, "ref": ref, "model_type": getattr(config, "model_type", None),
            "tokenizer": type(tok).__name__, "weights": weights, "offline": offline,
            "transformers": transformers.__version__}


@dataclass(kw_only=True)
class ModelCheckArgs:
    """Check a model's source (config, tokenizer, weights present; no weights loaded)."""

    model: str = opt("hub id or local folder")
    name: str = opt("model name (for messages)")
    out: str = opt("JSON summary written on success")
    trust_remote_code: bool = opt("the model's row opts in to its own code", default=False)


def _main(args: ModelCheckArgs) -> int:
    from rmselect.io import write_json

    try:
        found = check_model(args.model, args.name, args.trust_remote_code)
    except ModelSourceError as err:
        sys.stderr.write(f"model_check: error: {err}\n")
        return 2
    write_json(Path(args.out), found)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(ModelCheckArgs, _main, argv, prog="model_check.py")
