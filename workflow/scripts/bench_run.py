#!/usr/bin/env python
"""Run upstream benchmarks (lm-eval tasks or local code tasks) for one model.

Thin wrapper: the logic lives in rmselect.bench.run (see --help).
"""

import sys

from rmselect.bench.run import main

if __name__ == "__main__":
    sys.exit(main())
