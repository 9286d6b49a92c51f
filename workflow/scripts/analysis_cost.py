#!/usr/bin/env python
"""Compute spent per stage and per model, from Snakemake ``benchmark:`` files (§ cost table).

Thin entry point: the logic is rmselect.analysis.cost (see its docstring); run with --help.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rmselect.analysis.data import cli  # noqa: E402
from rmselect.analysis.cost import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(cli(main))
