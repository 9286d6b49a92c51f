#!/usr/bin/env python
"""Count a model's parameters from safetensors headers and compare with the model table.

Thin wrapper: the logic lives in rmselect.bench.params (see --help).
"""

import sys

from rmselect.bench.params import main

if __name__ == "__main__":
    sys.exit(main())
