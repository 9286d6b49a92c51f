# Target: plan -- what the study costs before anything runs (rmselect.plan.projection).
#
#   snakemake plan [--configfile config/paper.yaml]
#
# Prints PFLOPs and GPU-hours per stage for every GPU profile (A6000, A100, H100, H200 and
# any in plan.profiles) and writes results/plan/cost_projection.csv (per stage and model,
# assumptions included); for GPU studies also whether every job fits its machine (GPU and
# host memory, time, disk: rmselect.plan.feasibility) in results/plan/feasibility.csv.
# The rule reads the config and local data files only: it depends on no other rule's
# outputs, declares no output (so it runs, in seconds, every time it is asked for) and is
# not part of `all`. The post-run comparison is analysis_cost's.
PLAN_CSV = "results/plan/cost_projection.csv"
FEASIBILITY_CSV = "results/plan/feasibility.csv"


rule plan:
    log:
        f"{LOGS}/plan/plan.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        script=f"{ASCRIPT}/plan_cost.py",
        code=code_hash(f"{CODE}/plan_cost.py"),
        config=shell_json(STUDY.config),
        source=_config_source(),
        out=PLAN_CSV,
        feasibility=FEASIBILITY_CSV,
    shell:
        "python {params.script} --config {params.config} --source {params.source}"
        " --out {params.out} --feasibility {params.feasibility} --log {log}"
