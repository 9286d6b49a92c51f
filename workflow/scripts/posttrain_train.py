#!/usr/bin/env python
"""Entry point: see `python workflow/scripts/posttrain_train.py --help` and rmselect.posttrain.train."""

import sys

from rmselect.posttrain.train import main

if __name__ == "__main__":
    sys.exit(main())
