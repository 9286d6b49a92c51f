# Stage: model sources -- checkpoints that need converting before any stage can load them.
#
#   results/models/{model}/    a GGUF row (source ending in .gguf) dequantized once into a
#                              safetensors HF folder with its tokenizer and chat template
#                              (rule gguf_convert; rmselect.gguf). Every later stage uses
#                              this folder as the model path (Study.model_path).

#   results/checks/models/{model}.json
#                              a hub or local model's config, tokenizer and weight files,
#                              checked on a CPU in seconds before its first GPU job (rule
#                              model_check; rmselect.model_check; no weights loaded).

GGUF_MODELS = STUDY.gguf_models()
GGUF_MODEL_RE = name_regex(GGUF_MODELS)
MODEL_TARGETS = expand("results/models/{model}/config.json", model=GGUF_MODELS)


rule models:
    input:
        MODEL_TARGETS,


rule gguf_convert:
    input:
        gguf=lambda wc: STUDY.model(wc.model).source,
    output:
        "results/models/{model}/config.json",
    log:
        f"{LOGS}/gguf_convert/{{model}}.log",
    benchmark:
        f"{COST}/gguf_convert/{{model}}.tsv"
    wildcard_constraints:
        model=GGUF_MODEL_RE,
    conda:
        "../../envs/models.yaml"
    threads: 1
    params:
        code=code_hash("workflow/scripts/gguf_convert.py"),
        out=lambda wc: f"results/models/{wc.model}",
    shell:
        "python workflow/scripts/gguf_convert.py --model {wildcards.model}"
        " --gguf {input.gguf} --out {params.out} > {log} 2>&1"


from rmselect.dag.common import checked_models  # noqa: E402
from rmselect.dag.common import model_files as dag_model_files  # noqa: E402

CHECKED_MODEL_RE = name_regex(checked_models(STUDY))


# seconds on a CPU: on a cluster it runs beside Snakemake, not as a SLURM job
localrules:
    model_check,


rule model_check:
    input:
        lambda wc: dag_model_files(STUDY, wc.model, check=False),
    output:
        "results/checks/models/{model}.json",
    log:
        f"{LOGS}/model_check/{{model}}.log",
    wildcard_constraints:
        model=CHECKED_MODEL_RE,
    conda:
        "../../envs/models.yaml"
    threads: 1
    params:
        code=code_hash("workflow/scripts/model_check.py"),
        flags=lambda wc: shell_words(
            ["--model", model_ref(wc.model), "--name", wc.model]
            + (
                ["--trust-remote-code"]
                if STUDY.model(wc.model).trust_remote_code
                else []
            )
        ),
    shell:
        # the one-line verdict also reaches the terminal, not only the log
        "python workflow/scripts/model_check.py {params.flags} --out {output} 2>&1"
        " | tee {log}"
