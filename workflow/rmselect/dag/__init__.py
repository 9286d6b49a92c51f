"""What the rule files (``workflow/rules/*.smk``) compute while Snakemake builds the DAG.

One module per stage (``dag.bench``, ``dag.posttrain``, ``dag.presence``, ``dag.probe``,
``dag.analysis``) builds that stage's command-line flags, inputs and settings from the
validated :class:`rmselect.config.Study`; :mod:`rmselect.dag.common` holds what several stages
share (shell quoting, wildcard regexes, model files and flags, the launcher). Kept out of the
``.smk`` files so that it is typed and unit-tested, and light on purpose: Snakemake imports it
in every call (the run, ``-n``, ``--report``, each SLURM job), so no torch, transformers,
lm_eval or network here (``tests/test_workflow_imports.py``).
"""
