"""Run untrusted, model-generated Python in a separate, locked-down process.

Every program runs in a fresh child process (never in the pipeline's own interpreter) with:

* **CPU time**: ``RLIMIT_CPU`` (the kernel sends SIGXCPU, then SIGKILL at the hard limit);
* **memory**: ``RLIMIT_AS`` (allocations beyond it fail with ``MemoryError``);
* **wall clock**: the parent kills the child's whole process group after ``timeout_s``
  (catches ``sleep``/blocking programs that use no CPU);
* **file size** ``RLIMIT_FSIZE``, no core dumps, and ``RLIMIT_NPROC`` (fork bombs) when the
  child runs under its own unprivileged uid;
* **a scratch working directory** (a fresh temporary folder, deleted afterwards) that is also
  ``HOME`` and ``TMPDIR``, and a **minimal environment** (no tokens, no proxies, no
  ``PYTHONPATH``); the interpreter runs isolated (``python -I``);
* **no network**: when the parent is root the child gets its own empty network namespace
  (``unshare(CLONE_NEWNET)``: only a downed loopback), and in every case ``socket`` is
  replaced in the child by a stub that raises;
* **no write access outside the scratch folder**: when the parent is root the child drops to
  uid/gid ``nobody`` (65534) after the namespace is set up, so the kernel refuses to delete
  or modify the pipeline's files; in every case a reliability guard (as in OpenAI's
  HumanEval harness) disables ``os.remove``/``unlink``/``rmdir``/``rename``/``system``/
  ``fork``/``kill``, ``shutil.rmtree``/``move`` and ``subprocess`` in the child.

The guard alone is a speed bump (``import posix`` bypasses it); the kernel-level protections
(uid drop, network namespace) need root. Run as an unprivileged user, the sandbox still
enforces the resource limits, the scratch directory and the guard, and
:func:`isolation` reports ``user: same`` and ``network: socket-guard`` - the result JSON
records which protections were active. Children that escape the process group (double fork
plus ``setsid``) keep the inherited CPU limit and, under the uid drop, the process limit.

Standard output and error go to files (not pipes), so a grandchild holding a pipe open can
never hang the parent.
"""

from __future__ import annotations

import ctypes
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

NOBODY = 65534
_CLONE_NEWNET = 0x40000000

#: Prepended to every program (runs in the child before the untrusted code).
GUARD = r'''
import builtins, os, shutil, socket, subprocess, sys

def _blocked(*args, **kwargs):
    raise PermissionError("blocked by the rmselect sandbox")

class _NoSocket:
    def __init__(self, *args, **kwargs):
        raise PermissionError("network is disabled in the rmselect sandbox")

socket.socket = _NoSocket
socket.create_connection = _blocked
socket.getaddrinfo = _blocked
socket.socketpair = _blocked
for _name in ("system", "kill", "killpg", "fork", "forkpty", "remove", "unlink", "rmdir",
              "removedirs", "rename", "renames", "replace", "truncate", "chmod", "chown",
              "lchown", "fchmod", "fchown", "setuid", "putenv", "unsetenv", "execv",
              "execve", "execvp", "execvpe", "execl", "execle", "execlp", "execlpe",
              "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp",
              "spawnvpe", "posix_spawn", "posix_spawnp", "link", "symlink"):
    if hasattr(os, _name):
        setattr(os, _name, _blocked)
shutil.rmtree = _blocked
shutil.move = _blocked
shutil.chown = _blocked
subprocess.Popen = _blocked
subprocess.run = _blocked
subprocess.call = _blocked
subprocess.check_call = _blocked
subprocess.check_output = _blocked
del _name, _blocked, _NoSocket
'''


@dataclass(frozen=True)
class Limits:
    """Per-program limits."""

    timeout_s: float = 10.0
    cpu_s: int = 5
    mem_mb: int = 1024
    fsize_mb: int = 16
    nproc: int = 64
    #: Characters of stdout/stderr kept in the result (the tail).
    output_chars: int = 2000

    @classmethod
    def from_config(cls, cfg: dict[str, Any] | None) -> "Limits":
        cfg = dict(cfg or {})
        known = {k: cfg[k] for k in cls.__dataclass_fields__ if k in cfg}
        return cls(**known)


@dataclass(frozen=True)
class Result:
    """What happened to one program."""

    #: ``passed`` (exit 0), ``failed`` (non-zero exit, e.g. a failing assert), ``timeout``
    #: (wall clock), ``cpu_limit``, ``memory`` (MemoryError / RLIMIT_AS), ``error``
    #: (killed by another signal).
    status: str
    returncode: int | None
    wall_s: float
    stdout: str
    stderr: str

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@lru_cache(maxsize=1)
def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _unshare_net() -> None:
    if _libc().unshare(_CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare(CLONE_NEWNET) failed: {os.strerror(err)}")


@lru_cache(maxsize=1)
def _netns_available() -> bool:
    if not _is_root() or not sys.platform.startswith("linux"):
        return False
    try:
        proc = subprocess.run(["true"], preexec_fn=_unshare_net, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def isolation() -> dict[str, str]:
    """Which kernel-level protections this process can give its children."""
    return {
        "user": "nobody" if _is_root() else "same",
        "network": "netns+socket-guard" if _netns_available() else "socket-guard",
        "limits": "rlimit-cpu,rlimit-as,rlimit-fsize,wall-clock",
    }


def _preexec(limits: Limits, netns: bool, drop: bool):
    def fn() -> None:  # runs in the child between fork and exec
        if netns:
            _unshare_net()
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
        mem = limits.mem_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        fsize = limits.fsize_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if drop:
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.nproc, limits.nproc))
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)

    return fn


