# Stage: benchmarks -- upstream benchmarks of every model of the effective model table (lm-eval
# tasks from the registry or a local include_path; local code tasks scored in the sandbox),
# parameter counts from checkpoints, the feature table, and (toy zoo) the small-scale vs full
# screening check. Logic: workflow/rmselect/bench/. Outputs: workflow/CONTRACTS.md
# "Upstream benchmarks". DAG building reads the config only: no lm_eval import, no network.
import json
import re
import shlex

from rmselect.bench.spec import bench_config, task_inputs

try:
    BENCH = bench_config(STUDY.config)
except ConfigError as err:
    sys.stderr.write(f"rmselect: configuration error: {err}\n")
    sys.exit(1)

BENCH_TASKS = list(BENCH.tasks)
BENCH_RUN = BENCH.run_tasks
BENCH_RUN_RE = "|".join(re.escape(t) for t in BENCH_RUN) or "(?!x)x"
BENCH_MODEL_RE = "|".join(re.escape(m) for m in ALL_MODELS) or "(?!x)x"
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


def bench_dir(mode):
    return "results/benchmarks" if mode == BENCH.mode else f"results/screening/{mode}"


BENCH_AGREEMENT = (
    ["results/analysis/screening_agreement.csv"] if BENCH.screening_enabled else []
)


def _presence_domains():
    d = (STUDY.config.get("presence") or {}).get("domains") or []
    if isinstance(d, dict):
        return list(d)
    return [x["name"] if isinstance(x, dict) else str(x) for x in d]


BENCH_PRESENCE_DOMAINS = _presence_domains()
BENCH_PRESENCE = ["results/presence/summary.csv"] if BENCH_PRESENCE_DOMAINS else []
BENCH_PUBLISHED = BENCH.published
# The stage's outputs.
BENCHMARK_TARGETS = (
    BENCH_RUNS + BENCH_PARAMS + BENCH_TABLES + BENCH_AGREEMENT if ALL_MODELS else []
)


def bench_settings(mode):
    keys = (
        "seed",
        "backend",
        "device",
        "dtype",
        "batch_size",
        "max_length",
        "apply_chat_template",
        "bootstrap_iters",
        "sandbox",
    )
    out = {k: getattr(BENCH, k) for k in keys}
    out["sandbox"] = dict(out["sandbox"])
    out["mode"] = mode
    return shlex.quote(json.dumps(out, sort_keys=True))


def bench_specs(tasks):
    return " ".join(
        "--spec " + shlex.quote(json.dumps(BENCH.tasks[t].to_dict(), sort_keys=True))
        for t in tasks
    )


def bench_task_files(tasks):
    return sorted({f for t in tasks for f in task_inputs(BENCH.tasks[t])})


def bench_model_flags(wildcards):
    m = STUDY.model(wildcards.model)
    ref = shlex.quote(model_ref(wildcards.model))
    trc = " --trust-remote-code" if m.trust_remote_code else ""
    return f"--model-ref {ref}{trc}"


rule benchmarks:
    input:
        BENCHMARK_TARGETS,


if BENCH.jobs == "per_model":

    rule bench_model:
        input:
            model=model_input,
            tasks=bench_task_files(BENCH_RUN),
        output:
            [f"results/benchmarks/{{model}}/{t}.json" for t in BENCH_RUN],
        log:
            f"{LOGS}/bench_model/{{model}}.log",
        benchmark:
            f"{COST}/bench_model/{{model}}.tsv"
        wildcard_constraints:
            model=BENCH_MODEL_RE,
        conda:
            "../../envs/benchmarks.yaml"
        resources:
            gpu=res("benchmarks", "gpu"),
            mem_mb=res("benchmarks", "mem_mb"),
            runtime=res("benchmarks", "runtime"),
        params:
            flags=bench_model_flags,
            settings=bench_settings(BENCH.mode),
            specs=bench_specs(BENCH_RUN),
        shell:
            "python workflow/scripts/bench_run.py --model {wildcards.model} {params.flags}"
            " --settings {params.settings} {params.specs}"
            " --out-dir results/benchmarks/{wildcards.model} > {log} 2>&1"

    rule bench_screen_model:
        input:
            model=model_input,
            tasks=bench_task_files(SCREEN_TASKS),
        output:
            [f"results/screening/{{mode}}/{{model}}/{t}.json" for t in SCREEN_TASKS],
        log:
            f"{LOGS}/bench_screen_model/{{mode}}/{{model}}.log",
        benchmark:
            f"{COST}/bench_screen_model/{{mode}}/{{model}}.tsv"
        wildcard_constraints:
            model=BENCH_MODEL_RE,
            mode=SCREEN_OTHER,
        conda:
            "../../envs/benchmarks.yaml"
        resources:
            gpu=res("benchmarks", "gpu"),
            mem_mb=res("benchmarks", "mem_mb"),
            runtime=res("benchmarks", "runtime"),
        params:
            flags=bench_model_flags,
            settings=bench_settings(SCREEN_OTHER),
            specs=bench_specs(SCREEN_TASKS),
        shell:
            "python workflow/scripts/bench_run.py --model {wildcards.model} {params.flags}"
            " --settings {params.settings} {params.specs}"
            " --out-dir results/screening/{wildcards.mode}/{wildcards.model} > {log} 2>&1"

