#!/usr/bin/env python
"""Wall time of the selection analysis: path-based grid search vs the per-point reference.

A synthetic study shaped like the paper's (issue 29): 40 models in 14 families / 9 lineages,
41 features (32 benchmarks, params_b, tokens_t, 5 presence means, 2 probe features) that all
load on one latent quality plus noise, and an RM score = 60 + 5·quality + noise. The paper's
grid: degrees 1-3, alphas 0.1..0.0001, l1 ratios 0..1, 10-fold inner CV, 10 outer folds,
leave-one-lineage-out and leave-one-family-out.

One run prints:

1. 9 features (benchmarks 1-7, params_b, tokens_t): the reference grid search
   (``reference_grid_search``: ``GridSearchCV``, one coordinate-descent fit per grid point
   and fold) and the path-based one (``grid_search``) on the same ``--reference-searches``
   training sets (the full data, then outer nested-CV training parts), their mean wall per
   search and the ratio; whether each chosen setting is equal, and the largest coefficient
   difference of the refit, against the reference as it runs and against the reference's
   per-point fit run to convergence (``tol=1e-14``). The full reference analysis (~50
   searches) would take 20-40 min on 2 busy cores, so only these searches are timed; the
   new full analysis's wall on 9 features is printed beside them.
2. 41 features: the wall of the whole analysis of one objective (``analyse_objective``:
   the grid search and its refit, nested CV, both leave-one-group-out evaluations, the
   presence comparison, every strategy), with ``--n-jobs`` processes.

    .venv/bin/python bench/analysis_selection.py             # ~5 min on 2 busy cores
    .venv/bin/python bench/analysis_selection.py --n-jobs 1 --reference-searches 1

Goals (issue 29): >= 10x per search on 9 features; <= 3 min for 41 features on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from rmselect.analysis.data import Aligned  # noqa: E402
from rmselect.analysis.selection import analyse_objective  # noqa: E402
from rmselect.analysis.selection_model import (  # noqa: E402
    SelectionConfig,
    grid_search,
    reference_grid_search,
)

N_MODELS = 40


def synthetic_study(n_features: int, seed: int = 0) -> Aligned:
    """40 models, features that load on one latent quality (see module docstring)."""
    rng = np.random.default_rng(seed)
    q = rng.normal(size=N_MODELS)
    bench = [f"bench_{j:02d}" for j in range(32)]
    names = bench + ["params_b", "tokens_t"] + [f"presence_{j}" for j in range(5)] + [
        "probe_zero_shot", "probe_linear"]
    if n_features == 9:
        names = bench[:7] + ["params_b", "tokens_t"]
    elif n_features != len(names):
        raise SystemExit(f"--features: 9 or {len(names)}")
    load = rng.uniform(0.3, 1.0, len(names))
    X = np.outer(q, load) + rng.normal(0, 0.5, (N_MODELS, len(names)))
    X = 50 + 10 * X  # benchmark-like scale
    params = np.exp(rng.normal(2, 1, N_MODELS))
    X[:, names.index("params_b")] = params
    y = 60 + 5 * q + rng.normal(0, 2, N_MODELS)
    family = [f"fam{i % 14:02d}" for i in range(N_MODELS)]
    lineage = [f"lin{int(f[3:]) % 9}" for f in family]
    return Aligned("bt", [f"m{i:02d}" for i in range(N_MODELS)], names, X, {"overall": y},
                   family, params, "drop_feature", lineage=lineage)


def reference_comparison(al: Aligned, cfg: SelectionConfig, searches: int) -> None:
    from sklearn.linear_model import ElasticNet
    from sklearn.model_selection import KFold

    y = al.y["overall"]
    parts = [np.arange(len(y))] + [tr for tr, _ in KFold(
        cfg.outer_folds, shuffle=True, random_state=cfg.seed).split(al.X)]
    t_old = t_new = 0.0
    for i, tr in enumerate(parts[:searches]):
        X, yt = al.X[tr], y[tr]
        t = time.perf_counter()
        old = reference_grid_search(X, yt, False, cfg)
        t_old += time.perf_counter() - t
        t = time.perf_counter()
        new = grid_search(X, yt, False, cfg)
        a = new.best_estimator_.named_steps["enet"].coef_
        t_new += time.perf_counter() - t
        b = old.best_estimator_.named_steps["enet"].coef_
        p = new.best_params_
        Z = new.best_estimator_[:-1].transform(X)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tight = ElasticNet(alpha=p["enet__alpha"], l1_ratio=p["enet__l1_ratio"],
                               tol=1e-14, max_iter=10**6).fit(Z, yt).coef_
        same = old.best_params_ == new.best_params_
        print(f"  search {i} ({len(tr)} models): chosen equal: {same}"
              f" (reference {old.best_params_}, new {p}); max |coef diff| vs reference"
              f" {np.max(np.abs(a - b)):.2e}, vs converged per-point fit"
              f" {np.max(np.abs(a - tight)):.2e}", flush=True)
    k = min(searches, len(parts))
    print(f"9 features, per grid search: reference {t_old / k:.2f} s, path-based"
          f" {t_new / k:.3f} s (incl. refit) -> {t_old / max(t_new, 1e-9):.1f}x", flush=True)


def full_analysis(al: Aligned, cfg: SelectionConfig) -> float:
    t = time.perf_counter()
    s, rows = analyse_objective(al, cfg, ks=list(range(1, 11)), compare_k=[5, 6, 7, 8, 9, 10])
    wall = time.perf_counter() - t
    print(f"  chosen {s['best_params']}; nested-CV MAE {s['nested_cv_mae']:.2f};"
          f" {len(rows)} selection_coverage rows", flush=True)
    return wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--reference-searches", type=int, default=3,
                    help="grid searches timed with the reference (each ~30 s on 9 features)")
    a = ap.parse_args()
    cfg = SelectionConfig(n_jobs=a.n_jobs)
    print(f"paper grid: degrees {cfg.degrees}, alphas {cfg.alphas}, l1 {cfg.l1_ratios},"
          f" {cfg.cv_folds}-fold inner CV, {cfg.outer_folds} outer folds, n_jobs {a.n_jobs}",
          flush=True)
    al9 = synthetic_study(9)
    if a.reference_searches:
        reference_comparison(al9, SelectionConfig(n_jobs=1), a.reference_searches)
    print(f"9 features, whole analysis (new): {full_analysis(al9, cfg):.1f} s", flush=True)
    al41 = synthetic_study(41)
    print(f"41 features, whole analysis (new): {full_analysis(al41, cfg):.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
