"""What workflow/rules/rm.smk asks of the config: LR grids, per-size settings, flags.

Kept here (not in the .smk file) so that it is typed and unit-tested.
"""

from __future__ import annotations

import json
import shlex
from typing import Any, Mapping, Sequence

from rmselect import cli
from rmselect.config import ConfigError, Study, _schema, section_settings
from rmselect.rm.run_config import TrainArgs

def rm_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``rm`` section with every omitted field filled from the schema's ``default:``."""
    return section_settings(config, "rm")


def size_defaults() -> dict[str, Any]:
    """Defaults of one ``rm.by_size`` row (the schema's item ``default:`` values)."""
    item = _schema("config")["properties"]["rm"]["properties"]["by_size"]["items"]
    return {k: v["default"] for k, v in item["properties"].items() if "default" in v}


def seeds(config: Mapping[str, Any]) -> list[int]:
    """``rm.seeds``, or the study's top-level ``seed`` alone (one seed) when it is null."""
    listed = rm_config(config).get("seeds")
    if not listed:
        return [int(config.get("seed", 0))]
    return [int(s) for s in listed]


def seeds_together(config: Mapping[str, Any]) -> bool:
    """Whether one job trains all seeds of a (model, objective, lr) (``rm.seed_jobs``)."""
    return rm_config(config)["seed_jobs"] == "together" and len(seeds(config)) > 1


# --------------------------------------------------------------------------- paths
# results/rm/{objective}/{model}/seed{seed}/ holds one seed's runs, decision and selection.


def rm_dir(objective: str, model: str, seed: int | str) -> str:
    """One seed's RM directory: ``lr{lr}/`` runs, ``halving/``, ``selected.json``, ``final/``."""
    return f"results/rm/{objective}/{model}/seed{seed}"


def run_path(objective: str, model: str, seed: int | str, lr: str) -> str:
    """The summary of one full training run (rule rm_train)."""
    return f"{rm_dir(objective, model, seed)}/lr{lr}/run.json"


def selected_path(objective: str, model: str, seed: int | str) -> str:
    return f"{rm_dir(objective, model, seed)}/selected.json"


def final_path(objective: str, model: str, seed: int | str) -> str:
    return f"{rm_dir(objective, model, seed)}/final"


def seed_out_flags(seed_dirs: Sequence[tuple[int | str, str]]) -> str:
    """``--seed S --out DIR`` for each run one train_rm.py call trains."""
    return " ".join(f"--seed {int(s)} --out {shlex.quote(str(d))}" for s, d in seed_dirs)


def trains_rms(config: Mapping[str, Any]) -> bool:
    """Whether the study's default target needs trained RMs.

    ``eval.train_and_evaluate: false`` means rm_scores.csv comes from ``eval.import`` alone,
    so no RM is trained unless the ``rm`` target is asked for explicitly.
    """
    return bool(section_settings(config, "eval")["train_and_evaluate"])


def lr_label(value: Any) -> str:
    """The ``{lr}`` wildcard of a grid value: Python's float repr (``5e-06``, ``0.0003``)."""
    try:
        return str(float(value))
    except (TypeError, ValueError):
        raise ConfigError(f"config: field 'rm.lr_grid': {value!r} is not a number") from None


def lr_grid(config: Mapping[str, Any], objective: str, model: str | None = None) -> list[str]:
    """The LR wildcards of ``objective`` (for ``model``, when it has its own grid).

    ``rm.lr_grid_by_model: {model: {objective: [...]}}`` replaces the objective's grid for
    one model, so a grid change reruns only that model's training and what follows it.
    """
    cfg = rm_config(config)
    own = ((cfg.get("lr_grid_by_model") or {}).get(model) or {}) if model else {}
    grid = own.get(objective) or (cfg.get("lr_grid") or {}).get(objective)
    if not grid:
        raise ConfigError(f"config: field 'rm.lr_grid.{objective}' is missing or empty")
    return [lr_label(v) for v in grid]


def size_settings_raw(config: Mapping[str, Any], params_b: float) -> dict[str, Any]:
    """The ``rm.by_size`` row of a model of ``params_b`` (``auto`` values left as they are)."""
    for row in rm_config(config)["by_size"]:
        if params_b < float(row["max_b"]):
            return {**size_defaults(), **row}
    raise ConfigError(
        f"config: field 'rm.by_size': no entry covers {params_b} B parameters; raise the last max_b"
    )


