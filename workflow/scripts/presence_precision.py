#!/usr/bin/env python
"""Entry point: see `python workflow/scripts/presence_precision.py --help` and rmselect.presence.precision."""

import sys

from rmselect.presence.precision import main

if __name__ == "__main__":
    sys.exit(main())
