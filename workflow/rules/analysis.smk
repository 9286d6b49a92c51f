# Stage: analysis (paper §3-§7): gains, correlations, coverage, selection model, PCA,
# BT vs regression, tables, leaderboard figure, cost table, recommender, report.
# Logic: workflow/rmselect/analysis/; settings and defaults: rmselect.analysis.settings; DAG
# helpers: rmselect.dag.analysis. Figure scripts get the PNG path and write the PDF beside it
# (rmselect.plotting.save).
import os

from rmselect.analysis.models import study_rows
from rmselect.analysis.settings import analysis_settings
from rmselect.dag.analysis import (
    analysis_flags,
    companion,
    figure,
    figures,
    gpu_allocation,
    paper_tables,
    producible,
    selection_figure,
    table,
    upstream_targets,
)

A = analysis_settings(STUDY.config)
AN = "results/analysis"
FIG = "results/figures"
ANALYSIS_ENV = "../../envs/analysis.yaml"
# Relative to the working directory (workflow/scripts in the checkout; a path into the
# checkout with --directory elsewhere, as the import-only test runs): moving the checkout
# changes no params. Code hashes name the scripts relative to the repository.
ASCRIPT = os.path.relpath(SCRIPTS)
CODE = "workflow/scripts"
RM_SCORES = A["rm_scores"]
# Per-seed RM scores for the seed intervals (none for imported scores).
RM_SEED_TABLE = (
    [A["rm_seeds"]]
    if companion(
        A["rm_seeds"],
        RM_SCORES,
        workflow.rules,
        "rm_seeds" in (STUDY.config.get("analysis") or {}),
    )
    else []
)
SEED_ARGS = (
    f"--rm-seeds {shell_word(A['rm_seeds'])} --seed-draws {A['seed_draws']}"
    if RM_SEED_TABLE
    else ""
)
FEATURES = A["features"]
COV_FILTERS = [f["name"] for f in A["coverage"]["filters"]]
ANALYSIS_RESOURCES = {k: res("analysis", k) for k in ("mem_mb", "runtime")}
# The flags (rmselect.dag.analysis.analysis_flags) several analysis scripts share.
COMMON_FLAGS = ("benchmark", "missing")
SELECTION_FLAGS = (*COMMON_FLAGS, "k", "compare-k", "selection")
RECOMMEND_FLAGS = ("level", "top-features", "score-range")
SELECTION_PDFS = (
    "coefficients.pdf",
    "coverage.pdf",
    "vs_filtered.pdf",
    "in_sample.pdf",
)
# Table 1 needs the post-training stage's table; without one (no lineage) it is skipped.
POSTTRAINING = (
    A["posttraining"] if producible(A["posttraining"], workflow.rules) else None
)


report: "../report/workflow.rst"


rule analysis_models:
    output:
        f"{AN}/models.csv",
    log:
        f"{LOGS}/analysis_models/all.log",
    conda:
        ANALYSIS_ENV
    params:
        script=f"{ASCRIPT}/analysis_models.py",
        code=code_hash(f"{CODE}/analysis_models.py"),
        models=shell_json(study_rows(STUDY)),
    shell:
        "python {params.script} --models-json {params.models} --out {output} > {log} 2>&1"


rule analysis_gains:
    input:
        rm=RM_SCORES,
        models=f"{AN}/models.csv",
    output:
        csv=table(f"{AN}/gains_vs_default.csv", "gains_table"),
        png=figure("gains_vs_default", "Base model matters", "gains"),
        pdf=f"{FIG}/gains_vs_default.pdf",
    log:
        f"{LOGS}/analysis_gains/all.log",
    benchmark:
        f"{COST}/analysis_gains/all.tsv"
    conda:
        ANALYSIS_ENV
    resources:
        **ANALYSIS_RESOURCES,
    params:
        script=f"{ASCRIPT}/analysis_gains.py",
        code=code_hash(f"{CODE}/analysis_gains.py"),
        flags=analysis_flags(A, "benchmark"),
    shell:
        "python {params.script} --rm-scores {input.rm} --models {input.models}"
        " {params.flags} --out {output.csv} --figure {output.png} > {log} 2>&1"


