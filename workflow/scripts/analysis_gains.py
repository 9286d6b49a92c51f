#!/usr/bin/env python
"""Gains over the default model of each size group (paper §3, Figure 2).

Thin entry point: the logic is rmselect.analysis.gains (see its docstring); run with --help.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rmselect.analysis.data import cli  # noqa: E402
from rmselect.analysis.gains import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(cli(main))
