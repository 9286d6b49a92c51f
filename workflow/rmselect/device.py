"""Which device a job computes on, and in which precision: no silent CPU fallback.

Every entry point that may use a GPU (the RM and post-training trainers through
:mod:`rmselect.runtime`, the RM scorer, presence, the probe, the upstream benchmarks) asks
:func:`pick_device` instead of ``torch.cuda.is_available()``.

A job knows it *holds* GPUs from ``RMSELECT_GPUS`` (the number of devices), which the job
wrappers set: ``workflow/scripts/gpu_slot.py N`` and ``workflow/scripts/launch.py --gpus N``
(every GPU rule runs behind one of them, locally and under SLURM). SLURM's own variables
(``SLURM_GPUS_ON_NODE``) are not read: they also reach CPU jobs started inside a GPU
allocation, which must still run on the CPU. A job that holds GPUs but
whose torch sees no CUDA device (a CPU build of torch, a driver mismatch, a node without
devices) stops at start with one line naming the job, the GPUs it holds and the torch build,
instead of running for days on the CPU. ``RMSELECT_ALLOW_CPU=1`` turns that stop into a
one-line warning (the CPU tests use it with fake device ids, ``RMSELECT_GPU_IDS``).

Precision ``auto`` is bf16 only on a CUDA device that supports it
(``torch.cuda.is_bf16_supported()``, Ampere and newer); a CUDA device without bf16 trains and
scores in fp32, with a one-line warning.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Mapping, Sequence

#: The number of GPUs the job holds (set by gpu_slot.py / launch.py).
ENV_GPUS = "RMSELECT_GPUS"
#: A short name of the job for messages (set by the wrappers: the script and its output).
ENV_JOB = "RMSELECT_JOB"
#: ``1``: a job holding GPUs may run on CPU (a warning instead of a stop; CPU tests).
ENV_ALLOW_CPU = "RMSELECT_ALLOW_CPU"

_warned: set[str] = set()


class NoCudaError(SystemExit):
    """A job holds GPUs but torch sees no CUDA device (exits with its one-line message)."""


def gpus_held(env: Mapping[str, str] | None = None) -> int:
    """GPUs the job holds: ``RMSELECT_GPUS`` (0 when unset or not a number)."""
    env = os.environ if env is None else env
    try:
        return max(0, int(str(env.get(ENV_GPUS, "0")).strip() or 0))
    except ValueError:
        return 0


def job_name(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> str:
    """``RMSELECT_JOB``, else the script's name and the first output-like argument."""
    env = os.environ if env is None else env
    if env.get(ENV_JOB):
        return str(env[ENV_JOB])
    return describe_command(sys.argv if argv is None else argv)


def describe_command(command: Sequence[str]) -> str:
    """``train_rm.py --out results/rm/bt/m/lr1e-5`` from a full command line."""
    cmd = [c for c in command if c]
    if cmd and os.path.basename(cmd[0]).startswith("python"):
        cmd = cmd[1:]
    if len(cmd) >= 2 and cmd[0] == "-m":
        name, rest = cmd[1], cmd[2:]
    elif cmd:
        name, rest = os.path.basename(cmd[0]), cmd[1:]
    else:
        return "?"
    for i, a in enumerate(rest[:-1]):
        if a.startswith("--out") or a in ("--name", "-o"):
            return f"{name} {a} {rest[i + 1]}"
    return name


def torch_build() -> str:
    """``torch 2.13.0+cpu (CUDA none: a CPU-only build)`` / ``torch 2.6.0+cu124 (CUDA 12.4)``."""
    import torch

    cuda = getattr(torch.version, "cuda", None)
    return f"torch {torch.__version__} (CUDA {cuda or 'none: a CPU-only build'})"


def no_cuda_message(job: str, gpus: int, env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    cvd = env.get("CUDA_VISIBLE_DEVICES")
    where = f", CUDA_VISIBLE_DEVICES={cvd}" if cvd is not None else ""
    return (f"job {job}: holds {gpus} GPU(s){where} but {torch_build()} sees no CUDA device; "
            "install a CUDA build of torch (make venv TORCH=cu128) or check the node's driver "
            f"(set {ENV_ALLOW_CPU}=1 to run on the CPU anyway)")


def check_cuda(gpus: int | None = None, job: str | None = None,
               env: Mapping[str, str] | None = None) -> bool:
    """Whether CUDA is usable; raise :class:`NoCudaError` when the job holds GPUs without it."""
    import torch

    env = os.environ if env is None else env
    gpus = gpus_held(env) if gpus is None else int(gpus)
    cuda = bool(torch.cuda.is_available())
    if gpus > 0 and not cuda:
        msg = no_cuda_message(job or job_name(env=env), gpus, env)
        if env.get(ENV_ALLOW_CPU) == "1":
            warn_once(f"warning: {msg}")
        else:
            raise NoCudaError(msg)
    return cuda


def pick_device(requested: str | None = None, gpus: int | None = None,
                job: str | None = None, env: Mapping[str, str] | None = None) -> Any:
    """The job's ``torch.device``: an explicit ``requested`` one (``cpu``, ``cuda``,
    ``cuda:1``; ``auto``/None = choose), else CUDA when available, else the CPU.

    A job that holds GPUs (``gpus``, default ``RMSELECT_GPUS``) or asks for ``cuda`` and
    sees no CUDA device stops (:func:`check_cuda`); an explicit ``cpu`` is obeyed.
    """
    import torch

    if requested and requested != "auto":
        dev = torch.device(requested)
        if dev.type == "cuda":
            check_cuda(max(1, gpus_held(env) if gpus is None else int(gpus)), job, env)
        return dev
    return torch.device("cuda") if check_cuda(gpus, job, env) else torch.device("cpu")


def bf16_supported(cuda: bool) -> bool:
    """bf16 for ``precision: auto``: on a CUDA device that supports it; a warning otherwise."""
    if not cuda:
        return False
    import torch

    if torch.cuda.is_bf16_supported():
        return True
    warn_once("warning: precision auto: this GPU does not support bf16 "
              f"({torch.cuda.get_device_name()}); using fp32")
    return False


def use_bf16(precision: str, cuda: bool) -> bool:
    """``bf16`` forces it, ``fp32`` forbids it, ``auto`` is :func:`bf16_supported`."""
    if precision == "bf16":
        return True
    if precision == "fp32":
        return False
    if precision != "auto":
        raise ValueError(f"precision {precision!r} is not one of auto, bf16, fp32")
    return bf16_supported(cuda)


def warn_once(msg: str) -> None:
    if msg not in _warned:
        _warned.add(msg)
        sys.stderr.write(msg + "\n")
        sys.stderr.flush()
