"""Site settings for running on a cluster: environment variables or slurm/local.yaml.

Nothing cluster-specific is committed. The profiles (slurm/config.yaml, local/config.yaml)
and the rules' resources read their site values through this module:

==============================  =====================  ==========================================
environment variable            slurm/local.yaml key   meaning
==============================  =====================  ==========================================
RMSELECT_SLURM_ACCOUNT          account                ``-A``; ``none`` = submit without account;
                                                       unset = the plugin guesses one
RMSELECT_SLURM_PARTITION        partition              partition of CPU jobs (and GPU jobs)
RMSELECT_SLURM_GPU_PARTITION    gpu_partition          partition of GPU jobs
RMSELECT_SLURM_QOS              qos                    ``--qos``
RMSELECT_SLURM_GPU_MODEL        gpu_model              ``--gpus=<model>:N`` (e.g. a100)
RMSELECT_SLURM_EXTRA            slurm_extra            extra sbatch flags for every job
RMSELECT_SLURM_STATUS_COMMAND   status_command         ``sacct`` or ``squeue``
RMSELECT_SLURM_JOBS             jobs                   jobs queued at once (default 100)
RMSELECT_SLURM_INIT_SECONDS     init_seconds           wait before the first status check (40)
RMSELECT_GPUS_PER_NODE          gpus_per_node          GPUs per node (default: the config's)
RMSELECT_RUNTIME_FLOOR          runtime_floor          shortest runtime a GPU job asks (min, 30)
RMSELECT_RUNTIME_CEILING        runtime_ceiling        longest runtime the site allows (min, 2880)
RMSELECT_SLURM_LOCAL            --                     path of the override file
==============================  =====================  ==========================================

Environment variables win over the file. The file is looked up at ``$RMSELECT_SLURM_LOCAL``,
else ``slurm/local.yaml`` under the working directory (gitignored).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import yaml

from rmselect.cluster.resources import ClusterSettings

#: local.yaml key -> environment variable
ENV: dict[str, str] = {
    "account": "RMSELECT_SLURM_ACCOUNT",
    "partition": "RMSELECT_SLURM_PARTITION",
    "gpu_partition": "RMSELECT_SLURM_GPU_PARTITION",
    "qos": "RMSELECT_SLURM_QOS",
    "gpu_model": "RMSELECT_SLURM_GPU_MODEL",
    "slurm_extra": "RMSELECT_SLURM_EXTRA",
    "status_command": "RMSELECT_SLURM_STATUS_COMMAND",
    "jobs": "RMSELECT_SLURM_JOBS",
    "init_seconds": "RMSELECT_SLURM_INIT_SECONDS",
    "gpus_per_node": "RMSELECT_GPUS_PER_NODE",
    "runtime_floor": "RMSELECT_RUNTIME_FLOOR",
    "runtime_ceiling": "RMSELECT_RUNTIME_CEILING",
}
#: Site defaults (not study settings): queue size, status wait, and the runtime floor and
#: ceiling that projection-based runtimes are clamped to (48 h: a common partition limit).
DEFAULTS: dict[str, Any] = {"jobs": 100, "init_seconds": 40, "runtime_floor": 30,
                            "runtime_ceiling": 2880}
LOCAL_FILE = Path("slurm") / "local.yaml"


class SiteError(ValueError):
    """A bad site value (one line naming the variable or file key)."""


def local_file(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("RMSELECT_SLURM_LOCAL"):
        return Path(env["RMSELECT_SLURM_LOCAL"])
    return (cwd or Path.cwd()) / LOCAL_FILE


def site_values(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> dict[str, Any]:
    """Merged site values: defaults < slurm/local.yaml < environment variables."""
    env = os.environ if env is None else env
    out: dict[str, Any] = dict(DEFAULTS)
    path = local_file(env, cwd)
    if path.exists():
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise SiteError(f"{path}: expected a mapping of key: value")
        unknown = sorted(set(data) - set(ENV))
        if unknown:
            raise SiteError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(ENV)}")
        out.update({k: v for k, v in data.items() if v not in (None, "")})
    for key, var in ENV.items():
        if env.get(var, "") != "":
            out[key] = env[var]
    for key in ("jobs", "init_seconds", "gpus_per_node", "runtime_floor", "runtime_ceiling"):
        if key in out:
            try:
                out[key] = int(out[key])
            except (TypeError, ValueError):
                src = ENV[key] if env.get(ENV[key]) else f"{path}: {key}"
                raise SiteError(f"{src}: {out[key]!r} is not an integer") from None
    if out.get("status_command") not in (None, "sacct", "squeue"):
        raise SiteError(f"status_command must be sacct or squeue, not {out['status_command']!r}")
    return out


def cluster_settings(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> ClusterSettings:
    """The site values that shape each job's resources (see resources_for)."""
    v = site_values(env, cwd)
    return ClusterSettings(
        partition=v.get("partition"),
        gpu_partition=v.get("gpu_partition"),
        gpu_model=v.get("gpu_model"),
        slurm_extra=v.get("slurm_extra"),
        gpus_per_node=v.get("gpus_per_node"),
        runtime_floor=v.get("runtime_floor"),
        runtime_ceiling=v.get("runtime_ceiling"),
    )


def _q(value: Any) -> str:
    """Quote a string resource so Snakemake never evaluates it as Python."""
    return repr(str(value))


def slurm_profile(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> dict[str, Any]:
    """The site-dependent part of slurm/config.yaml (merged in by its YTE template)."""
    v = site_values(env, cwd)
    out: dict[str, Any] = {
        "jobs": v["jobs"],
        "slurm-init-seconds-before-status-checks": v["init_seconds"],
    }
    default_resources: dict[str, Any] = {"mem_mb": 4000, "runtime": 60}
    account = v.get("account")
    if account and str(account).lower() == "none":
        out["slurm-no-account"] = True
    elif account:
        default_resources["slurm_account"] = _q(account)
    if v.get("partition"):
        default_resources["slurm_partition"] = _q(v["partition"])
    if v.get("slurm_extra"):
        default_resources["slurm_extra"] = _q(v["slurm_extra"])
    if v.get("qos"):
        out["slurm-qos"] = str(v["qos"])
    if v.get("status_command"):
        out["slurm-status-command"] = v["status_command"]
    out["default-resources"] = default_resources
    return out
