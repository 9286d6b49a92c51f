#!/usr/bin/env python
"""Recommend a base model among candidates that have features but no reward model.

Thin entry point: the logic is rmselect.analysis.recommend (see its docstring); run with --help.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rmselect.analysis.data import cli  # noqa: E402
from rmselect.analysis.recommend import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(cli(main))
