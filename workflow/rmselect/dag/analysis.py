"""DAG-build helpers of the analysis rules (``workflow/rules/analysis.smk``): which other
stages' outputs the cost table waits for, whether an optional input can be made, and the
GPUs each job kind is given.

The section's settings and defaults are :func:`rmselect.analysis.settings.analysis_settings`.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any, Mapping

from rmselect.config import Study

#: The other stages' ``*_TARGETS`` lists (defined by their rule files before analysis.smk).
UPSTREAM_TARGET_LISTS = (
    "TOY_TARGETS",
    "POSTTRAIN_TARGETS",
    "RM_TARGETS",
    "EVAL_TARGETS",
    "BENCHMARK_TARGETS",
    "PRESENCE_TARGETS",
    "PROBE_TARGETS",
)


def upstream_targets(namespace: Mapping[str, Any], wait: bool) -> list[str]:
    """The other stages' final outputs (their ``*_TARGETS`` lists) when ``wait``."""
    if not wait:
        return []
    out: list[str] = []
    for name in UPSTREAM_TARGET_LISTS:
        out += [str(t) for t in namespace.get(name, []) or []]
    return out


def producible(path: str | None, rules: Any) -> bool:
    """True when ``path`` exists or one of ``rules`` (Snakemake rules) names it as output."""
    if not path:
        return False
    if Path(path).exists():
        return True
    return any(str(f) == path for r in rules for f in r.output)


def companion(path: str | None, of: str, rules: Any, explicit: bool = False) -> bool:
    """Whether the analysis reads ``path`` (the per-seed RM scores) beside ``of``.

    By default only when one rule writes both (the eval stage's ``rm_scores_table``): an
    analysis pointed at an imported score table must neither schedule the eval stage for a
    seed table nor pick up a stale one. A path the user set (``explicit``) is read when it
    exists or a rule writes it.
    """
    if not path:
        return False
    if any({str(f) for f in r.output} >= {path, of} for r in rules):
        return True
    return explicit and producible(path, rules)


def gpu_allocation(study: Study) -> dict[str, dict[str, int]]:
    """GPUs a job of each GPU kind gets per model (``rmselect.cluster.resources``).

    The cost table multiplies a job's wall time by this to give allocated GPU-seconds. A model
    whose resources cannot be computed is left out (its jobs then count 0 allocated GPUs).
    """
    from rmselect.cluster.resources import GPU_KINDS, resources_for

    out: dict[str, dict[str, int]] = {}
    for kind in GPU_KINDS:
        per: dict[str, int] = {}
        for name, m in study.models.items():
            try:
                g = resources_for(kind, m.params_b, study.config, name)["gpu"]
            except Exception:  # noqa: BLE001 - a cost estimate must not break the DAG
                continue
            per[name] = int(g or 0)
        out[kind] = per
    return out


#: Where the analysis writes its tables and figures (``workflow/CONTRACTS.md``).
ANALYSIS_DIR = "results/analysis"
FIGURE_DIR = "results/figures"


def figure(stem: str, subcategory: str, caption: str | None = None,
           label: str | None = None) -> Any:
    """``results/figures/<stem>.png`` flagged for the Snakemake report.

    The caption is ``workflow/report/<caption or stem>.rst``; Snakemake resolves it against
    the rule file that calls this, so the path is written relative to ``workflow/rules``.
    ``label`` orders a subcategory: the report lists labelled figures by their label (so
    "1 ..." comes first), unlabelled ones by file name.
    """
    return figures(f"{FIGURE_DIR}/{stem}.png", subcategory, caption or stem, label)


def figures(paths: Any, subcategory: str, caption: str, label: str | None = None) -> Any:
    """Figure path(s) flagged for the report under ``subcategory``, captioned ``<caption>.rst``."""
    from snakemake.io import report

    return report(
        paths,
        caption=f"../report/{caption}.rst",
        category="Figures",
        subcategory=subcategory,
        labels={"figure": label} if label else None,
    )


#: The report's "Selection model" figures in reading order (the labels sort a subcategory):
#: what holds out of sample first, then the paper's in-sample Figure 6, labelled so.
SELECTION_LABELS = {
    "selection_coverage": "1. out of sample: coverage by strategy vs random",
    "selection_in_sample": "2. IN-SAMPLE: the paper's Figure 6 (optimistic)",
    "selection_coefficients": "3. Elastic Net coefficients (Figure 5, fit on all models)",
    "selection_vs_filtered": "4. in sample: model vs filtered features (Figure 10)",
}


def selection_figure(stem: str) -> Any:
    """A "Selection model" figure of the report, labelled in reading order."""
    return figure(stem, "Selection model", label=SELECTION_LABELS[stem])


def table(path: Any, caption: str) -> Any:
    """A table (path or list of paths) flagged for the report, captioned by ``<caption>.rst``."""
    from snakemake.io import report

    return report(path, caption=f"../report/{caption}.rst", category="Tables")


def _flag_values(a: Mapping[str, Any], name: str) -> tuple[str, Any]:
    """The command-line flag and value(s) of analysis setting ``name``."""
    cov, rec = a["coverage"], a["recommend"]
    sources: dict[str, Any] = {
        "benchmark": lambda: a["benchmark"],
        "missing": lambda: a["missing"],
        "seed": lambda: a["seed"],
        "bootstrap": lambda: a["correlations"]["bootstrap"],
        "ci": lambda: a["correlations"]["ci"],
        "alpha": lambda: a["correlations"]["alpha"],
        "k": lambda: list(cov["k"]),
        "compare-k": lambda: list(cov["compare_k"]),
        "appendix-filter": lambda: cov["compare_filter"],
        "filters": lambda: json.dumps(cov["filters"], sort_keys=True),
        "selection": lambda: json.dumps(a["selection"] | {"seed": a["seed"]}, sort_keys=True),
        "components": lambda: a["pca"]["components"],
        "candidates": lambda: list(rec["candidates"]),
        "level": lambda: rec["interval_level"],
        "top-features": lambda: rec["top_features"],
        "score-range": lambda: list(rec["score_range"]),
        "top": lambda: a["leaderboard_top"],
    }
    if name not in sources:
        raise KeyError(f"no analysis setting behind --{name}")
    return f"--{name}", sources[name]()


def analysis_flags(settings: Mapping[str, Any], *names: str) -> str:
    """The shell words ``--name value …`` of the analysis settings ``names``, quoted.

    One place maps a script's flag to its setting in ``analysis_settings``; the rules list the
    flags their script takes instead of one ``params`` entry per setting.
    """
    words: list[str] = []
    for name in names:
        flag, value = _flag_values(settings, name)
        words += [flag, *(value if isinstance(value, list) else [value])]
    return shlex.join(str(w) for w in words)


def paper_tables(ext: str) -> list[str]:
    """File-name tails of the paper's Tables 3-5 (Table 1 has its own rule), for ``multiext``."""
    return [f"{n}{ext}" for n in ("3_models", "4_regression", "5_bt")]
