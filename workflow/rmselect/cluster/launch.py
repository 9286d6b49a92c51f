"""Build the command that starts a (multi-GPU, multi-node) DeepSpeed/torch trainer.

One function, :func:`plan`, looks at where the job runs and returns a :class:`Launch`:

* **single node** (a workstation, or a SLURM job with ``nodes=1``):
  ``python -m torch.distributed.run --standalone --nnodes 1 --nproc_per_node <n> <trainer>
  ...``: torchrun's own c10d store binds port 0, so the kernel picks a free port that stays
  bound for the job's life, and the ranks join that store (no port is chosen first and bound
  later: two launches at the same moment cannot race for one);
* **several nodes** (a SLURM job with ``nodes>1``; the rule has the ``mpi`` resource so the
  executor plugin runs it in the batch script and lets it call srun):
  ``srun --jobid <id> --nodes N --ntasks N --ntasks-per-node 1 --kill-on-bad-exit=1
  python -m torch.distributed.run --nnodes N --nproc_per_node <gpus per node>
  --rdzv_backend c10d --rdzv_id <job id> --rdzv_endpoint <first node>:<port> <trainer> ...``.
  The node list and count come from ``SLURM_JOB_NODELIST`` / ``SLURM_NNODES`` or, because the
  plugin's job step strips most ``SLURM_*`` variables, from ``scontrol show job <id>``;
  ``scontrol show hostnames`` expands the list.

``nproc='auto'`` means: the GPUs visible to the job (``CUDA_VISIBLE_DEVICES``, else
``nvidia-smi -L``), or ``cpu_procs`` processes on a machine without GPUs (gloo on CPU).

The command-line front end is workflow/scripts/launch.py.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from rmselect.cluster.gpu_slots import device_ids

#: Ports used for the rendezvous of multi-node SLURM jobs: BASE + job_id mod SPAN, i.e.
#: 10000-29999, below Linux's ephemeral range (``ip_local_port_range``, 32768-60999 by
#: default), so no outgoing connection on the head node holds the port by chance.
PORT_BASE = 10000
PORT_SPAN = 20000
#: Environment variable the trainers read for the process-group timeout (seconds).
ENV_PG_TIMEOUT = "RMSELECT_PG_TIMEOUT_S"

Runner = Callable[[Sequence[str]], str]


def _run(cmd: Sequence[str]) -> str:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=True).stdout


@dataclass(frozen=True)
class Allocation:
    """Where the job runs: nodes (host names), the SLURM job id (None outside SLURM)."""

    nodes: tuple[str, ...]
    job_id: str | None = None

    @property
    def nnodes(self) -> int:
        return len(self.nodes)

    @property
    def head(self) -> str:
        return self.nodes[0]


@dataclass
class Launch:
    """A launch plan: the argv to exec, plus what it means (for logs and tests)."""

    argv: list[str]
    nnodes: int
    nproc_per_node: int
    master_addr: str
    master_port: int
    job_id: str | None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def world_size(self) -> int:
        return self.nnodes * self.nproc_per_node


def port_for_job(job_id: str | int) -> int:
    """A rendezvous port fixed by the SLURM job id (same on every node of the job)."""
    digits = re.sub(r"\D", "", str(job_id)) or "0"
    return PORT_BASE + int(digits) % PORT_SPAN


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def expand_hostlist(nodelist: str, run: Runner = _run) -> list[str]:
    """``node[01-02],gpu7`` -> host names, via ``scontrol show hostnames``."""
    if not nodelist:
        return []
    if not re.search(r"[\[\],]", nodelist):
        return [nodelist]
    return [h for h in run(["scontrol", "show", "hostnames", nodelist]).split() if h]


def _scontrol_job(job_id: str, run: Runner) -> dict[str, str]:
    out = run(["scontrol", "show", "job", "--oneliner", str(job_id)])
    fields: dict[str, str] = {}
    for tok in out.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            fields.setdefault(k, v)
    return fields


def allocation(env: Mapping[str, str] | None = None, run: Runner = _run) -> Allocation:
    """The job's allocation: SLURM's (from env vars or scontrol) or this host alone."""
    env = os.environ if env is None else env
    job_id = env.get("SLURM_JOB_ID") or env.get("SLURM_JOBID")
    if not job_id:
        return Allocation(nodes=(socket.gethostname(),), job_id=None)
    nodelist = env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST") or ""
    if not nodelist:
        nodelist = _scontrol_job(job_id, run).get("NodeList", "")
    nodes = expand_hostlist(nodelist, run) or [socket.gethostname()]
    want = env.get("SLURM_NNODES") or env.get("SLURM_JOB_NUM_NODES")
    if want and int(want) != len(nodes):
        raise RuntimeError(f"SLURM_NNODES={want} but the node list {nodelist!r} has {len(nodes)}")
    return Allocation(nodes=tuple(nodes), job_id=str(job_id))


def visible_gpus(env: Mapping[str, str] | None = None) -> int:
    """GPUs this process may use: CUDA_VISIBLE_DEVICES if set, else the machine's."""
    env = os.environ if env is None else env
    cvd = env.get("CUDA_VISIBLE_DEVICES")
    if cvd is not None:
        return len([d for d in cvd.split(",") if d.strip() and d.strip() != "-1"])
    return len(device_ids(env))


