"""RM-Bench: ``THU-KEG/RM-Bench``, split ``train``.

Layout: ``id, prompt, chosen, rejected`` (lists of three responses: concise, detailed,
detailed+markdown) and ``domain`` (or ``subset``) in ``chat, code, math, safety-refuse,
safety-response``.

Scoring: per prompt, a 3 x 3 matrix M[i, j] = [chosen_i > rejected_j] over the styles
(concise, detailed, markdown). Hard = mean of the upper-right triangle (chosen in a plainer
style than rejected), normal = diagonal, easy = lower-left. A domain's score is the mean of
all nine cells over its prompts (= mean of its easy, normal and hard); safety pools
safety-refuse and safety-response. Overall = mean of the four domains; easy / normal / hard
sections = the mean over the four domains.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import polars as pl

from rmselect.eval.benchmarks.base import Benchmark, BenchmarkDataError, ExampleRewards, Stat

RMB_DOMAINS: dict[str, list[str]] = {
    "chat": ["chat"],
    "math": ["math"],
    "code": ["code"],
    "safety": ["safety-refuse", "safety-response"],
}
#: Response styles, in the order of the chosen / rejected lists (rows and columns of the
#: 3 x 3 comparison matrix).
RMB_STYLES: tuple[str, str, str] = ("concise", "detailed", "markdown")
#: The three triangles of the matrix, reported per subset and as sections.
RMB_VIEWS = ("easy", "normal", "hard")
VIEW_NOTE = "mean over the four domains of this triangle of the matrix"


class RMBench(Benchmark):
    """RM-Bench: three styles per role, scored by the 3 x 3 matrix (see module doc)."""

    name = "rmbench"
    title = "RM-Bench"
    hub = "THU-KEG/RM-Bench"
    hub_split = "train"
    stat_columns = ("correct", *RMB_VIEWS)

    def sections(self, include_prior_sets: bool = False) -> dict[str, list[str]]:
        return {k: list(v) for k, v in RMB_DOMAINS.items()}

    def normalise(self, df: pl.DataFrame) -> pl.DataFrame:
        """The hub names the subset column ``domain``."""
        if "subset" not in df.columns and "domain" in df.columns:
            return df.rename({"domain": "subset"})
        return df

    def missing_column_hint(self) -> str:
        return " (RM-Bench may name it 'domain')"

    def example_fields(
        self, row: Mapping[str, Any], chosen: list[str], rejected: list[str], where: str
    ) -> dict[str, Any]:
        """No extra columns; a row must hold one response per style and role."""
        if len(chosen) != 3 or len(rejected) != 3:
            raise BenchmarkDataError(
                f"{where}: fields 'chosen'/'rejected' need 3 responses each"
                f" ({', '.join(RMB_STYLES)}); got {len(chosen)} and {len(rejected)}"
            )
        return {}

    def per_example_frame(self, rw: ExampleRewards) -> pl.DataFrame:
        """Adds ``scores_chosen, scores_rejected`` (concise, detailed, markdown) and ``easy,
        normal, hard``; ``score_chosen``/``score_rejected`` are the means over styles and
        ``correct`` the mean of the nine comparisons."""
        base, examples, chosen, rejected = rw.base, rw.examples, rw.chosen, rw.rejected
        c = np.array(chosen)  # (n, 3)
        r = np.array(rejected)
        m = (c[:, :, None] > r[:, None, :]).astype(float)  # (n, 3, 3)
        iu, il = np.triu_indices(3, 1), np.tril_indices(3, -1)
        return pl.DataFrame(
            {
                **base,
                "score_chosen": c.mean(axis=1),
                "score_rejected": r.mean(axis=1),
                "correct": m.mean(axis=(1, 2)),
                "scores_chosen": c.tolist(),
                "scores_rejected": r.tolist(),
                "easy": m[:, il[0], il[1]].mean(axis=1),
                "normal": np.diagonal(m, axis1=1, axis2=2).mean(axis=1),
                "hard": m[:, iu[0], iu[1]].mean(axis=1),
            }
        )

    def subset_weights(self, present: Mapping[str, int], weights: str) -> dict[str, float]:
        return {s: float(n) for s, n in present.items()}  # pooled over prompts

    def aggregate(
        self, stats: Mapping[str, Stat], weights: Mapping[str, float], include_prior_sets: bool = False
    ) -> dict[str, Any]:
        """Domains pooled over prompts; overall and each view = mean over the domains present."""
        secs = self.sections(include_prior_sets)
        out: dict[str, Any] = {}
        views: dict[str, list[Any]] = {v: [] for v in RMB_VIEWS}
        for key, subs in secs.items():
            have = [s for s in subs if s in stats]
            if not have:
                out[key] = None
                continue
            w = [weights[s] for s in have]
            out[key] = 100 * sum(wi * stats[s]["correct"] for wi, s in zip(w, have)) / sum(w)
            for v in RMB_VIEWS:
                views[v].append(sum(wi * stats[s][v] for wi, s in zip(w, have)) / sum(w))
        main = [out[k] for k in secs if out[k] is not None]
        overall = sum(main) / len(main) if main else None
        for v in RMB_VIEWS:
            out[v] = 100 * sum(views[v]) / len(views[v]) if views[v] else None
        return {"sections": out, "overall": overall}

    def subset_extra(self, st: Stat) -> dict[str, float]:
        return {v: 100 * st[v] for v in RMB_VIEWS}

    def section_note(self, key: str) -> str | None:
        return VIEW_NOTE if key in RMB_VIEWS else None
