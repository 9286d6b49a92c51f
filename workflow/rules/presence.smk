# Stage: presence -- presence scores of every model on domain corpora (PAPER.md section 6),
# their distributions and pairwise Jensen-Shannon distances.
#
#   {corpus_dir}/{domain}/part-NNNNN.parquet    doc_id, text: sampled once, on CPU
#   {corpus_dir}/{domain}/manifest.json         source, filter, seed, counts
#   results/presence/{model}/shards/{domain}/part-NNNNN.parquet|json   one GPU job per shard
#   results/presence/{model}/{domain}.parquet   doc_id, n_tokens, score (+ {domain}.json)
#   results/presence/{model}/presence.json      provenance (scored_by, reused_from, settings)
#   results/presence/summary.csv                model, domain, mean, std, n_docs, scored_by
#   results/presence/histograms.csv             shared-bin histograms per domain
#   results/presence/jsd.csv                    model_a, model_b, domain, js_distance (+ mean)
#   results/presence/precision.csv              per domain: spread, half-widths, n needed
#   results/figures/presence_distributions.png|pdf, results/figures/presence_jsd.png|pdf
#
# Logic: workflow/rmselect/presence/; settings, flags and inputs: rmselect.dag.presence.
from functools import partial

import rmselect.dag.presence as dag_presence

try:
    PRESENCE = dag_presence.settings(STUDY)
except ConfigError as err:
    sys.stderr.write(f"rmselect: configuration error: {err}\n")
    sys.exit(1)

PRESENCE_DOMAINS = list(PRESENCE["domains"])
PRESENCE_MODELS = (
    dag_presence.presence_models(STUDY, PRESENCE) if PRESENCE_DOMAINS else []
)
PRESENCE_PLAN = dag_presence.plan(STUDY, PRESENCE)
PRESENCE_SCORED = [m for m in PRESENCE_MODELS if PRESENCE_PLAN[m] == m]
PRESENCE_PER_MODEL = PRESENCE["jobs"] == "per_model"
PRESENCE_REUSED = [m for m in PRESENCE_MODELS if PRESENCE_PLAN[m] != m]
PRESENCE_CORPUS = dag_presence.corpus_dir(PRESENCE)
PRESENCE_SHARDS = dag_presence.shard_ids(PRESENCE)
PRESENCE_FILES = expand(
    "results/presence/{model}/{domain}.parquet",
    model=PRESENCE_MODELS,
    domain=PRESENCE_DOMAINS,
)
PRESENCE_TABLES = [
    "results/presence/summary.csv",
    "results/presence/histograms.csv",
    "results/presence/jsd.csv",
    "results/presence/precision.csv",
]
PRESENCE_FIGURES = expand(
    "results/figures/presence_{fig}.{ext}",
    fig=["distributions", "jsd"],
    ext=["png", "pdf"],
)

# A resource of presence jobs: res("presence", key) that also sizes reference models.
presence_res = partial(dag_presence.resource, STUDY, PRESENCE, CLUSTER)


# The stage's outputs (empty when presence.domains is empty).
PRESENCE_TARGETS = (
    PRESENCE_FILES + PRESENCE_TABLES + PRESENCE_FIGURES if PRESENCE_MODELS else []
)


rule presence:
    input:
        PRESENCE_TARGETS,


rule presence_sample:
    input:
        lambda wc: dag_presence.domain_files(PRESENCE, wc.domain),
    output:
        shards=dag_presence.corpus_shards(PRESENCE, "{domain}"),
        manifest=f"{PRESENCE_CORPUS}/{{domain}}/manifest.json",
    log:
        f"{LOGS}/presence_sample/{{domain}}.log",
    benchmark:
        f"{COST}/presence_sample/{{domain}}.tsv"
    wildcard_constraints:
        domain=name_regex(PRESENCE_DOMAINS),
    conda:
        "../../envs/presence.yaml"
    threads: lambda wc: dag_presence.sample_workers(PRESENCE, wc.domain)
    resources:
        mem_mb=lambda wc, attempt: dag_presence.sample_mem_mb(
            PRESENCE, wc.domain, res("analysis", "mem_mb")(wc, attempt)
        ),
        runtime=lambda wc: dag_presence.sample_runtime(STUDY, PRESENCE, wc.domain),
    params:
        code=code_hash("workflow/scripts/presence_sample.py"),
        flags=lambda wc: dag_presence.sample_flags(PRESENCE, wc.domain),
        out=lambda wc, output: str(Path(output.manifest).parent),
    shell:
        "python workflow/scripts/presence_sample.py {params.flags} --workers {threads}"
        " --out-dir {params.out} > {log} 2>&1"


