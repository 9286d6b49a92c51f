"""Random baselines and Open LLM Leaderboard v2-style normalisation.

Raw metrics are stored exactly as lm-eval produced them; the *normalised* score of one leaf
(sub)task is::

    norm = max(0, (raw / scale - baseline) / (1 - baseline)) * 100

where ``scale`` is 1 for metrics in [0, 1] and 100 for metrics lm-eval reports in percent
(``squadv2``), and ``baseline`` is the expected score of random guessing. A benchmark with
subtasks (a group such as ``mmlu`` or ``leaderboard_bbh``) is normalised per leaf subtask and
then averaged without weights, as the Open LLM Leaderboard v2 does. If any leaf lacks a
baseline the benchmark has no normalised score (its feature value falls back to the raw
score x 100 and says so in ``score_kind``).

Where a baseline comes from, in order:

1. ``benchmarks.tasks.<name>.baseline`` in the config (a number, or ``none``);
2. the table :data:`BASELINES` below (first matching shell pattern wins);
3. inferred from the evaluated items: a multiple-choice item with k options has baseline
   1/k, so the leaf's baseline is the mean of 1/k over its items; a generative task has 0.

``BASELINES`` (pattern -> baseline, why):

========================  ========  ==============================================
pattern                   baseline  why
========================  ========  ==============================================
winogrande                0.5       2 options
hellaswag                 0.25      4 endings
openbookqa                0.25      4 choices
boolq                     0.5       yes / no
anli_r*                   1/3       entailment / neutral / contradiction
piqa                      0.5       2 solutions
social_iqa                1/3       3 answers
commonsense_qa            0.2       5 choices
arc_easy, arc_challenge   0.25      4 choices (as the Open LLM Leaderboard)
leaderboard_gpqa*         0.25      4 choices
leaderboard_mmlu_pro      0.1       10 choices
mmlu, mmlu_*              0.25      4 choices
medqa_4options            0.25      4 choices
toxigen                   0.5       binary
leaderboard_bbh_*         infer     2-18 choices per subtask (OLL v2: per subtask)
agieval_*                 infer     mixed: 4-5 choices, a few generative subtasks
truthfulqa_mc2            none      mc2 is a probability mass, no guessing baseline
crows_pairs_*             none      pct_stereotype: 0.5 is unbiased, not random
generative tasks          0         triviaqa, squadv2, drop, nq_open, gsm8k*,
                                    leaderboard_math*, leaderboard_ifeval, qasper*,
                                    humaneval*, mbpp*; ``kind: code`` tasks
========================  ========  ==============================================
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Mapping, Sequence

INFER = "infer"
NONE = "none"

#: (shell pattern, baseline) - a float, ``"infer"`` or ``"none"``; first match wins.
BASELINES: tuple[tuple[str, float | str], ...] = (
    ("winogrande", 0.5),
    ("hellaswag", 0.25),
    ("openbookqa", 0.25),
    ("boolq", 0.5),
    ("anli_r*", 1 / 3),
    ("piqa", 0.5),
    ("social_iqa", 1 / 3),
    ("commonsense_qa", 0.2),
    ("arc_easy", 0.25),
    ("arc_challenge", 0.25),
    ("leaderboard_gpqa*", 0.25),
    ("leaderboard_mmlu_pro", 0.1),
    ("mmlu", 0.25),
    ("mmlu_*", 0.25),
    ("medqa_4options", 0.25),
    ("toxigen", 0.5),
    ("leaderboard_bbh_*", INFER),
    ("agieval_*", INFER),
    ("truthfulqa_mc2", NONE),
    ("crows_pairs_*", NONE),
    ("triviaqa", 0.0),
    ("squadv2", 0.0),
    ("drop", 0.0),
    ("nq_open", 0.0),
    ("gsm8k*", 0.0),
    ("leaderboard_math*", 0.0),
    ("leaderboard_ifeval", 0.0),
    ("qasper*", 0.0),
    ("*humaneval*", 0.0),
    ("*mbpp*", 0.0),
)


def table_baseline(task: str) -> float | str | None:
    """The :data:`BASELINES` entry for a leaf task name, or ``None`` if no pattern matches."""
    for pattern, value in BASELINES:
        if fnmatch.fnmatchcase(task, pattern):
            return value
    return None


def infer_baseline(output_type: str | None, n_choices: Sequence[int]) -> float | None:
    """Baseline from the evaluated items: mean of 1/k over multiple-choice items, 0 if generative.

    ``n_choices`` holds the number of options of each evaluated item (multiple choice only).
    Returns ``None`` when nothing can be inferred (unknown output type, no items).
    """
    if output_type == "multiple_choice":
        ks = [k for k in n_choices if k > 0]
        if not ks:
            return None
        return sum(1.0 / k for k in ks) / len(ks)
    if output_type in ("generate_until", "code"):
        return 0.0
    return None


def resolve_baseline(
    task: str,
    override: float | str | None = None,
    output_type: str | None = None,
    n_choices: Sequence[int] = (),
) -> tuple[float | None, str]:
    """Baseline of one leaf task and where it came from (``config``, ``table``, ``inferred``, ``none``)."""
    if override == NONE:
        return None, "config"
    if isinstance(override, (int, float)):
        return float(override), "config"
    value = table_baseline(task)
    if isinstance(value, float):
        return value, "table"
    if value == NONE:
        return None, "table"
    inferred = infer_baseline(output_type, n_choices)
    return inferred, ("inferred" if inferred is not None else "none")


def normalise(raw: float, baseline: float, scale: float = 1.0) -> float:
    """Open LLM Leaderboard v2 normalisation of one raw value, in 0-100 (clipped at 0)."""
    if not 0 <= baseline < 1:
        raise ValueError(f"baseline {baseline} must lie in [0, 1)")
    frac = raw / scale
    return max(0.0, (frac - baseline) / (1.0 - baseline)) * 100.0


@dataclass(frozen=True)
class Summary:
    """A benchmark's scores from its leaf subtasks."""

    #: Unweighted mean over leaves of raw / scale (a fraction for fraction metrics).
    raw_score: float | None
    #: Unweighted mean of per-leaf normalised scores (0-100); None if any leaf lacks a baseline.
    normalised: float | None
    #: The feature value: ``normalised`` if available, else ``raw_score * 100``.
    score: float | None
    score_kind: str


def summarise(
    raw: Mapping[str, float | None],
    baselines: Mapping[str, float | None],
    scale: float = 1.0,
) -> Summary:
    """Combine per-leaf raw metrics (``leaf -> value``) into one benchmark score.

    A leaf whose metric is missing (``None``) makes every aggregate missing: a partial mean
    would silently change what the feature measures.
    """
    if not raw or any(v is None for v in raw.values()):
        return Summary(None, None, None, "missing")
    vals = {k: float(v) for k, v in raw.items() if v is not None}
    raw_score = sum(v / scale for v in vals.values()) / len(vals)
    norms: list[float] = []
    for leaf, v in vals.items():
        b = baselines.get(leaf)
        if b is None:
            norms = []
            break
        norms.append(normalise(v, b, scale))
    if norms:
        normalised = sum(norms) / len(norms)
        return Summary(raw_score, normalised, normalised, "normalised")
    return Summary(raw_score, None, raw_score * 100.0, "raw")