else:

    rule bench_run:
        input:
            model=model_input,
            tasks=lambda wc: bench_task_files([wc.task]),
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
        resources:
            gpu=res("benchmarks", "gpu"),
            mem_mb=res("benchmarks", "mem_mb"),
            runtime=res("benchmarks", "runtime"),
        params:
            flags=bench_model_flags,
            settings=bench_settings(BENCH.mode),
            spec=lambda wc: bench_specs([wc.task]),
        shell:
            "python workflow/scripts/bench_run.py --model {wildcards.model} {params.flags}"
            " --settings {params.settings} {params.spec}"
            " --out-dir results/benchmarks/{wildcards.model} > {log} 2>&1"

    rule bench_screen_run:
        input:
            model=model_input,
            tasks=lambda wc: bench_task_files([wc.task]),
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
        conda:
            "../../envs/benchmarks.yaml"
        resources:
            gpu=res("benchmarks", "gpu"),
            mem_mb=res("benchmarks", "mem_mb"),
            runtime=res("benchmarks", "runtime"),
        params:
            flags=bench_model_flags,
            settings=bench_settings(SCREEN_OTHER),
            spec=lambda wc: bench_specs([wc.task]),
        shell:
            "python workflow/scripts/bench_run.py --model {wildcards.model} {params.flags}"
            " --settings {params.settings} {params.spec}"
            " --out-dir results/screening/{wildcards.mode}/{wildcards.model} > {log} 2>&1"


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
        ref=lambda wc: shlex.quote(model_ref(wc.model)),
        kind=lambda wc: STUDY.model(wc.model).kind,
        params_b=lambda wc: STUDY.model(wc.model).params_b,
        tokens=lambda wc: (
            f"--tokens-t {STUDY.model(wc.model).tokens_t}"
            if STUDY.model(wc.model).tokens_t is not None
            else ""
        ),
        tolerance=BENCH.params_tolerance,
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
        models=shlex.quote(
            json.dumps(
                {
                    m: {
                        "source": STUDY.model(m).source,
                        "params_b": STUDY.model(m).params_b,
                        "tokens_t": STUDY.model(m).tokens_t,
                    }
                    for m in ALL_MODELS
                }
            )
        ),
        tasks=shlex.quote(json.dumps(BENCH_TASKS)),
        run_tasks=shlex.quote(json.dumps(BENCH_RUN)),
        aggregates=shlex.quote(json.dumps(BENCH.aggregates)),
        published=shlex.quote(json.dumps(BENCH_PUBLISHED) if BENCH_PUBLISHED else ""),
        presence=shlex.quote(BENCH_PRESENCE[0] if BENCH_PRESENCE else ""),
        domains=shlex.quote(json.dumps(BENCH_PRESENCE_DOMAINS)),
    shell:
        "python workflow/scripts/features_table.py --models {params.models}"
        " --tasks {params.tasks} --run-tasks {params.run_tasks}"
        " --aggregates {params.aggregates} --published {params.published}"
        " --presence {params.presence} --presence-domains {params.domains}"
        " --runs-dir results/benchmarks --out {output.features}"
        " --out-sources {output.sources} --out-published {output.published} > {log} 2>&1"


rule screening_agreement:
    input:
        small=expand(
            "{d}/{model}/{task}.json",
            d=bench_dir("small"),
            model=SCREEN_MODELS,
            task=SCREEN_TASKS,
        ),
        full=expand(
            "{d}/{model}/{task}.json",
            d=bench_dir("full"),
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
        models=shlex.quote(json.dumps(SCREEN_MODELS)),
        tasks=shlex.quote(json.dumps(SCREEN_TASKS)),
        small=bench_dir("small"),
        full=bench_dir("full"),
    shell:
        "python workflow/scripts/bench_agreement.py --models {params.models}"
        " --tasks {params.tasks} --small-dir {params.small} --full-dir {params.full}"
        " --out {output} > {log} 2>&1"
