#!/usr/bin/env python
"""Toy zoo step: see `python workflow/scripts/toy_world.py --help` (logic in rmselect.toy.world)."""

import sys

from rmselect.toy.world import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
