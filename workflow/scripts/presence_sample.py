#!/usr/bin/env python
"""Entry point: see `python workflow/scripts/presence_sample.py --help` and rmselect.presence.corpus."""

import sys

from rmselect.presence.corpus import main as main

if __name__ == "__main__":
    sys.exit(main())
