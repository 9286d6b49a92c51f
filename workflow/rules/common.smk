# Shared helpers: config validation, the effective model table, paths and inputs.
# Every stage file (workflow/rules/<stage>.smk) reads the study through STUDY, not the raw
# config. The logic behind these names is the rmselect.dag package: rmselect.dag.common for
# what several stages share, rmselect.dag.<stage> for one stage's flags and inputs.
import sys
from pathlib import Path

REPO = Path(workflow.basedir)
sys.path.insert(0, str(REPO.joinpath("workflow")))

from rmselect.config import ConfigError, load_study  # noqa: E402
from rmselect.validate import check_plan, command_line_targets  # noqa: E402
from rmselect.dag.common import (  # noqa: E402
    GPU_SLOT,
    launcher,
    name_regex,
    setup_environment,
    shell_json,
    shell_word,
    shell_words,
)

setup_environment(REPO)


def _config_source():
    files = [str(f) for f in getattr(workflow, "configfiles", [])]
    return files[-1] if files else "config"


try:
    STUDY = load_study(config, _config_source(), REPO)
    # plan-time checks of config + tables (rmselect.validate), for the requested targets
    check_plan(STUDY, REPO, command_line_targets(workflow))
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
    """Files a job needs before it can load `name`: its files and, for a hub or local model,
    the summary of its source check (an ancient input, so a new check reruns no job)."""
    from rmselect.dag.common import MODEL_CHECK
    from rmselect.dag.common import model_files as _model_files

    check = MODEL_CHECK.format(model=name)
    return [ancient(f) if f == check else f for f in _model_files(STUDY, name)]


def model_input(wildcards):
    return model_files(wildcards.model)


def dataset_arg(entry):
    """A data-set entry of the config (path or hub) as a command-line argument."""
    from rmselect.datasets_io import entry_arg

    return entry_arg(entry)


def dataset_files(entry):
    """File dependency of a data-set entry: local files only (hub ids resolve at run time)."""
    from rmselect.dag.common import dataset_files as _dataset_files

    return _dataset_files(entry)


from rmselect.cluster.site import SiteError, cluster_settings  # noqa: E402

# Site values for SLURM (partitions, GPU model): env vars or slurm/local.yaml, never config.
try:
    CLUSTER = cluster_settings()
except SiteError as err:
    sys.stderr.write(f"rmselect: cluster settings: {err}\n")
    sys.exit(1)
# Local GPU jobs run as `{GPU_SLOT} {resources.gpu} -- python ...` (devices of their own;
# rmselect.dag.common.GPU_SLOT), trainers behind rmselect.dag.common.launcher (torchrun/srun).


# A GPU study's jobs that cannot fit (rmselect.plan.feasibility) are listed before anything
# runs; plan.on_infeasible: error refuses to start. `snakemake plan` itself always runs.
if "plan" not in sys.argv[1:]:
    from rmselect.plan.feasibility import gate as _feasibility_gate

    _ON_INFEASIBLE, _BROKEN = _feasibility_gate(STUDY, CLUSTER)
    if _BROKEN:
        sys.stderr.write(
            f"rmselect: {len(_BROKEN)} job limit(s) cannot be met (plan.on_infeasible: "
            f"{_ON_INFEASIBLE}; `snakemake plan` writes results/plan/feasibility.csv):\n"
            + "".join(f"  {line}\n" for line in _BROKEN)
        )
        if _ON_INFEASIBLE == "error":
            sys.exit(1)


def _job_resources(kind, wildcards, attempt, projection=None):
    from rmselect.cluster.resources import resources_for
    from rmselect.plan.feasibility import projected_minutes

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
        projected_min=projected_minutes(STUDY, CLUSTER, projection or kind, name),
    )


def res(kind, key, projection=None):
    """A resource value for rules of `kind`, computed from the job's model size.

    Keys: gpu, mem_mb, runtime, nodes, tasks, tasks_per_gpu, cpus_per_task, mpi, gpu_model,
    slurm_partition, slurm_extra, zero (rmselect.cluster.resources.resources_for).
    `projection`: whose projected minutes size the runtime (default `kind`).
    """

    def _value(wildcards, attempt=1):
        return _job_resources(kind, wildcards, attempt, projection)[key]

    return _value


def res_extra(kind, getter=None):
    """The SLURM-side resources besides gpu/mem_mb/runtime, for `resources: **res_extra(k)`.

    `getter(key)` replaces `res(kind, key)` for rules with their own size lookup.
    """
    from rmselect.cluster.resources import EXTRA_KEYS

    getter = getter or (lambda key: res(kind, key))
    return {key: getter(key) for key in EXTRA_KEYS}


def res_all(kind, projection=None):
    """Every resource of `kind` (gpu, mem_mb, runtime and res_extra), for `**res_all(k)`."""
    base = {key: res(kind, key, projection) for key in ("gpu", "mem_mb", "runtime")}
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
    return halving_inputs(STUDY.config, wc.objective, wc.model, wc.seed, r, prev)


def rm_select_runs(wc):
    """Full grid: every run.json. Halving: every rate's latest rung file."""
    from rmselect.rm.halving import final_runs, lr_search
    from rmselect.rm.rules import lr_grid, run_path

    if not lr_search(STUDY.config).halving:
        return [
            run_path(wc.objective, wc.model, wc.seed, lr)
            for lr in lr_grid(STUDY.config, wc.objective, wc.model)
        ]
    return final_runs(lambda r: rm_decision(wc, r))
