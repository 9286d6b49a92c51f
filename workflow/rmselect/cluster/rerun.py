"""Make code edits visible to Snakemake's rerun triggers.

Snakemake reruns a job when its ``params`` change (rerun trigger ``params``) but does not look
inside scripts a ``shell:`` command calls. :func:`code_hash` turns the *content* of scripts and
package folders into a short hash; a rule that adds it as a parameter
(``params: code=code_hash("workflow/scripts/analysis_gains.py", "workflow/rmselect/analysis")``)
reruns, with everything downstream, exactly when that code changes -- not when a checkout
merely touches the files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def code_files(*paths: str | Path, root: str | Path = ".") -> list[Path]:
    """The files behind ``paths``: a file itself, or every ``*.py`` under a folder (sorted)."""
    out: list[Path] = []
    for p in paths:
        full = Path(root) / p
        if full.is_dir():
            out.extend(sorted(f for f in full.rglob("*.py") if "__pycache__" not in f.parts))
        elif full.exists():
            out.append(full)
        else:
            raise FileNotFoundError(f"code_hash: {p} does not exist under {root}")
    return out


def code_hash(*paths: str | Path, root: str | Path = ".") -> str:
    """A 12-hex-digit SHA-256 over the names and contents of the files behind ``paths``."""
    h = hashlib.sha256()
    base = Path(root)
    for f in code_files(*paths, root=root):
        h.update(str(f.relative_to(base)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:12]