def trainer_argv(command: Sequence[str]) -> list[str]:
    """torchrun's view of the trainer: ``python x.py a`` -> ``x.py a``; ``python -m m`` -> ``-m m``."""
    cmd = list(command)
    if not cmd:
        raise ValueError("no trainer command given")
    if os.path.basename(cmd[0]).startswith("python"):
        cmd = cmd[1:]
    if not cmd:
        raise ValueError("no trainer script after 'python'")
    return cmd


def plan(
    command: Sequence[str],
    nproc: int | str = "auto",
    env: Mapping[str, str] | None = None,
    run: Runner = _run,
    cpu_procs: int = 1,
    python: str | None = None,
    port: int | None = None,
) -> Launch:
    """The launch for ``command`` (a trainer script and its arguments) in this environment."""
    env = os.environ if env is None else env
    python = python or sys.executable
    alloc = allocation(env, run)
    if nproc == "auto":
        n = visible_gpus(env) or max(1, int(cpu_procs))
    else:
        n = int(nproc)
    if n < 1:
        raise ValueError(f"nproc must be >= 1, got {nproc!r}")
    trainer = trainer_argv(command)
    torchrun = [python, "-m", "torch.distributed.run"]
    if alloc.nnodes == 1:
        return single_node(torchrun, trainer, n, alloc.job_id, port)
    assert alloc.job_id is not None
    p = port or port_for_job(alloc.job_id)
    nn = str(alloc.nnodes)
    srun = shutil.which("srun", path=env.get("PATH")) or "srun"
    argv = [
        srun,
        f"--jobid={alloc.job_id}",
        "--nodes", nn,
        "--ntasks", nn,
        "--ntasks-per-node", "1",
        "--kill-on-bad-exit=1",
        *torchrun,
        "--nnodes", nn,
        "--nproc_per_node", str(n),
        "--rdzv_backend", "c10d",
        "--rdzv_id", str(alloc.job_id),
        "--rdzv_endpoint", f"{alloc.head}:{p}",
        *trainer,
    ]  # fmt: skip
    return Launch(argv, alloc.nnodes, n, alloc.head, p, alloc.job_id)


def single_node(torchrun: list[str], trainer: list[str], n: int, job_id: str | None,
                port: int | None = None) -> Launch:
    """One node: ``torchrun --standalone`` (port 0, bound by torchrun's store and held),
    or, with an explicit ``port``, a c10d rendezvous on 127.0.0.1:port."""
    if port:
        rdzv = ["--rdzv_backend", "c10d", "--rdzv_endpoint", f"127.0.0.1:{port}",
                "--rdzv_id", str(job_id or os.getpid())]
        addr = "127.0.0.1"
    else:
        rdzv, addr, port = ["--standalone"], "localhost", 0
    argv = torchrun + [*rdzv, "--nnodes", "1", "--nproc_per_node", str(n), *trainer]
    return Launch(argv, 1, n, addr, int(port), job_id)


def local_port_range(path: str = "/proc/sys/net/ipv4/ip_local_port_range") -> tuple[int, int]:
    """The kernel's ephemeral port range (Linux's default when it cannot be read)."""
    try:
        lo, hi = (int(x) for x in open(path).read().split()[:2])
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def nccl_environment(timeout_min: float | None = None, ifname: str | None = None) -> dict[str, str]:
    """The variables that carry ``resources.nccl`` to the ranks: the process-group timeout
    (``RMSELECT_PG_TIMEOUT_S``, read by :func:`rmselect.runtime.start`, which passes it to
    ``init_process_group``) and NCCL's network interface (``NCCL_SOCKET_IFNAME``)."""
    env: dict[str, str] = {}
    if timeout_min:
        env[ENV_PG_TIMEOUT] = str(int(round(float(timeout_min) * 60)))
    if ifname:
        env["NCCL_SOCKET_IFNAME"] = str(ifname)
    return env


def describe(launch: Launch) -> str:
    """One log line: where and how the trainer starts."""
    return (
        f"launch: SLURM_JOB_ID={launch.job_id or '-'} nodes={launch.nnodes} "
        f"nproc_per_node={launch.nproc_per_node} world_size={launch.world_size} "
        f"rendezvous={launch.master_addr}:{launch.master_port or '0 (torchrun binds a free port)'}\n"
        f"launch: {' '.join(launch.argv)}"
    )
