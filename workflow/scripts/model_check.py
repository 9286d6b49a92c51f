#!/usr/bin/env python
"""Model source check: see `python workflow/scripts/model_check.py --help` (logic in rmselect.model_check)."""

import sys

from rmselect.model_check import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
