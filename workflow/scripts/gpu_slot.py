"""Run a command on its own GPUs: ``gpu_slot.py N -- command ...``.

Takes N free devices from the machine's lock directory (rmselect.cluster.gpu_slots), sets
CUDA_VISIBLE_DEVICES and execs the command, which then holds the locks until it exits (a
crash or kill frees them). With N = 0 or under SLURM the command runs unchanged.
"""

from __future__ import annotations

import argparse
import sys

from rmselect.cli import split_command
from rmselect.cluster.gpu_slots import NoFreeSlot, run_with_slots


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("gpus", type=int, help="number of devices the command needs")
    p.add_argument("--timeout", type=float, default=None, help="give up after this many s")
    args, cmd = split_command(p, argv, "command")
    try:
        run_with_slots(args.gpus, cmd, timeout=args.timeout)
    except NoFreeSlot as err:
        sys.stderr.write(f"gpu_slot: {err}\n")
        return 75
    return 0  # not reached: run_with_slots execs


if __name__ == "__main__":
    sys.exit(main())