rule analysis_correlations:
    input:
        rm=RM_SCORES,
        rm_seeds=RM_SEED_TABLE,
        features=FEATURES,
        models=f"{AN}/models.csv",
    output:
        csv=table(f"{AN}/correlations.csv", "correlations_table"),
        png=figure("correlations", "Predicting RM quality"),
        pdf=f"{FIG}/correlations.pdf",
    log:
        f"{LOGS}/analysis_correlations/all.log",
    benchmark:
        f"{COST}/analysis_correlations/all.tsv"
    conda:
        ANALYSIS_ENV
    resources:
        **ANALYSIS_RESOURCES,
    params:
        script=f"{ASCRIPT}/analysis_correlations.py",
        code=code_hash(f"{CODE}/analysis_correlations.py"),
        flags=analysis_flags(A, *COMMON_FLAGS, "bootstrap", "ci", "alpha", "seed"),
        seeds=SEED_ARGS,
    shell:
        "python {params.script} --rm-scores {input.rm} --features {input.features}"
        " --models {input.models} {params.flags} {params.seeds} --out {output.csv}"
        " --figure {output.png} > {log} 2>&1"


rule analysis_coverage:
    input:
        rm=RM_SCORES,
        rm_seeds=RM_SEED_TABLE,
        features=FEATURES,
        models=f"{AN}/models.csv",
    output:
        csv=f"{AN}/coverage.csv",
        png=figures(
            expand(f"{FIG}/coverage_{{name}}.png", name=COV_FILTERS),
            "Predicting RM quality",
            "coverage",
        ),
        pdf=expand(f"{FIG}/coverage_{{name}}.pdf", name=COV_FILTERS),
    log:
        f"{LOGS}/analysis_coverage/all.log",
    benchmark:
        f"{COST}/analysis_coverage/all.tsv"
    conda:
        ANALYSIS_ENV
    resources:
        **ANALYSIS_RESOURCES,
    params:
        script=f"{ASCRIPT}/analysis_coverage.py",
        code=code_hash(f"{CODE}/analysis_coverage.py"),
        flags=analysis_flags(A, *COMMON_FLAGS, "k", "filters", "seed"),
        seeds=SEED_ARGS,
    shell:
        "python {params.script} --rm-scores {input.rm} --features {input.features}"
        " --models {input.models} {params.flags} {params.seeds}"
        " --out {output.csv} --figures {output.png} > {log} 2>&1"


rule analysis_selection:
    input:
        rm=RM_SCORES,
        rm_seeds=RM_SEED_TABLE,
        features=FEATURES,
        models=f"{AN}/models.csv",
        coverage=f"{AN}/coverage.csv",
    output:
        json=table(f"{AN}/selection_model.json", "selection_model"),
        csv=table(f"{AN}/selection_coverage.csv", "selection_table"),
        coef=selection_figure("selection_coefficients"),
        cov=selection_figure("selection_coverage"),
        vs=selection_figure("selection_vs_filtered"),
        ins=selection_figure("selection_in_sample"),
        pdf=multiext(f"{FIG}/selection_", *SELECTION_PDFS),
    log:
        f"{LOGS}/analysis_selection/all.log",
    benchmark:
        f"{COST}/analysis_selection/all.tsv"
    conda:
        ANALYSIS_ENV
    threads: A["selection"]["n_jobs"]
    resources:
        **ANALYSIS_RESOURCES,
    params:
        script=f"{ASCRIPT}/analysis_selection.py",
        code=code_hash(f"{CODE}/analysis_selection.py"),
        flags=analysis_flags(A, *SELECTION_FLAGS, "appendix-filter"),
        seeds=SEED_ARGS,
    shell:
        "python {params.script} --rm-scores {input.rm} --features {input.features}"
        " --models {input.models} --coverage {input.coverage} {params.flags} {params.seeds}"
        " --n-jobs {threads} --out-json {output.json} --out-coverage {output.csv}"
        " --figures {output.coef} {output.cov} {output.vs} {output.ins} > {log} 2>&1"


