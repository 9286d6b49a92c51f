"""Test support code, kept out of the ``rmselect`` package because no rule or script uses it.

* :mod:`support.layouts`: small files in the published data layouts (no downloads);
* :mod:`support.tiny_rm`: tiny random-init causal LMs, a word-level tokenizer and learnable
  preference / rating data (RM, probe and training tests; ``bench/train_throughput.py``);
* :mod:`support.tiny_eval`: tiny random-init reward models saved like a trained RM's
  ``final/`` folder (scorer and eval tests; ``bench/eval_throughput.py``);
* :mod:`support.slurm_cluster`: a throw-away single-node SLURM cluster (``tests/test_slurm_cluster.py``).

Tests import them as ``support.X`` (pytest puts ``tests/`` on ``sys.path``); bench scripts put
``tests/`` on ``sys.path`` themselves.
"""
