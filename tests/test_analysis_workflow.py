"""Import-only study: `snakemake analysis` on imported CSVs (no training), then the report."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def _config(tmp: Path) -> Path:
    cfg = yaml.safe_load((REPO / "tests" / "config_analysis_import.yaml").read_text())
    a = cfg["analysis"]
    for key in ("rm_scores", "features", "leaderboard_csv"):
        a[key] = str(REPO / a[key])
    out = tmp / "config.yaml"
    out.write_text(yaml.safe_dump(cfg))
    return out


@pytest.mark.slow
@pytest.mark.workflow
def test_import_only_analysis_and_report(tmp_path):
    cfg = _config(tmp_path)
    base = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path)]
    conf = ["--configfile", str(cfg)]  # last: --configfile takes several values
    run = subprocess.run(base + ["--cores", "1", "analysis"] + conf, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    an, fig = tmp_path / "results" / "analysis", tmp_path / "results" / "figures"
    for name in ("gains_vs_default.csv", "correlations.csv", "coverage.csv",
                 "selection_model.json", "selection_coverage.csv", "pca_variance.csv",
                 "pca_loadings.csv", "bt_vs_regression.csv", "cost.csv", "cost_summary.csv",
                 "tables/table3_models.tex", "tables/table4_regression.tex",
                 "tables/table5_bt.tex", "leaderboard_share.csv"):
        assert (an / name).exists(), name
    for stem in ("gains_vs_default", "correlations", "coverage_main", "coverage_appendix",
                 "selection_coefficients", "selection_coverage", "selection_in_sample",
                 "selection_vs_filtered",
                 "pca_variance", "pca_loadings", "bt_vs_regression", "leaderboard_families"):
        assert (fig / f"{stem}.png").exists() and (fig / f"{stem}.pdf").exists(), stem
    assert (tmp_path / "results" / "recommendation.csv").exists()
    # The planted signal: bench_a tracks the overall RM score.
    c = pl.read_csv(an / "correlations.csv")
    top = c.filter((pl.col("section") == "overall") & (pl.col("feature") == "bench_a"))
    assert (top["spearman_rho"] > 0.8).all()
    rep = subprocess.run(base + ["analysis", "--report", str(tmp_path / "report.html")] + conf,
                         capture_output=True, text=True)
    assert rep.returncode == 0, rep.stderr[-3000:]
    html = (tmp_path / "report.html").read_text(errors="ignore")
    assert "correlations" in html and len(html) > 100_000
    # The selection section leads with what holds out of sample: the report lists a labelled
    # subcategory by its labels, so the out-of-sample figure comes first, the paper's
    # in-sample Figure 6 second.
    labels = dict(re.findall(r'"results/figures/(selection_\w+)\.png": \{[^{}]*?"labels": '
                             r'\{"figure": "([^"]+)"\}', html))
    assert sorted(labels, key=labels.get)[:2] == ["selection_coverage", "selection_in_sample"]
    assert "IN-SAMPLE" in labels["selection_in_sample"]
