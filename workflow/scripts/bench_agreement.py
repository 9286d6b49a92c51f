#!/usr/bin/env python
"""Small-scale vs full benchmark agreement on the toy zoo (Spearman, MAE, compute saved).

Thin wrapper: the logic lives in rmselect.bench.agreement (see --help).
"""

import sys

from rmselect.bench.agreement import main

if __name__ == "__main__":
    sys.exit(main())
