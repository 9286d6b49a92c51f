"""The trainer launch command built from (fake) SLURM allocations and local machines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rmselect.cluster.launch import (
    PORT_BASE,
    allocation,
    expand_hostlist,
    local_port_range,
    plan,
    port_for_job,
    trainer_argv,
)

REPO = Path(__file__).resolve().parents[1]
PY = "/venv/bin/python"
TRAIN = ["python", "workflow/scripts/train_rm.py", "--lr", "5e-06"]


def fake_scontrol(calls: list[list[str]]):
    """A stand-in for scontrol: hostnames of gpu[01-02], `show job` with a node list."""

    def run(cmd):
        calls.append(list(cmd))
        if cmd[:3] == ["scontrol", "show", "hostnames"]:
            assert cmd[3] == "gpu[01-02]"
            return "gpu01\ngpu02\n"
        if cmd[:3] == ["scontrol", "show", "job"]:
            return "JobId=4242 JobName=x NumNodes=2 NodeList=gpu[01-02] BatchHost=gpu01\n"
        raise AssertionError(f"unexpected command {cmd}")

    return run


def test_port_is_fixed_by_job_id_and_differs_between_jobs():
    assert port_for_job("123") == port_for_job(123) == PORT_BASE + 123
    assert port_for_job("123") != port_for_job("124")
    assert port_for_job("4242_7") == port_for_job("42427")  # array ids: digits only


def test_slurm_ports_stay_below_the_ephemeral_range():
    """Every job id maps below Linux's default ephemeral range (32768-60999) and this
    machine's, so no outgoing connection holds the rendezvous port by chance."""
    lo, _ = local_port_range()
    ports = {port_for_job(j) for j in range(0, 200000, 7)} | {port_for_job("987654321")}
    assert 1024 < min(ports) and max(ports) < min(32768, lo)
    assert local_port_range("/nonexistent") == (32768, 60999)


def test_local_single_node_uses_visible_gpus_and_a_standalone_rendezvous():
    env = {"CUDA_VISIBLE_DEVICES": "2,5,7", "PATH": "/usr/bin"}
    a = plan(TRAIN, env=env, python=PY, run=lambda c: pytest.fail(f"ran {c}"))
    assert a.argv[:4] == [PY, "-m", "torch.distributed.run", "--standalone"]
    assert a.argv[a.argv.index("--nproc_per_node") + 1] == "3"
    assert a.argv[a.argv.index("--nnodes") + 1] == "1"
    assert a.argv[-3:] == ["workflow/scripts/train_rm.py", "--lr", "5e-06"]
    assert a.job_id is None and a.master_port == 0  # torchrun binds port 0 and holds it
    assert "--master_port" not in a.argv and "srun" not in " ".join(a.argv)


def test_cpu_machine_runs_cpu_procs_ranks():
    env = {"CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin"}
    a = plan(TRAIN, env=env, python=PY, cpu_procs=2)
    assert a.nproc_per_node == 2 and a.world_size == 2


def test_explicit_nproc_wins():
    a = plan(TRAIN, nproc=4, env={"CUDA_VISIBLE_DEVICES": "0"}, python=PY)
    assert a.nproc_per_node == 4


def test_single_node_slurm_job_is_standalone_too():
    env = {"SLURM_JOB_ID": "777", "SLURM_JOB_NODELIST": "gpu03", "CUDA_VISIBLE_DEVICES": "0,1"}
    a = plan(TRAIN, env=env, python=PY)
    assert "--standalone" in a.argv and "--master_port" not in a.argv
    assert a.nnodes == 1 and a.nproc_per_node == 2 and a.job_id == "777"
    b = plan(TRAIN, env=env, python=PY, port=12345)  # an explicit port: c10d on it
    assert b.argv[b.argv.index("--rdzv_endpoint") + 1] == "127.0.0.1:12345"
    assert a.argv[0] == PY  # no srun for one node


