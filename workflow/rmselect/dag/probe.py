"""Settings and per-job flags of the probe rules (``workflow/rules/probe.smk``)."""

from __future__ import annotations

import json
from typing import Any

from rmselect.config import Study, section_settings
from rmselect.dag.common import model_flags, shell_flags


def settings(study: Study) -> dict[str, Any]:
    """The ``probe`` section with the schema's defaults filled in."""
    return section_settings(study.config, "probe")


def probe_flags(study: Study, cfg: dict[str, Any], name: str) -> str:
    """Command-line flags of workflow/scripts/probe_model.py for model ``name`` but ``--out``."""
    flags = [
        "--model", study.model_path(name), "--name", name,
        "--data", json.dumps(study.config["data"]["helpsteer2_preference"], sort_keys=True),
        "--max-train-pairs", str(cfg["max_train_pairs"] or 0),
        "--max-val-pairs", str(cfg["max_val_pairs"] or 0),
        "--max-length", str(cfg["max_length"]), "--batch-size", str(cfg["batch_size"]),
        "--layers", str(cfg["layers"]),
    ]
    return shell_flags(flags + model_flags(study.model(name)))
