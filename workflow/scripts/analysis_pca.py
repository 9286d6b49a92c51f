#!/usr/bin/env python
"""PCA of the standardised model × feature matrix (§4, Figures 12 and 13).

Thin entry point: the logic is rmselect.analysis.pca (see its docstring); run with --help.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rmselect.analysis.data import cli  # noqa: E402
from rmselect.analysis.pca import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(cli(main))
