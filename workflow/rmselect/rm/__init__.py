"""Reward-model training, pooling, formatting and selection."""
