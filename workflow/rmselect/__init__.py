"""rmselect: which base LLM makes the best reward model, and can we know before training it?

The logic of every pipeline stage lives in this package; Snakemake rules only call the thin
entry points in ``workflow/scripts``. File contracts between stages: ``workflow/CONTRACTS.md``.
"""

__version__ = "0.1.0"
