"""Coverage at top-k (§4, Figures 4 and 9).

coverage@k(feature) = |top-k models by feature ∩ top-k models by RM score| / k.
Higher is better for every feature, so a feature that correlates negatively with RM quality
gets low coverage (as in the paper). ``k`` runs over ``analysis.coverage.k`` (values above
the number of models with both values are skipped).

Ties: benchmark accuracies on a few hundred items tie often, and breaking them by model name
(as this module once did) makes coverage depend on how models are named. Coverage is instead
its *expected value under random tie-breaking*, independently for the feature and the RM
score: a model strictly above the k-th value is in the top-k with probability 1, a model in
the tie group straddling the k-th place with probability slots_left / group_size, any other
with 0 (:func:`inclusion`); expected |A ∩ B| = Σ_i P(i ∈ A) P(i ∈ B). Without ties this is
the plain count. ``boundary_tie`` in ``coverage.csv`` says whether a tie group straddled
place k for the feature or the score.

Filters (``analysis.coverage.filters``): a feature *passes* a filter when its coverage is
at least the given value at every listed k (paper: ≥ 0.4 at k=5 and ≥ 0.7 at k=10, and
the appendix variant 0.4 / 0.6). A filter whose k exceeds the population is not passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

from rmselect import cli, plotting
from rmselect.analysis.args import SeedArgs, usage_error
from rmselect.analysis.data import (
    align,
    load_features,
    load_models,
    load_rm_scores,
    objectives_present,
)
from rmselect.analysis.seeds import draw_seeds, load_seed_scores
from rmselect.cli import opt
from rmselect.io import write_table


def inclusion(values: np.ndarray, k: int) -> np.ndarray:
    """P(model i is among the top k by ``values``) when ties are broken uniformly at random.

    1 above the k-th largest value, 0 below it; the models equal to it (the boundary tie
    group) share the slots left: slots_left / group_size each. Sums to k.
    """
    v = np.asarray(values, dtype=float)
    if k < 1 or k > len(v):
        raise ValueError(f"k = {k} outside 1..{len(v)}")
    kth = np.sort(v)[::-1][k - 1]
    above = v > kth
    tied = v == kth
    p = above.astype(float)
    p[tied] = (k - above.sum()) / tied.sum()
    return p


def boundary_tie(values: np.ndarray, k: int) -> bool:
    """True when a tie group straddles place k (the top-k set depends on tie-breaking)."""
    p = inclusion(values, k)
    return bool(((p > 0) & (p < 1)).any())


def coverage_at_k(names: Sequence[str], pred: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Expected |top-k by ``pred`` ∩ top-k by ``truth``| / k under random tie-breaking.

    Over the models where both are known; ``names`` only fixes the alignment (it no longer
    decides ties, see the module docstring).
    """
    ok = ~np.isnan(pred) & ~np.isnan(truth)
    n = int(ok.sum())
    if k > n or k < 1:
        return float("nan")
    return float(np.dot(inclusion(pred[ok], k), inclusion(truth[ok], k)) / k)


def tie_at_k(pred: np.ndarray, truth: np.ndarray, k: int) -> bool:
    """Whether the top-k of ``pred`` or ``truth`` (complete pairs) depends on tie-breaking."""
    ok = ~np.isnan(pred) & ~np.isnan(truth)
    if k > int(ok.sum()) or k < 1:
        return False
    return boundary_tie(pred[ok], k) or boundary_tie(truth[ok], k)


def passes(cov: Mapping[int, float], thresholds: Mapping[int, float]) -> bool:
    """True when coverage at every threshold k is known and at least the threshold."""
    for k, t in thresholds.items():
        v = cov.get(int(k), float("nan"))
        if v is None or np.isnan(v) or v < t:
            return False
    return True


def parse_filters(obj: Any) -> dict[str, dict[int, float]]:
    """``[{name, thresholds: {k: min}}]`` → ``{name: {k: min}}``."""
    out = {}
    for f in obj or []:
        out[str(f["name"])] = {int(k): float(v) for k, v in f["thresholds"].items()}
    return out


