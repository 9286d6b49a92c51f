# rmselect: which base LLM makes the best reward model, and can we know before training it?
#
#   snakemake --cores 2                                  # the embedded toy study (CPU)
#   snakemake --profile slurm --configfile config/paper.yaml   # the 42-model paper study
#
# Stage targets: toy, models, rm, eval, probe, benchmarks, posttrain, presence, analysis,
# report_inputs. Cost before running: snakemake plan (prints GPU-hours;
# results/plan/cost_projection.csv).
from snakemake.utils import min_version

min_version("9.0")


# The embedded default, unless --configfile names another study (configs are not merged:
# a study config is complete on its own).
if not config:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/toy.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/posttrain.smk"
include: "workflow/rules/rm.smk"
include: "workflow/rules/eval.smk"
include: "workflow/rules/probe.smk"
include: "workflow/rules/benchmarks.smk"
include: "workflow/rules/presence.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/plan.smk"


rule all:
    default_target: True
    input:
        TOY_TARGETS,
        MODEL_TARGETS,
        POSTTRAIN_TARGETS,
        RM_TARGETS,
        EVAL_TARGETS,
        BENCHMARK_TARGETS,
        PRESENCE_TARGETS,
        PROBE_TARGETS,
        ANALYSIS_TARGETS,