rule presence_score:
    input:
        model=lambda wc: dag_presence.model_files(STUDY, PRESENCE, wc.model),
        corpus=f"{PRESENCE_CORPUS}/{{domain}}/part-{{shard}}.parquet",
    output:
        scores="results/presence/{model}/shards/{domain}/part-{shard}.parquet",
        meta="results/presence/{model}/shards/{domain}/part-{shard}.json",
    log:
        f"{LOGS}/presence_score/{{model}}/{{domain}}/{{shard}}.log",
    benchmark:
        f"{COST}/presence_score/{{model}}/{{domain}}/{{shard}}.tsv"
    wildcard_constraints:
        model=name_regex([] if PRESENCE_PER_MODEL else PRESENCE_SCORED),
        domain=name_regex(PRESENCE_DOMAINS),
        shard=r"\d{5}",
    conda:
        "../../envs/presence.yaml"
    resources:
        **res_extra("presence", presence_res),
        gpu=presence_res("gpu"),
        mem_mb=presence_res("mem_mb"),
        runtime=presence_res("runtime"),
    params:
        code=code_hash("workflow/scripts/presence_score.py"),
        slot=GPU_SLOT,
        env=lambda wc: dag_presence.offline_env(STUDY, PRESENCE, wc.model),
        flags=lambda wc: dag_presence.score_flags(STUDY, PRESENCE, wc.model),
        shards=lambda wc, input, output: dag_presence.shard_args(
            input.corpus, output.scores, output.meta
        ),
    shell:
        "{params.env} OMP_NUM_THREADS=1 {params.slot} {resources.gpu} --"
        " python workflow/scripts/presence_score.py {params.flags} {params.shards}"
        " > {log} 2>&1"


# presence.jobs: per_model -- the same shard files, one job per model (CPU studies).
use rule presence_score as presence_score_model with:
    input:
        model=lambda wc: dag_presence.model_files(STUDY, PRESENCE, wc.model),
        corpus=dag_presence.all_shards(PRESENCE, PRESENCE_CORPUS),
    output:
        scores=dag_presence.all_shards(PRESENCE, "results/presence/{model}/shards"),
        meta=dag_presence.all_shards(
            PRESENCE, "results/presence/{model}/shards", "json"
        ),
    log:
        f"{LOGS}/presence_score/{{model}}.log",
    benchmark:
        f"{COST}/presence_score/{{model}}.tsv"
    wildcard_constraints:
        model=name_regex(PRESENCE_SCORED if PRESENCE_PER_MODEL else []),


rule presence_aggregate:
    input:
        expand(
            "results/presence/{{model}}/shards/{{domain}}/part-{shard}.{ext}",
            shard=PRESENCE_SHARDS,
            ext=["parquet", "json"],
        ),
    output:
        scores="results/presence/{model}/{domain}.parquet",
        meta="results/presence/{model}/{domain}.json",
    log:
        f"{LOGS}/presence_aggregate/{{model}}/{{domain}}.log",
    wildcard_constraints:
        model=name_regex(PRESENCE_SCORED),
        domain=name_regex(PRESENCE_DOMAINS),
    conda:
        "../../envs/presence.yaml"
    resources:
        mem_mb=presence_res("mem_mb", kind="analysis"),
        runtime=presence_res("runtime", kind="analysis"),
    params:
        code=code_hash("workflow/scripts/presence_aggregate.py"),
        shards=lambda wc, input: [f for f in input if f.endswith(".parquet")],
    shell:
        "python workflow/scripts/presence_aggregate.py --name {wildcards.model}"
        " --domain {wildcards.domain} --shards {params.shards} --out {output.scores}"
        " --meta {output.meta} > {log} 2>&1"


