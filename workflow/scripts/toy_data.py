#!/usr/bin/env python
"""Toy zoo step: see `python workflow/scripts/toy_data.py --help` (logic in rmselect.toy.data)."""

import sys

from rmselect.toy.data import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
