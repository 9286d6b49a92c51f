"""Glue used by workflow/rules/common.smk at DAG-build time (kept out of the .smk files)."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def setup_environment(basedir: str | Path) -> None:
    """Make jobs find the project's Python and package.

    Jobs run ``python`` from the environment snakemake runs in (the project's .venv)
    unless ``--sdm conda`` gives them their own; the package is found through PYTHONPATH
    either way, so no rule depends on the package being installed.
    """
    pkg = str(Path(basedir) / "workflow")
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    old = os.environ.get("PYTHONPATH", "")
    if pkg not in old.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (pkg, old) if p)