def size_settings(config: Mapping[str, Any], params_b: float,
                  extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """ZeRO stage, micro batch, checkpointing and offload for a model of ``params_b``;
    ``auto`` stage / micro batch come from the plan's memory model
    (:func:`rmselect.plan.feasibility.resolve_size`)."""
    row = size_settings_raw(config, params_b)
    if row.get("zero_stage") == "auto" or row.get("micro_batch") == "auto":
        from rmselect.plan.feasibility import resolve_size

        row = resolve_size(config, params_b, row, extra)
    return row


def nproc(config: Mapping[str, Any], gpus: int) -> int:
    """Ranks per node: the GPUs a job holds, or ``rm.nproc_per_node`` on CPU."""
    return int(gpus) if gpus and int(gpus) > 0 else int(rm_config(config)["nproc_per_node"])


def launcher(n: int, gpus: int = 0) -> str:
    """Command prefix that starts the trainer on ``n`` ranks (``gpus`` GPUs held).

    Several ranks, or any GPU job, go through the cluster launcher
    (workflow/scripts/launch.py: ``torchrun --standalone`` on one node, or
    ``srun`` + ``torchrun`` across the nodes of a SLURM job, GPUs claimed per job). One CPU
    rank runs as a plain process: the entry point sets up a one-rank group on a free port
    itself, which saves torchrun's start-up (~3 s per toy run).
    """
    if n <= 1 and not gpus:
        return "python"
    nproc = "auto" if gpus else str(n)
    return (f"python workflow/scripts/launch.py --nproc {nproc} --cpu-procs {n} "
            f"--gpus {int(gpus)} -- python")


def launch_for(config: Mapping[str, Any], gpus: int) -> str:
    """The trainer's launch prefix for a job holding ``gpus`` GPUs (CPU: rm.nproc_per_node);
    a GPU job also gets ``resources.nccl``."""
    from rmselect.dag import common

    return common.launcher(gpus, nproc(config, gpus), config=config)


def train_flags(study: Study, model: str, objective: str, lr: str) -> str:
    """Every command-line flag of workflow/scripts/train_rm.py for one run but the
    ``--seed``/``--out`` pairs (:func:`seed_out_flags`).

    Derived from the trainer's one declaration (:class:`rmselect.rm.run_config.TrainArgs`):
    a field at its default adds no flag.
    """
    cfg = study.config
    rc = rm_config(cfg)
    spec = study.model(model)
    size = size_settings(cfg, spec.params_b, spec.extra)
    data = cfg["data"]
    train_entry = data["helpsteer2_preference" if objective == "bt" else "helpsteer2"]
    epochs = rc["epochs"][objective] if isinstance(rc["epochs"], Mapping) else rc["epochs"]
    run = TrainArgs(
        model=study.model_path(model), model_name=model, objective=objective, lr=float(lr),
        out=[], train_data=json.dumps(train_entry, sort_keys=True),
        val_data=json.dumps(data["helpsteer2_preference"], sort_keys=True),
        global_batch=int(rc["global_batch"]), micro_batch=int(size["micro_batch"]),
        epochs=int(epochs), warmup_steps=int(rc["warmup_steps"]),
        eval_every=int(rc["eval_every"]), max_length=int(rc["max_length"]),
        zero_stage=int(size["zero_stage"]), weight_decay=float(rc["weight_decay"]),
        grad_clip=float(rc["grad_clip"]), mega_batch=int(rc["mega_batch"]),
        eval_batch=int(rc["eval_batch"]), merge_grid_step=float(rc["train_merge_grid_step"]),
        offload=offload_of(rc, size),
        grad_checkpointing=bool(size["grad_checkpointing"]),
        chat_template=spec.chat_template or None,
        precision=precision_of(rc, objective),  # auto adds no flag (the trainer's default)
        trust_remote_code=bool(spec.trust_remote_code),
        attn_implementation=spec.attn_implementation or str(rc["attn_implementation"]),
        max_train_examples=rc.get("max_train_examples") or None,
        max_val_pairs=rc.get("max_val_pairs") or None,
        identical_pairs=str(rc["identical_pairs"]),
        keep_ds_checkpoint=bool(rc["keep_ds_checkpoint"]), tensorboard=bool(rc["tensorboard"]),
        keep_checkpoints=keep_checkpoints(rc, objective),
        ds_save_minutes=float(rc["ds_save_minutes"]),
    )
    return shlex.join(cli.to_argv(run))


def rung_flags(study: Study, model: str, objective: str, lr: str, rung: int | str) -> str:
    """Trainer flags of one successive-halving rung: the run's flags plus its step budget.

    The run's own flags are exactly those of the full protocol (same resume signature), so
    each rung continues the previous rung's DeepSpeed checkpoint; the last rung has no
    budget and trains to the end.
    """
    from rmselect.rm.halving import lr_search, rung_budget

    search = lr_search(study.config)
    n = len(lr_grid(study.config, objective, model))
    budget = rung_budget(int(rung), n, search)
    flags = train_flags(study, model, objective, lr)
    return flags if budget is None else f"{flags} --max-steps {budget}"


def halving_flags(config: Mapping[str, Any], objective: str, model: str, rung: int | str) -> str:
    """Flags of workflow/scripts/halving_rm.py for the decision after ``rung``."""
    from rmselect.rm.halving import lr_search

    search = lr_search(config)
    n = len(lr_grid(config, objective, model))
    return (f"--rung {int(rung)} --grid-size {n} --eta {search.eta} "
            f"--min-steps {search.min_steps}")


def rung_path(objective: str, model: str, seed: int | str, lr: str, rung: int | str) -> str:
    """The summary one rung of one run writes (rule rm_train_rung)."""
    return f"{rm_dir(objective, model, seed)}/lr{lr}/rung{int(rung)}.json"


def decision_path(objective: str, model: str, seed: int | str, rung: int | str) -> str:
    """The decision after one rung (checkpoint rm_halving)."""
    return f"{rm_dir(objective, model, seed)}/halving/rung{int(rung)}.json"


def halving_inputs(config: Mapping[str, Any], objective: str, model: str, seed: int | str,
                   rung: int | str, previous: Mapping[str, Any] | None) -> dict[str, Any]:
    """Inputs of the decision after ``rung``: the participants' summaries (and the
    previous decision, whose ``runs`` it carries on). ``previous`` is that decision's
    content (None for rung 0)."""
    from rmselect.rm.halving import next_participants

    r = int(rung)
    if r == 0:
        return {"runs": [rung_path(objective, model, seed, lr, 0)
                         for lr in lr_grid(config, objective, model)]}
    if previous is None:
        raise ValueError("rung > 0 needs the previous decision")
    parts = next_participants(previous, lambda lr, k: rung_path(objective, model, seed, lr, k))
    return {"previous": decision_path(objective, model, seed, r - 1),
            "runs": [parts[lr] for lr in sorted(parts, key=float)]}


def offload_of(rc: Mapping[str, Any], size: Mapping[str, Any]) -> str:
    """DeepSpeed offload of a run: the ``rm.by_size`` row's ``offload``, else ``optimizer``
    when the row sets ``offload_optimizer: true``, else ``rm.offload``."""
    if size.get("offload"):
        return str(size["offload"])
    if size.get("offload_optimizer"):
        return "optimizer"
    return str(rc["offload"])


def keep_checkpoints(rc: Mapping[str, Any], objective: str) -> int:
    """HF checkpoint dirs a run keeps (``--keep-checkpoints``).

    The trainer ranks evaluation points by the accuracy it logs. Where that is the
    selection's own criterion (BT; regression with ``rm.train_merge_grid_step ==
    rm.merge_grid_step``) the best point is the one the selection can pick: 1 suffices.
    Otherwise the selection's finer search may prefer another point: ``rm.keep_checkpoints``
    of them stay (0: every point, in both cases).
    """
    m = int(rc["keep_checkpoints"])
    if m <= 0:
        return 0
    same = objective == "bt" or float(rc["train_merge_grid_step"]) == float(rc["merge_grid_step"])
    return 1 if same else m


def precision_of(rc: Mapping[str, Any], objective: str) -> str:
    """``rm.precision``: one value for every run or ``{objective: value}`` (missing: auto)."""
    value = rc.get("precision", "auto")
    if isinstance(value, Mapping):
        value = value.get(objective, "auto")
    return str(value)


def train_data_files(config: Mapping[str, Any], objective: str) -> list[str]:
    """Local files a training run reads (hub data sets resolve at run time)."""
    data = config["data"]
    entries = [data["helpsteer2_preference" if objective == "bt" else "helpsteer2"],
               data["helpsteer2_preference"]]
    return sorted({e["path"] for e in entries if "path" in e})


def select_flags(config: Mapping[str, Any]) -> str:
    """Config-dependent flags of workflow/scripts/select_rm.py."""
    rc = rm_config(config)
    flags = ["--merge-grid-step", str(rc["merge_grid_step"])]
    if rc["prune_checkpoints"]:
        flags.append("--prune")
    return " ".join(flags)
