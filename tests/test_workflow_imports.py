"""The rule files import only light modules: Snakemake parses them in every `snakemake` call
(the run, `-n`, `--report`, each SLURM job), so a heavy import there is paid each time."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "deepspeed", "lm_eval", "sklearn", "matplotlib")


def rule_file_modules() -> list[str]:
    """Every ``rmselect`` module the rule files import (``from M import ...``, ``import M``)."""
    mods = set()
    for f in [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]:
        mods.update(re.findall(r"^\s*(?:from|import) (rmselect[\w.]*)", f.read_text(), re.M))
    return sorted(mods)


def test_rule_files_import_no_heavy_library() -> None:
    mods = rule_file_modules()
    assert len(mods) >= 10, mods  # the scan found the rule files' imports
    code = "\n".join(
        ["import sys", f"sys.path.insert(0, {str(REPO / 'workflow')!r})",
         *(f"import {m}" for m in mods),
         f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"]
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    loaded = [m for m in out.stdout.strip().split(",") if m]
    assert loaded == [], f"the rule files' imports load {loaded}; import them inside functions"
