#!/usr/bin/env python
"""Select the final reward model of one base model and objective over the LR grid.

Picks the best (learning rate, step[, merge weights]) by HelpSteer2-Preference validation
accuracy and writes final/ and selected.json; see ``--help`` and rmselect.rm.select.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rmselect.rm.select import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
