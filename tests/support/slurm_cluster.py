"""A throw-away single-node SLURM cluster on 127.0.0.1, for tests and trying the profile.

Starts ``munged``, ``slurmctld`` and ``slurmd`` from Debian's packages (``slurm-wlm``,
``munge``) in the foreground as child processes, with every key, socket, spool, state and log
file under one directory, free TCP ports, and no accounting (status comes from ``squeue``).
:meth:`TestCluster.stop` ends exactly those processes (by pid). Needs root (slurmd runs jobs
as their submitter); :func:`ensure_installed` installs the packages with apt-get when missing.

    with TestCluster(tmp_path) as c:
        subprocess.run(["sbatch", "--wrap", "hostname"], env=c.env)

Optional fake GPUs (``gpus=2``): a count-only ``gres/gpu`` so that ``--gpus=N`` requests are
accepted and accounted, without devices.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from rmselect.cluster.launch import free_port

BINARIES = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "srun")
PACKAGES = ("slurm-wlm", "munge")
DEFAULT_CONF = Path("/etc/slurm/slurm.conf")


class ClusterError(RuntimeError):
    """The test cluster could not be installed or started (message says why)."""


def missing_binaries() -> list[str]:
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return [b for b in BINARIES if shutil.which(b, path=path) is None]


def ensure_installed(timeout: float = 900) -> None:
    """Install slurm-wlm and munge with apt-get when a binary is missing (root only)."""
    if not missing_binaries():
        return
    if os.geteuid() != 0:
        raise ClusterError(f"missing {', '.join(missing_binaries())} and not root to install")
    if not shutil.which("apt-get"):
        raise ClusterError("missing SLURM binaries and no apt-get to install them")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *PACKAGES]):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise ClusterError(f"{' '.join(cmd)} failed: {r.stderr[-2000:]}")
    if missing_binaries():
        raise ClusterError(f"still missing after install: {', '.join(missing_binaries())}")


def _mem_mb() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 4096


def _sbin(name: str) -> str:
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") or name


@dataclass
class TestCluster:
    """One node named after this host, one default partition ``debug``."""

    root: Path
    cpus: int = field(default_factory=lambda: os.cpu_count() or 1)
    mem_mb: int = field(default_factory=lambda: max(1024, _mem_mb() - 1024))
    gpus: int = 0
    start_timeout: float = 60.0
    procs: dict[str, subprocess.Popen] = field(default_factory=dict, repr=False)

    __test__ = False  # not a pytest class

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.node = socket.gethostname().split(".")[0]
        self.conf = self.root / "slurm.conf"
        self.munge_socket = self.root / "munge" / "munge.socket"

    @property
    def env(self) -> dict[str, str]:
        """The environment for clients (sbatch, squeue, snakemake): points at this cluster."""
        path = os.environ.get("PATH", "")
        return {**os.environ, "SLURM_CONF": str(self.conf), "PATH": f"{path}:/usr/sbin:/sbin"}

    # ------------------------------------------------------------------ configuration

    def write_config(self) -> None:
        r = self.root
        for d in ("munge", "state", "spool", "log"):
            (r / d).mkdir(parents=True, exist_ok=True)
        os.chmod(r / "munge", 0o700)
        gres = ""
        if self.gpus:
            (r / "gres.conf").write_text(f"NodeName={self.node} Name=gpu Count={self.gpus}\n")
            gres = f" Gres=gpu:{self.gpus}"
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=rmselect-test",
                    f"SlurmctldHost={self.node}(127.0.0.1)",
                    f"SlurmctldPort={free_port()}",
                    f"SlurmdPort={free_port()}",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    f"AuthInfo=socket={self.munge_socket}",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    f"StateSaveLocation={r / 'state'}",
                    f"SlurmdSpoolDir={r / 'spool'}",
                    f"SlurmctldPidFile={r / 'slurmctld.pid'}",
                    f"SlurmdPidFile={r / 'slurmd.pid'}",
                    f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}",
                    f"SlurmdLogFile={r / 'log' / 'slurmd.log'}",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    "AccountingStorageType=accounting_storage/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "JobCompType=jobcomp/none",
                    "MpiDefault=none",
                    "ReturnToService=2",
                    "MinJobAge=600",
                    "SchedulerType=sched/backfill",
                    "SchedulerParameters=sched_interval=2",
                    "KillWait=5",
                    "InactiveLimit=0",
                    "SlurmctldTimeout=30",
                    "SlurmdTimeout=60",
                    "SlurmdParameters=config_overrides",
                    *(["GresTypes=gpu"] if self.gpus else []),
                    f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} "
                    f"RealMemory={self.mem_mb}{gres} State=UNKNOWN",
                    f"PartitionName=debug Nodes={self.node} Default=YES MaxTime=INFINITE "
                    "State=UP",
                    "",
                ]
            )
        )

    # ------------------------------------------------------------------ daemons

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.root / "log" / f"{name}.out", "ab")
        self.procs[name] = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )
        log.close()

    def _wait(self, what: str, ok) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise ClusterError(f"{name} exited ({p.returncode}); {self.logs_tail()}")
            if ok():
                return
            time.sleep(0.3)
        raise ClusterError(f"timed out waiting for {what}; {self.logs_tail()}")

    def start(self) -> "TestCluster":
        ensure_installed()
        if os.geteuid() != 0:
            raise ClusterError("the test cluster needs root (slurmd runs jobs as their owner)")
        self.write_config()
        key = self.root / "munge" / "munge.key"
        subprocess.run([_sbin("mungekey"), "-c", "-f", "-k", str(key)], check=True,
                       capture_output=True)  # fmt: skip
        os.chmod(key, 0o600)
        self._spawn(
            "munged",
            [
                _sbin("munged"), "-F", "--force",
                f"--key-file={key}",
                f"--socket={self.munge_socket}",
                f"--pid-file={self.root / 'munge' / 'munged.pid'}",
                f"--log-file={self.root / 'log' / 'munged.log'}",
                f"--seed-file={self.root / 'munge' / 'munged.seed'}",
            ],
        )  # fmt: skip
        self._wait("munged", self.munge_socket.exists)
        self._link_default_conf()
        self._spawn("slurmctld", [_sbin("slurmctld"), "-D", "-c", "-f", str(self.conf)])
        self._wait("slurmctld", lambda: self._run(["scontrol", "ping"]).find("UP") >= 0)
        self._spawn("slurmd", [_sbin("slurmd"), "-D", "-N", self.node, "-f", str(self.conf)])
        self._wait("an idle node", self._node_idle)
        return self

    def _run(self, argv: list[str]) -> str:
        try:
            r = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return r.stdout

    def _node_idle(self) -> bool:
        state = self._run(["sinfo", "-h", "-N", "-o", "%T"]).strip().lower()
        return state.startswith("idle") or state.startswith("mix")

    def _link_default_conf(self) -> None:
        """Make /etc/slurm/slurm.conf point here while the cluster runs (when it is free).

        The executor plugin's job step drops SLURM_CONF (it strips most SLURM_* variables
        before its nested ``srun``), so clients inside jobs read the default path.
        """
        if DEFAULT_CONF.exists() or DEFAULT_CONF.is_symlink():
            if DEFAULT_CONF.resolve() != self.conf.resolve():
                raise ClusterError(
                    f"{DEFAULT_CONF} belongs to another SLURM set-up; jobs would not find "
                    "the test cluster (remove it or run the test on a machine without SLURM)"
                )
            return
        DEFAULT_CONF.parent.mkdir(parents=True, exist_ok=True)
        DEFAULT_CONF.symlink_to(self.conf)
        self._linked = True

    def stop(self) -> None:
        """Stop the daemons this object started (slurmd, slurmctld, munged), by pid."""
        if getattr(self, "_linked", False) and DEFAULT_CONF.is_symlink():
            if os.readlink(DEFAULT_CONF) == str(self.conf):
                DEFAULT_CONF.unlink()
            self._linked = False
        for name in ("slurmd", "slurmctld", "munged"):
            p = self.procs.pop(name, None)
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)

    def logs_tail(self, n: int = 1500) -> str:
        out = []
        for f in sorted((self.root / "log").glob("*")):
            text = f.read_text(errors="replace")[-n:]
            if text.strip():
                out.append(f"--- {f.name}\n{text}")
        return "\n".join(out)

    def __enter__(self) -> "TestCluster":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