rule presence_provenance:
    input:
        expand("results/presence/{{model}}/{domain}.json", domain=PRESENCE_DOMAINS),
    output:
        "results/presence/{model}/presence.json",
    log:
        f"{LOGS}/presence_provenance/{{model}}.log",
    wildcard_constraints:
        model=name_regex(PRESENCE_SCORED),
    conda:
        "../../envs/presence.yaml"
    params:
        code=code_hash("workflow/scripts/presence_provenance.py"),
        dir=lambda wc, output: str(Path(output[0]).parent),
        domains=PRESENCE_DOMAINS,
    shell:
        "python workflow/scripts/presence_provenance.py --name {wildcards.model}"
        " --domains {params.domains} --presence-dir {params.dir} --out {output}"
        " > {log} 2>&1"


rule presence_reuse:
    input:
        scores=lambda wc: expand(
            "results/presence/{model}/{domain}.parquet",
            model=PRESENCE_PLAN[wc.model],
            domain=PRESENCE_DOMAINS,
        ),
        provenance=lambda wc: f"results/presence/{PRESENCE_PLAN[wc.model]}/presence.json",
    output:
        scores=expand(
            "results/presence/{{model}}/{domain}.parquet", domain=PRESENCE_DOMAINS
        ),
        provenance="results/presence/{model}/presence.json",
    log:
        f"{LOGS}/presence_reuse/{{model}}.log",
    wildcard_constraints:
        model=name_regex(PRESENCE_REUSED),
    conda:
        "../../envs/presence.yaml"
    params:
        code=code_hash("workflow/scripts/presence_reuse.py"),
        src=lambda wc, input: str(Path(input.provenance).parent),
        out=lambda wc, output: str(Path(output.provenance).parent),
        domains=PRESENCE_DOMAINS,
    shell:
        "python workflow/scripts/presence_reuse.py --name {wildcards.model}"
        " --from-dir {params.src} --out-dir {params.out} --domains {params.domains}"
        " > {log} 2>&1"


rule presence_distributions:
    input:
        scores=PRESENCE_FILES,
        corpora=expand(
            f"{PRESENCE_CORPUS}/{{domain}}/manifest.json", domain=PRESENCE_DOMAINS
        ),
        provenance=expand(
            "results/presence/{model}/presence.json", model=PRESENCE_MODELS
        ),
    output:
        summary="results/presence/summary.csv",
        histograms="results/presence/histograms.csv",
        jsd="results/presence/jsd.csv",
        precision="results/presence/precision.csv",
        figures=PRESENCE_FIGURES,
    log:
        f"{LOGS}/presence_distributions/presence.log",
    benchmark:
        f"{COST}/presence_distributions/presence.tsv"
    conda:
        "../../envs/presence.yaml"
    resources:
        **{k: res("analysis", k) for k in ("mem_mb", "runtime")},
    params:
        code=code_hash("workflow/scripts/presence_distributions.py"),
        flags=f"--models {shell_words(PRESENCE_MODELS)}"
        f" --domains {shell_words(PRESENCE_DOMAINS)} --bins {PRESENCE['bins']}"
        f" --corpus-dir {PRESENCE_CORPUS} --estimator {PRESENCE['estimator']}",
        dir=lambda wc, input: str(Path(input.provenance[0]).parent.parent),
        fig_dist=lambda wc, output: str(Path(output.figures[0]).with_suffix("")),
        fig_jsd=lambda wc, output: str(Path(output.figures[2]).with_suffix("")),
    shell:
        "python workflow/scripts/presence_distributions.py --presence-dir {params.dir}"
        " {params.flags} --summary {output.summary} --histograms {output.histograms} --jsd {output.jsd}"
        " --precision {output.precision}"
        " --fig-distributions {params.fig_dist} --fig-jsd {params.fig_jsd} > {log} 2>&1"
