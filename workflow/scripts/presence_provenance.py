#!/usr/bin/env python
"""Entry point: see `python workflow/scripts/presence_provenance.py --help` and rmselect.presence.aggregate."""

import sys

from rmselect.presence.aggregate import main_model as main

if __name__ == "__main__":
    sys.exit(main())
