# Stage: rm — reward-model training (DeepSpeed) over the LR grid and rm.seeds, then
# selection per seed.
#
#   results/rm/{objective}/{model}/seed{seed}/lr{lr}/run.json  one training run (rm_train)
#   results/rm/{objective}/{model}/seed{seed}/selected.json    best (lr, step[, weights])
#   results/rm/{objective}/{model}/seed{seed}/final/           the selected HF checkpoint
#
# rm.seed_jobs: together trains every seed of a (model, objective, lr) in one job
# (rm_train_seeds: imports and data paid once); per_seed is one job per run.
# rm.lr_search.mode: halving (successive halving, rmselect.rm.halving) replaces rm_train by
#   .../seed{seed}/lr{lr}/rung{rung}.json   one rung of a run (rm_train_rung)
#   .../seed{seed}/halving/rung{rung}.json  who goes on (checkpoint rm_halving)
# and rm_select reads every rate's latest rung file, stopped rates included.
#
# Only run.json is declared for a training run: the run dir's checkpoints (ckpt/ = the best
# points' weights, val_preds/ = every point's predictions, ds/ = the resume state) are not
# outputs, so Snakemake never deletes them when a job fails, and a rerun resumes.
from rmselect.rm import halving as rm_halving
from rmselect.rm import rules as rm_rules

RM_STUDY = STUDY.config  # the validated config
RM_CFG = rm_rules.rm_config(RM_STUDY)
try:
    RM_SEARCH = rm_halving.lr_search(RM_STUDY)
except ConfigError as err:
    sys.stderr.write(f"rmselect: configuration error: {err}\n")
    sys.exit(1)
RM_OBJECTIVES = RM_CFG["objectives"]
RM_SEEDS = rm_rules.seeds(RM_STUDY)
RM_TOGETHER = rm_rules.seeds_together(RM_STUDY) and not RM_SEARCH.halving
RM_ALL = [
    rm_rules.selected_path(o, m, s)
    for o in RM_OBJECTIVES
    for m in TRAINED_MODELS
    for s in RM_SEEDS
]
# What the default target (and analysis waiting for all stages) asks of this stage: no RM
# when eval.train_and_evaluate is false; the `rm` target still trains them all.
RM_TARGETS = RM_ALL if rm_rules.trains_rms(RM_STUDY) else []
RM_TRAIN_CODE = code_hash("workflow/scripts/train_rm.py")


wildcard_constraints:
    lr="[0-9][0-9.e+\\-]*",
    rung="[0-9]+",
    seed="[0-9]+",


rule rm:
    input:
        RM_ALL,


rule rm_train:
    input:
        model=lambda wc: model_files(wc.model),
        data=lambda wc: rm_rules.train_data_files(RM_STUDY, wc.objective),
    output:
        "results/rm/{objective}/{model}/seed{seed}/lr{lr}/run.json",
    log:
        f"{LOGS}/rm_train/{{objective}}/{{model}}/seed{{seed}}/lr{{lr}}.log",
    benchmark:
        f"{COST}/rm_train/{{objective}}/{{model}}/seed{{seed}}/lr{{lr}}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: lambda wc: rm_rules.nproc(RM_STUDY, res("rm_train", "gpu")(wc))
    resources:
        **res_all("rm_train"),
    params:
        code=RM_TRAIN_CODE,
        launch=lambda wc: rm_rules.launch_for(RM_STUDY, res("rm_train", "gpu")(wc)),
        flags=lambda wc: rm_rules.train_flags(STUDY, wc.model, wc.objective, wc.lr),
        runs=lambda wc, output: rm_rules.seed_out_flags(
            [(wc.seed, Path(output[0]).parent)]
        ),
        result="",
    shell:
        "OMP_NUM_THREADS=1 {params.launch} workflow/scripts/train_rm.py {params.flags}"
        " {params.runs}{params.result} --threads 1 > {log} 2>&1"