def test_multi_node_from_env_vars():
    calls: list[list[str]] = []
    env = {
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NODELIST": "gpu[01-02]",
        "SLURM_NNODES": "2",
        "CUDA_VISIBLE_DEVICES": "0,1,2,3,4,5,6,7",
        "PATH": "/nonexistent",
    }
    a = plan(TRAIN, env=env, python=PY, run=fake_scontrol(calls))
    assert calls == [["scontrol", "show", "hostnames", "gpu[01-02]"]]
    assert a.argv[0] == "srun"
    srun = a.argv[: a.argv.index(PY)]
    assert "--jobid=4242" in srun and "--kill-on-bad-exit=1" in srun
    assert srun[srun.index("--nodes") + 1] == "2" and srun[srun.index("--ntasks") + 1] == "2"
    assert srun[srun.index("--ntasks-per-node") + 1] == "1"
    tr = a.argv[a.argv.index(PY) :]
    assert tr[tr.index("--nnodes") + 1] == "2"
    assert tr[tr.index("--nproc_per_node") + 1] == "8"
    assert tr[tr.index("--rdzv_backend") + 1] == "c10d"
    assert tr[tr.index("--rdzv_id") + 1] == "4242"
    assert tr[tr.index("--rdzv_endpoint") + 1] == f"gpu01:{port_for_job('4242')}"
    assert a.world_size == 16


def test_multi_node_when_the_job_step_stripped_slurm_vars():
    """The plugin's job step keeps only SLURM_JOB_ID: the node list comes from scontrol."""
    calls: list[list[str]] = []
    env = {"SLURM_JOB_ID": "4242", "CUDA_VISIBLE_DEVICES": "0,1"}
    a = plan(TRAIN, env=env, python=PY, run=fake_scontrol(calls))
    assert calls[0] == ["scontrol", "show", "job", "--oneliner", "4242"]
    assert a.nnodes == 2 and a.master_addr == "gpu01"


def test_node_count_mismatch_is_an_error():
    env = {"SLURM_JOB_ID": "1", "SLURM_JOB_NODELIST": "gpu[01-02]", "SLURM_NNODES": "3"}
    with pytest.raises(RuntimeError, match="SLURM_NNODES=3"):
        allocation(env, run=fake_scontrol([]))


def test_hostlist_without_brackets_needs_no_scontrol():
    assert expand_hostlist("node7", run=lambda c: pytest.fail("ran scontrol")) == ["node7"]
    assert expand_hostlist("") == []


def test_trainer_argv_strips_python_and_keeps_modules():
    assert trainer_argv(["python3", "-m", "pkg.train", "--x"]) == ["-m", "pkg.train", "--x"]
    assert trainer_argv(["/v/bin/python", "t.py"]) == ["t.py"]
    assert trainer_argv(["t.py", "a"]) == ["t.py", "a"]
    with pytest.raises(ValueError):
        trainer_argv(["python"])


def test_launch_script_dry_run_claims_local_gpus(tmp_path):
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "PYTHONPATH": str(REPO / "workflow"),
        "RMSELECT_GPU_IDS": "0,1,2",
        "RMSELECT_GPU_LOCK_DIR": str(tmp_path / "locks"),
    }
    out = subprocess.run(
        [sys.executable, "workflow/scripts/launch.py", "--gpus", "2", "--dry-run", "--", *TRAIN],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    got = json.loads(out.stdout)
    assert got["cuda_visible_devices"] == "0,1"
    assert got["nproc_per_node"] == 2 and got["nnodes"] == 1


def test_launch_script_runs_two_cpu_ranks(tmp_path):
    """End to end on CPU: torchrun starts 2 ranks that see WORLD_SIZE=2 and distinct RANKs."""
    script = tmp_path / "rank.py"
    script.write_text(
        "import os, sys\n"
        "out = sys.argv[1]\n"
        "open(f\"{out}.{os.environ['RANK']}\", 'w').write(os.environ['WORLD_SIZE'])\n"
    )
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "PYTHONPATH": str(REPO / "workflow"),
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": "1",
    }
    subprocess.run(
        [sys.executable, "workflow/scripts/launch.py", "--cpu-procs", "2", "--",
         "python", str(script), str(tmp_path / "r")],
        cwd=REPO, env=env, check=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert sorted(p.name for p in tmp_path.glob("r.*")) == ["r.0", "r.1"]
    assert (tmp_path / "r.0").read_text() == "2"


def _launch_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "PYTHONPATH": str(REPO / "workflow"),
        "RMSELECT_GPU_LOCK_DIR": str(tmp_path / "locks"),
        "OMP_NUM_THREADS": "1",
        **extra,
    }


