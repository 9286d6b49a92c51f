#!/usr/bin/env python
"""Regression vs Bradley–Terry per model (§7, Figure 11).

Thin entry point: the logic is rmselect.analysis.bt_vs_regression (see its docstring); run with --help.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rmselect.analysis.data import cli  # noqa: E402
from rmselect.analysis.bt_vs_regression import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(cli(main))
