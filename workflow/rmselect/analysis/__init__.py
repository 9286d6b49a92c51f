"""Statistical analysis of the study: gains, correlations, coverage, selection model, PCA,
BT vs regression, paper tables, cost, and the recommender.

Every submodule has a ``main(argv)`` called by a thin script in ``workflow/scripts``; the
statistics live in plain functions that the tests check against hand-computed values.
Inputs are the stage contracts of ``workflow/CONTRACTS.md`` (``rm_scores.csv``,
``features.csv``) plus ``results/analysis/models.csv`` (the effective model table, written by
:mod:`rmselect.analysis.models`).
"""