def _dry_run(env: dict[str, str], *flags: str) -> dict:
    out = subprocess.run(
        [sys.executable, "workflow/scripts/launch.py", *flags, "--dry-run", "--", *TRAIN],
        cwd=REPO, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout)


def test_workstation_runs_a_larger_tier_on_the_gpus_it_has(tmp_path):
    """A job of the 8-GPU tier on a 4-GPU machine: 4 ranks (it used to exit 75), and the
    job knows it holds 4; on 3 GPUs it takes 2 (a divisor of 8: the batch stays exact)."""
    got = _dry_run(_launch_env(tmp_path, RMSELECT_GPU_IDS="0,1,2,3"), "--gpus", "8")
    assert got["nproc_per_node"] == 4 and got["cuda_visible_devices"] == "0,1,2,3"
    assert got["env"]["RMSELECT_GPUS"] == "4"
    assert got["env"]["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    got = _dry_run(_launch_env(tmp_path, RMSELECT_GPU_IDS="0,1,2"), "--gpus", "8")
    assert got["nproc_per_node"] == 2 and got["cuda_visible_devices"] == "0,1"


def test_launch_allocates_within_visible_devices_and_passes_nccl(tmp_path):
    env = _launch_env(tmp_path, RMSELECT_GPU_IDS="0,1,2,3", CUDA_VISIBLE_DEVICES="2,3")
    got = _dry_run(env, "--gpus", "1", "--nccl-timeout-min", "45", "--nccl-ifname", "ib0")
    assert got["cuda_visible_devices"] == "2" and got["nproc_per_node"] == 1
    assert got["env"]["RMSELECT_PG_TIMEOUT_S"] == "2700"
    assert got["env"]["NCCL_SOCKET_IFNAME"] == "ib0"
    assert got["env"]["RMSELECT_JOB"].startswith("train_rm.py")


def test_two_concurrent_local_launches_get_their_own_rendezvous(tmp_path):
    """Two launches started together, each with 2 CPU ranks: every rank joins its own job's
    group (gloo all-reduce of the ranks), and the two jobs' endpoints differ."""
    script = tmp_path / "rank.py"
    script.write_text(
        "import os, sys, torch, torch.distributed as dist\n"
        "dist.init_process_group('gloo')\n"
        "t = torch.tensor([float(dist.get_rank() + 1)]); dist.all_reduce(t)\n"
        "open(f\"{sys.argv[1]}.{os.environ['RANK']}\", 'w').write(\n"
        "    f\"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']} {t.item():g}\")\n"
        "dist.destroy_process_group()\n"
    )
    env = _launch_env(tmp_path, CUDA_VISIBLE_DEVICES="")
    procs = [subprocess.Popen(
        [sys.executable, "workflow/scripts/launch.py", "--cpu-procs", "2", "--",
         "python", str(script), str(tmp_path / f"job{j}")],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    ) for j in (0, 1)]  # fmt: skip
    errs = [p.communicate(timeout=180)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    ends = {}
    for j in (0, 1):
        seen = {(tmp_path / f"job{j}.{r}").read_text().split()[0] for r in (0, 1)}
        sums = {(tmp_path / f"job{j}.{r}").read_text().split()[1] for r in (0, 1)}
        assert len(seen) == 1 and sums == {"3"}  # both ranks of a job met at one endpoint
        ends[j] = seen.pop()
    assert ends[0] != ends[1]
