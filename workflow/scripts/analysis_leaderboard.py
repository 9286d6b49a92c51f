#!/usr/bin/env python
"""Figure 1: share of base-model families among the top entries of a RewardBench leaderboard.

Thin entry point: the logic is rmselect.analysis.leaderboard (see its docstring); run with --help.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rmselect.analysis.data import cli  # noqa: E402
from rmselect.analysis.leaderboard import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(cli(main))
