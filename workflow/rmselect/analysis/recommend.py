"""Recommend a base model among candidates that have features but no reward model.

For each objective the strategy that selection_model.json chose (``strategy.chosen``: the
best out-of-sample coverage, or ``analysis.selection.strategy``; the Elastic Net selection
model of :mod:`.selection` when absent) is fitted on the analysed models that have RM scores
(same grid, seed and missing-value policy), then predicts the overall RM score of every
candidate (``recommend.candidates``). When no strategy beats a random ordering out of sample
(``strategy.any_strategy_beats_random`` false) ``rank`` stays empty and ``note`` says why.

* Prediction interval: split-conformal, from the n nested-CV out-of-fold residuals of the
  chosen strategy
  r_i = y_i - ŷ_i written by the selection analysis (``oof_residuals`` in
  ``selection_model.json``). q = the ⌈(n+1)·level⌉-th smallest |r_i| (the finite-sample
  corrected quantile, level ⌈(n+1)·level⌉/n of the absolute residuals); the interval is
  [ŷ − q, ŷ + q] clipped to the score's range ``recommend.score_range`` (RewardBench:
  0–100). When ⌈(n+1)·level⌉ > n there are too few residuals for that level and q is
  infinite: the interval is the whole range. ``pi_n_residuals`` says how many residuals it
  rests on. Out-of-fold residuals come from models fitted on (outer_folds−1)/outer_folds
  of the data, so the interval is, if anything, slightly conservative for the model refit
  on all of it; the guarantee assumes the candidate is exchangeable with the analysed
  models. (An earlier version used signed linear quantiles without the correction or the
  clipping and gave [-107, 59] for a 0–100 score on the toy study.)
* rank: 1 = highest predicted score within the objective.
* top_features (selection model only; other strategies: their name): the
  ``recommend.top_features`` polynomial terms with the largest
  |coefficient × standardised term value| for that candidate, as ``term:+contribution``
  (points above/below the training mean contributed by that term).
* A candidate's missing feature value is filled with the training mean and listed in
  ``imputed_features``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import polars as pl

from rmselect import cli
from rmselect.analysis.args import SelectionArgs
from rmselect.analysis.data import (
    AnalysisError,
    align,
    load_features,
    load_models,
    load_rm_scores,
    objectives_present,
)
from rmselect.analysis.selection_model import SelectionConfig, contributions, grid_search
from rmselect.analysis.selection_strategies import FITTERS
from rmselect.cli import opt
from rmselect.io import read_json, write_table

log = logging.getLogger(__name__)

SCHEMA = {
    "candidate": pl.String,
    "objective": pl.String,
    "predicted_score": pl.Float64,
    "pi_lo": pl.Float64,
    "pi_hi": pl.Float64,
    "pi_level": pl.Float64,
    "pi_n_residuals": pl.Int64,
    "rank": pl.Int64,
    "top_features": pl.String,
    "imputed_features": pl.String,
    "missing_policy": pl.String,
    "strategy": pl.String,
    "note": pl.String,
}

#: ``note`` of every row of an objective where no strategy beats random out of sample.
NO_EVIDENCE = ("no strategy beats a random ordering out of sample (nested CV, paired"
               " bootstrap): no ranking is given; predicted scores are for reference only")


#: Range of the overall RewardBench score (points); intervals are clipped to it.
SCORE_RANGE: tuple[float, float] = (0.0, 100.0)


def conformal_quantile(residuals: Sequence[float], level: float) -> tuple[float, int]:
    """(q, n): the split-conformal half-width from ``residuals`` and how many it used.

    q is the ⌈(n+1)·level⌉-th smallest absolute residual (``numpy.quantile`` at
    ⌈(n+1)·level⌉/n with ``method="inverted_cdf"``, i.e. an order statistic); infinite when
    that rank exceeds n, NaN when there are no residuals.
    """
    r = np.abs(np.asarray([x for x in residuals if x is not None and np.isfinite(x)], float))
    n = len(r)
    if n == 0:
        return (float("nan"), 0)
    rank = math.ceil((n + 1) * level - 1e-12)
    if rank > n:
        return (float("inf"), n)
    return (float(np.quantile(r, rank / n, method="inverted_cdf")), n)


def interval(
    pred: float, residuals: Sequence[float], level: float,
    score_range: tuple[float, float] = SCORE_RANGE,
) -> tuple[float, float, int]:
    """(lo, hi, n): ŷ ± the conformal quantile, clipped to ``score_range``; see module."""
    q, n = conformal_quantile(residuals, level)
    if math.isnan(q):
        return (float("nan"), float("nan"), n)
    lo, hi = score_range
    return (float(min(max(pred - q, lo), hi)), float(max(min(pred + q, hi), lo)), n)


def recommend(
    rm: pl.DataFrame,
    feats: pl.DataFrame,
    models: pl.DataFrame,
    candidates: Sequence[str],
    missing: str,
    cfg: SelectionConfig,
    residuals: dict[str, list[float]],
    level: float = 0.9,
    n_top: int = 3,
    score_range: tuple[float, float] = SCORE_RANGE,
    strategies: dict[str, dict[str, Any]] | None = None,
) -> pl.DataFrame:
    """Predicted score, interval and rank of each candidate, per objective.

    ``strategies``: the ``strategy`` block of each objective in selection_model.json (the
    chosen strategy and whether any strategy beats random); without it the selection model
    ranks, as before strategies were compared.
    """
    have = set(feats["model"].to_list())
    absent = [c for c in candidates if c not in have]
    if absent:
        raise AnalysisError(
            f"features table has no row for candidate(s) {', '.join(absent)}; run the"
            " benchmarks stage for them or drop them from recommend.candidates"
        )
    rows: list[dict[str, Any]] = []
    for obj in objectives_present(rm):
        al = align(rm, feats, models, obj, missing)
        al_models = set(al.models)
        cands = [c for c in candidates if c not in al_models]
        if not cands:
            continue
        st = (strategies or {}).get(obj) or {}
        chosen = st.get("chosen", "selection_model")
        ranked = st.get("any_strategy_beats_random", True)
        cf = feats.filter(pl.col("model").is_in(cands))
        Xc = np.column_stack([cf[f].cast(pl.Float64).to_numpy() for f in al.features])
        names_c = cf["model"].to_list()
        pmap = dict(zip(models["model"].to_list(), models["params_b"].to_list()))
        pc = np.array([pmap.get(c) if pmap.get(c) is not None else np.nan for c in names_c],
                      dtype=float)
        means = np.nanmean(al.X, axis=0)
        imputed = [[f for f, v in zip(al.features, row) if np.isnan(v)] for row in Xc]
        if missing != "impute":
            Xc = np.where(np.isnan(Xc), means, Xc)
        if chosen == "selection_model":
            model = grid_search(al.X, al.y["overall"], missing == "impute", cfg).best_estimator_
            pred = model.predict(Xc)
            contrib = contributions(model, al.features, Xc)
            tops = ["; ".join(f"{t['term']}:{t['contribution']:+.2f}" for t in row[:n_top])
                    for row in contrib]
        else:
            pred = FITTERS[chosen](al.X, al.y["overall"], al.params_b, missing == "impute",
                                   cfg)(Xc, pc)
            tops = [f"({chosen})"] * len(pred)
        order = np.argsort(-pred, kind="stable")
        rank = np.empty(len(pred), dtype=int)
        rank[order] = np.arange(1, len(pred) + 1)
        for i, c in enumerate(names_c):
            lo, hi, n_res = interval(float(pred[i]), residuals.get(obj, []), level,
                                     score_range)
            rows.append({
                "candidate": c, "objective": obj, "predicted_score": float(pred[i]),
                "pi_lo": lo, "pi_hi": hi, "pi_level": level, "pi_n_residuals": n_res,
                "rank": int(rank[i]) if ranked else None,
                "top_features": tops[i], "imputed_features": ";".join(imputed[i]),
                "missing_policy": missing, "strategy": chosen,
                "note": "" if ranked else NO_EVIDENCE,
            })
    return pl.DataFrame(rows, schema=SCHEMA).sort("objective", "rank", "predicted_score",
                                                  descending=[False, False, True])


@dataclass(kw_only=True)
class RecommendArgs(SelectionArgs):
    """Rank candidate base models (features, no RM) by predicted RM score."""

    selection_json: str = opt("selection_model.json (residuals)")
    candidates: list[str] = opt("candidate models (features, no RM)", default=[])
    level: float = opt("prediction interval level", default=0.9)
    top_features: int = opt("polynomial terms named per candidate (recommend.top_features)",
                              default=3)
    score_range: list[float] = opt("range of the RM score; intervals are clipped to it",
                                   default=list(SCORE_RANGE), nargs=2)
    out: str = opt("recommendations CSV")


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(RecommendArgs, write_recommendations, argv, prog="recommend.py")


def write_recommendations(a: RecommendArgs) -> int:
    cfg = a.selection_config()
    sel = read_json(a.selection_json)
    res = {o: s.get("oof_residuals", []) for o, s in sel.get("objectives", {}).items()}
    strategies = {o: s.get("strategy") for o, s in sel.get("objectives", {}).items()}
    df = recommend(
        load_rm_scores(a.rm_scores, a.benchmark), load_features(a.features),
        load_models(a.models), a.candidates, a.missing, cfg, res, a.level,
        a.top_features, tuple(a.score_range), strategies,
    ) if a.candidates else pl.DataFrame(schema=SCHEMA)
    for o, st in strategies.items():
        if st and not st.get("any_strategy_beats_random", True):
            log.warning("%s: %s", o, NO_EVIDENCE)
    write_table(a.out, df)
    return 0
