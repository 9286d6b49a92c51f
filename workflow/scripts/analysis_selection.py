#!/usr/bin/env python
"""The selection model: Elastic Net over polynomial features (§4, Figures 5, 6, 10).

Thin entry point: the logic is rmselect.analysis.selection (see its docstring); run with --help.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rmselect.analysis.data import cli  # noqa: E402
from rmselect.analysis.selection import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(cli(main))
