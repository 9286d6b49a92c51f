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
    if m.kind in ("toy", "variant"):
        return [f"{STUDY.model_path(name)}/config.json"]
    if m.kind == "local":
        return [m.source]
    return []


def model_input(wildcards):
    return model_files(wildcards.model)


def dataset_arg(entry):
    """A data-set entry of the config (path or hub) as a command-line argument."""
    import json
    import shlex

    return shlex.quote(json.dumps(entry, sort_keys=True))


def dataset_files(entry):
    """File dependency of a data-set entry: local files only (hub ids resolve at run time)."""
    if "path" in entry:
        return [entry["path"]]
    return []


def res(kind, key):
    """A resource value for rules of `kind`, computed from the job's model size."""
    from rmselect.cluster.resources import resources_for

    def _value(wildcards, attempt=1):
        name = wildcards.get("model")
        params = STUDY.model(name).params_b if name else None
        return resources_for(kind, params, STUDY.config, name)[key]

    return _value
