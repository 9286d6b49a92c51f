"""LaTeX tables, Table 1 pivot and the Figure 1 family share."""

from __future__ import annotations

import polars as pl
import pytest

from rmselect.analysis.leaderboard import family_share
from rmselect.analysis.tables import latex_escape, posttraining_table, results_table, to_latex
from analysis_helpers import rm_frame


def test_latex_escape():
    assert latex_escape("a_b & 50% #1 {x} $y") == r"a\_b \& 50\% \#1 \{x\} \$y"


def test_to_latex_structure():
    df = pl.DataFrame({"model": ["m_1", "m2"], "score": [71.234, None]},
                      schema={"model": pl.String, "score": pl.Float64})
    tex = to_latex(df, "Cap", "tab:x", digits=1)
    assert r"\begin{tabular}{lr}" in tex
    assert r"m\_1 & 71.2 \\" in tex
    assert r"m2 & -- \\" in tex  # missing value
    assert tex.count(r"\toprule") == 1 and r"\label{tab:x}" in tex


def test_results_table_sorted_by_overall():
    rm = rm_frame([("a", "bt", 60.0), ("b", "bt", 70.0), ("c", "regression", 80.0)])
    t = results_table(rm, "bt")
    assert t["model"].to_list() == ["b", "a"]
    assert t.columns[:6] == ["model", "chat", "chat_hard", "safety", "reasoning", "overall"]


def test_posttraining_pivot():
    # the lineage table's layout: section "score" = overall, one row set per benchmark
    pt = pl.DataFrame({
        "lineage": ["L"] * 5, "model": ["base", "base", "sft", "sft", "sft"],
        "stage": ["base", "base", "sft", "sft", "sft"], "depth": [0, 0, 1, 1, 1],
        "objective": ["bt"] * 5, "benchmark": ["rewardbench"] * 4 + ["rmbench"],
        "section": ["chat", "score", "chat", "score", "score"],
        "score": [50.0, 60.0, 55.0, 63.0, 1.0], "delta_points": [None, None, 5.0, 3.0, 0.0],
        "delta_relative_pct": [None, None, 10.0, 5.0, 0.0],
    })
    t = posttraining_table(pt, "rewardbench")
    assert t.columns == ["objective", "lineage", "model", "stage", "chat", "overall"]
    assert t["model"].to_list() == ["base", "sft"]
    sft = t.filter(pl.col("model") == "sft").row(0, named=True)
    assert sft["chat"] == "55.0 (10.0%)" and sft["overall"] == "63.0 (5.0%)"
    base = t.filter(pl.col("model") == "base").row(0, named=True)
    assert base["chat"] == "50.0"


def test_family_share_top_k():
    lb = pl.DataFrame({"rank": ["3", "1", "2", "4"], "base_family": ["q", "l", "l", "g"]})
    s = family_share(lb, top=3)  # ranks 1..3: l, l, q
    d = dict(zip(s["base_family"], s["share_pct"]))
    assert d == pytest.approx({"l": 200 / 3, "q": 100 / 3})


def test_leaderboard_placeholder_without_csv(tmp_path):
    from rmselect.analysis.leaderboard import main

    assert main(["--out", str(tmp_path / "share.csv"), "--figure", str(tmp_path / "f.png")]) == 0
    assert pl.read_csv(tmp_path / "share.csv").height == 0
    assert (tmp_path / "f.png").exists() and (tmp_path / "f.pdf").exists()


def test_model_table_has_groups_and_defaults(tmp_path):
    from analysis_helpers import fixture_models_csv

    m = pl.read_csv(fixture_models_csv(tmp_path))
    row = m.filter(pl.col("model") == "famb-2b").row(0, named=True)
    # params 2.0 falls in medium [1, 5) whose default is fama-2b
    assert row["size_group"] == "medium" and row["group_default"] == "fama-2b"
    assert m.height == 12 and not m["candidate"].any()
