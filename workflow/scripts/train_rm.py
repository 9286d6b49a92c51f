#!/usr/bin/env python
"""Train one reward model (base model x objective x learning rate) with DeepSpeed.

Run it plainly for one rank, or under ``torchrun --standalone --nproc_per_node N`` (or srun)
for N ranks; see ``--help`` and rmselect.rm.train.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rmselect.rm.train import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
