#!/usr/bin/env python
"""Toy zoo step: see `python workflow/scripts/toy_build_info.py --help` (logic in rmselect.toy.build)."""

import sys

from rmselect.toy.build import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
