#!/usr/bin/env python
"""Entry point: see `python workflow/scripts/presence_aggregate.py --help` and rmselect.presence.aggregate."""

import sys

from rmselect.presence.aggregate import main_domain as main

if __name__ == "__main__":
    sys.exit(main())