def coverage_table(
    al_by_objective: dict, ks: Sequence[int], filters: Mapping[str, Mapping[int, float]],
    draws: dict | None = None, level: float = 0.95,
) -> pl.DataFrame:
    """Rows (objective, feature, k, coverage, boundary_tie, passes_<filter>..., missing_policy,
    coverage_seed_lo, coverage_seed_hi). The seed interval of coverage@k over seed draws
    (``draws``: objective → :class:`rmselect.analysis.seeds.SeedDraws`) is empty with one
    seed."""
    from rmselect.analysis.seeds import coverage_intervals

    rows = []
    for obj, al in al_by_objective.items():
        y = al.y["overall"]
        seed_ci = (coverage_intervals(al, draws[obj], ks, level)
                   if draws is not None and obj in draws else {})
        for j, feat in enumerate(al.features):
            cov = {k: coverage_at_k(al.models, al.X[:, j], y, k) for k in ks}
            flags = {f"passes_{name}": passes(cov, th) for name, th in filters.items()}
            for k in ks:
                if not np.isnan(cov[k]):
                    rows.append(
                        {"objective": obj, "feature": feat, "k": k, "coverage": cov[k],
                         "boundary_tie": tie_at_k(al.X[:, j], y, k)}
                        | flags
                        | {"missing_policy": al.missing_policy}
                        | dict(zip(("coverage_seed_lo", "coverage_seed_hi"),
                                   seed_ci.get((feat, k), (None, None))))
                    )
    schema = {
        "objective": pl.String,
        "feature": pl.String,
        "k": pl.Int64,
        "coverage": pl.Float64,
        "boundary_tie": pl.Boolean,
    } | {f"passes_{n}": pl.Boolean for n in filters} | {"missing_policy": pl.String,
                                                         "coverage_seed_lo": pl.Float64,
                                                         "coverage_seed_hi": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


def plot(df: pl.DataFrame, stem: str, flt: str, title: str) -> None:
    """Coverage vs k for the features passing filter ``flt`` (Figures 4 / 9)."""
    objs = df["objective"].unique(maintain_order=True).to_list() or ["(none)"]
    fig, axes = plotting.figure("double", height=2.6, ncols=len(objs), squeeze=False, sharey=True)
    col = f"passes_{flt}"
    for ax, obj in zip(axes[0], objs):
        d = df.filter(pl.col("objective") == obj)
        shown = d.filter(pl.col(col))["feature"].unique(maintain_order=True).to_list() if (
            col in d.columns
        ) else []
        for i, feat in enumerate(shown):
            s = d.filter(pl.col("feature") == feat).sort("k")
            ax.plot(s["k"], s["coverage"], marker="o", ms=2.5, label=feat,
                    color=plotting.PALETTE[i % len(plotting.PALETTE)],
                    ls=["-", "--", ":", "-."][(i // len(plotting.PALETTE)) % 4])
        if not shown:
            ax.text(0.5, 0.5, f"no feature passes filter '{flt}'", ha="center",
                    transform=ax.transAxes)
        else:
            ax.legend(fontsize=5, ncols=2)
        ax.set_xlabel("k (top-k models)")
        ax.set_ylabel("Coverage (fraction of true top-k)")
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{obj}: {title}")
    plotting.save(fig, stem)


@dataclass(kw_only=True)
class CoverageArgs(SeedArgs):
    """Coverage at top-k of every feature."""

    k: list[int] = opt("the k of coverage@k")
    filters: list[dict[str, Any]] = opt("JSON [{name, thresholds: {k: min}}]", json=True)
    out: str = opt("coverage.csv")
    figures: list[str] = opt("one PNG path per filter, in filter order (PDFs beside them)")


PROG = "analysis_coverage.py"


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(CoverageArgs, write_coverage, argv, prog=PROG)


def write_coverage(a: CoverageArgs) -> int:
    filters = parse_filters(a.filters)
    if len(a.figures) != len(filters):
        usage_error(CoverageArgs, PROG, "give one --figures path per filter")
    rm = load_rm_scores(a.rm_scores, a.benchmark)
    feats, models = load_features(a.features), load_models(a.models)
    als = {o: align(rm, feats, models, o, a.missing) for o in objectives_present(rm)}
    per_seed = load_seed_scores(a.rm_seeds, a.benchmark)
    draws = {o: draw_seeds(al, per_seed, a.seed_draws, a.seed + i)
             for i, (o, al) in enumerate(als.items())}
    df = coverage_table(als, a.k, filters, draws)
    for (name, th), stem in zip(filters.items(), a.figures):
        desc = " & ".join(f"≥{v:g} at k={k}" for k, v in th.items())
        plot(df, stem, name, f"filter {desc}")
    write_table(a.out, df)
    return 0
