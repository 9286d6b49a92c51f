"""Every data file a package ships (what code_hash counts) is in the installed package.

setuptools copies only the non-Python files that ``[tool.setuptools.package-data]`` names;
an unlisted YAML template works from the checkout and is missing from a wheel (a wheel built
without the lines for rmselect.toy.lmeval held toy_loader.py but not task.yaml).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from rmselect.cluster.rerun import package_data

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "workflow"


def _listed() -> set[Path]:
    """The files the package-data globs of pyproject.toml select, as setuptools globs them."""
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())
    out: set[Path] = set()
    for pkg, patterns in cfg["tool"]["setuptools"]["package-data"].items():
        base = SRC.joinpath(*pkg.split("."))
        for pattern in patterns:
            out |= {f for f in base.glob(pattern) if f.is_file()}
    return out


def test_every_shipped_data_file_is_package_data():
    shipped = {f for init in (SRC / "rmselect").rglob("__init__.py") for f in package_data(init)}
    toy = SRC / "rmselect" / "toy" / "lmeval" / "templates"
    assert {toy / "task.yaml", toy / "toy_loader.py"} <= shipped  # the scan sees them
    missing = sorted(str(f.relative_to(SRC)) for f in shipped - _listed())
    assert not missing, f"data files missing from pyproject.toml package-data: {missing}"


def test_the_toy_templates_are_read_as_package_resources():
    from rmselect.toy.lmeval import LOADER_NAME, loader_source, task_yaml

    assert loader_source() == (SRC / "rmselect/toy/lmeval/templates" / LOADER_NAME).read_text()
    text = task_yaml("toy_facts")
    assert "$" not in text and "task: toy_facts\n" in text and "test: toy_facts.jsonl\n" in text
