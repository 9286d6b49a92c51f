"""Reward-model evaluation: RewardBench v1 (the paper's), RewardBench 2 and RM-Bench.

Modules:

- :mod:`rmselect.eval.benchmarks` — the benchmark registry (:func:`~rmselect.eval.benchmarks.get_benchmark`), one
  module per benchmark (``rewardbench``, ``rewardbench2``, ``rmbench``: layout, sections,
  hub id, scoring rules) and the shared loader that validates benchmark data (hub or local
  file) into one long "texts to score" frame;
- :mod:`rmselect.eval.metrics` — per-example correctness, subset/section/overall scores
  (each benchmark's rules, asked of its registered object) and bootstrap confidence
  intervals;
- :mod:`rmselect.eval.scorer` — batched, length-sorted reward scoring of any
  ``AutoModelForSequenceClassification`` RM (BT, regression with merge weights, hub RMs);
- :mod:`rmselect.eval.run` — ``workflow/scripts/eval_rm.py``: one RM, loaded once, on one or
  more benchmarks;
- :mod:`rmselect.eval.table` — ``workflow/scripts/rm_scores_table.py``: the RM score tables,
  merging imported results (columns in :mod:`rmselect.eval.table_schema`, the import's
  validation in :mod:`rmselect.eval.results_import`);
- :mod:`rmselect.eval.toysets` — ``workflow/scripts/eval_toy_sets.py``: RewardBench-2 and
  RM-Bench-format toy sets derived from the toy RewardBench v1 set.
"""
