# Shared helpers: config validation, the effective model table, paths and inputs.
# Every stage file (workflow/rules/<stage>.smk) uses these; none re-reads the config.
import sys
from pathlib import Path

REPO = Path(workflow.basedir)
sys.path.insert(0, str(REPO.joinpath("workflow")))

from rmselect.config import ConfigError, load_study  # noqa: E402
from rmselect.smk import setup_environment  # noqa: E402

setup_environment(REPO)


def _config_source():
    files = [str(f) for f in getattr(workflow, "configfiles", [])]
    return files[-1] if files else "config"


try:
    STUDY = load_study(config, _config_source(), REPO)
except ConfigError as err:
    sys.stderr.write(f"rmselect: configuration error: {err}\n")
    sys.exit(1)

SCRIPTS = REPO.joinpath("workflow", "scripts")
ALL_MODELS = STUDY.model_names
# Models that get reward models (recommendation candidates only get features).
TRAINED_MODELS = STUDY.trained_models()
LOGS = "results/logs"
COST = "results/cost"


wildcard_constraints:
    model="[A-Za-z0-9][A-Za-z0-9._\\-]*",
    objective="bt|regression",


def model_ref(name):
    """What a script gets as --model: a results/ folder, a local path, or a hub id."""
    return STUDY.model_path(name)


def model_files(name):
    """Files a job needs before it can load `name` (empty for hub models)."""
    m = STUDY.model(name)
    if m.kind in ("toy", "variant", "gguf"):
        return [f"{STUDY.model_path(name)}/config.json"]
    if m.kind == "local":
        return [m.source]
    return []


def model_input(wildcards):
    return model_files(wildcards.model)


def dataset_arg(entry):
    """A data-set entry of the config (path or hub) as a command-line argument."""
    from rmselect.datasets_io import entry_arg

    return entry_arg(entry)


def dataset_files(entry):
    """File dependency of a data-set entry: local files only (hub ids resolve at run time)."""
    if "path" in entry:
        return [entry["path"]]
    return []


from rmselect.cluster.site import SiteError, cluster_settings  # noqa: E402

# Site values for SLURM (partitions, GPU model): env vars or slurm/local.yaml, never config.
try:
    CLUSTER = cluster_settings()
except SiteError as err:
    sys.stderr.write(f"rmselect: cluster settings: {err}\n")
    sys.exit(1)
# Local GPU jobs: `{GPU_SLOT} {resources.gpu} -- python ...` runs on devices of their own
# (lock-based slots; no-op under SLURM or with 0 GPUs). Trainers: `{LAUNCH} --gpus
# {resources.gpu} -- python train.py ...` (torchrun on one node, srun+torchrun on several).
# Relative paths (jobs run in the repository root): moving the checkout changes no params.
GPU_SLOT = "python workflow/scripts/gpu_slot.py"
LAUNCH = "python workflow/scripts/launch.py"


def _job_resources(kind, wildcards, attempt):
    from rmselect.cluster.resources import resources_for

    name = wildcards.get("model")
    spec = STUDY.model(name) if name else None
    return resources_for(
        kind,
        spec.params_b if spec else None,
        STUDY.config,
        name,
        model_extra=spec.extra if spec else None,
        cluster=CLUSTER,
        attempt=attempt,
    )


def res(kind, key):
    """A resource value for rules of `kind`, computed from the job's model size.

    Keys: gpu, mem_mb, runtime, nodes, tasks, tasks_per_gpu, cpus_per_task, mpi, gpu_model,
    slurm_partition, slurm_extra, zero (rmselect.cluster.resources.resources_for).
    """

    def _value(wildcards, attempt=1):
        return _job_resources(kind, wildcards, attempt)[key]

    return _value


def res_extra(kind, getter=None):
    """The SLURM-side resources besides gpu/mem_mb/runtime, for `resources: **res_extra(k)`.

    `getter(key)` replaces `res(kind, key)` for rules with their own size lookup.
    """
    from rmselect.cluster.resources import EXTRA_KEYS

    getter = getter or (lambda key: res(kind, key))
    return {key: getter(key) for key in EXTRA_KEYS}


def res_all(kind):
    """Every resource of `kind` (gpu, mem_mb, runtime and res_extra), for `**res_all(k)`."""
    base = {key: res(kind, key) for key in ("gpu", "mem_mb", "runtime")}
    return base | res_extra(kind)


def code_hash(*paths):
    """Content hash of scripts / package folders, for `params: code=code_hash(...)`.

    Editing that code changes the parameter, so the rule and everything downstream rerun
    (Snakemake does not look inside scripts a shell command calls). rmselect.cluster.rerun.
    """
    from rmselect.cluster.rerun import code_hash as _code_hash

    return _code_hash(*paths, root=REPO)


# rm.lr_search.mode: halving (workflow/rules/rm.smk): the successive-halving decisions are
# checkpoints (rule rm_halving), read here for the rules that depend on them.
def rm_decision(wc, rung):
    """The decision after `rung` of this (objective, model, seed) (evaluates the checkpoint)."""
    from rmselect.rm.halving import read_decision

    out = checkpoints.rm_halving.get(
        objective=wc.objective, model=wc.model, seed=wc.seed, rung=str(rung)
    ).output[0]
    return read_decision(out)


def rm_halving_input(wc):
    """Inputs of the decision after rung `wc.rung`: its participants' rung files."""
    from rmselect.rm.rules import halving_inputs

    r = int(wc.rung)
    prev = rm_decision(wc, r - 1) if r > 0 else None
    return halving_inputs(config, wc.objective, wc.model, wc.seed, r, prev)


def rm_select_runs(wc):
    """Full grid: every run.json. Halving: every rate's latest rung file."""
    from rmselect.rm.halving import final_runs, lr_search
    from rmselect.rm.rules import lr_grid, run_path

    if not lr_search(config).halving:
        return [
            run_path(wc.objective, wc.model, wc.seed, lr)
            for lr in lr_grid(config, wc.objective, wc.model)
        ]
    return final_runs(lambda r: rm_decision(wc, r))
