"""Post-training variants (SFT, DPO) of any model, and the lineage study (PAPER.md §5).

:mod:`rmselect.posttrain.recipes` resolves and checks ``posttrain.recipes``;
:mod:`rmselect.posttrain.data` turns SFT conversations and DPO triples into token ids with
loss masks; :mod:`rmselect.posttrain.train` is the small DeepSpeed training loop that writes
``results/variants/{model}/``; :mod:`rmselect.posttrain.lineage` builds the per-lineage table
of RM score changes (``results/analysis/posttraining.csv``) and its figure.
"""
