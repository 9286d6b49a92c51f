# Stage: rm — reward-model training (DeepSpeed) over the LR grid, then selection.
#
#   results/rm/{objective}/{model}/lr{lr}/run.json    one training run (rule rm_train)
#   results/rm/{objective}/{model}/selected.json      best (lr, step[, weights]) (rule rm_select)
#   results/rm/{objective}/{model}/final/             the selected HF checkpoint
#
# rm.lr_search.mode: halving (successive halving, rmselect.rm.halving) replaces rm_train by
#   results/rm/{objective}/{model}/lr{lr}/rung{rung}.json  one rung of a run (rm_train_rung)
#   results/rm/{objective}/{model}/halving/rung{rung}.json who goes on (checkpoint rm_halving)
# and rm_select reads every rate's latest rung file, stopped rates included.
#
# Only run.json is declared for a training run: the run dir's checkpoints (ckpt/, ds/) are
# not outputs, so Snakemake never deletes them when a job fails, and a rerun resumes.
from rmselect.rm import halving as rm_halving
from rmselect.rm import rules as rm_rules

RM_CFG = rm_rules.rm_config(config)
try:
    RM_SEARCH = rm_halving.lr_search(config)
except ConfigError as err:
    sys.stderr.write(f"rmselect: configuration error: {err}\n")
    sys.exit(1)
RM_OBJECTIVES = RM_CFG["objectives"]
RM_ALL = expand(
    "results/rm/{objective}/{model}/selected.json",
    objective=RM_OBJECTIVES,
    model=TRAINED_MODELS,
)
# What the default target (and analysis waiting for all stages) asks of this stage: no RM
# when eval.train_and_evaluate is false; the `rm` target still trains them all.
RM_TARGETS = RM_ALL if rm_rules.trains_rms(config) else []


wildcard_constraints:
    lr="[0-9][0-9.e+\\-]*",
    rung="[0-9]+",


rule rm:
    input:
        RM_ALL,


rule rm_train:
    input:
        model=lambda wc: model_files(wc.model),
        data=lambda wc: rm_rules.train_data_files(config, wc.objective),
    output:
        "results/rm/{objective}/{model}/lr{lr}/run.json",
    log:
        "results/logs/rm_train/{objective}/{model}/lr{lr}.log",
    benchmark:
        "results/cost/rm_train/{objective}/{model}/lr{lr}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: lambda wc: rm_rules.nproc(config, res("rm_train", "gpu")(wc))
    resources:
        **res_extra("rm_train"),
        gpu=res("rm_train", "gpu"),
        mem_mb=res("rm_train", "mem_mb"),
        runtime=res("rm_train", "runtime"),
    params:
        code=code_hash("workflow/scripts/train_rm.py"),
        launch=lambda wc: rm_rules.launcher(
            rm_rules.nproc(config, res("rm_train", "gpu")(wc)),
            res("rm_train", "gpu")(wc),
        ),
        flags=lambda wc: rm_rules.train_flags(STUDY, wc.model, wc.objective, wc.lr),
        out=lambda wc, output: str(Path(output[0]).parent),
    shell:
        "OMP_NUM_THREADS=1 {params.launch} workflow/scripts/train_rm.py {params.flags}"
        " --out {params.out} --threads 1 > {log} 2>&1"


rule rm_train_rung:
    input:
        model=lambda wc: model_files(wc.model),
        data=lambda wc: rm_rules.train_data_files(config, wc.objective),
        # the run's previous rung: its DeepSpeed checkpoint is where this rung continues
        # (the rung's budget is in params.flags; halving.py edits do not retrain)
        previous=lambda wc: (
            [rm_rules.rung_path(wc.objective, wc.model, wc.lr, int(wc.rung) - 1)]
            if int(wc.rung) > 0
            else []
        ),
    output:
        "results/rm/{objective}/{model}/lr{lr}/rung{rung}.json",
    log:
        "results/logs/rm_train_rung/{objective}/{model}/lr{lr}/rung{rung}.log",
    benchmark:
        "results/cost/rm_train_rung/{objective}/{model}/lr{lr}/rung{rung}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: lambda wc: rm_rules.nproc(config, res("rm_train", "gpu")(wc))
    resources:
        **res_extra("rm_train"),
        gpu=res("rm_train", "gpu"),
        mem_mb=res("rm_train", "mem_mb"),
        runtime=res("rm_train", "runtime"),
    params:
        code=code_hash("workflow/scripts/train_rm.py"),
        launch=lambda wc: rm_rules.launcher(
            rm_rules.nproc(config, res("rm_train", "gpu")(wc)),
            res("rm_train", "gpu")(wc),
        ),
        flags=lambda wc: rm_rules.rung_flags(
            STUDY, wc.model, wc.objective, wc.lr, wc.rung
        ),
        out=lambda wc, output: str(Path(output[0]).parent),
    shell:
        "OMP_NUM_THREADS=1 {params.launch} workflow/scripts/train_rm.py {params.flags}"
        " --out {params.out} --result {output} --threads 1 > {log} 2>&1"


checkpoint rm_halving:
    input:
        unpack(rm_halving_input),
    output:
        "results/rm/{objective}/{model}/halving/rung{rung}.json",
    log:
        "results/logs/rm_halving/{objective}/{model}/rung{rung}.log",
    benchmark:
        "results/cost/rm_halving/{objective}/{model}/rung{rung}.tsv"
    conda:
        "../../envs/train.yaml"
    resources:
        mem_mb=res("rm_select", "mem_mb"),
        runtime=res("rm_select", "runtime"),
    params:
        code=code_hash("workflow/scripts/halving_rm.py"),
        flags=lambda wc: rm_rules.halving_flags(config, wc.objective, wc.model, wc.rung),
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
        selected="results/rm/{objective}/{model}/selected.json",
        final=directory("results/rm/{objective}/{model}/final"),
    log:
        "results/logs/rm_select/{objective}/{model}.log",
    benchmark:
        "results/cost/rm_select/{objective}/{model}.tsv"
    conda:
        "../../envs/train.yaml"
    resources:
        mem_mb=res("rm_select", "mem_mb"),
        runtime=res("rm_select", "runtime"),
    params:
        code=code_hash("workflow/scripts/select_rm.py"),
        flags=rm_rules.select_flags(config),
    shell:
        "python workflow/scripts/select_rm.py --runs {input.runs} --model-name {wildcards.model}"
        " --objective {wildcards.objective} --final {output.final}"
        " --selected {output.selected} {params.flags} > {log} 2>&1"
