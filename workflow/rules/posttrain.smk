# Stage: posttrain -- SFT / DPO variants of models (config posttrain.variants, recipes in
# posttrain.recipes) and the lineage study (Table 1 of the paper as a table and a figure).
#
#   results/variants/{model}/model/            HF causal-LM dir of a produced variant
#   results/variants/{model}/train.json        recipe, parent, steps, loss history, wall s
#   results/analysis/posttraining.csv          RM score change per lineage vs its root model
#   results/figures/posttraining.png|pdf
#
# A variant is a model of the effective model table (source variant:<stage>), so the RM,
# eval, benchmarks and presence stages treat it like any other model. Logic:
# workflow/rmselect/posttrain/; flags and inputs: rmselect.dag.posttrain.
import rmselect.dag.posttrain as dag_posttrain

try:
    POSTTRAIN_RECIPES = dag_posttrain.variant_recipes(STUDY)
except ConfigError as err:
    sys.stderr.write(f"rmselect: configuration error: {err}\n")
    sys.exit(1)

POSTTRAIN_VARIANTS = list(POSTTRAIN_RECIPES)
POSTTRAIN_VARIANT_FILES = expand(
    "results/variants/{model}/{file}",
    model=POSTTRAIN_VARIANTS,
    file=["model/config.json", "model/model.safetensors", "train.json"],
)
POSTTRAIN_LINEAGE = (
    [
        "results/analysis/posttraining.csv",
        "results/figures/posttraining.png",
        "results/figures/posttraining.pdf",
    ]
    if dag_posttrain.has_lineage(STUDY)
    else []
)
# The stage's outputs (the lineage table needs results/tables/rm_scores.csv from eval).
POSTTRAIN_TARGETS = POSTTRAIN_VARIANT_FILES + POSTTRAIN_LINEAGE


rule posttrain:
    input:
        POSTTRAIN_VARIANT_FILES,


rule posttraining:
    input:
        POSTTRAIN_LINEAGE,


rule posttrain_variant:
    input:
        parent=lambda wc: model_files(STUDY.model(wc.model).parent),
        data=lambda wc: dag_posttrain.recipe_files(POSTTRAIN_RECIPES[wc.model]),
    output:
        config="results/variants/{model}/model/config.json",
        weights="results/variants/{model}/model/model.safetensors",
        train="results/variants/{model}/train.json",
    log:
        f"{LOGS}/posttrain_variant/{{model}}.log",
    benchmark:
        f"{COST}/posttrain_variant/{{model}}.tsv"
    wildcard_constraints:
        model=name_regex(POSTTRAIN_VARIANTS),
    conda:
        "../../envs/posttrain.yaml"
    resources:
        **res_all("posttrain"),
    params:
        code=code_hash("workflow/scripts/posttrain_train.py"),
        launch=lambda wc: launcher(res("posttrain", "gpu")(wc), config=config),
        zero=lambda wc: res("posttrain", "zero")(wc) or 0,
        flags=lambda wc: dag_posttrain.train_flags(
            STUDY, wc.model, POSTTRAIN_RECIPES[wc.model]
        ),
        out=lambda wc, output: str(Path(output.config).parent),
    shell:
        "OMP_NUM_THREADS=1 {params.launch} workflow/scripts/posttrain_train.py {params.flags}"
        " --zero-stage {params.zero} --out-dir {params.out} --train-json {output.train}"
        " > {log} 2>&1"


rule posttrain_lineage:
    input:
        rm_scores="results/tables/rm_scores.csv",
    output:
        table="results/analysis/posttraining.csv",
        png="results/figures/posttraining.png",
        pdf="results/figures/posttraining.pdf",
    log:
        f"{LOGS}/posttrain_lineage/posttraining.log",
    benchmark:
        f"{COST}/posttrain_lineage/posttraining.tsv"
    conda:
        "../../envs/posttrain.yaml"
    resources:
        mem_mb=res("analysis", "mem_mb"),
        runtime=res("analysis", "runtime"),
    params:
        code=code_hash("workflow/scripts/lineage_table.py"),
        models=dag_posttrain.lineage_models_arg(STUDY),
        stem=lambda wc, output: str(Path(output.png).with_suffix("")),
    shell:
        "python workflow/scripts/lineage_table.py --rm-scores {input.rm_scores}"
        " --models {params.models} --out {output.table} --figure {params.stem} > {log} 2>&1"
