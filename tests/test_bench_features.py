"""Feature table, published-score import, parameter counts and the screening agreement."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import polars as pl
import pytest

from rmselect.bench import agreement, features, params, published

MODELS = {
    "Llama-3.2-1B-Instruct": "meta-llama/Llama-3.2-1B-Instruct",
    "Qwen2.5-0.5B-Instruct": "Qwen/Qwen2.5-0.5B-Instruct",
    "gemma-2-2b-it": "google/gemma-2-2b-it",
    "toyqwen-1-s": "toy:arch=qwen2",
}


# ----------------------------------------------------------------- published scores


def test_name_matching_tiers():
    nm = {"Gemma Two": "gemma-2-2b-it"}
    assert published.match_name("toyqwen-1-s", MODELS) == ("toyqwen-1-s", "exact")
    assert published.match_name("Qwen/Qwen2.5-0.5B-Instruct", MODELS)[1] == "hub_id"
    assert published.match_name("TOYQWEN-1-S", MODELS) == ("toyqwen-1-s", "case_insensitive")
    assert published.match_name("someorg/llama-3.2-1b-instruct", MODELS) == (
        "Llama-3.2-1B-Instruct", "basename")
    assert published.match_name("Gemma Two", MODELS, nm) == ("gemma-2-2b-it", "name_map")
    assert published.match_name("nope/unknown", MODELS) == (None, "no model of that name")
    model, how = published.match_name("x", {"m1": "org1/X", "m2": "org2/x"})
    assert model is None and how.startswith("ambiguous")


def _published_csv(tmp_path: Path) -> Path:
    p = tmp_path / "pub.csv"
    p.write_text(
        "fullname,IFEval,Average\n"
        "meta-llama/Llama-3.2-1B-Instruct,55.5,20.1\n"
        "Qwen/Qwen2.5-0.5B-Instruct,,12.0\n"          # missing IFEval
        "qwen/qwen2.5-0.5b-instruct,99,99\n"          # duplicate of the row above
        "mistralai/Mistral-7B-v0.1,40,18\n"           # not in our table
        "google/gemma-2-2b-it,n/a,15\n"               # non-numeric
    )
    return p


def test_import_reports_everything_and_never_zero_fills(tmp_path: Path):
    imp = published.import_published(
        _published_csv(tmp_path), "fullname",
        {"IFEval": "leaderboard_ifeval", "Average": "openllm_v2"}, MODELS,
    )
    assert imp.values["Llama-3.2-1B-Instruct"] == {"leaderboard_ifeval": 55.5, "openllm_v2": 20.1}
    assert imp.values["Qwen2.5-0.5B-Instruct"] == {"openllm_v2": 12.0}  # no 0 for the gap
    assert imp.values["gemma-2-2b-it"] == {"openllm_v2": 15.0}
    kinds = published.summarise_report(imp)
    assert kinds == {"matched": 3, "missing_value": 2, "duplicate": 1, "unmatched_name": 1,
                     "model_without_row": 1}
    unmatched = [r for r in imp.report if r["kind"] == "unmatched_name"]
    assert unmatched[0]["name"] == "mistralai/Mistral-7B-v0.1"
    missing = {(r["model"], r["feature"]) for r in imp.report if r["kind"] == "missing_value"}
    assert missing == {("Qwen2.5-0.5B-Instruct", "leaderboard_ifeval"),
                       ("gemma-2-2b-it", "leaderboard_ifeval")}


def test_import_bad_column_names_the_field(tmp_path: Path):
    with pytest.raises(ValueError, match="'Nope'.*name_column / columns"):
        published.import_published(_published_csv(tmp_path), "fullname", {"Nope": "x"}, MODELS)


# ----------------------------------------------------------------- feature table


def _run(score, mode="small"):
    return {"score": score, "mode": mode}


def test_feature_table_values_sources_and_missing(tmp_path: Path):
    models = ["A", "B", "C"]
    tasks = ["t1", "t2", "imp_only"]
    runs = {("A", "t1"): _run(50.0), ("A", "t2"): _run(30.0),
            ("B", "t1"): _run(10.0, "full"), ("B", "t2"): _run(None),
            ("C", "t1"): _run(0.0), ("C", "t2"): _run(20.0)}
    table = {"A": {"params_b": 1.0, "tokens_t": 2.0}, "B": {"params_b": 3.0, "tokens_t": None},
             "C": {"params_b": 0.5, "tokens_t": 1.0}}
    prm = {"A": {"source": "safetensors", "params_b": 1.02}, "B": {"source": "table",
                                                                   "params_b": 3.0}}
    imp = published.Imported(values={"A": {"t1": 99.0, "imp_only": 7.0, "extra": 1.5},
                                     "B": {"imp_only": 8.0}})
    pres = {"A": {"presence_wiki": -2.5}}
    wide, long = features.build(models, tasks, runs, prm, table, imp,
                                {"avg": ["t1", "t2"]}, pres, ["wiki", "code"])
    assert wide.columns == ["model", "t1", "t2", "imp_only", "avg", "extra", "params_b",
                            "tokens_t", "presence_wiki", "presence_code"]
    a, b, c = (wide.row(i, named=True) for i in range(3))
    assert a["t1"] == 50.0  # our run beats the imported 99
    assert a["avg"] == pytest.approx(40.0) and a["imp_only"] == 7.0 and a["extra"] == 1.5
    assert a["params_b"] == 1.02 and a["presence_wiki"] == -2.5 and a["presence_code"] is None
    assert b["t2"] is None and b["avg"] is None  # missing stays missing, so does its mean
    assert b["tokens_t"] is None and b["params_b"] == 3.0
    assert c["t1"] == 0.0  # a real zero is kept as 0
    src = {(r["model"], r["feature"]): r["source"] for r in long.iter_rows(named=True)}
    assert src[("A", "t1")] == "run-small" and src[("B", "t1")] == "run-full"
    assert src[("A", "imp_only")] == "imported" and src[("A", "avg")] == "derived"
    assert src[("A", "params_b")] == "checkpoint" and src[("B", "params_b")] == "table"
    assert src[("A", "presence_wiki")] == "presence" and ("B", "t2") not in src
    out = tmp_path / "f.csv"
    wide.write_csv(out)
    line_b = out.read_text().splitlines()[2]
    assert line_b.startswith("B,10.0,,8.0,,")  # empty cells, not zeros


# ----------------------------------------------------------------- parameters


def _write_safetensors(path: Path, shapes: dict[str, list[int]]) -> None:
    header, offset = {}, 0
    for name, shape in shapes.items():
        n = 1
        for d in shape:
            n *= d
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + 4 * n]}
        offset += 4 * n
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)


def test_param_count_from_headers(tmp_path: Path):
    d = tmp_path / "m"
    d.mkdir()
    _write_safetensors(d / "model.safetensors", {"emb": [100, 8], "w": [8, 8], "b": [8]})
    assert params.count_folder(d) == 800 + 64 + 8
    rec = params.count_params("m", str(d), "toy", params_b_table=872e-9, tokens_t_table=1.0)
    assert rec["params"] == 872 and rec["warning"] is None and rec["source"] == "safetensors"
    rec = params.count_params("m", str(d), "toy", params_b_table=1e-6, tokens_t_table=None)
    assert rec["warning"] and "12.8% apart" in rec["warning"]
    # sharded: the index lists two shards
    s = tmp_path / "s"
    s.mkdir()
    _write_safetensors(s / "a.safetensors", {"x": [10, 10]})
    _write_safetensors(s / "b.safetensors", {"y": [5]})
    (s / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"x": "a.safetensors", "y": "b.safetensors"}}))
    assert params.count_folder(s) == 105


def test_hub_model_without_cache_uses_table(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    rec = params.count_params("x", "org/not-cached-model", "hub", 7.0, 2.0)
    assert rec["source"] == "table" and rec["params_b"] == 7.0 and rec["params"] is None


def test_missing_local_model_is_a_clear_error(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="model 'x'.*build the model first"):
        params.count_params("x", str(tmp_path / "nope"), "toy", 1.0, None)


# ----------------------------------------------------------------- agreement


def test_screening_agreement_hand_computed():
    models = ["a", "b", "c", "d"]
    small_scores = [10.0, 20.0, 40.0, 30.0]
    full_scores = [12.0, 18.0, 35.0, 36.0]
    small = {(m, "t"): {"score": s, "wall_s": 1.0, "items_used": 10, "n_requested": 10}
             for m, s in zip(models, small_scores)}
    full = {(m, "t"): {"score": s, "wall_s": 4.0, "items_used": 40}
            for m, s in zip(models, full_scores)}
    df = agreement.agreement(small, full, ["t"], models)
    row = df.row(0, named=True)
    # ranks small 1,2,4,3 vs full 1,2,3,4: d^2 = 0+0+1+1 = 2, rho = 1 - 6*2/(4*15) = 0.8
    assert row["spearman"] == pytest.approx(0.8)
    assert row["mae"] == pytest.approx((2 + 2 + 5 + 6) / 4)
    assert row["compute_saved"] == pytest.approx(1 - 4 / 16)
    assert row["items_small"] == 10 and row["items_full"] == 40
    all_row = df.row(1, named=True)
    assert all_row["task"] == "ALL" and all_row["spearman"] == pytest.approx(0.8)
    # a constant side has no rank correlation (empty, not 0)
    const = {k: dict(v, score=5.0) for k, v in small.items()}
    assert agreement.agreement(const, full, ["t"], models).row(0, named=True)["spearman"] is None


# ----------------------------------------------------------------- rule arguments


def test_rule_arguments_round_trip():
    import shlex

    from rmselect.dag import bench as smk
    from rmselect.bench.run import Settings
    from rmselect.bench.spec import TaskSpec, bench_config
    from rmselect.config import load_study_file

    study = load_study_file("config/paper.yaml")
    bench = bench_config(study.config)
    settings = Settings.from_dict(json.loads(shlex.split(smk.settings_arg(bench, "full"))[0]))
    assert settings.mode == "full" and settings.batch_size == "auto" and settings.threads == 1
    argv = shlex.split(smk.specs_arg(bench, ["squadv2", "humaneval"]))
    specs = [TaskSpec.from_dict(json.loads(a)) for a in argv[1::2]]
    assert specs[0] == bench.tasks["squadv2"] and specs[1].include_path.endswith("lm_tasks")
    assert smk.task_files(bench, ["humaneval", "mbpp"]) == ["workflow/rmselect/bench/lm_tasks"]
    assert smk.run_flags(study, "Phi-3-small-8k-instruct").endswith("--trust-remote-code")
    assert "--trust-remote-code" not in smk.run_flags(study, "gemma-2-2b-it")
    assert smk.presence_domains({"presence": {"domains": {"wiki": {}, "code": {}}}}) == [
        "wiki", "code"]
    assert smk.presence_domains({"presence": {}}) == []


def test_features_script_end_to_end(tmp_path: Path):
    runs = tmp_path / "benchmarks"
    for m, score in (("toyqwen-1-s", 40.0), ("Qwen2.5-0.5B-Instruct", 0.0)):
        (runs / m).mkdir(parents=True)
        (runs / m / "t1.json").write_text(json.dumps({"score": score, "mode": "small"}))
    (runs / "toyqwen-1-s" / "params.json").write_text(
        json.dumps({"source": "safetensors", "params_b": 0.00014}))
    pres = tmp_path / "summary.csv"
    pres.write_text("model,domain,mean,std,n_docs\ntoyqwen-1-s,code,-3.5,0.2,64\n")
    pub = tmp_path / "pub.csv"
    pub.write_text("name,Avg\nqwen/qwen2.5-0.5b-instruct,12.5\nunknown/x,3\n")
    models = {"toyqwen-1-s": {"source": "toy:a", "params_b": 0.0001, "tokens_t": None},
              "Qwen2.5-0.5B-Instruct": {"source": "Qwen/Qwen2.5-0.5B-Instruct",
                                        "params_b": 0.49, "tokens_t": 18.0}}
    out = tmp_path / "tables"
    rc = features.main([
        "--models", json.dumps(models), "--tasks", json.dumps(["t1"]),
        "--run-tasks", json.dumps(["t1"]), "--runs-dir", str(runs),
        "--published", json.dumps({"path": str(pub), "name_column": "name",
                                   "columns": {"Avg": "openllm_v2"}}),
        "--presence", str(pres), "--presence-domains", json.dumps(["code"]),
        "--out", str(out / "f.csv"), "--out-sources", str(out / "s.csv"),
        "--out-published", str(out / "p.csv"),
    ])
    assert rc == 0
    lines = (out / "f.csv").read_text().splitlines()
    assert lines[0] == "model,t1,openllm_v2,params_b,tokens_t,presence_code"
    assert lines[1] == "toyqwen-1-s,40.0,,0.00014,,-3.5"
    assert lines[2] == "Qwen2.5-0.5B-Instruct,0.0,12.5,0.49,18.0,"
    report = pl.read_csv(out / "p.csv")
    assert set(report["kind"]) == {"matched", "unmatched_name", "model_without_row"}
    src = pl.read_csv(out / "s.csv")
    assert src.filter(pl.col("feature") == "openllm_v2")["source"].to_list() == ["imported"]


def test_probe_features_join_the_table_as_percent(tmp_path: Path):
    """The probe stage's two accuracies become probe_zero_shot / probe_linear (x 100), with
    source ``probe``; without a probe folder the table has no probe columns at all."""
    for m, (zs, lp) in {"a": (0.55, 0.7), "b": (0.5, 0.625)}.items():
        (tmp_path / f"{m}.json").write_text(json.dumps({"zero_shot": zs, "linear_probe": lp}))
    probes = features.read_probes(tmp_path, ["a", "b"])
    table = {"a": {"params_b": 1.0, "tokens_t": None}, "b": {"params_b": 2.0, "tokens_t": 1.0}}
    wide, long = features.build(["a", "b"], [], {}, {}, table, probes=probes)
    assert wide.columns[-2:] == ["probe_zero_shot", "probe_linear"]
    assert wide["probe_linear"].to_list() == [70.0, 62.5]
    assert wide["probe_zero_shot"].to_list() == pytest.approx([55.0, 50.0])
    assert set(long.filter(pl.col("feature").str.starts_with("probe_"))["source"]) == {"probe"}
    plain, _ = features.build(["a", "b"], [], {}, {}, table)
    assert not any(c.startswith("probe_") for c in plain.columns)
    with pytest.raises(FileNotFoundError):
        features.read_probes(tmp_path, ["a", "missing"])
