"""Cluster support: per-rule resources from model size, GPU slots, multi-node launch."""
