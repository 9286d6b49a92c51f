# Stage: eval -- score every trained RM on RewardBench v1 (the paper's benchmark) and,
# when configured, RewardBench 2 and RM-Bench (one eval_rm job per RM for all of them, or
# per model for all its RMs with eval.jobs: per_model);
# merge imported RM results; build the RM score tables. Logic: workflow/rmselect/eval/.
# Outputs: workflow/CONTRACTS.md "Evaluation".
from rmselect.eval.settings import eval_settings, model_flags

try:
    EVAL = eval_settings(STUDY, TRAINED_MODELS)
except ConfigError as err:
    sys.stderr.write(f"rmselect: configuration error: {err}\n")
    sys.exit(1)

EVAL_OPTS = EVAL.options
EVAL_PAIRS = EVAL.pairs
EVAL_BENCHMARKS = list(EVAL.benchmarks)
EVAL_DERIVED_RE = name_regex(EVAL.derived)
EVAL_JSONS = [
    EVAL.json_path(b, o, m, seed) for b in EVAL_BENCHMARKS for m, o, seed in EVAL.rms
]
EVAL_SCORES = [p.replace(".json", ".scores.parquet") for p in EVAL_JSONS]
EVAL_TABLES = (
    [
        "results/tables/rm_scores.csv",
        "results/tables/rm_scores_all.csv",
        "results/tables/rm_scores_seeds.csv",
    ]
    if EVAL.makes_table
    else []
)
# The stage's outputs (empty when nothing is evaluated or imported).
EVAL_TARGETS = EVAL_JSONS + EVAL_SCORES + EVAL_TABLES
# eval.jobs: per_model groups these models' RMs (eval_rm_model); the rest: eval_rm.
EVAL_GROUPED = EVAL.grouped_models
EVAL_GROUPED_RE = name_regex(EVAL_GROUPED)
EVAL_SINGLE_RE = name_regex(
    dict.fromkeys(m for m, _ in EVAL_PAIRS if m not in EVAL_GROUPED)
)
# eval_rm's resources but its runtime (the per-model job scales it by its RM count).
EVAL_RESOURCES = res_extra("eval") | {k: res("eval", k) for k in ("gpu", "mem_mb")}
EVAL_CODE = code_hash("workflow/scripts/eval_rm.py")


rule eval:
    input:
        EVAL_TARGETS,


rule eval_toy_sets:
    input:
        lambda wc: dataset_files(EVAL.derived[wc.benchmark]["source"]),
    output:
        "results/eval/data/{benchmark}.jsonl",
    log:
        f"{LOGS}/eval_toy_sets/{{benchmark}}.log",
    benchmark:
        f"{COST}/eval_toy_sets/{{benchmark}}.tsv"
    wildcard_constraints:
        benchmark=EVAL_DERIVED_RE,
    conda:
        "../../envs/eval.yaml"
    params:
        code=code_hash("workflow/scripts/eval_toy_sets.py"),
        source=lambda wc: dataset_arg(EVAL.derived[wc.benchmark]["source"]),
        n_ties=EVAL_OPTS["toy_ties"],
    shell:
        "python workflow/scripts/eval_toy_sets.py --source {params.source}"
        " --format {wildcards.benchmark} --n-ties {params.n_ties} --out {output}"
        " > {log} 2>&1"


# One job per (objective, model) scores the RM on every configured benchmark: the model is
# loaded once, and the job writes each benchmark's JSON and per-example scores. With
# eval.jobs: per_model, one job per model scores all its RMs in turn (imports paid once);
# models with only some objectives to evaluate keep one job per RM.
if EVAL_BENCHMARKS:

    rule eval_rm:
        input:
            rm=EVAL.job_inputs("final"),
            selected=EVAL.job_inputs("selected.json"),
            data=EVAL.job_data_files(),
        output:
            json=EVAL.job_outputs(".json"),
            scores=EVAL.job_outputs(".scores.parquet"),
        log:
            f"{LOGS}/eval_rm/{{objective}}/{{model}}/seed{{seed}}.log",
        benchmark:
            f"{COST}/eval_rm/{{objective}}/{{model}}/seed{{seed}}.tsv"
        wildcard_constraints:
            model=EVAL_SINGLE_RE,
        conda:
            "../../envs/eval.yaml"
        resources:
            **EVAL_RESOURCES,
            runtime=res("eval", "runtime"),
        params:
            code=EVAL_CODE,
            slot=GPU_SLOT,
            # --benchmark NAME --data JSON --out-json ... --out-scores ... per benchmark,
            # then the RM, the model row's flags and the scorer options
            call=lambda wc, input, output: EVAL.rm_args(
                *(wc.model, wc.objective, input.rm, input.selected),
                *(output.json, output.scores, model_flags(STUDY.model(wc.model))),
            ),
        shell:
            "{params.slot} {resources.gpu} -- python workflow/scripts/eval_rm.py"
            " {params.call} > {log} 2>&1"

    # eval.jobs: per_model: one job scores every RM (objective x seed) of a model.
    use rule eval_rm as eval_rm_model with:
        input:
            rm=EVAL.job_inputs("final", per_model=True),
            selected=EVAL.job_inputs("selected.json", per_model=True),
            data=EVAL.job_data_files(),
        output:
            json=EVAL.job_outputs(".json", per_model=True),
            scores=EVAL.job_outputs(".scores.parquet", per_model=True),
        log:
            f"{LOGS}/eval_rm/{{model}}.log",
        benchmark:
            f"{COST}/eval_rm/{{model}}.tsv"
        wildcard_constraints:
            model=EVAL_GROUPED_RE,
        resources:
            **EVAL_RESOURCES,
            runtime=lambda wc, attempt: res("eval", "runtime")(wc, attempt)
            * len(EVAL.objectives)
            * len(EVAL.seeds),
        params:
            code=EVAL_CODE,
            slot=GPU_SLOT,
            # one complete argument set per RM, separated by --next-rm
            call=lambda wc, input, output: EVAL.model_args(
                wc.model,
                [(o, seed) for o in EVAL.objectives for seed in EVAL.seeds],
                *(input.rm, input.selected, output.json, output.scores),
                model_flags(STUDY.model(wc.model)),
            ),


rule rm_scores_table:
    input:
        evals=EVAL_JSONS,
        imported=[EVAL.import_path] if EVAL.import_path else [],
    output:
        table="results/tables/rm_scores.csv",
        long="results/tables/rm_scores_all.csv",
        seeds="results/tables/rm_scores_seeds.csv",
    log:
        f"{LOGS}/rm_scores_table/rm_scores_table.log",
    benchmark:
        f"{COST}/rm_scores_table/rm_scores_table.tsv"
    conda:
        "../../envs/eval.yaml"
    params:
        code=code_hash("workflow/scripts/rm_scores_table.py"),
        imported=f"--import-csv {EVAL.import_path}" if EVAL.import_path else "",
        precedence=EVAL_OPTS["import_precedence"],
        models=" ".join(ALL_MODELS),
    shell:
        "python workflow/scripts/rm_scores_table.py --evals {input.evals}"
        " {params.imported} --precedence {params.precedence} --models {params.models}"
        " --out {output.table} --out-all {output.long} --out-seeds {output.seeds}"
        " > {log} 2>&1"
