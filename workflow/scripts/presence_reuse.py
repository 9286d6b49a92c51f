#!/usr/bin/env python
"""Entry point: see `python workflow/scripts/presence_reuse.py --help` and rmselect.presence.reuse."""

import sys

from rmselect.presence.reuse import main

if __name__ == "__main__":
    sys.exit(main())
