#!/usr/bin/env python
"""Toy zoo step: see `python workflow/scripts/toy_tokenizer.py --help` (logic in rmselect.toy.tokenizer)."""

import sys

from rmselect.toy.tokenizer import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
