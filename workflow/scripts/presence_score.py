#!/usr/bin/env python
"""Entry point: see `python workflow/scripts/presence_score.py --help` and rmselect.presence.score."""

import sys

from rmselect.presence.score import main

if __name__ == "__main__":
    sys.exit(main())
