"""The lock-based GPU slot allocator with concurrent processes and fake device ids."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rmselect.cluster.gpu_slots import (
    NoFreeSlot,
    acquire,
    device_ids,
    fit_to_machine,
    try_acquire,
)

REPO = Path(__file__).resolve().parents[1]
SLOT = str(REPO / "workflow" / "scripts" / "gpu_slot.py")


def slot_env(tmp_path: Path, ids: str = "0,1,2") -> dict[str, str]:
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "PYTHONPATH": str(REPO / "workflow"),
        "RMSELECT_GPU_IDS": ids,
        "RMSELECT_GPU_LOCK_DIR": str(tmp_path / "locks"),
    }


def start_holder(env: dict[str, str]) -> subprocess.Popen:
    """A job on one slot that prints its device and holds it (until killed)."""
    return subprocess.Popen(
        [sys.executable, SLOT, "1", "--", "python", "-c",
         "import os, time; print(os.environ['CUDA_VISIBLE_DEVICES'], flush=True); time.sleep(300)"],
        env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_device_ids_from_env():
    assert device_ids({"RMSELECT_GPU_IDS": "0, 1,3"}) == ["0", "1", "3"]
    assert device_ids({"RMSELECT_GPU_IDS": ""}) == []
    # an inherited CUDA_VISIBLE_DEVICES is the set slots are taken from
    assert device_ids({"RMSELECT_GPU_IDS": "0,1,2,3", "CUDA_VISIBLE_DEVICES": "3,1"}) == ["3", "1"]
    assert device_ids({"RMSELECT_GPU_IDS": "0,1", "CUDA_VISIBLE_DEVICES": ""}) == []
    assert device_ids({"RMSELECT_GPU_IDS": "0,1", "CUDA_VISIBLE_DEVICES": "-1"}) == []


def test_fit_to_machine_keeps_a_divisor_of_the_tier():
    assert fit_to_machine(8, 8) == 8 and fit_to_machine(1, 4) == 1
    assert fit_to_machine(8, 4) == 4 and fit_to_machine(8, 2) == 2 and fit_to_machine(8, 1) == 1
    assert fit_to_machine(8, 3) == 2  # 3 ranks would break 64 = micro x accum x ranks
    assert fit_to_machine(6, 4) == 3
    assert fit_to_machine(4, 0) == 4  # no devices at all: acquire says so


def test_slots_within_an_inherited_visible_set_and_pci_order(tmp_path):
    """A shell restricted to GPUs 5,6 (CUDA_VISIBLE_DEVICES) still gets a slot of its own
    per job, inside that set; nvidia-smi-numbered ids come with CUDA_DEVICE_ORDER."""
    show = ["python", "-c", "import os; print(os.environ['CUDA_VISIBLE_DEVICES'], "
            "os.environ.get('CUDA_DEVICE_ORDER'), os.environ['RMSELECT_GPUS'])"]
    env = slot_env(tmp_path, "0,1,2,3,4,5,6,7")
    out = subprocess.run([sys.executable, SLOT, "2", "--", *show], env=env, capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert out.stdout.split() == ["0,1", "PCI_BUS_ID", "2"]
    env["CUDA_VISIBLE_DEVICES"] = "5,6"
    holder = start_holder(env)
    try:
        assert holder.stdout.readline().strip() == "5"
        out = subprocess.run([sys.executable, SLOT, "1", "--", *show], env=env,
                             capture_output=True, text=True, check=True)  # fmt: skip
        assert out.stdout.split() == ["6", "PCI_BUS_ID", "1"]  # not 5 (held), not 0 (hidden)
        busy = subprocess.run([sys.executable, SLOT, "2", "--timeout", "0.3", "--", "true"],
                              env=env)  # fmt: skip
        assert busy.returncode == 75
    finally:
        holder.kill()
        holder.wait()
    env["CUDA_DEVICE_ORDER"] = "FASTEST_FIRST"  # the shell's own numbering is kept
    out = subprocess.run([sys.executable, SLOT, "1", "--", *show], env=env, capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert out.stdout.split() == ["5", "FASTEST_FIRST", "1"]


def test_in_process_all_or_nothing(tmp_path):
    d = tmp_path / "locks"
    a = try_acquire(2, ["0", "1", "2"], d)
    assert a is not None and a.devices == ["0", "1"]
    # only one left: a request for two gets nothing and holds nothing
    assert try_acquire(2, ["0", "1", "2"], d) is None
    b = try_acquire(1, ["0", "1", "2"], d)
    assert b is not None and b.visible == "2"
    a.release()
    c = try_acquire(2, ["0", "1", "2"], d)
    assert c is not None and c.devices == ["0", "1"]
    b.release()
    c.release()


def test_too_many_fails_at_once_and_timeout(tmp_path):
    with pytest.raises(NoFreeSlot, match="has 3"):
        acquire(4, ["0", "1", "2"], tmp_path)
    held = acquire(3, ["0", "1", "2"], tmp_path)
    t0 = time.monotonic()
    with pytest.raises(NoFreeSlot, match="after"):
        acquire(1, ["0", "1", "2"], tmp_path, timeout=0.3, poll=0.05)
    assert time.monotonic() - t0 < 5
    held.release()


def test_concurrent_jobs_never_share_a_device(tmp_path):
    """Six single-GPU jobs on a 3-GPU box: at most 3 at once, each on its own device."""
    env = slot_env(tmp_path)
    log = tmp_path / "log"
    log.mkdir()
    job = (
        "import os, sys, time\n"
        "d = os.environ['CUDA_VISIBLE_DEVICES']\n"
        "t0 = time.time(); time.sleep(0.8); t1 = time.time()\n"
        "open(os.path.join(sys.argv[1], str(os.getpid())), 'w').write(f'{d} {t0} {t1}')\n"
    )
    procs = [
        subprocess.Popen([sys.executable, SLOT, "1", "--", "python", "-c", job, str(log)], env=env)
        for _ in range(6)
    ]
    assert [p.wait(timeout=60) for p in procs] == [0] * 6
    spans = [f.read_text().split() for f in log.iterdir()]
    assert len(spans) == 6
    assert {s[0] for s in spans} <= {"0", "1", "2"}
    for i, (di, a0, a1) in enumerate(spans):
        for dj, b0, b1 in spans[i + 1 :]:
            overlap = float(a0) < float(b1) and float(b0) < float(a1)
            if overlap:
                assert di != dj, f"device {di} shared by two running jobs"
    # with 3 devices and 6 jobs of 0.8 s, someone had to wait: not all ran at once
    starts = sorted(float(s[1]) for s in spans)
    assert starts[-1] - starts[0] > 0.5


def test_multi_gpu_job_gets_distinct_devices(tmp_path):
    env = slot_env(tmp_path, "4,5,6,7")
    out = subprocess.run(
        [sys.executable, SLOT, "3", "--", "python", "-c",
         "import os; print(os.environ['CUDA_VISIBLE_DEVICES'])"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout.strip() == "4,5,6"


def test_killed_holder_releases_its_slot(tmp_path):
    """A job that dies (SIGKILL: no clean-up at all) frees its device for the next job."""
    env = slot_env(tmp_path, "0")
    holder = start_holder(env)
    try:
        assert holder.stdout.readline().strip() == "0"  # it holds the only device
        busy = subprocess.run(
            [sys.executable, SLOT, "1", "--timeout", "0.5", "--", "true"], env=env
        )
        assert busy.returncode == 75  # no free device while the holder lives
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
        free = subprocess.run(
            [sys.executable, SLOT, "1", "--timeout", "10", "--", "python", "-c",
             "import os; print(os.environ['CUDA_VISIBLE_DEVICES'])"],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert free.returncode == 0 and free.stdout.strip() == "0"
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_zero_gpus_or_slurm_runs_unchanged(tmp_path):
    env = slot_env(tmp_path, "0")
    env["CUDA_VISIBLE_DEVICES"] = "untouched"
    show = ["python", "-c", "import os; print(os.environ['CUDA_VISIBLE_DEVICES'])"]
    out = subprocess.run([sys.executable, SLOT, "0", "--", *show], env=env, capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert out.stdout.strip() == "untouched"
    env["SLURM_JOB_ID"] = "12"
    out = subprocess.run([sys.executable, SLOT, "1", "--", *show], env=env, capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert out.stdout.strip() == "untouched"
    assert not (tmp_path / "locks").exists()