rule analysis_pca:
    input:
        rm=RM_SCORES,
        features=FEATURES,
        models=f"{AN}/models.csv",
    output:
        var=f"{AN}/pca_variance.csv",
        load=f"{AN}/pca_loadings.csv",
        var_png=figure("pca_variance", "Feature structure"),
        load_png=figure("pca_loadings", "Feature structure"),
        pdf=multiext(f"{FIG}/pca_", "variance.pdf", "loadings.pdf"),
    log:
        f"{LOGS}/analysis_pca/all.log",
    benchmark:
        f"{COST}/analysis_pca/all.tsv"
    conda:
        ANALYSIS_ENV
    resources:
        **ANALYSIS_RESOURCES,
    params:
        script=f"{ASCRIPT}/analysis_pca.py",
        code=code_hash(f"{CODE}/analysis_pca.py"),
        flags=analysis_flags(A, *COMMON_FLAGS, "components"),
    shell:
        "python {params.script} --rm-scores {input.rm} --features {input.features}"
        " --models {input.models} {params.flags} --out-variance {output.var}"
        " --out-loadings {output.load} --figures {output.var_png} {output.load_png}"
        " > {log} 2>&1"


rule analysis_bt_vs_regression:
    input:
        rm=RM_SCORES,
        models=f"{AN}/models.csv",
    output:
        csv=f"{AN}/bt_vs_regression.csv",
        png=figure("bt_vs_regression", "Objectives and post-training"),
        pdf=f"{FIG}/bt_vs_regression.pdf",
    log:
        f"{LOGS}/analysis_bt_vs_regression/all.log",
    benchmark:
        f"{COST}/analysis_bt_vs_regression/all.tsv"
    conda:
        ANALYSIS_ENV
    params:
        script=f"{ASCRIPT}/analysis_bt_vs_regression.py",
        code=code_hash(f"{CODE}/analysis_bt_vs_regression.py"),
        flags=analysis_flags(A, "benchmark"),
    shell:
        "python {params.script} --rm-scores {input.rm} --models {input.models}"
        " {params.flags} --out {output.csv} --figure {output.png} > {log} 2>&1"


rule analysis_tables:
    input:
        rm=RM_SCORES,
        models=f"{AN}/models.csv",
    output:
        csv=table(multiext(f"{AN}/tables/table", *paper_tables(".csv")), "tables"),
        tex=multiext(f"{AN}/tables/table", *paper_tables(".tex")),
    log:
        f"{LOGS}/analysis_tables/all.log",
    conda:
        ANALYSIS_ENV
    params:
        script=f"{ASCRIPT}/analysis_tables.py",
        code=code_hash(f"{CODE}/analysis_tables.py"),
        flags=analysis_flags(A, "benchmark"),
    shell:
        "python {params.script} --rm-scores {input.rm} --models {input.models}"
        " {params.flags} --csv {output.csv} --tex {output.tex} > {log} 2>&1"


# Table 1 only when the post-training table exists or a rule makes it.
if POSTTRAINING:

    rule analysis_posttrain_table:
        input:
            POSTTRAINING,
        output:
            f"{AN}/tables/table1_posttraining.tex",
        log:
            f"{LOGS}/analysis_posttrain_table/all.log",
        conda:
            ANALYSIS_ENV
        params:
            script=f"{ASCRIPT}/analysis_tables.py",
            code=code_hash(f"{CODE}/analysis_tables.py"),
            flags=analysis_flags(A, "benchmark"),
        shell:
            "python {params.script} --posttraining {input} {params.flags}"
            " --out-tex {output} > {log} 2>&1"


rule analysis_leaderboard:
    input:
        A["leaderboard_csv"] or [],
    output:
        csv=f"{AN}/leaderboard_share.csv",
        png=figure("leaderboard_families", "Base model matters", "leaderboard"),
        pdf=f"{FIG}/leaderboard_families.pdf",
    log:
        f"{LOGS}/analysis_leaderboard/all.log",
    conda:
        ANALYSIS_ENV
    params:
        script=f"{ASCRIPT}/analysis_leaderboard.py",
        code=code_hash(f"{CODE}/analysis_leaderboard.py"),
        lb=A["leaderboard_csv"] or "''",
        flags=analysis_flags(A, "top"),
    shell:
        "python {params.script} --leaderboard {params.lb} {params.flags}"
        " --out {output.csv} --figure {output.png} > {log} 2>&1"


