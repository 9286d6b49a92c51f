"""The README is for users: short, and every repository path it names exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
#: Paths the README names that are not in a checkout on purpose: written by a run, by the
#: user from a shipped template, or outside the repository (../shared).
NOT_IN_CHECKOUT = ("results/", ".venv", ".cache/", "slurm/local.yaml", "../")
#: Slash-separated words in backticks that are not paths.
NOT_PATHS = {"org/name", "spearman_seed_lo/hi"}


def test_readme_is_short():
    assert len(README.splitlines()) <= 250


def test_every_path_the_readme_names_exists():
    named = set(re.findall(r"`([A-Za-z0-9_.\-]+(?:/[A-Za-z0-9_.\-]+)+/?)`", README))
    named |= set(re.findall(r"\]\(([A-Za-z0-9_.\-/]+)\)", README))  # links
    paths = [p for p in named if not p.startswith(NOT_IN_CHECKOUT) and p not in NOT_PATHS]
    missing = [p for p in sorted(paths) if not (REPO / p).exists()]
    assert not missing, f"README.md names paths that do not exist: {missing}"
    assert len(paths) >= 10  # the README does name the layout
