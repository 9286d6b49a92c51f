"""The inputs the analysis scripts share, declared once as :mod:`rmselect.cli` dataclasses.

Each script's options class inherits the inputs it reads (``ScoresArgs``: RM scores and the
model table; ``FeatureArgs``: plus the feature table and the missing-value policy;
``SeedArgs``: plus the per-seed RM scores; ``SelectionArgs``: plus ``analysis.selection``) and
adds its own outputs. Paths stay strings, as the scripts' flags always were.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from rmselect import cli
from rmselect.cli import opt

if TYPE_CHECKING:
    from rmselect.analysis.selection_model import SelectionConfig

#: Help text of a ``--figure`` flag.
FIGURE = "figure path (.png; the .pdf is written beside it)"


def usage_error(cls: type, prog: str, message: str) -> NoReturn:
    """Exit 2 with the usage of ``cls`` and ``message`` (argparse's ``error``)."""
    cli.build_parser(cls, prog).error(message)


@dataclass(kw_only=True)
class ModelsArgs:
    """The effective model table."""

    models: str = opt("results/analysis/models.csv")


@dataclass(kw_only=True)
class ScoresArgs(ModelsArgs):
    """RM scores of one benchmark and the model table."""

    rm_scores: str = opt("rm_scores.csv (RM score per model, objective and benchmark)")
    benchmark: str = opt("benchmark whose RM scores are analysed (analysis.benchmark)",
                         default="rewardbench")


@dataclass(kw_only=True)
class FeatureArgs(ScoresArgs):
    """RM scores, the model table and the feature table."""

    features: str = opt("features.csv (one row per model, one column per feature)")
    missing: str = opt("missing-value policy (analysis.missing)", default="drop_feature")


@dataclass(kw_only=True)
class SeedArgs(FeatureArgs):
    """Plus the per-seed RM scores, for intervals over seeds."""

    rm_seeds: str | None = opt("rm_scores_seeds.csv (seed intervals)", default=None)
    seed_draws: int = opt("seed draws", default=200)
    seed: int = opt("seed of the seed draws", default=0)


@dataclass(kw_only=True)
class SelectionArgs(FeatureArgs):
    """Plus the selection model's settings."""

    selection: dict[str, Any] = opt("JSON of analysis.selection", default={}, json=True)
    n_jobs: int = opt("threads (overrides n_jobs)", default=0)

    def selection_config(self) -> SelectionConfig:
        """``analysis.selection`` with ``--n-jobs`` applied when given."""
        from rmselect.analysis.selection_model import SelectionConfig

        cfg = SelectionConfig.from_dict(self.selection)
        if self.n_jobs:
            cfg.n_jobs = self.n_jobs
        return cfg
