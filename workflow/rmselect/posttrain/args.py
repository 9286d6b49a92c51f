"""The post-training trainer's command line, declared once (:mod:`rmselect.cli`).

Kept apart from :mod:`rmselect.posttrain.train` (which imports torch) so that the DAG helper
deriving the rule's flags from it (:func:`rmselect.dag.posttrain.train_flags`) stays light.
"""

from __future__ import annotations

from dataclasses import dataclass

from rmselect.cli import opt


@dataclass(kw_only=True)
class PosttrainArgs:
    """Train one SFT or DPO variant of a parent model (see rmselect.posttrain.train)."""

    parent: str = opt("parent model dir or hub id")
    parent_name: str = opt("parent name in the model table", default="")
    name: str = opt("variant name in the model table", default="")
    recipe: dict = opt("resolved recipe as JSON (stage, data, lr, ...)", json=True)
    out_dir: str = opt("results/variants/<model>/model")
    train_json: str = opt("results/variants/<model>/train.json")
    seed: int = opt("seed when the recipe sets none (the study's seed)", default=0)
    zero_stage: int = opt(
        "DeepSpeed ZeRO stage when the recipe sets none (from the resource tier)", default=0
    )
    chat_template: str | None = opt("template override (file or Jinja)", default=None)
    trust_remote_code: bool = opt("run the model repository's code (model row opts in)",
                                  default=False)
    stop_after_steps: int | None = opt(
        "debug: exit with status 75 after this step, as if killed (tests resume)", default=None)