def _tail(path: Path, n: int) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-n:].decode("utf-8", errors="replace")


def _candidates() -> list[str]:
    out = [sys.executable, "/usr/bin/python3", "/usr/local/bin/python3", shutil.which("python3")]
    seen: list[str] = []
    for c in out:
        if c and c not in seen and os.path.exists(c):
            seen.append(c)
    return seen


@lru_cache(maxsize=1)
def default_python() -> str:
    """The first interpreter the sandboxed child can execute (its uid may be ``nobody``).

    The project's venv may live where ``nobody`` cannot read (e.g. under ``/root``); the
    generated programs need only the standard library, so a system Python serves as well.
    """
    for cand in _candidates():
        if _run(cand, "print(1)\n", Limits(timeout_s=20)).status == "passed":
            return cand
    raise RuntimeError(
        "no Python interpreter can run inside the code sandbox (tried "
        + ", ".join(_candidates())
        + "); set benchmarks.sandbox.python to one readable by uid 65534"
    )


def run_python(source: str, limits: Limits = Limits(), python: str | None = None) -> Result:
    """Run ``source`` as a Python program under the sandbox; never raises for program faults."""
    return _run(python or default_python(), source, limits)


def _run(python: str, source: str, limits: Limits) -> Result:
    try:
        return _run_unchecked(python, source, limits)
    except PermissionError as err:  # exec of the interpreter refused (uid nobody)
        return Result("error", None, 0.0, "", f"cannot start {python}: {err}")


def _run_unchecked(python: str, source: str, limits: Limits) -> Result:
    drop = _is_root()
    netns = _netns_available()
    scratch = Path(tempfile.mkdtemp(prefix="rmselect-sbx-"))
    logs = Path(tempfile.mkdtemp(prefix="rmselect-sbx-out-"))
    try:
        (scratch / "program.py").write_text(GUARD + "\n" + source)
        if drop:
            for p in (scratch, scratch / "program.py"):
                os.chown(p, NOBODY, NOBODY)
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(scratch),
            "TMPDIR": str(scratch),
            "LANG": "C.UTF-8",
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": "1",
        }
        out_path, err_path = logs / "stdout", logs / "stderr"
        t0 = time.monotonic()
        timed_out = False
        with out_path.open("wb") as out, err_path.open("wb") as err:
            proc = subprocess.Popen(
                [python, "-I", "-B", "program.py"],
                cwd=scratch,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                preexec_fn=_preexec(limits, netns, drop),
                close_fds=True,
            )
            try:
                proc.wait(timeout=limits.timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                proc.wait()
        wall = time.monotonic() - t0
        stdout = _tail(out_path, limits.output_chars)
        stderr = _tail(err_path, limits.output_chars)
        rc = proc.returncode
        if timed_out:
            status = "timeout"
        elif rc == 0:
            status = "passed"
        elif rc in (-signal.SIGXCPU, -signal.SIGKILL):
            status = "cpu_limit"
        elif "MemoryError" in stderr:
            status = "memory"
        elif rc is not None and rc < 0:
            status = "error"
        else:
            status = "failed"
        return Result(status, rc, round(wall, 4), stdout, stderr)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(logs, ignore_errors=True)


def check_program(prompt: str, completion: str, test: str, entry_point: str | None) -> str:
    """The HumanEval program: prompt + completion + tests (+ ``check(entry_point)``)."""
    parts = [prompt + completion, "", test]
    if entry_point and f"check({entry_point})" not in test:
        parts.append(f"check({entry_point})")
    return "\n".join(parts) + "\n"


@lru_cache(maxsize=8)
def selfcheck(limits: Limits = Limits(), python: str | None = None) -> None:
    """Fail loudly if the sandbox cannot run a trivial program (else every sample would score 0).

    Cached: checked once per process and (limits, interpreter).
    """
    ok = run_python("assert sum([1, 2]) == 3\n", limits, python)
    bad = run_python("assert 1 == 2\n", limits, python)
    if ok.status != "passed" or bad.status != "failed":
        raise RuntimeError(
            "the code sandbox cannot run Python programs "
            f"(interpreter {python or default_python()}: passing program -> {ok.status}, "
            f"failing program -> {bad.status}; stderr: {ok.stderr.strip()[-300:]!r}); "
            "check that the interpreter is readable by uid 65534 when running as root, "
            "or set benchmarks.sandbox.python"
        )
