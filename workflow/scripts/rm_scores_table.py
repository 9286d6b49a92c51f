#!/usr/bin/env python
"""Build results/tables/rm_scores.csv and rm_scores_all.csv from eval JSONs and imports.

Thin wrapper: the logic lives in rmselect.eval.table (see --help).
"""

import sys

from rmselect.eval.table import main

if __name__ == "__main__":
    sys.exit(main())
