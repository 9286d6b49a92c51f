#!/usr/bin/env python
"""Paper tables as CSV and LaTeX (Tables 1, 3, 4, 5).

Thin entry point: the logic is rmselect.analysis.tables (see its docstring); run with --help.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rmselect.analysis.data import cli  # noqa: E402
from rmselect.analysis.tables import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(cli(main))
