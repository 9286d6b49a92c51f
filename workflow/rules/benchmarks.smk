# Stage: benchmarks -- upstream benchmarks of every model of the effective model table (lm-eval
# tasks from the registry or a local include_path; local code tasks scored in the sandbox),
# parameter counts from checkpoints, the feature table, and (toy zoo) the small-scale vs full
# screening check. Logic: workflow/rmselect/bench/. Outputs: workflow/CONTRACTS.md
# "Upstream benchmarks". DAG building reads the config only: no lm_eval import, no network.
# Flags and inputs: rmselect.dag.bench.
from pathlib import Path

import rmselect.dag.bench as dag_bench
from rmselect.bench.spec import bench_config

try:
    BENCH = bench_config(STUDY.config)
except ConfigError as err:
    sys.stderr.write(f"rmselect: configuration error: {err}\n")
    sys.exit(1)

BENCH_TASKS = list(BENCH.tasks)
BENCH_RUN = BENCH.run_tasks
BENCH_RUN_RE = name_regex(BENCH_RUN)
BENCH_MODEL_RE = name_regex(ALL_MODELS)
BENCH_RUNS = expand(
    "results/benchmarks/{model}/{task}.json", model=ALL_MODELS, task=BENCH_RUN
)
BENCH_PARAMS = expand("results/benchmarks/{model}/params.json", model=ALL_MODELS)
BENCH_TABLES = [
    "results/tables/features.csv",
    "results/tables/features_sources.csv",
    "results/tables/features_published.csv",
]
# Small-scale vs full check: the configured mode's runs are reused, the other mode runs
# into results/screening/{mode}/ (extra jobs, toy zoo only by default).
SCREEN_MODELS = list(BENCH.screening.get("models") or ALL_MODELS)
SCREEN_TASKS = list(BENCH.screening.get("tasks") or BENCH_RUN)
SCREEN_OTHER = BENCH.other_mode()
SCREEN_DIRS = {
    BENCH.mode: "results/benchmarks",
    SCREEN_OTHER: f"results/screening/{SCREEN_OTHER}",
}
BENCH_AGREEMENT = (
    ["results/analysis/screening_agreement.csv"] if BENCH.screening_enabled else []
)
BENCH_PRESENCE_DOMAINS = dag_bench.presence_domains(STUDY.config)
BENCH_PRESENCE = ["results/presence/summary.csv"] if BENCH_PRESENCE_DOMAINS else []
BENCH_PUBLISHED = BENCH.published
# Code a run job depends on (editing it reruns the jobs; rmselect.cluster.rerun).
BENCH_RUN_CODE = code_hash(
    "workflow/scripts/bench_run.py", "workflow/rmselect/bench/lm_tasks"
)
# The stage's outputs.
BENCHMARK_TARGETS = (
    [*BENCH_RUNS, *BENCH_PARAMS, *BENCH_TABLES, *BENCH_AGREEMENT] if ALL_MODELS else []
)


rule benchmarks:
    input:
        BENCHMARK_TARGETS,


if BENCH.jobs == "per_model":
    # One job per model. With the screening check on, the job of a screened model also
    # reruns the screened benchmarks in the other mode (same process, model loaded once).
    _screened = SCREEN_MODELS if BENCH.screening_enabled else []
    BENCH_PLAIN_RE = name_regex(m for m in ALL_MODELS if m not in _screened)
    BENCH_SCREENED_RE = name_regex(_screened)

    rule bench_model:
        input:
            model=model_input,
            tasks=dag_bench.task_files(BENCH, BENCH_RUN),
        output:
            [f"results/benchmarks/{{model}}/{t}.json" for t in BENCH_RUN],
        log:
            f"{LOGS}/bench_model/{{model}}.log",
        benchmark:
            f"{COST}/bench_model/{{model}}.tsv"
        wildcard_constraints:
            model=BENCH_PLAIN_RE,
        conda:
            "../../envs/benchmarks.yaml"
        threads: BENCH.threads
        resources:
            **res_all("benchmarks"),
        params:
            slot=GPU_SLOT,
            code=BENCH_RUN_CODE,
            flags=lambda wc: dag_bench.run_flags(STUDY, wc.model),
            settings=dag_bench.settings_arg(BENCH, BENCH.mode),
            specs=dag_bench.specs_arg(BENCH, BENCH_RUN),
            screen="",
        shell:
            "{params.slot} {resources.gpu} -- python workflow/scripts/bench_run.py"
            " --model {wildcards.model} {params.flags}"
            " --settings {params.settings} {params.specs}"
            " --out-dir results/benchmarks/{wildcards.model}{params.screen} > {log} 2>&1"

    use rule bench_model as bench_model_screen with:
        output:
            main=[f"results/benchmarks/{{model}}/{t}.json" for t in BENCH_RUN],
            screen=[
                f"results/screening/{SCREEN_OTHER}/{{model}}/{t}.json"
                for t in SCREEN_TASKS
            ],
        log:
            f"{LOGS}/bench_model_screen/{{model}}.log",
        benchmark:
            f"{COST}/bench_model_screen/{{model}}.tsv"
        wildcard_constraints:
            model=BENCH_SCREENED_RE,
        params:
            screen=lambda wc: dag_bench.screen_args(
                SCREEN_OTHER, SCREEN_TASKS, wc.model
            ),

