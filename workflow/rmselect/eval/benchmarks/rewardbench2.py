"""RewardBench 2: ``allenai/reward-bench-2``, split ``test``.

Layout: ``id, prompt, chosen`` (list), ``rejected`` (list), ``subset``; every subset is a
section (key in snake case: ``Precise IF`` -> ``precise_if``). Non-Ties rows have one chosen
and (usually) three rejected responses; Ties rows have ids ``ref:<n>`` (one correct answer)
or ``tied:<n>`` (several correct answers) and any number of either.

Scoring: outside Ties a prompt scores 1/k when the chosen response is among the k responses
sharing the highest reward and 0 otherwise (so a clean win is 1 and a tie is fractional
credit). Ties is scored as in RewardBench 2's ``process_single_model``: per prompt,
``accurate`` = worst correct > best incorrect; score = 0.30 tied accuracy + 0.30 reference
accuracy + 0.20 P(margin correct-incorrect on the tied prompt > spread among correct
answers) + 0.20 P(same with the smaller of the tied and reference margins) + 0.01 mean
tanh(min margin / spread - 1). Overall = plain mean of the six subset scores. The Ties
bootstrap resamples prompt ids, so a prompt's reference and tied rows move together.
"""

from __future__ import annotations

import re
from typing import Any, Iterator, Mapping

import numpy as np
import polars as pl

from rmselect.eval.benchmarks.base import Benchmark, BenchmarkDataError, ExampleRewards, Stat

RB2_SUBSETS: list[str] = ["Factuality", "Precise IF", "Math", "Safety", "Focus", "Ties"]
RB2_TIES = "Ties"
_TIE_ID = re.compile(r"^(ref|tied):(\d+)$")


def snake(name: str) -> str:
    """Section key of a RewardBench 2 subset name: ``Precise IF`` -> ``precise_if``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def ties_score(rows: pl.DataFrame) -> float:
    """RewardBench 2's Ties composite (0-1) from per-example Ties rows (see module doc)."""
    ref = {p: r for p, k, r in _ties_iter(rows) if k == "ref"}
    tied = {p: r for p, k, r in _ties_iter(rows) if k == "tied"}
    ref_acc = float(np.mean([r["correct"] for r in ref.values()])) if ref else 0.0
    tied_acc = float(np.mean([r["correct"] for r in tied.values()])) if tied else 0.0
    both = [p for p in tied if p in ref]
    if both:
        diff = np.array([_nan(tied[p]["diff_correct_margin"]) for p in both])
        ci_t = np.array([tied[p]["correct_incorrect_margin"] for p in both])
        ci_r = np.array([ref[p]["correct_incorrect_margin"] for p in both])
        lo = np.minimum(ci_r, ci_t)
        pref = float(np.mean(ci_t > diff))
        pref_hard = float(np.mean(lo > diff))
        with np.errstate(divide="ignore", invalid="ignore"):
            margin = np.nan_to_num(np.tanh(lo / diff - 1), nan=0.0)
        margin_score = float(np.mean(margin))
    else:
        pref = pref_hard = margin_score = 0.0
    return 0.30 * tied_acc + 0.30 * ref_acc + 0.20 * pref + 0.20 * pref_hard + 0.01 * margin_score


def _nan(x: Any) -> float:
    return float("nan") if x is None else float(x)


def _ties_iter(rows: pl.DataFrame) -> Iterator[tuple[Any, Any, dict[str, Any]]]:
    for r in rows.iter_rows(named=True):
        yield r["tie_prompt"], r["tie_kind"], r


def _is_ties(rows: pl.DataFrame) -> bool:
    return rows["subset"][0] == RB2_TIES


class RewardBench2(Benchmark):
    """RewardBench 2: best-of-N rows and the Ties composite (see module doc)."""

    name = "rewardbench2"
    title = "RewardBench 2"
    hub = "allenai/reward-bench-2"
    hub_split = "test"

    def sections(self, include_prior_sets: bool = False) -> dict[str, list[str]]:
        return {snake(s): [s] for s in RB2_SUBSETS}

    def example_fields(
        self, row: Mapping[str, Any], chosen: list[str], rejected: list[str], where: str
    ) -> dict[str, Any]:
        """``tie_kind`` (``ref`` | ``tied``) and ``tie_prompt`` (its number) of a Ties row."""
        if row["subset"] == RB2_TIES:
            m = _TIE_ID.match(row["id"])
            if not m:
                raise BenchmarkDataError(
                    f"{where}: field 'id': Ties ids must look like 'ref:<n>' or"
                    " 'tied:<n>' (RewardBench 2 format)"
                )
            return {"tie_kind": m.group(1), "tie_prompt": int(m.group(2))}
        if len(chosen) != 1:
            raise BenchmarkDataError(
                f"{where}: field 'chosen' has {len(chosen)} responses; rows outside Ties"
                " need exactly one (best-of-N against the rejected ones)"
            )
        return {"tie_kind": None, "tie_prompt": None}

    def per_example_frame(self, rw: ExampleRewards) -> pl.DataFrame:
        """Adds ``scores_chosen, scores_rejected`` (lists), ``tie_kind, tie_prompt,
        diff_correct_margin, correct_incorrect_margin``; ``score_chosen`` is the worst
        chosen, ``score_rejected`` the best rejected; ``correct`` is 1/k credit (Ties:
        whether every correct answer beats every incorrect one)."""
        base, examples, chosen, rejected = rw.base, rw.examples, rw.chosen, rw.rejected
        rows = []
        for i in range(examples.height):
            cs, rs = chosen[i], rejected[i]
            worst_c, best_r = min(cs), max(rs)
            if examples["subset"][i] == RB2_TIES:
                correct = float(worst_c > best_r)
            else:
                allv = np.array(cs + rs)
                top = allv.max()
                correct = 1.0 / float((allv == top).sum()) if cs[0] == top else 0.0
            rows.append(
                {
                    "score_chosen": worst_c,
                    "score_rejected": best_r,
                    "correct": correct,
                    "scores_chosen": cs,
                    "scores_rejected": rs,
                    "diff_correct_margin": (max(cs) - worst_c) if len(cs) > 1 else None,
                    "correct_incorrect_margin": worst_c - best_r,
                }
            )
        out = pl.DataFrame(rows, infer_schema_length=None).with_columns(
            pl.col("diff_correct_margin").cast(pl.Float64)
        )
        return pl.concat(
            [pl.DataFrame(base), examples.select("tie_kind", "tie_prompt"), out], how="horizontal"
        )

    def subset_stats(self, rows: pl.DataFrame) -> Stat:
        if _is_ties(rows):
            return {"n": rows.height, "correct": ties_score(rows)}
        return super().subset_stats(rows)

    def bootstrap_subset_stats(self, rows: pl.DataFrame, n_boot: int, rng: np.random.Generator) -> Stat:
        if not _is_ties(rows):
            return super().bootstrap_subset_stats(rows, n_boot, rng)
        prompts = rows["tie_prompt"].unique().sort().to_list()
        groups = {p: rows.filter(pl.col("tie_prompt") == p) for p in prompts}
        vals = np.empty(n_boot)
        for b in range(n_boot):
            pick = rng.integers(0, len(prompts), size=len(prompts))
            parts = [
                groups[prompts[k]].with_columns(pl.lit(j).alias("tie_prompt"))
                for j, k in enumerate(pick)
            ]
            vals[b] = ties_score(pl.concat(parts))
        return {"n": rows.height, "correct": vals}

    def subset_weights(self, present: Mapping[str, int], weights: str) -> dict[str, float]:
        return {s: 1.0 for s in present}  # one subset per section
