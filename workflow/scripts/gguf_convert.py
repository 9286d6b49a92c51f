#!/usr/bin/env python
"""Model source step: see `python workflow/scripts/gguf_convert.py --help` (logic in rmselect.gguf)."""

import sys

from rmselect.gguf import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