else:

    rule bench_run:
        input:
            model=model_input,
            tasks=lambda wc: dag_bench.task_files(BENCH, [wc.task]),
        output:
            "results/benchmarks/{model}/{task}.json",
        log:
            f"{LOGS}/bench_run/{{model}}/{{task}}.log",
        benchmark:
            f"{COST}/bench_run/{{model}}/{{task}}.tsv"
        wildcard_constraints:
            model=BENCH_MODEL_RE,
            task=BENCH_RUN_RE,
        conda:
            "../../envs/benchmarks.yaml"
        threads: BENCH.threads
        resources:
            **res_all("benchmarks"),
        params:
            slot=GPU_SLOT,
            code=BENCH_RUN_CODE,
            flags=lambda wc: dag_bench.run_flags(STUDY, wc.model),
            settings=dag_bench.settings_arg(BENCH, BENCH.mode),
            spec=lambda wc: dag_bench.specs_arg(BENCH, [wc.task]),
            out=lambda wc, output: str(Path(output[0]).parent),
        shell:
            "{params.slot} {resources.gpu} -- python workflow/scripts/bench_run.py"
            " --model {wildcards.model} {params.flags}"
            " --settings {params.settings} {params.spec}"
            " --out-dir {params.out} > {log} 2>&1"

    # The small-scale vs full check: the screened benchmarks again, in the other mode.
    use rule bench_run as bench_screen_run with:
        output:
            "results/screening/{mode}/{model}/{task}.json",
        log:
            f"{LOGS}/bench_screen_run/{{mode}}/{{model}}/{{task}}.log",
        benchmark:
            f"{COST}/bench_screen_run/{{mode}}/{{model}}/{{task}}.tsv"
        wildcard_constraints:
            model=BENCH_MODEL_RE,
            task=BENCH_RUN_RE,
            mode=SCREEN_OTHER,
        params:
            settings=dag_bench.settings_arg(BENCH, SCREEN_OTHER),


rule bench_params:
    input:
        model_input,
    output:
        "results/benchmarks/{model}/params.json",
    log:
        f"{LOGS}/bench_params/{{model}}.log",
    wildcard_constraints:
        model=BENCH_MODEL_RE,
    conda:
        "../../envs/benchmarks.yaml"
    params:
        ref=lambda wc: shell_word(model_ref(wc.model)),
        kind=lambda wc: STUDY.model(wc.model).kind,
        params_b=lambda wc: STUDY.model(wc.model).params_b,
        tokens=lambda wc: dag_bench.tokens_flag(STUDY, wc.model),
        tolerance=BENCH.params_tolerance,
        code=code_hash("workflow/scripts/bench_params.py"),
    shell:
        "python workflow/scripts/bench_params.py --model {wildcards.model}"
        " --model-ref {params.ref} --kind {params.kind} --params-b {params.params_b}"
        " {params.tokens} --tolerance {params.tolerance} --out {output} > {log} 2>&1"


rule features_table:
    input:
        runs=BENCH_RUNS,
        params=BENCH_PARAMS,
        published=[BENCH_PUBLISHED["path"]] if BENCH_PUBLISHED else [],
        presence=BENCH_PRESENCE,
        probes=PROBE_FILES,
    output:
        features="results/tables/features.csv",
        sources="results/tables/features_sources.csv",
        published="results/tables/features_published.csv",
    log:
        f"{LOGS}/features_table/features_table.log",
    benchmark:
        f"{COST}/features_table/features_table.tsv"
    conda:
        "../../envs/benchmarks.yaml"
    params:
        code=code_hash("workflow/scripts/features_table.py"),
        models=dag_bench.models_arg(STUDY, ALL_MODELS),
        flags=dag_bench.features_flags(BENCH, BENCH_PRESENCE_DOMAINS),
        presence=lambda wc, input: input.presence[0] if input.presence else "''",
        probes=lambda wc, input: (
            str(Path(input.probes[0]).parent) if input.probes else "''"
        ),
    shell:
        "python workflow/scripts/features_table.py --models {params.models}"
        " {params.flags} --presence {params.presence}"
        " --probe-dir {params.probes} --runs-dir results/benchmarks --out {output.features}"
        " --out-sources {output.sources} --out-published {output.published} > {log} 2>&1"


rule screening_agreement:
    input:
        small=expand(
            "{d}/{model}/{task}.json",
            d=SCREEN_DIRS["small"],
            model=SCREEN_MODELS,
            task=SCREEN_TASKS,
        ),
        full=expand(
            "{d}/{model}/{task}.json",
            d=SCREEN_DIRS["full"],
            model=SCREEN_MODELS,
            task=SCREEN_TASKS,
        ),
    output:
        "results/analysis/screening_agreement.csv",
    log:
        f"{LOGS}/screening_agreement/screening_agreement.log",
    conda:
        "../../envs/benchmarks.yaml"
    params:
        code=code_hash("workflow/scripts/bench_agreement.py"),
        models=shell_json(SCREEN_MODELS),
        tasks=shell_json(SCREEN_TASKS),
        small=lambda wc, input: Path(input.small[0]).parents[1],
        full=lambda wc, input: Path(input.full[0]).parents[1],
    shell:
        "python workflow/scripts/bench_agreement.py --models {params.models}"
        " --tasks {params.tasks} --small-dir {params.small} --full-dir {params.full}"
        " --out {output} > {log} 2>&1"
