#!/usr/bin/env python
"""Assemble the feature table (results/tables/features.csv) and its sources.

Thin wrapper: the logic lives in rmselect.bench.features (see --help).
"""

import sys

from rmselect.bench.features import main

if __name__ == "__main__":
    sys.exit(main())