if RM_TOGETHER:

    # One job trains all of rm.seeds for a (model, objective, lr), in turn.
    use rule rm_train as rm_train_seeds with:
        output:
            [
                f"results/rm/{{objective}}/{{model}}/seed{s}/lr{{lr}}/run.json"
                for s in RM_SEEDS
            ],
        log:
            f"{LOGS}/rm_train/{{objective}}/{{model}}/lr{{lr}}.log",
        benchmark:
            f"{COST}/rm_train/{{objective}}/{{model}}/lr{{lr}}.tsv"
        resources:
            **res_extra("rm_train"),
            gpu=res("rm_train", "gpu"),
            mem_mb=res("rm_train", "mem_mb"),
            runtime=lambda wc, attempt: res("rm_train", "runtime")(wc, attempt)
            * len(RM_SEEDS),
        params:
            code=RM_TRAIN_CODE,
            launch=lambda wc: rm_rules.launch_for(RM_STUDY, res("rm_train", "gpu")(wc)),
            flags=lambda wc: rm_rules.train_flags(STUDY, wc.model, wc.objective, wc.lr),
            runs=lambda wc, output: rm_rules.seed_out_flags(
                [(s, Path(o).parent) for s, o in zip(RM_SEEDS, output)]
            ),
            result="",

    ruleorder: rm_train_seeds > rm_train


# One rung of a successive-halving run: the run's flags plus the rung's step budget.
use rule rm_train as rm_train_rung with:
    input:
        model=lambda wc: model_files(wc.model),
        data=lambda wc: rm_rules.train_data_files(RM_STUDY, wc.objective),
        # the run's previous rung: its DeepSpeed checkpoint is where this rung continues
        # (the rung's budget is in params.flags; halving.py edits do not retrain)
        previous=lambda wc: (
            [
                rm_rules.rung_path(
                    wc.objective, wc.model, wc.seed, wc.lr, int(wc.rung) - 1
                )
            ]
            if int(wc.rung) > 0
            else []
        ),
    output:
        "results/rm/{objective}/{model}/seed{seed}/lr{lr}/rung{rung}.json",
    log:
        f"{LOGS}/rm_train_rung/{{objective}}/{{model}}/seed{{seed}}/lr{{lr}}/rung{{rung}}.log",
    benchmark:
        f"{COST}/rm_train_rung/{{objective}}/{{model}}/seed{{seed}}/lr{{lr}}/rung{{rung}}.tsv"
    params:
        code=RM_TRAIN_CODE,
        launch=lambda wc: rm_rules.launch_for(RM_STUDY, res("rm_train", "gpu")(wc)),
        flags=lambda wc: rm_rules.rung_flags(
            STUDY, wc.model, wc.objective, wc.lr, wc.rung
        ),
        runs=lambda wc, output: rm_rules.seed_out_flags(
            [(wc.seed, Path(output[0]).parent)]
        ),
        result=lambda wc, output: f" --result {output[0]}",


checkpoint rm_halving:
    input:
        unpack(rm_halving_input),
    output:
        "results/rm/{objective}/{model}/seed{seed}/halving/rung{rung}.json",
    log:
        f"{LOGS}/rm_halving/{{objective}}/{{model}}/seed{{seed}}/rung{{rung}}.log",
    benchmark:
        f"{COST}/rm_halving/{{objective}}/{{model}}/seed{{seed}}/rung{{rung}}.tsv"
    conda:
        "../../envs/train.yaml"
    resources:
        mem_mb=res("rm_select", "mem_mb"),
        runtime=res("rm_select", "runtime"),
    params:
        code=code_hash("workflow/scripts/halving_rm.py"),
        flags=lambda wc: rm_rules.halving_flags(
            RM_STUDY, wc.objective, wc.model, wc.rung
        ),
        previous=lambda wc, input: (
            f"--previous {input.previous}" if "previous" in input.keys() else ""
        ),
    shell:
        "python workflow/scripts/halving_rm.py --runs {input.runs} {params.previous}"
        " {params.flags} --out {output} > {log} 2>&1"


rule rm_select:
    input:
        runs=rm_select_runs,
    output:
        selected="results/rm/{objective}/{model}/seed{seed}/selected.json",
        final=directory("results/rm/{objective}/{model}/seed{seed}/final"),
    log:
        f"{LOGS}/rm_select/{{objective}}/{{model}}/seed{{seed}}.log",
    benchmark:
        f"{COST}/rm_select/{{objective}}/{{model}}/seed{{seed}}.tsv"
    conda:
        "../../envs/train.yaml"
    resources:
        mem_mb=res("rm_select", "mem_mb"),
        runtime=res("rm_select", "runtime"),
    params:
        code=code_hash("workflow/scripts/select_rm.py"),
        flags=rm_rules.select_flags(RM_STUDY),
    shell:
        "python workflow/scripts/select_rm.py --runs {input.runs} --model-name {wildcards.model}"
        " --objective {wildcards.objective} --final {output.final}"
        " --selected {output.selected} {params.flags} > {log} 2>&1"
