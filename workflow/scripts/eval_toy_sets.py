#!/usr/bin/env python
"""Derive a RewardBench-2 or RM-Bench-format toy set from the toy RewardBench v1 set.

Thin wrapper: the logic lives in rmselect.eval.toysets (see --help).
"""

import sys

from rmselect.eval.toysets import main

if __name__ == "__main__":
    sys.exit(main())
