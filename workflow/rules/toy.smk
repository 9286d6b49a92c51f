# Stage: toy -- the embedded toy zoo: a synthetic world, its corpus, a BPE tokenizer, tiny
# pre-trained models (one job per toy row of the model table) and data in the real schemas.
# Everything follows from `toy.seed` (same seed -> byte-identical files, except the wall
# times in pretrain.json and build.json). Logic: workflow/rmselect/toy/.
import json

from rmselect.toy.build import toy_settings
from rmselect.toy.data import DATA_FILES, DOMAINS
from rmselect.toy.spec import MODEL_FILES

try:
    TOY = toy_settings(STUDY.config)
except ConfigError as err:
    sys.stderr.write(f"rmselect: configuration error: {err}\n")
    sys.exit(1)

TOY_MODELS = STUDY.toy_models()
TOY_MODEL_RE = name_regex(TOY_MODELS)
TOY_DATA = expand("results/toy/data/{name}.jsonl", name=DATA_FILES)
TOY_DOMAINS = expand("results/toy/domains/{domain}.jsonl", domain=DOMAINS)
TOY_MODEL_DIRS = expand(
    "results/toy/models/{model}/{file}", model=TOY_MODELS, file=MODEL_FILES
)
# The zoo's outputs (empty for studies without toy models, e.g. config/paper.yaml).
TOY_TARGETS = (
    ["results/toy/build.json", "results/toy/tasks"]
    + TOY_DATA
    + TOY_DOMAINS
    + TOY_MODEL_DIRS
    if TOY_MODELS
    else []
)


rule toy:
    input:
        TOY_TARGETS,


rule toy_world:
    output:
        world="results/toy/world.json",
        train="results/toy/corpus/train.txt",
        heldout="results/toy/corpus/heldout.txt",
    log:
        f"{LOGS}/toy_world/world.log",
    benchmark:
        f"{COST}/toy_world/world.tsv"
    conda:
        "../../envs/toy.yaml"
    params:
        code=code_hash("workflow/scripts/toy_world.py"),
        seed=TOY["seed"],
        world=TOY["world"],
        corpus=TOY["corpus"],
    shell:
        "python workflow/scripts/toy_world.py --seed {params.seed}"
        " --countries {params.world[countries]} --people {params.world[people]}"
        " --things {params.world[things]} --train-docs {params.corpus[train_docs]}"
        " --heldout-docs {params.corpus[heldout_docs]}"
        " --world {output.world} --train {output.train} --heldout {output.heldout}"
        " > {log} 2>&1"


rule toy_tokenizer:
    input:
        train="results/toy/corpus/train.txt",
    output:
        directory("results/toy/tokenizer"),
    log:
        f"{LOGS}/toy_tokenizer/tokenizer.log",
    benchmark:
        f"{COST}/toy_tokenizer/tokenizer.tsv"
    conda:
        "../../envs/toy.yaml"
    params:
        code=code_hash("workflow/scripts/toy_tokenizer.py"),
        vocab_size=TOY["tokenizer"]["vocab_size"],
    shell:
        "python workflow/scripts/toy_tokenizer.py --train {input.train}"
        " --vocab-size {params.vocab_size} --out {output} > {log} 2>&1"


rule toy_pretrain:
    input:
        tokenizer="results/toy/tokenizer",
        train="results/toy/corpus/train.txt",
        heldout="results/toy/corpus/heldout.txt",
    output:
        expand("results/toy/models/{{model}}/{file}", file=MODEL_FILES),
    log:
        f"{LOGS}/toy_pretrain/{{model}}.log",
    benchmark:
        f"{COST}/toy_pretrain/{{model}}.tsv"
    wildcard_constraints:
        model=TOY_MODEL_RE,
    conda:
        "../../envs/toy.yaml"
    threads: 1
    params:
        code=code_hash("workflow/scripts/toy_pretrain.py"),
        spec=lambda wc: STUDY.model(wc.model).source,
        seed=TOY["seed"],
        out=lambda wc: f"results/toy/models/{wc.model}",
    shell:
        "python workflow/scripts/toy_pretrain.py --model {wildcards.model}"
        " --spec '{params.spec}' --tokenizer {input.tokenizer} --train {input.train}"
        " --heldout {input.heldout} --seed {params.seed} --out {params.out} > {log} 2>&1"


rule toy_data:
    input:
        world="results/toy/world.json",
    output:
        TOY_DATA,
        TOY_DOMAINS,
        tasks=directory("results/toy/tasks"),
    log:
        f"{LOGS}/toy_data/data.log",
    benchmark:
        f"{COST}/toy_data/data.tsv"
    conda:
        "../../envs/toy.yaml"
    params:
        code=code_hash("workflow/scripts/toy_data.py"),
        seed=TOY["seed"],
        sizes=json.dumps(TOY["data"], sort_keys=True),
    shell:
        "python workflow/scripts/toy_data.py --world {input.world} --seed {params.seed}"
        " --sizes '{params.sizes}' --data-dir results/toy/data"
        " --tasks-dir {output.tasks} --domains-dir results/toy/domains > {log} 2>&1"


# Diagnostic, not part of `all`: `snakemake --cores 2 results/analysis/toy_probe.csv` says, per toy
# base model and in seconds, whether it knows the facts and whether a linear reward head
# could read a judgment at the reward token (rmselect.toy.probe); recall is the benchmark
# stage's toy_facts result.
rule toy_probe:
    input:
        models=TOY_MODEL_DIRS,
        preference="results/toy/data/helpsteer2_preference.jsonl",
        recall=expand("results/benchmarks/{model}/toy_facts.json", model=TOY_MODELS),
    output:
        "results/analysis/toy_probe.csv",
    log:
        f"{LOGS}/toy_probe/probe.log",
    benchmark:
        f"{COST}/toy_probe/probe.tsv"
    conda:
        "../../envs/toy.yaml"
    params:
        code=code_hash("workflow/scripts/toy_probe.py"),
        models=" ".join(f"{m}=results/toy/models/{m}" for m in TOY_MODELS),
    shell:
        "python workflow/scripts/toy_probe.py --models {params.models}"
        " --preference {input.preference} --recall-dir results/benchmarks"
        " --out {output} > {log} 2>&1"


rule toy_build_info:
    input:
        "results/toy/world.json",
        "results/toy/tokenizer",
        "results/toy/tasks",
        TOY_DATA,
        TOY_DOMAINS,
        TOY_MODEL_DIRS,
    output:
        "results/toy/build.json",
    log:
        f"{LOGS}/toy_build_info/build.log",
    conda:
        "../../envs/toy.yaml"
    params:
        code=code_hash("workflow/scripts/toy_build_info.py"),
        settings=json.dumps(TOY, sort_keys=True),
        benchmarks=[
            f"{COST}/toy_world/world.tsv",
            f"{COST}/toy_tokenizer/tokenizer.tsv",
        ]
        + [f"{COST}/toy_data/data.tsv"]
        + [f"{COST}/toy_pretrain/{m}.tsv" for m in TOY_MODELS],
    shell:
        "python workflow/scripts/toy_build_info.py --root results/toy"
        " --settings '{params.settings}' --out {output} {params.benchmarks} > {log} 2>&1"
