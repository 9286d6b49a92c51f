"""Start a trainer with torchrun on this node, or srun + torchrun on every node of a SLURM job.

    python workflow/scripts/launch.py [--nproc auto|N] [--gpus N] -- python train.py ARGS

``--nproc auto``: one process per visible GPU (``--cpu-procs`` processes without GPUs).
``--gpus N`` outside SLURM: first take N free devices of this machine (lock-based slots,
rmselect.cluster.gpu_slots), so concurrent local jobs never share a device.
``--dry-run`` prints the plan and exits. See rmselect.cluster.launch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from rmselect.cli import split_command
from rmselect.cluster.gpu_slots import NoFreeSlot, acquire, device_ids, lock_dir
from rmselect.cluster.launch import describe, plan
from rmselect.runlock import die_with_parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--nproc", default="auto", help="processes per node: auto or a number")
    p.add_argument("--cpu-procs", type=int, default=1, help="processes when no GPU is visible")
    p.add_argument("--gpus", type=int, default=0, help="GPUs to claim locally (outside SLURM)")
    p.add_argument("--slot-timeout", type=float, default=None, help="s to wait for free GPUs")
    p.add_argument("--dry-run", action="store_true", help="print the plan as JSON and exit")
    args, cmd = split_command(p, argv, "trainer command")
    env = dict(os.environ)
    if args.gpus > 0 and not env.get("SLURM_JOB_ID") and "CUDA_VISIBLE_DEVICES" not in env:
        try:
            slots = acquire(args.gpus, device_ids(env), lock_dir(env), timeout=args.slot_timeout)
        except NoFreeSlot as err:
            sys.stderr.write(f"launch: {err}\n")
            return 75
        slots.make_inheritable()  # torchrun and its ranks keep the devices until they exit
        env["CUDA_VISIBLE_DEVICES"] = slots.visible
    nproc = args.nproc if args.nproc == "auto" else int(args.nproc)
    launch = plan(cmd, nproc=nproc, env=env, cpu_procs=args.cpu_procs)
    if args.dry_run:
        out = {k: v for k, v in vars(launch).items() if k != "env"}
        out["cuda_visible_devices"] = env.get("CUDA_VISIBLE_DEVICES")
        print(json.dumps(out, indent=1))
        return 0
    sys.stderr.write(describe(launch) + "\n")
    sys.stderr.flush()
    # torchrun/srun inherit this (it survives exec): killing the job's shell wrapper sends
    # them SIGTERM, and they stop the ranks (rmselect.runlock.die_with_parent)
    die_with_parent()
    os.execvpe(launch.argv[0], launch.argv, env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
