"""DAG-build helpers every stage shares: job environment, shell quoting, wildcard regexes,
model files and flags, and the launcher prefix of GPU / multi-rank jobs.

Each exists once here so that a stage's rules cannot drift apart in how they quote an
argument or pass a model-table row to a script (see :mod:`rmselect.dag`).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

from rmselect.config import ModelSpec, Study

#: Local GPU jobs: ``{GPU_SLOT} {resources.gpu} -- python ...`` runs on devices of their own
#: (lock-based slots; a no-op under SLURM or with 0 GPUs). Relative paths: jobs run in the
#: repository root, so moving the checkout changes no params.
GPU_SLOT = "python workflow/scripts/gpu_slot.py"
#: Trainers: ``{LAUNCH} --gpus N -- python train.py ...`` (torchrun on one node, srun +
#: torchrun across the nodes of a SLURM job).
LAUNCH = "python workflow/scripts/launch.py"
#: A wildcard constraint that never matches (a rule with no jobs).
NEVER = "(?!x)x"


def setup_environment(basedir: str | Path) -> None:
    """Make jobs find the project's Python and package.

    Jobs run ``python`` from the environment snakemake runs in (the project's .venv)
    unless ``--sdm conda`` gives them their own; the package is found through PYTHONPATH
    either way, so no rule depends on the package being installed.
    """
    pkg = str(Path(basedir) / "workflow")
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    old = os.environ.get("PYTHONPATH", "")
    if pkg not in old.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (pkg, old) if p)


# --------------------------------------------------------------------------- wildcards


def name_regex(names: Iterable[str]) -> str:
    """A wildcard constraint matching exactly ``names`` (never matching when empty).

    Rules that share an output pattern (``bench_model`` / ``bench_model_screen``,
    ``presence_score`` / ``presence_reuse``) are told apart by the model names each serves.
    """
    return "|".join(re.escape(n) for n in names) or NEVER


# --------------------------------------------------------------------------- quoting


def shell_word(value: Any) -> str:
    """One value as one shell-quoted word."""
    return shlex.quote(str(value))


def shell_words(values: Iterable[Any]) -> str:
    """Values as shell-quoted words (an empty list gives an empty string)."""
    return " ".join(shell_word(v) for v in values)


def shell_json(obj: Any, *, sort_keys: bool = True) -> str:
    """A value as one shell-quoted JSON argument (``''``, an empty argument, for None).

    ``sort_keys=False`` keeps the mapping's own order where a rule always passed it so (a
    different string would be a changed param, and rerun the rule's finished jobs).
    """
    return shlex.quote("" if obj is None else json.dumps(obj, sort_keys=sort_keys))


# --------------------------------------------------------------------------- models


#: Where rule model_check writes each checked model's summary (rmselect.model_check).
MODEL_CHECK = "results/checks/models/{model}.json"


def checked_models(study: Study) -> list[str]:
    """Models whose source rule model_check checks: hub ids and local folders (toy models
    and variants are built by the workflow; GGUF files are converted, which checks them)."""
    return [n for n, m in study.models.items() if m.kind in ("hub", "local")]


def model_files(study: Study, name: str, check: bool = True) -> list[str]:
    """Files a job needs before it can load model ``name``: the model's files, and (``check``)
    the model_check summary of a hub or local model (empty for an unchecked hub model)."""
    m = study.model(name)
    if m.kind in ("toy", "variant", "gguf"):
        return [f"{study.model_path(name)}/config.json"]
    out = [m.source] if m.kind == "local" else []
    if check and m.kind in ("hub", "local"):
        out.append(MODEL_CHECK.format(model=name))
    return out


def dataset_files(entry: dict[str, Any]) -> list[str]:
    """File dependency of a data-set entry of the config: local files only (hub ids resolve
    at run time)."""
    if "path" in entry:
        return [entry["path"]]
    return []


def model_flags(spec: ModelSpec, *, chat_template: bool = True) -> list[str]:
    """The flags a model-table row adds to a script's command line, unquoted.

    ``--chat-template T`` when the row overrides the tokenizer's template (and the script
    renders chats: ``chat_template=False`` for one that does not), then
    ``--trust-remote-code`` when the row opts in.
    """
    flags: list[str] = []
    if chat_template and spec.chat_template:
        flags += ["--chat-template", spec.chat_template]
    if spec.trust_remote_code:
        flags.append("--trust-remote-code")
    return flags


def shell_flags(flags: Sequence[str]) -> str:
    """Command-line flags (and their values) as one shell-quoted string."""
    return " ".join(shlex.quote(f) for f in flags)


# --------------------------------------------------------------------------- launcher


def nccl_flags(config: Any, gpus: int | None) -> list[str]:
    """launch.py's ``resources.nccl`` flags for a GPU job (none for a CPU job)."""
    if not gpus or config is None:
        return []
    from rmselect.config import section_settings

    nccl = section_settings(config, "resources")["nccl"]
    flags = ["--nccl-timeout-min", f"{float(nccl['timeout_min']):g}"]
    if nccl.get("socket_ifname"):
        flags += ["--nccl-ifname", str(nccl["socket_ifname"])]
    return flags


def launcher(gpus: int | None, ranks: int | None = None, config: Any = None) -> str:
    """The command prefix that starts a trainer script (``... -- python``).

    ``ranks=None`` (one process per job, e.g. post-training): plain ``python`` on CPU, the
    cluster launcher (:data:`LAUNCH`) for a GPU job. With ``ranks`` (the RM trainer's ranks
    per node): the launcher whenever there are several ranks or any GPU (``--nproc auto``
    on GPUs: one rank per GPU held); one CPU rank runs as a plain process, which sets up its
    own one-rank group and saves torchrun's start-up (~3 s per toy run). With ``config``, a
    GPU job also gets ``resources.nccl`` (:func:`nccl_flags`).
    """
    g = int(gpus or 0)
    nccl = "".join(f" {shlex.quote(f)}" for f in nccl_flags(config, g))
    if ranks is None:
        return "python" if g < 1 else f"{LAUNCH} --gpus {g}{nccl} -- python"
    if ranks <= 1 and not g:
        return "python"
    nproc = "auto" if g else str(ranks)
    return f"{LAUNCH} --nproc {nproc} --cpu-procs {ranks} --gpus {g}{nccl} -- python"
