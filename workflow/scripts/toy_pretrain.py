#!/usr/bin/env python
"""Toy zoo step: see `python workflow/scripts/toy_pretrain.py --help` (logic in rmselect.toy.models)."""

import sys

from rmselect.toy.models import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
