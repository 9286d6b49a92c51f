#!/usr/bin/env python
"""Entry point: see `python workflow/scripts/lineage_table.py --help` and rmselect.posttrain.lineage."""

import sys

from rmselect.posttrain.lineage import main

if __name__ == "__main__":
    sys.exit(main())