rule recommend:
    input:
        rm=RM_SCORES,
        features=FEATURES,
        models=f"{AN}/models.csv",
        selection=f"{AN}/selection_model.json",
    output:
        table("results/recommendation.csv", "recommendation"),
    log:
        f"{LOGS}/recommend/all.log",
    benchmark:
        f"{COST}/recommend/all.tsv"
    conda:
        ANALYSIS_ENV
    resources:
        **ANALYSIS_RESOURCES,
    params:
        script=f"{ASCRIPT}/recommend.py",
        code=code_hash(f"{CODE}/recommend.py"),
        flags=analysis_flags(
            A, "candidates", *COMMON_FLAGS, "selection", *RECOMMEND_FLAGS
        ),
    shell:
        "python {params.script} --rm-scores {input.rm} --features {input.features}"
        " --models {input.models} --selection-json {input.selection} {params.flags}"
        " --n-jobs {threads} --out {output} > {log} 2>&1"


ANALYSIS_FIGURES = [
    f"{FIG}/gains_vs_default.png",
    f"{FIG}/correlations.png",
    *expand(f"{FIG}/coverage_{{name}}.png", name=COV_FILTERS),
    f"{FIG}/selection_coefficients.png",
    f"{FIG}/selection_coverage.png",
    f"{FIG}/selection_in_sample.png",
    f"{FIG}/selection_vs_filtered.png",
    f"{FIG}/pca_variance.png",
    f"{FIG}/pca_loadings.png",
    f"{FIG}/bt_vs_regression.png",
    f"{FIG}/leaderboard_families.png",
]
ANALYSIS_TABLES = [
    f"{AN}/models.csv",
    f"{AN}/gains_vs_default.csv",
    f"{AN}/correlations.csv",
    f"{AN}/coverage.csv",
    f"{AN}/selection_model.json",
    f"{AN}/selection_coverage.csv",
    f"{AN}/pca_variance.csv",
    f"{AN}/pca_loadings.csv",
    f"{AN}/bt_vs_regression.csv",
    f"{AN}/leaderboard_share.csv",
    f"{AN}/tables/table3_models.tex",
    "results/recommendation.csv",
] + ([f"{AN}/tables/table1_posttraining.tex"] if POSTTRAINING else [])


rule analysis_cost:
    input:
        ANALYSIS_FIGURES,
        ANALYSIS_TABLES,
        upstream_targets(globals(), A["cost"]["wait_for_all_stages"]),
        models=f"{AN}/models.csv",
    output:
        csv=f"{AN}/cost.csv",
        summary=report(
            f"{AN}/cost_summary.csv",
            caption="../report/cost.rst",
            category="Tables",
        ),
    log:
        f"{LOGS}/analysis_cost/all.log",
    conda:
        ANALYSIS_ENV
    params:
        script=f"{ASCRIPT}/analysis_cost.py",
        code=code_hash(f"{CODE}/analysis_cost.py"),
        cost_dir=COST,
        cost=shell_json(A["cost"]),
        gpus=shell_json(gpu_allocation(STUDY)),
        # the projected columns (rmselect.plan.projection) are computed in the job
        study=shell_json(STUDY.config),
    shell:
        "python {params.script} --cost-dir {params.cost_dir} --models {input.models}"
        " --config {params.cost} --gpus {params.gpus} --study-config {params.study}"
        " --out {output.csv}"
        " --out-summary {output.summary}"
        " > {log} 2>&1"


ANALYSIS_TARGETS = ANALYSIS_FIGURES + ANALYSIS_TABLES + [f"{AN}/cost.csv"]


rule figures:
    input:
        ANALYSIS_FIGURES,


rule analysis:
    input:
        ANALYSIS_TARGETS,
