"""Start a trainer with torchrun on this node, or srun + torchrun on every node of a SLURM job.

    python workflow/scripts/launch.py [--nproc auto|N] [--gpus N] -- python train.py ARGS

``--nproc auto``: one process per visible GPU (``--cpu-procs`` processes without GPUs).
``--gpus N`` outside SLURM: first take N free devices of this machine (lock-based slots,
rmselect.cluster.gpu_slots, within an inherited CUDA_VISIBLE_DEVICES), so concurrent local
jobs never share a device. A machine with fewer GPUs than N (a workstation running a job of
the 8-GPU tier) runs it on the largest divisor of N it has: the trainers' gradient
accumulation keeps the global batch exact. The job learns the GPUs it holds from
RMSELECT_GPUS (rmselect.device: no silent CPU fallback).
``--nccl-timeout-min`` / ``--nccl-ifname``: resources.nccl (process-group timeout, NCCL's
network interface). ``--dry-run`` prints the plan and exits. See rmselect.cluster.launch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from rmselect.cli import split_command
from rmselect.cluster.gpu_slots import (
    NoFreeSlot,
    acquire,
    device_ids,
    fit_to_machine,
    held_environment,
    lock_dir,
    slot_environment,
)
from rmselect.cluster.launch import describe, nccl_environment, plan
from rmselect.runlock import die_with_parent


def claim_gpus(gpus: int, env: dict[str, str], timeout: float | None) -> int:
    """Take the job's local GPUs into ``env`` (outside SLURM); returns the GPUs held.

    Fewer than asked on a machine that has fewer (:func:`fit_to_machine`); raises
    NoFreeSlot when they are busy past ``timeout``."""
    if gpus <= 0 or env.get("SLURM_JOB_ID"):
        return max(0, gpus)
    devices = device_ids(env)
    n = fit_to_machine(gpus, len(devices))
    if n != gpus:
        sys.stderr.write(f"launch: the job asks for {gpus} GPU(s), this machine has "
                         f"{len(devices)}: {n} rank(s), gradient accumulation keeps the "
                         "global batch\n")
    slots = acquire(n, devices, lock_dir(env), timeout=timeout)
    slots.make_inheritable()  # torchrun and its ranks keep the devices until they exit
    env.update(slot_environment(env, slots))
    return n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--nproc", default="auto", help="processes per node: auto or a number")
    p.add_argument("--cpu-procs", type=int, default=1, help="processes when no GPU is visible")
    p.add_argument("--gpus", type=int, default=0, help="GPUs to claim locally (outside SLURM)")
    p.add_argument("--slot-timeout", type=float, default=None, help="s to wait for free GPUs")
    p.add_argument("--nccl-timeout-min", type=float, default=None,
                   help="process-group timeout in minutes (resources.nccl.timeout_min)")
    p.add_argument("--nccl-ifname", default=None,
                   help="NCCL_SOCKET_IFNAME (resources.nccl.socket_ifname)")
    p.add_argument("--dry-run", action="store_true", help="print the plan as JSON and exit")
    args, cmd = split_command(p, argv, "trainer command")
    env = dict(os.environ)
    try:
        held = claim_gpus(args.gpus, env, args.slot_timeout)
    except NoFreeSlot as err:
        sys.stderr.write(f"launch: {err}\n")
        return 75
    env.update(held_environment(env, held, cmd))
    env.update(nccl_environment(args.nccl_timeout_min, args.nccl_ifname))
    nproc = args.nproc if args.nproc == "auto" else int(args.nproc)
    launch = plan(cmd, nproc=nproc, env=env, cpu_procs=args.cpu_procs)
    if args.dry_run:
        out = {k: v for k, v in vars(launch).items() if k != "env"}
        out["cuda_visible_devices"] = env.get("CUDA_VISIBLE_DEVICES")
        out["env"] = {k: env[k] for k in sorted(env) if k.startswith(
            ("CUDA_DEVICE_ORDER", "RMSELECT_", "NCCL_")) and k != "RMSELECT_GPU_LOCK_DIR"}
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
