#!/usr/bin/env python
"""Successive-halving decision after one rung of the LR grid: which rates train on.

Reads every participant's rung summary; writes the decision json (survivors, stopped rates,
every rate's latest file); see ``--help`` and rmselect.rm.halving.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rmselect.rm.halving import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
