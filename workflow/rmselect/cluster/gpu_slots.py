"""GPU slots on one machine: each local job gets its own devices (CUDA_VISIBLE_DEVICES).

Snakemake's ``--resources gpu=N`` only limits how many GPUs running jobs request in total;
it does not say *which* devices a job may use. This allocator does: one lock file per device
under a lock directory; a job takes ``n`` free devices by locking their files with
``fcntl.flock`` (non-blocking), keeps the locks for its whole life, and the kernel drops
them when the process (and every child that inherited the descriptors) exits, so a crashed or
killed job frees its devices without any clean-up.

Devices come from ``CUDA_VISIBLE_DEVICES`` when it is already set (slots are taken *within*
the visible set, so jobs started from a shell restricted to some GPUs still never share
one), else from ``RMSELECT_GPU_IDS`` (``0,1,2``: tests and explicit choices), else from
``nvidia-smi -L``, else none. ``nvidia-smi`` numbers devices in PCI bus order, CUDA by default
fastest first: a job given ids of nvidia-smi's numbering also gets
``CUDA_DEVICE_ORDER=PCI_BUS_ID``, so CUDA opens the devices the lock files name. The lock
directory is ``RMSELECT_GPU_LOCK_DIR``, default ``/tmp/rmselect-gpu-locks-<uid>`` (one per
user and machine: every workflow run of that user on the box shares it).

Under SLURM (``SLURM_JOB_ID`` set) nothing is allocated: SLURM already gives the job its own
devices. Either way the job learns how many GPUs it holds from ``RMSELECT_GPUS``
(:mod:`rmselect.device`: a job holding GPUs without CUDA stops at start).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Mapping, Sequence

ENV_IDS = "RMSELECT_GPU_IDS"
ENV_LOCK_DIR = "RMSELECT_GPU_LOCK_DIR"


class NoFreeSlot(RuntimeError):
    """Not enough free devices before the timeout."""


def visible_ids(env: Mapping[str, str]) -> list[str] | None:
    """The ids of an inherited ``CUDA_VISIBLE_DEVICES`` (None when unset; ``-1``: none)."""
    raw = env.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return None
    ids = [d.strip() for d in raw.split(",") if d.strip()]
    return [] if not ids or ids[0].startswith("-") else ids


def device_ids(env: Mapping[str, str] | None = None) -> list[str]:
    """The GPU ids a job may take: the inherited ``CUDA_VISIBLE_DEVICES``, else
    ``RMSELECT_GPU_IDS``, else ``nvidia-smi -L``, else ``[]``."""
    env = os.environ if env is None else env
    visible = visible_ids(env)
    if visible is not None:
        return visible
    raw = env.get(ENV_IDS)
    if raw is not None:
        return [d.strip() for d in raw.split(",") if d.strip()]
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def lock_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    default = Path("/tmp") / f"rmselect-gpu-locks-{os.getuid()}"
    return Path(env.get(ENV_LOCK_DIR) or default)


@dataclass
class Slots:
    """Held devices; the locks live as long as the file objects (or inherited copies)."""

    devices: list[str]
    files: list[IO[bytes]] = field(default_factory=list, repr=False)

    @property
    def visible(self) -> str:
        """The value for CUDA_VISIBLE_DEVICES."""
        return ",".join(self.devices)

    def make_inheritable(self) -> None:
        """Keep the locks across ``exec`` and in child processes (they hold them too)."""
        for fh in self.files:
            os.set_inheritable(fh.fileno(), True)

    def release(self) -> None:
        for fh in self.files:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            finally:
                fh.close()
        self.files.clear()

    def __enter__(self) -> "Slots":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def try_acquire(n: int, devices: Sequence[str], directory: Path) -> Slots | None:
    """Lock ``n`` free devices now (all or nothing); None when fewer are free."""
    directory.mkdir(parents=True, exist_ok=True)
    held = Slots(devices=[])
    for dev in devices:
        if len(held.devices) == n:
            break
        fh = open(directory / f"gpu{dev}.lock", "a+b")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            continue
        # Who holds it, for people looking at the lock dir (informational only).
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n".encode())
        fh.flush()
        held.devices.append(dev)
        held.files.append(fh)
    if len(held.devices) < n:
        held.release()
        return None
    return held


def acquire(
    n: int,
    devices: Sequence[str] | None = None,
    directory: Path | None = None,
    timeout: float | None = None,
    poll: float = 0.5,
) -> Slots:
    """Block until ``n`` devices are free and lock them; raise :class:`NoFreeSlot` on timeout.

    Asking for more devices than the machine has fails at once (it could never succeed).
    """
    devices = list(device_ids() if devices is None else devices)
    directory = lock_dir() if directory is None else directory
    if n <= 0:
        return Slots(devices=[])
    if n > len(devices):
        raise NoFreeSlot(
            f"job wants {n} GPU(s) but this machine has {len(devices)} "
            f"({','.join(devices) or 'none'}); set {ENV_IDS} or lower the request"
        )
    start = time.monotonic()
    while True:
        got = try_acquire(n, devices, directory)
        if got is not None:
            return got
        if timeout is not None and time.monotonic() - start > timeout:
            raise NoFreeSlot(f"no {n} free GPU(s) among {devices} after {timeout:.0f} s")
        time.sleep(poll)


def run_with_slots(
    n: int,
    command: Sequence[str],
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> None:
    """Take ``n`` devices, export CUDA_VISIBLE_DEVICES and ``exec`` ``command`` (no return).

    The lock descriptors are made inheritable, so after ``exec`` the job itself (and its
    children, e.g. torchrun's ranks) holds them; they vanish when the last of them exits.
    Under SLURM, or with ``n == 0``, the command runs unchanged.
    """
    env = dict(os.environ if env is None else env)
    if not command:
        raise ValueError("no command given")
    if n > 0 and not env.get("SLURM_JOB_ID"):
        slots = acquire(n, device_ids(env), lock_dir(env), timeout=timeout)
        slots.make_inheritable()
        env.update(slot_environment(env, slots))
    env.update(held_environment(env, n, command))
    os.execvpe(command[0], list(command), env)


def slot_environment(env: Mapping[str, str], slots: Slots) -> dict[str, str]:
    """What a job on ``slots`` exports: CUDA_VISIBLE_DEVICES and, for ids in nvidia-smi's
    (PCI bus) numbering, ``CUDA_DEVICE_ORDER=PCI_BUS_ID``. Ids taken from an inherited
    CUDA_VISIBLE_DEVICES keep that shell's CUDA_DEVICE_ORDER when it set one."""
    out = {"CUDA_VISIBLE_DEVICES": slots.visible}
    if visible_ids(env) is None or not env.get("CUDA_DEVICE_ORDER"):
        out["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    return out


def held_environment(env: Mapping[str, str], gpus: int, command: Sequence[str]) -> dict[str, str]:
    """``RMSELECT_GPUS`` (GPUs the job holds) and ``RMSELECT_JOB`` (its name in messages)."""
    from rmselect.device import ENV_GPUS, ENV_JOB, describe_command

    out = {ENV_GPUS: str(max(0, int(gpus)))}
    if not env.get(ENV_JOB):
        out[ENV_JOB] = describe_command(command)
    return out


def fit_to_machine(want: int, have: int) -> int:
    """Ranks of a job that asks for ``want`` GPUs on a machine with ``have``.

    ``want`` when it fits; else the largest divisor of ``want`` that is at most ``have``, so
    that a global batch divisible by ``want`` x micro-batch stays divisible (the trainer's
    gradient accumulation makes up the missing ranks: 8 ranks x 2 = 4 ranks x 4). A machine
    without devices gets ``want`` (and :func:`acquire` says it cannot)."""
    if want <= have or have <= 0:
        return want
    return max(d for d in range(1, have + 1) if want % d == 0)
