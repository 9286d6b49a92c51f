#!/usr/bin/env python
"""Evaluate one reward model on one or more benchmarks (RewardBench v1 / 2, RM-Bench).

Thin wrapper: the logic lives in rmselect.eval.run (see --help).
"""

import sys

from rmselect.eval.run import main

if __name__ == "__main__":
    sys.exit(main())
