"""Upstream benchmarks of the base models and the feature table (issue 5).

Modules (import-light ones first; nothing here imports ``lm_eval`` at import time, so the
Snakefile can read benchmark specs at DAG-build time without touching the task registry or
the network):

* :mod:`~rmselect.bench.spec` - the ``benchmarks:`` config section as typed specs.
* :mod:`~rmselect.bench.normalise` - random baselines and Open LLM Leaderboard v2 normalisation.
* :mod:`~rmselect.bench.sampling` - seeded subsamples for small-scale screening.
* :mod:`~rmselect.bench.sandbox` - running untrusted generated code with hard limits.
* :mod:`~rmselect.bench.code` - code benchmarks (toy HumanEval-schema task, pass@1).
* :mod:`~rmselect.bench.run` - one model x benchmark(s) through ``lm_eval.simple_evaluate``
  (:mod:`~rmselect.bench.handle` settings and model, :mod:`~rmselect.bench.lm_eval_task`
  lm-eval tasks, :mod:`~rmselect.bench.code_task` code tasks).
* :mod:`~rmselect.bench.params` - parameter counts from safetensors headers.
* :mod:`~rmselect.bench.published` - importing published scores, name matching.
* :mod:`~rmselect.bench.features` - ``results/tables/features.csv`` and its sources.
* :mod:`~rmselect.bench.agreement` - small-scale vs full agreement on the toy zoo.
"""
