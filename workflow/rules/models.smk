# Stage: model sources -- checkpoints that need converting before any stage can load them.
#
#   results/models/{model}/    a GGUF row (source ending in .gguf) dequantized once into a
#                              safetensors HF folder with its tokenizer and chat template
#                              (rule gguf_convert; rmselect.gguf). Every later stage uses
#                              this folder as the model path (Study.model_path).

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
