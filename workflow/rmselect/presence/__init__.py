"""Presence scores: how familiar a model is with a domain's text (PAPER.md §6).

:mod:`rmselect.presence.score` scores documents with a causal LM (truncated, length-
normalised log-likelihood); :mod:`rmselect.presence.corpus` samples documents from local or
hub corpora; :mod:`rmselect.presence.reuse` implements the optional family-reuse rule;
:mod:`rmselect.presence.distributions` builds the summary, shared-bin histograms, pairwise
Jensen–Shannon distances and the two figures.
"""
