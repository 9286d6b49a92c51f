#!/usr/bin/env python
"""The effective model table as a CSV for the analysis (``results/analysis/models.csv``).

Thin entry point: the logic is rmselect.analysis.models (see its docstring); run with --help.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rmselect.analysis.data import cli  # noqa: E402
from rmselect.analysis.models import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(cli(main))
