#!/usr/bin/env python
"""Probe features of one base model: see `python workflow/scripts/probe_model.py --help`
(logic in rmselect.probe.score)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rmselect.probe.score import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
