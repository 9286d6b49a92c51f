# Stage: probe -- cheap proxies of RM quality per base model, before any RM is trained:
# zero-shot preference accuracy and a linear probe on frozen last-token states, on the
# HelpSteer2-Preference pairs (rmselect.probe.score). They join the feature table.
#
#   results/probe/{model}.json    zero_shot, linear_probe, pairs, tokens, flops, wall_s
#
# Outputs: workflow/CONTRACTS.md "Probe features". Logic: workflow/rmselect/probe/; settings and
# flags: rmselect.dag.probe.
import rmselect.dag.probe as dag_probe

PROBE = dag_probe.settings(STUDY)
PROBE_FILES = (
    expand("results/probe/{model}.json", model=ALL_MODELS) if PROBE["enabled"] else []
)
# The stage's outputs (empty when probe.enabled is false).
PROBE_TARGETS = PROBE_FILES


rule probe:
    input:
        PROBE_TARGETS,


rule probe_model:
    input:
        model=model_input,
        data=dataset_files(STUDY.config["data"]["helpsteer2_preference"]),
    output:
        "results/probe/{model}.json",
    log:
        f"{LOGS}/probe_model/{{model}}.log",
    benchmark:
        f"{COST}/probe_model/{{model}}.tsv"
    conda:
        "../../envs/presence.yaml"
    resources:
        **res_all("presence", projection="probe"),
    params:
        code=code_hash("workflow/scripts/probe_model.py"),
        slot=GPU_SLOT,
        flags=lambda wc: dag_probe.probe_flags(STUDY, PROBE, wc.model),
    shell:
        "OMP_NUM_THREADS=1 {params.slot} {resources.gpu} -- python workflow/scripts/probe_model.py"
        " {params.flags} --out {output} > {log} 2>&1"
