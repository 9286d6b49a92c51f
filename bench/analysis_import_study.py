#!/usr/bin/env python
"""Wall time of `snakemake analysis` on an import-only study at the paper's scale (issue 29).

Builds, under ``--dir`` (default: a temporary directory), a synthetic study of 40 models in
14 families (sizes 0.5-72B) with 41 features (32 benchmarks, params_b, tokens_t, 5 presence
means, 2 probe features, all loading on one latent quality plus noise) and RM scores for both
objectives, with the paper's selection grid (degrees 1-3, 4 alphas, 5 l1 ratios, 10-fold
inner CV, 10 outer folds, both leave-one-group-out evaluations), then runs the whole analysis
target as tests/test_analysis_workflow.py does and prints its wall time.

    .venv/bin/python bench/analysis_import_study.py --cores 2     # goal: <= 5 min

Nothing is trained; the numbers are synthetic.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
SIZES = [0.5, 1.5, 3, 7, 8, 9, 14, 27, 32, 72]


def build(d: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(40):
        fam = f"fam{i % 14:02d}"
        size = SIZES[(i * 7) % len(SIZES)]
        rows.append((f"{fam}-m{i:02d}-{size:g}b", fam, size))
    n = len(rows)
    fam_eff = rng.normal(0, 2, 14)
    q = np.array([fam_eff[int(f[3:])] + 2 * np.log(s) for _, f, s in rows]) \
        + rng.normal(0, 2, n)
    with open(d / "models.tsv", "w") as fh:
        fh.write("name\tsource\tpublisher\tfamily\tparams_b\ttokens_t\treleased\tstage\t"
                 "parent\ttrust_remote_code\tchat_template\n")
        for name, fam, s in rows:
            fh.write(f"{name}\tsynthetic/{name}\tP{fam}\t{fam}\t{s}\t{2 + s / 10:g}\t2024-01"
                     "\tinstruct\t\tfalse\t\n")
    cols = [f"bench_{j:02d}" for j in range(32)]
    feats = {c: 50 + rng.uniform(0.5, 2.0) * q + rng.normal(0, 4, n) for c in cols}
    pres = {f"presence_{j}": -2 + 0.02 * q + rng.normal(0, 0.1, n) for j in range(5)}
    probe = {p: 60 + 0.8 * q + rng.normal(0, 3, n) for p in ("probe_zero_shot", "probe_linear")}
    with open(d / "features.csv", "w") as fh:
        w = csv.writer(fh)
        names = cols + ["params_b", "tokens_t"] + list(pres) + list(probe)
        w.writerow(["model"] + names)
        for i, (name, _, s) in enumerate(rows):
            vals = [feats[c][i] for c in cols] + [s, 2 + s / 10] + \
                [pres[c][i] for c in pres] + [probe[c][i] for c in probe]
            w.writerow([name] + [f"{v:.4f}" for v in vals])
    secs = ["chat", "chat_hard", "safety", "reasoning"]
    with open(d / "rm_scores.csv", "w") as fh:
        w = csv.writer(fh)
        w.writerow(["model", "objective", "benchmark"] + secs + ["score"]
                   + [f"{s}_{b}" for s in secs + ["score"] for b in ("lo", "hi")] + ["source"])
        for obj, off in (("bt", -4.0), ("regression", 0.0)):
            for i, (name, _, _) in enumerate(rows):
                sv = [float(np.clip(60 + off + q[i] + rng.normal(0, 3), 0, 100)) for _ in secs]
                vals = sv + [float(np.mean(sv))]
                ci = [x for v in vals for x in (v - 2, v + 2)]
                w.writerow([name, obj, "rewardbench"] + [f"{v:.3f}" for v in vals + ci]
                           + ["imported"])
    cfg = yaml.safe_load((REPO / "tests" / "config_analysis_import.yaml").read_text())
    cfg["study"] = "analysis-import-paper-scale"
    cfg["models"] = str(d / "models.tsv")
    small = [r[0] for r in rows if r[2] < 2][0]
    mid = [r[0] for r in rows if 2 <= r[2] < 10][0]
    large = [r[0] for r in rows if r[2] >= 10][0]
    cfg["size_groups"] = [
        {"name": "small", "min_b": 0.0, "max_b": 2.0, "default": small},
        {"name": "medium", "min_b": 2.0, "max_b": 10.0, "default": mid},
        {"name": "large", "min_b": 10.0, "max_b": 1000.0, "default": large},
    ]
    a = cfg["analysis"]
    a["rm_scores"], a["features"] = str(d / "rm_scores.csv"), str(d / "features.csv")
    a["leaderboard_csv"] = str(REPO / a["leaderboard_csv"])
    for key in ("helpsteer2", "helpsteer2_preference"):
        cfg["data"][key]["path"] = str(REPO / cfg["data"][key]["path"])
    a["coverage"]["k"] = list(range(1, 11))
    a["coverage"]["compare_k"] = [5, 6, 7, 8, 9, 10]
    a["coverage"]["filters"] = [{"name": "main", "thresholds": {"5": 0.4, "10": 0.7}},
                                {"name": "appendix", "thresholds": {"5": 0.4, "10": 0.6}}]
    a["selection"] = {"degrees": [1, 2, 3], "alphas": [0.1, 0.01, 0.001, 0.0001],
                      "l1_ratios": [0.0, 0.25, 0.5, 0.75, 1.0], "cv_folds": 10,
                      "outer_folds": 10, "n_jobs": 2}
    out = d / "config.yaml"
    out.write_text(yaml.safe_dump(cfg))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--dir", default=None, help="study directory (default: a temporary one)")
    a = ap.parse_args()
    d = Path(a.dir or tempfile.mkdtemp(prefix="rmselect_import_"))
    d.mkdir(parents=True, exist_ok=True)
    cfg = build(d)
    cmd = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(d), "--cores",
           str(a.cores), "analysis", "--configfile", str(cfg)]
    t = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if run.returncode:
        print(run.stderr[-3000:])
        return 1
    print(f"snakemake analysis, 40 models x 41 features, --cores {a.cores}: {wall:.0f} s"
          f" (study in {d})")
    bench = sorted((d / "results" / "cost").glob("analysis_*/all.tsv"))
    for b in bench:
        s = b.read_text().splitlines()[1].split("\t")[0]
        print(f"  {b.parent.name}: {float(s):.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
