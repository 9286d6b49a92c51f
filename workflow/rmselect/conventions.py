"""The published data conventions every stage shares, defined once.

The toy zoo writes data in the real schemas and the RM, evaluation and post-training stages
read them; a convention written down twice can drift apart silently (a flipped preference
sign trains every RM on the rejected answer). So each lives here, and the modules that need
it import it (tests/test_conventions.py checks they hold the same object and the published
values):

* :data:`PREFERENCE_SIGN`: HelpSteer2-Preference's ``preference_strength`` runs from -3 to 3;
  the data card reads "-3: Response 1 is much better than Response 2 ... 3: Response 2 is
  much better than Response 1", and 0 means no preference. A strength with this sign
  prefers ``response_1``.
* :data:`ATTRIBUTES`: HelpSteer2's five rated attributes (ints 0-4), in the order of its
  columns and of the regression head's outputs.
* :data:`REWARDBENCH_SECTIONS`: RewardBench v1's sections and their subsets (its
  ``SUBSET_MAPPING``; PAPER.md §2), section keys in snake case; :data:`REWARDBENCH_SUBSETS`
  the 23 subsets in that order.

This module is imported by the rule files (through the toy stage), so it imports nothing.
"""

from __future__ import annotations

#: A preference strength with this sign prefers ``response_1`` (HelpSteer2 card: negative
#: values mean "Response 1 is better than Response 2").
PREFERENCE_SIGN = -1

#: The five HelpSteer2 attributes, in the order of the regression head's outputs.
ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")

#: RewardBench v1 sections and their subsets (RewardBench's SUBSET_MAPPING).
REWARDBENCH_SECTIONS: dict[str, list[str]] = {
    "chat": [
        "alpacaeval-easy",
        "alpacaeval-length",
        "alpacaeval-hard",
        "mt-bench-easy",
        "mt-bench-med",
    ],
    "chat_hard": [
        "mt-bench-hard",
        "llmbar-natural",
        "llmbar-adver-neighbor",
        "llmbar-adver-GPTInst",
        "llmbar-adver-GPTOut",
        "llmbar-adver-manual",
    ],
    "safety": [
        "refusals-dangerous",
        "refusals-offensive",
        "xstest-should-refuse",
        "xstest-should-respond",
        "donotanswer",
    ],
    "reasoning": [
        "math-prm",
        "hep-cpp",
        "hep-go",
        "hep-java",
        "hep-js",
        "hep-python",
        "hep-rust",
    ],
}
#: The 23 RewardBench v1 subsets, section by section.
REWARDBENCH_SUBSETS: list[str] = [s for subs in REWARDBENCH_SECTIONS.values() for s in subs]

#: Attention kernels a model can be run with (``rm.attn_implementation``, the model table's
#: ``attn_implementation`` column); ``auto`` is resolved per architecture by
#: :func:`rmselect.hf.resolve_attn_implementation`.
ATTN_IMPLEMENTATIONS = ("auto", "eager", "sdpa", "flash_attention_2")
