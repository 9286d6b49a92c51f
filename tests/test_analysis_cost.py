"""Cost table from Snakemake benchmark files: stage mapping, model matching, ratio."""

from __future__ import annotations

import json

import pytest

from rmselect.analysis.cost import (
    DEFAULT_STAGES,
    cost_table,
    model_of,
    read_benchmarks,
    read_gpu_json,
    stage_of,
    summary,
)
from rmselect.analysis.data import AnalysisError

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _bench(path, s, cpu, rss=100.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{s}\t0:00:01\t{rss}\t1\t1\t1\t0\t0\t50\t{cpu}\n")


def test_model_of_prefers_the_longest_whole_name():
    models = ["toy-m", "toy-m-sft", "toy-s"]
    assert model_of("toy-m-sft.tsv", models) == "toy-m-sft"
    assert model_of("toy-m.tsv", models) == "toy-m"
    assert model_of("bt/toy-m/lr5e-06.tsv", models) == "toy-m"
    assert model_of("all.tsv", models) == "(none)"


def test_stage_of():
    assert stage_of("bench_model", DEFAULT_STAGES) == "benchmarks"
    assert stage_of("rm_train", DEFAULT_STAGES) == "rm_train"
    assert stage_of("something", DEFAULT_STAGES) == "other"


def test_table_and_ratio_by_hand(tmp_path):
    cost = tmp_path / "cost"
    _bench(cost / "bench_model" / "m1.tsv", 10, 8)
    _bench(cost / "bench_model" / "m2.tsv", 30, 20)
    _bench(cost / "presence_score" / "m1" / "web.tsv", 5, 4)
    _bench(cost / "rm_train" / "bt" / "m1" / "lr1e-06.tsv", 100, 90, rss=500)
    _bench(cost / "rm_train" / "bt" / "m1" / "lr2e-06.tsv", 100, 90, rss=700)
    _bench(cost / "rm_train" / "bt" / "m2" / "lr1e-06.tsv", 200, 180)
    rows = read_benchmarks(cost, ["m1", "m2"], DEFAULT_STAGES)
    gj = tmp_path / "benchmarks" / "m1" / "task.json"
    gj.parent.mkdir(parents=True)
    gj.write_text(json.dumps({"gpu_s": 7.5}))
    rows += read_gpu_json([{"glob": str(tmp_path / "benchmarks/*/*.json"),
                            "stage": "benchmarks", "rule": "bench_gpu"}], ["m1", "m2"])
    t = cost_table(rows, {"rm_train": {"m1": 2, "m2": 4}})
    m1 = t.filter((t["rule"] == "rm_train") & (t["model"] == "m1")).row(0, named=True)
    assert m1["jobs"] == 2 and m1["wall_s"] == 200 and m1["cpu_s"] == 180
    assert m1["max_rss_mb"] == 700 and m1["stage"] == "rm_train"
    s = {r["quantity"]: r for r in summary(t, ["bench_", "presence_"], ["rm_train"])
         .iter_rows(named=True)}
    # screening wall = 10 + 30 + 5 = 45; RM grid wall = 400 → 0.1125
    assert s["screening"]["wall_s"] == pytest.approx(45.0)
    assert s["rm_grid"]["wall_s"] == pytest.approx(400.0)
    assert s["screening_to_rm_grid_ratio"]["wall_s"] == pytest.approx(45 / 400)
    assert s["screening_to_rm_grid_ratio"]["cpu_s"] == pytest.approx(32 / 360)
    assert s["screening"]["gpu_s"] == pytest.approx(7.5)
    assert s["screening_to_rm_grid_ratio"]["gpu_s"] is None  # no GPU time in the RM grid
    assert s["total"]["wall_s"] == pytest.approx(445.0)
    # allocated GPU-seconds: m1 2 GPUs x 200 s + m2 4 GPUs x 200 s = 1200
    assert s["rm_grid"]["gpu_s_alloc"] == pytest.approx(1200.0)
    assert m1["gpu_s_alloc"] == pytest.approx(400.0)


def test_eval_rm_job_cost_per_model_and_objective(tmp_path):
    """One eval_rm job per (objective, model) scores every benchmark: eval_rm/{objective}/{model}.tsv."""
    cost = tmp_path / "cost"
    _bench(cost / "eval_rm" / "bt" / "m1.tsv", 12, 10)
    _bench(cost / "eval_rm" / "regression" / "m1.tsv", 14, 11)
    _bench(cost / "eval_rm" / "bt" / "m1-sft.tsv", 9, 8)
    _bench(cost / "eval_toy_sets" / "rmbench.tsv", 1, 1)
    rows = read_benchmarks(cost, ["m1", "m1-sft"], DEFAULT_STAGES)
    t = cost_table(rows, {"eval": {"m1": 1}})
    ev = {r["model"]: r for r in t.filter(t["rule"] == "eval_rm").iter_rows(named=True)}
    assert set(ev) == {"m1", "m1-sft"}
    assert ev["m1"]["jobs"] == 2 and ev["m1"]["wall_s"] == 26 and ev["m1"]["stage"] == "eval"
    assert ev["m1"]["gpu_s_alloc"] == pytest.approx(26.0)
    assert ev["m1-sft"]["jobs"] == 1 and ev["m1-sft"]["gpu_s_alloc"] == 0
    toy = t.filter(t["rule"] == "eval_toy_sets").row(0, named=True)
    assert toy["model"] == "(none)" and toy["stage"] == "eval"


def test_empty_cost_dir_gives_header_only(tmp_path):
    t = cost_table(read_benchmarks(tmp_path / "none", ["m"], DEFAULT_STAGES))
    assert t.height == 0 and "wall_s" in t.columns
    s = summary(t, ["bench_"], ["rm_train"])
    assert s.filter(s["quantity"] == "screening_to_rm_grid_ratio")["wall_s"][0] is None


def test_bad_benchmark_file_is_named(tmp_path):
    f = tmp_path / "cost" / "rule" / "x.tsv"
    f.parent.mkdir(parents=True)
    f.write_text("foo\tbar\n1\t2\n")
    with pytest.raises(AnalysisError, match="x.tsv"):
        read_benchmarks(tmp_path / "cost", [], DEFAULT_STAGES)
