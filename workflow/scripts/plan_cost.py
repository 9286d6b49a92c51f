#!/usr/bin/env python
"""What the study costs before it runs: FLOPs and GPU-hours per stage and model (rule plan).

Thin entry point: the logic is rmselect.plan.projection (see its docstring); run with --help.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rmselect.config import ConfigError  # noqa: E402
from rmselect.plan.projection import main  # noqa: E402

if __name__ == "__main__":
    try:
        sys.exit(main())
    except ConfigError as err:
        sys.stderr.write(f"rmselect plan: configuration error: {err}\n")
        sys.exit(2)
