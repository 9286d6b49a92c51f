"""What a study costs before it runs: FLOPs and GPU-hours per stage and model (``plan``).

:mod:`rmselect.plan.projection` counts the work a configuration asks for; the rule ``plan``
(workflow/rules/plan.smk) prints it and writes ``results/plan/cost_projection.csv``.
"""
