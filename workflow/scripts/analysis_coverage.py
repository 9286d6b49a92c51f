#!/usr/bin/env python
"""Coverage at top-k (§4, Figures 4 and 9).

Thin entry point: the logic is rmselect.analysis.coverage (see its docstring); run with --help.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rmselect.analysis.data import cli  # noqa: E402
from rmselect.analysis.coverage import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(cli(main))
