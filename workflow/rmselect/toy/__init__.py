"""The embedded toy zoo: a synthetic world, its corpus, a BPE tokenizer, tiny pre-trained
models of three architectures, and data in the real schemas (HelpSteer2, HelpSteer2-
Preference, RewardBench, SFT/DPO, HumanEval-style code, presence domains, lm-eval tasks).

Modules: :mod:`~rmselect.toy.world` (world and corpus), :mod:`~rmselect.toy.tokenizer`,
:mod:`~rmselect.toy.spec` (toy spec, :func:`toy_config`), :mod:`~rmselect.toy.models`
(pre-training), :mod:`~rmselect.toy.data` (RM data, benchmarks, domains),
:mod:`~rmselect.toy.build` (command-line entry points).
"""

from rmselect.toy.spec import SPEC_KEYS, parse_spec, toy_config

__all__ = ["SPEC_KEYS", "parse_spec", "toy_config"]
