#!/usr/bin/env python
"""Toy zoo diagnostic: see `python workflow/scripts/toy_probe.py --help` (logic in rmselect.toy.probe)."""

import sys

from rmselect.toy.probe import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
