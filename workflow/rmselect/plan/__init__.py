"""What a study costs before it runs: FLOPs and GPU-hours per stage and model (``plan``).

:mod:`rmselect.plan.projection` counts the work a configuration asks for; the rule ``plan``
(workflow/rules/plan.smk) prints it and writes ``results/plan/cost_projection.csv``.
:mod:`rmselect.plan.cost_model` holds the GPU profiles and the FLOP/time arithmetic,
:mod:`rmselect.plan.sizes` the data sizes and step counts, :mod:`rmselect.plan.stages` the
per-stage counting.
"""
