"""A real single-node SLURM cluster (munge + slurmctld + slurmd on 127.0.0.1) running a slice
of the toy workflow through `snakemake --profile slurm`.

The slice: the toy build of one model (world, tokenizer, data, pre-training: one grouped
SLURM job), its BT reward model trained on two ranks (rule rm_train through
workflow/scripts/launch.py, torchrun), selection + RewardBench evaluation (one grouped job)
and an aggregate over the results. Before the rm/eval stages exist, a two-rank stand-in
trainer replaces them. The test checks that jobs ran under SLURM (job ids in Snakemake's
output and in the launcher's log line, SLURM_JOB_ID seen by the jobs), that results equal a
local run, then scancels a running (stand-in) training job that checkpoints every step and
shows that a rerun resumes from its checkpoint. The daemons it started are stopped by pid.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from pipeline import SNAKEMAKE, Workdir, make_workdir
from support.slurm_cluster import ClusterError, TestCluster, missing_binaries

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

MODEL = "toyllama-2-s"

# A trainer stand-in with the properties that matter here: ranks from torchrun, a checkpoint
# after every step, resume from the last checkpoint, deterministic result.
TRAINER = r'''
import json, os, sys, time
steps, ckpt, out, delay = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
os.makedirs(ckpt, exist_ok=True)
job = os.environ.get("SLURM_JOB_ID", "")
with open(os.path.join(ckpt, f"rank{rank}.json"), "w") as fh:
    json.dump({"rank": rank, "world_size": world, "slurm_job_id": job}, fh)
if rank != 0:
    sys.exit(0)
state_file = os.path.join(ckpt, "state.json")
state = {"step": 0, "value": 0}
if os.path.exists(state_file):
    state = json.load(open(state_file))
resumed_from = state["step"]
print(f"rank 0 of {world}, SLURM_JOB_ID={job}, resuming from step {resumed_from}", flush=True)
while state["step"] < steps:
    time.sleep(delay)
    state = {"step": state["step"] + 1, "value": state["value"] + (state["step"] + 1) ** 2}
    with open(state_file + ".tmp", "w") as fh:
        json.dump(state, fh)
    os.replace(state_file + ".tmp", state_file)
for _ in range(100):
    if all(os.path.exists(os.path.join(ckpt, f"rank{r}.json")) for r in range(world)):
        break
    time.sleep(0.1)
ranks = [json.load(open(os.path.join(ckpt, f"rank{r}.json"))) for r in range(world)]
json.dump({"value": state["value"], "steps": steps, "resumed_from": resumed_from,
           "world_size": world, "slurm_job_id": job, "ranks": ranks}, open(out, "w"))
'''

AGGREGATE = r'''
import hashlib, json, os, sys
out, files = sys.argv[1], sys.argv[2:]
digest = {f: hashlib.sha256(open(f, "rb").read()).hexdigest() for f in files
          if not f.endswith(".json")}
values = {}
for f in files:
    if f.endswith(".json"):
        d = json.load(open(f))
        values[f] = d["value"] if "value" in d else {"overall": d["overall"], "subsets": d["subsets"]}
json.dump({"slurm_job_id": os.environ.get("SLURM_JOB_ID", ""), "sha256": digest,
           "values": values}, open(out, "w"), sort_keys=True)
'''

# The slice, as a Snakefile that includes the real workflow.
PROBE_SMK = r'''
include: "Snakefile"

PROBE_STEPS = {"MODEL": 3}


rule probe_train:
    output:
        "results/probe/train/{model}.json",
    log:
        "results/logs/probe_train/{model}.log",
    params:
        steps=lambda wc: PROBE_STEPS.get(wc.model, 16),
        ckpt="results/probe/ckpt/{model}",
    resources:
        cpus_per_task=1,
        runtime=10,
        mem_mb=1000,
    shell:
        "python workflow/scripts/launch.py --cpu-procs 2 --"
        " python probe_trainer.py {params.steps} {params.ckpt} {output} 0.5 > {log} 2>&1"


rule probe_aggregate:
    input:
        AGG_INPUTS,
    output:
        "results/probe/aggregate.json",
    log:
        "results/logs/probe_aggregate/aggregate.log",
    resources:
        runtime=5,
        mem_mb=500,
    shell:
        "python probe_aggregate.py {output} {input} > {log} 2>&1"
'''.replace("MODEL", MODEL)


#: The real slice once the rm and eval stages exist: training (2 ranks), selection, evaluation.
EVAL = f"results/eval/rewardbench/bt/{MODEL}/seed1234"  # the reduced study's one seed
RM_SLICE = [f"results/toy/models/{MODEL}/model.safetensors", f"{EVAL}.json",
            f"{EVAL}.scores.parquet"]  # fmt: skip
PROBE_SLICE = [f"results/toy/models/{MODEL}/model.safetensors", f"results/probe/train/{MODEL}.json"]


def add_probe(wd: Workdir, inputs: list[str] | None = None) -> None:
    (wd.path / "probe_trainer.py").write_text(TRAINER)
    (wd.path / "probe_aggregate.py").write_text(AGGREGATE)
    smk = PROBE_SMK.replace('include: "Snakefile"\n',
                            f'include: "Snakefile"\n\nAGG_INPUTS = {inputs or PROBE_SLICE!r}\n')
    (wd.path / "probe.smk").write_text(smk)
    cfg = wd.load_config()
    if isinstance(cfg.get("eval"), dict):
        cfg["eval"]["jobs"] = "per_rm"  # the slice scores one RM (per_model would train both)
    rm = cfg.get("rm") or {}
    if "nproc_per_node" in rm:
        rm["nproc_per_node"] = 2  # the RM training job runs 2 ranks (torchrun, gloo)
        for row in rm.get("by_size") or []:  # global batch = micro x accumulation x ranks
            if "micro_batch" in row:
                row["micro_batch"] = max(1, int(row["micro_batch"]) // 2)
    wd.save_config(cfg)


def has_rm_slice(wd: Workdir) -> bool:
    rules = wd.snakemake("-s", "probe.smk", "--list-rules").stdout.split()
    return {"rm_train", "rm_select", "eval_rm"} <= set(rules)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if os.geteuid() != 0 and missing_binaries():
        pytest.skip("SLURM test cluster needs root (or slurm-wlm + munge installed)")
    c = TestCluster(tmp_path_factory.mktemp("slurm"))
    try:
        c.start()
    except ClusterError as err:
        c.stop()
        pytest.fail(f"could not start the test cluster: {err}")
    yield c
    c.stop()
    for name, p in c.procs.items():  # pragma: no cover - stop() empties procs
        assert p.poll() is not None, f"{name} still running"


def slurm_env(c: TestCluster) -> dict[str, str]:
    """What a user sets: env vars that point the profile at this cluster."""
    return {
        **c.env,
        "RMSELECT_SLURM_ACCOUNT": "none",
        "RMSELECT_SLURM_STATUS_COMMAND": "squeue",  # no accounting: sacct has nothing
        "RMSELECT_SLURM_INIT_SECONDS": "2",
        "RMSELECT_SLURM_JOBS": "4",
        "OMP_NUM_THREADS": "1",
    }


SLURM_ARGS = ("-s", "probe.smk", "--profile", "slurm", "--slurm-keep-successful-logs")
# The toy chain of one model as one SLURM job (each job pays two Snakemake start-ups).
TOY_GROUP = ("--groups", "toy_world=toy", "toy_tokenizer=toy", "toy_pretrain=toy",
             "toy_data=toy", "rm_select=rmeval", "eval_rm=rmeval")  # fmt: skip


def test_slice_runs_under_slurm_and_matches_local(cluster, tmp_path):
    wd = make_workdir(tmp_path / "slurm")
    add_probe(wd)
    if "toy_pretrain" not in wd.snakemake("-s", "probe.smk", "--list-rules").stdout:
        pytest.skip("toy stage (workflow/rules/toy.smk) has no toy_pretrain rule yet")
    # The real slice (toy build, RM training on 2 ranks, selection + evaluation, aggregate)
    # once those stages exist; before that the toy build plus a launcher-started stand-in.
    real = has_rm_slice(wd)
    inputs = RM_SLICE if real else PROBE_SLICE
    add_probe(wd, inputs)
    # The same slice locally, at the same time (it gives the reference results).
    local = make_workdir(tmp_path / "local")
    add_probe(local, inputs)
    local_run = subprocess.Popen(
        [SNAKEMAKE, "--configfile", str(local.config), "-s", "probe.smk", "--cores", "2",
         "results/probe/aggregate.json"],
        cwd=local.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    t0 = time.monotonic()
    try:
        out = wd.snakemake(*SLURM_ARGS, *TOY_GROUP, "--", "results/probe/aggregate.json",
                           env=slurm_env(cluster), timeout=1500)  # fmt: skip
    finally:
        local_out, _ = local_run.communicate(timeout=1500)
    wall = time.monotonic() - t0
    assert local_run.returncode == 0, local_out[-3000:]
    text = out.stdout + out.stderr
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", text)
    # toy group, training, [selection + evaluation group], aggregate
    assert len(submitted) == (4 if real else 3), text[-3000:]
    # the profile's requeue setting reached the scheduler
    jobs = subprocess.run(["scontrol", "show", "job", submitted[-1]], env=cluster.env,
                          capture_output=True, text=True).stdout  # fmt: skip
    assert "Requeue=1" in jobs, jobs
    agg = json.loads((wd.path / "results/probe/aggregate.json").read_text())
    assert agg["slurm_job_id"] in submitted
    if real:
        logs = list((wd.path / "results/logs/rm_train/bt" / MODEL / "seed1234").glob("lr*.log"))
        assert len(logs) == 1, logs
        log = logs[0].read_text()
        run = json.loads((wd.path / "results/rm/bt" / MODEL / "seed1234" / logs[0].stem / "run.json")
                         .read_text())  # fmt: skip
        assert run["world_size"] == 2
        m = re.search(r"launch: SLURM_JOB_ID=(\d+) nodes=1 nproc_per_node=2 world_size=2", log)
        assert m and m.group(1) in submitted and m.group(1) != agg["slurm_job_id"], log[:2000]
    else:
        train = json.loads((wd.path / f"results/probe/train/{MODEL}.json").read_text())
        assert train["slurm_job_id"] in submitted and train["slurm_job_id"] != agg["slurm_job_id"]
        assert train["world_size"] == 2
        assert [r["slurm_job_id"] for r in train["ranks"]] == [train["slurm_job_id"]] * 2
        log = (wd.path / f"results/logs/probe_train/{MODEL}.log").read_text()
        assert f"SLURM_JOB_ID={train['slurm_job_id']}" in log and "world_size=2" in log
    # per-job SLURM logs exist (kept with --slurm-keep-successful-logs) and name the job ids
    slurm_logs = list((wd.path / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert {p.stem for p in slurm_logs} >= set(submitted)

    # The local run gave the same results.
    lagg = json.loads((local.path / "results/probe/aggregate.json").read_text())
    assert lagg["slurm_job_id"] == ""
    assert lagg["values"] == agg["values"]  # eval scores/CIs or trainer values: identical
    assert lagg["sha256"].keys() == agg["sha256"].keys()
    for name, digest in agg["sha256"].items():
        if name.endswith(".parquet"):  # per-example RM scores: float32 noise of 2-rank gloo
            assert_same_scores(wd.path / name, local.path / name)
        else:  # the toy model's weights: byte-identical
            assert lagg["sha256"][name] == digest, name
    print(f"SLURM slice ({'rm' if real else 'probe'}): {len(submitted)} jobs in {wall:.0f} s")


def assert_same_scores(a: Path, b: Path, atol: float = 1e-5) -> None:
    """Same examples, same decisions, scores equal up to float32 reduction-order noise."""
    import polars as pl

    x, y = pl.read_parquet(a), pl.read_parquet(b)
    assert x.columns == y.columns and x.height == y.height
    for col in x.columns:
        if x[col].dtype.is_float():
            assert (x[col] - y[col]).abs().max() <= atol, col
        else:
            assert x[col].to_list() == y[col].to_list(), col


def _job_of(c: TestCluster, rule: str) -> str | None:
    out = subprocess.run(["squeue", "-h", "-o", "%i %T %k"], env=c.env, capture_output=True,
                         text=True).stdout  # fmt: skip
    for line in out.splitlines():
        jid, state, comment = (line.split(" ", 2) + ["", ""])[:3]
        if f"rule_{rule}" in comment and state == "RUNNING":
            return jid
    return None


def test_cancelled_training_resumes_on_rerun(cluster, tmp_path):
    wd = make_workdir(tmp_path / "wd")
    add_probe(wd)
    env = slurm_env(cluster)
    target = "results/probe/train/long.json"
    state = wd.path / "results/probe/ckpt/long/state.json"
    proc = subprocess.Popen(
        [SNAKEMAKE, "--configfile", str(wd.config),
         *SLURM_ARGS, "--retries", "0", target],
        cwd=wd.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        job = None
        while time.monotonic() < deadline:
            if state.exists() and json.loads(state.read_text())["step"] >= 4:
                job = _job_of(cluster, "probe_train")
                if job:
                    break
            assert proc.poll() is None, proc.stdout.read()[-3000:]
            time.sleep(0.5)
        assert job, "training job never reached step 4"
        subprocess.run(["scancel", job], env=cluster.env, check=True)
        first, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)
    assert proc.returncode != 0, first[-2000:]
    assert re.search(rf"SLURM-job '{job}' failed|Error in rule probe_train", first), first[-3000:]
    # the failure names the job's log file
    assert "results/logs/probe_train/long.log" in first
    stopped_at = json.loads(state.read_text())["step"]
    assert 4 <= stopped_at < 16
    assert not (wd.path / target).exists()

    again = wd.snakemake(*SLURM_ARGS, target, env=env, timeout=600)
    result = json.loads((wd.path / target).read_text())
    assert result["resumed_from"] >= stopped_at, result
    assert result["slurm_job_id"] != job
    assert result["value"] == sum(i * i for i in range(1, 17))  # same as an uninterrupted run
    assert re.search(r"submitted with SLURM jobid", again.stdout + again.stderr)
