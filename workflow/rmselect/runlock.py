"""One process per run folder: an exclusive lock the trainers hold for their whole life.

Snakemake's own lock does not protect a run folder: in Snakemake 9.27 a finishing run
removes the whole ``.snakemake/locks`` folder, so a second ``snakemake`` started while a
first one still trains a target plans and starts the same job again (docs/clusters.md). Two
trainers on one folder then resume from one DeepSpeed checkpoint while it is being written
and append to one ``metrics.jsonl``. So the RM and post-training trainers take an exclusive
``fcntl.flock`` on ``<run folder>/.lock`` (:func:`hold`) before they read or write anything:

* a second process exits at once with one line naming the holder (pid, host, start time),
  which the holder writes into the lock file;
* the kernel drops a ``flock`` when its process dies, however it dies, so a lock file left
  by a dead (killed, crashed) process is simply taken over: the newcomer's ``flock``
  succeeds and it rewrites the holder line. The lock file is deleted only with a folder
  the run created and never wrote to (a start that failed), while still locked; a newcomer
  checks after locking that its file is still the folder's lock file, and starts over if
  not, so two processes never hold two different files.

Only rank 0 (``RANK`` unset or 0) locks: the other ranks of a job share its folder. Lock
files on NFS work through the NFS client's lock manager (Linux maps ``flock`` to POSIX
locks there).

:func:`die_with_parent` asks the kernel to send this process ``SIGTERM`` when its parent
dies (Linux ``PR_SET_PDEATHSIG``; a no-op elsewhere): a trainer started by a job's shell
wrapper then does not outlive the wrapper, and a launcher that ``exec``s torchrun passes the
setting on (it survives ``execve``), so torchrun stops its ranks when the wrapper is killed.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

LOCK_NAME = ".lock"
_PR_SET_PDEATHSIG = 1


class RunLocked(RuntimeError):
    """The run folder is held by another live process (the message names it)."""


@dataclass
class RunLock:
    """A held lock: keep the object (its file descriptor) alive as long as the run."""

    path: Path
    fd: int
    took_over: dict | None = None
    #: Whether :func:`acquire` created the folder (then an unused one is removed again).
    created: bool = False

    def release(self) -> None:
        """Unlock. A folder this lock created and nobody wrote to (a run that failed while
        loading its model or data) is removed, so a failed start leaves nothing behind;
        otherwise the lock file stays (see :func:`acquire` for why that is safe)."""
        if self.fd >= 0:
            folder = self.path.parent
            if self.created and [p.name for p in folder.iterdir()] == [LOCK_NAME]:
                self.path.unlink(missing_ok=True)  # still locked: a newcomer re-checks
                try:
                    folder.rmdir()
                except OSError:
                    pass
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1
        if self in _HELD:
            _HELD.remove(self)


def release_all(locks: list[RunLock]) -> None:
    for lock in locks:
        lock.release()


_HELD: list[RunLock] = []


def _holder(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return json.loads(os.read(fd, 4096).decode("utf-8", "replace") or "{}")
    except (OSError, ValueError):
        return {}


def describe_holder(info: Mapping) -> str:
    start = info.get("start")
    when = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(start)) if start else "?"
    return f"pid {info.get('pid', '?')} on {info.get('host', '?')} since {when}"


def acquire(folder: str | Path, what: str = "run") -> RunLock:
    """Lock ``folder`` (created if missing) or raise :class:`RunLocked` naming the holder."""
    folder = Path(folder)
    path = folder / LOCK_NAME
    for _ in range(100):
        created = not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = _holder(fd)
            os.close(fd)
            raise RunLocked(
                f"{folder}: {what} folder in use by {describe_holder(info)}; wait for that"
                " process to finish or stop it (two processes on one run folder would write"
                " it twice)"
            ) from None
        try:  # the file we locked is still the folder's lock file (not removed meanwhile)
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    else:  # pragma: no cover - a folder removed and recreated 100 times in a row
        raise RunLocked(f"{folder}: its lock file keeps disappearing; is another job deleting it?")
    old = _holder(fd)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "start": time.time()}
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, (json.dumps(me) + "\n").encode())
    os.fsync(fd)
    lock = RunLock(path, fd, old or None, created)
    _HELD.append(lock)  # held until the process exits
    return lock


def is_rank0(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return int(env.get("RANK", "0") or 0) == 0


def hold(folders: list[str | Path], what: str = "run", prog: str = "train") -> list[RunLock]:
    """Rank 0 locks every folder; on a held one: one line on stderr and exit status 75."""
    if not is_rank0():
        return []
    got: list[RunLock] = []
    try:
        for f in folders:
            lock = acquire(f, what)
            if lock.took_over and lock.took_over.get("pid"):
                sys.stderr.write(f"{prog}: taking over the lock of {lock.path} from"
                                 f" {describe_holder(lock.took_over)} (no longer running)\n")
            got.append(lock)
    except RunLocked as err:
        release_all(got)
        sys.stderr.write(f"{prog}: error: {err}\n")
        sys.stderr.flush()
        raise SystemExit(75) from None
    return got


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Have the kernel send ``sig`` to this process when its parent dies (Linux only).

    Returns whether it was set. When the parent died between the two looks, the signal is
    sent right away.
    """
    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), sig)
    return True


def under_torchrun(env: Mapping[str, str] | None = None) -> bool:
    """Started by torchrun (its agent stops the ranks itself)."""
    env = os.environ if env is None else env
    return "TORCHELASTIC_RUN_ID" in env
