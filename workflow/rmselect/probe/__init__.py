"""Probe features: cheap proxies of RM quality read from a frozen base model (stage ``probe``).

Training a reward model costs a learning-rate grid of full fine-tuning runs; these two
numbers cost a few forward passes over the RM validation (and some train) pairs, and enter
``results/tables/features.csv`` beside the upstream benchmarks, so the analyses rank them
with everything else. See :mod:`rmselect.probe.features`.
"""
