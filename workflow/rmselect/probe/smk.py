"""DAG-build helpers for workflow/rules/probe.smk: the stage's settings and each job's flags."""

from __future__ import annotations

import json
import shlex
from typing import Any

from rmselect.config import Study, section_settings


def settings(study: Study) -> dict[str, Any]:
    """The ``probe`` section with the schema's defaults filled in."""
    return section_settings(study.config, "probe")


def probe_flags(study: Study, cfg: dict[str, Any], name: str) -> str:
    """Command-line flags of workflow/scripts/probe_model.py for model ``name`` but ``--out``."""
    spec = study.model(name)
    flags = [
        "--model", study.model_path(name), "--name", name,
        "--data", json.dumps(study.config["data"]["helpsteer2_preference"], sort_keys=True),
        "--max-train-pairs", str(cfg["max_train_pairs"] or 0),
        "--max-val-pairs", str(cfg["max_val_pairs"] or 0),
        "--max-length", str(cfg["max_length"]), "--batch-size", str(cfg["batch_size"]),
        "--layers", str(cfg["layers"]),
    ]
    if spec.chat_template:
        flags += ["--chat-template", spec.chat_template]
    if spec.trust_remote_code:
        flags.append("--trust-remote-code")
    return " ".join(shlex.quote(f) for f in flags)
