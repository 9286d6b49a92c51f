#!/usr/bin/env python
"""Entry point: see `python workflow/scripts/presence_distributions.py --help` and rmselect.presence.distributions."""

import sys

from rmselect.presence.distributions import main

if __name__ == "__main__":
    sys.exit(main())
