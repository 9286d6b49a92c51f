#!/usr/bin/env python
"""Correlation of every feature with every RM section and the overall score (§4, Figure 3).

Thin entry point: the logic is rmselect.analysis.correlations (see its docstring); run with --help.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rmselect.analysis.data import cli  # noqa: E402
from rmselect.analysis.correlations import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(cli(main))
