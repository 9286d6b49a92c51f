"""eval_rm end to end on a fake trained RM folder (final/ + selected.json), and the tables."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from rmselect.eval import run
from rmselect.eval.metrics import ScoreOptions, score
from rmselect.eval.table import (
    TABLE_COLS,
    ResultsImportError,
    build_tables,
    evaluated_pairs,
    read_import,
)
from rmselect.eval.table import main as table_main
from support.tiny_eval import build_tiny_rm
from rmselect.eval.toysets import derive_rewardbench2, derive_rmbench

REPO = Path(__file__).resolve().parents[1]

SUBSETS = ["alpacaeval-easy"] * 3 + ["llmbar-natural"] * 2 + ["donotanswer"] * 2 + ["math-prm", "hep-go"]


def write_v1(path, subsets=SUBSETS):
    rows = [
        {
            "prompt": f"question number {i} about cats",
            "chosen": f"a helpful answer {i} " * (1 + i % 3),
            "rejected": f"no {i}",
            "subset": s,
            "id": i,
        }
        for i, s in enumerate(subsets)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("rm") / "results" / "rm" / "regression" / "toyx"
    final = build_tiny_rm(
        root / "final",
        ["question about cats", "a helpful answer", "no"] * 5,
        num_labels=5,
        weights=[1.0, 0.5, 0.5, 0.0, -0.5],
        seed=7,
    )
    sel = root / "selected.json"
    sel.write_text(
        json.dumps(
            {"model": "toyx", "objective": "regression", "lr": 5e-6, "step": 40,
             "val_accuracy": 0.61, "weights": [1.0, 0.5, 0.5, 0.0, -0.5], "candidates": []}
        )
    )
    return final, sel


def args(final, sel, data, out, bench="rewardbench", extra=()):
    return [
        "--benchmark", bench, "--data", json.dumps(data), "--rm", str(final),
        "--selected", str(sel), "--model", "toyx", "--objective", "regression",
        "--dtype", "float32", "--device", "cpu", "--n-boot", "50", "--seed", "3",
        "--out-json", str(out / f"{bench}.json"), "--out-scores", str(out / f"{bench}.scores.parquet"),
        *extra,
    ]


def test_eval_rm_writes_scores_and_json(trained, tmp_path):
    final, sel = trained
    data = tmp_path / "rb.jsonl"
    write_v1(data)
    assert run.main(args(final, sel, {"path": str(data)}, tmp_path, extra=["--batch-size", "4"])) == 0
    res = json.loads((tmp_path / "rewardbench.json").read_text())
    per = pl.read_parquet(tmp_path / "rewardbench.scores.parquet")
    assert per.columns[:5] == ["id", "subset", "score_chosen", "score_rejected", "correct"]
    assert per.height == len(SUBSETS)
    assert per["correct"].to_list() == (per["score_chosen"] > per["score_rejected"]).cast(float).to_list()
    prov = res["provenance"]
    assert prov["selected"]["lr"] == 5e-6
    assert prov["selected"]["step"] == 40 and prov["merge_weights"] == [1.0, 0.5, 0.5, 0.0, -0.5]
    assert prov["n_examples"] == 9 and prov["n_texts"] == 18 and prov["data_source"] == str(data)
    assert res["model"] == "toyx" and res["objective"] == "regression"
    assert set(res["sections"]) == {"chat", "chat_hard", "safety", "reasoning"}
    assert "hep-rust" in res["missing_subsets"]
    # the JSON is the metrics of the per-example file
    again = score("rewardbench", per, ScoreOptions(n_boot=50, seed=3))
    assert res["overall"]["score"] == pytest.approx(again["overall"]["score"])
    assert res["overall"]["lo"] == pytest.approx(again["overall"]["lo"])
    assert res["subsets"]["alpacaeval-easy"]["n"] == 3


def test_eval_rm_bad_data_writes_nothing(trained, tmp_path, capsys):
    final, sel = trained
    data = tmp_path / "rb.jsonl"
    write_v1(data, ["alpacaeval-easy", "not-a-subset"])
    assert run.main(args(final, sel, {"path": str(data)}, tmp_path)) == 1
    assert "unknown subset(s) 'not-a-subset'" in capsys.readouterr().err
    assert not list(tmp_path.glob("rewardbench*"))


def test_eval_rm_rmbench_format(trained, tmp_path):
    final, sel = trained
    src = pl.DataFrame(write_v1(tmp_path / "v1.jsonl")).with_columns(pl.col("id").cast(pl.Utf8))
    rows = derive_rmbench(src)
    (tmp_path / "rmb.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert run.main(args(final, sel, {"path": str(tmp_path / "rmb.jsonl")}, tmp_path, "rmbench")) == 0
    res = json.loads((tmp_path / "rmbench.json").read_text())
    assert {"easy", "normal", "hard", "chat", "safety"} <= set(res["sections"])
    per = pl.read_parquet(tmp_path / "rmbench.scores.parquet")
    assert len(per["scores_chosen"][0]) == 3


def three_sets(tmp_path):
    """RewardBench v1, RewardBench 2 and RM-Bench files derived from one toy v1 set."""
    src = pl.DataFrame(write_v1(tmp_path / "rb.jsonl")).with_columns(pl.col("id").cast(pl.Utf8))
    for name, rows in (("rb2", derive_rewardbench2(src, n_ties=2)), ("rmb", derive_rmbench(src))):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {
        "rewardbench": {"path": str(tmp_path / "rb.jsonl")},
        "rewardbench2": {"path": str(tmp_path / "rb2.jsonl"), "limit_per_subset": 2},
        "rmbench": {"path": str(tmp_path / "rmb.jsonl")},
    }


def group(bench, data, out):
    return ["--benchmark", bench, "--data", json.dumps(data), "--out-json", str(out / f"{bench}.json"),
            "--out-scores", str(out / f"{bench}.scores.parquet")]  # fmt: skip


def common(final, sel, extra=()):
    return ["--rm", str(final), "--selected", str(sel), "--model", "toyx", "--objective", "regression",
            "--dtype", "float32", "--device", "cpu", "--n-boot", "50", "--seed", "3",
            "--batch-size", "4", *extra]  # fmt: skip


#: Provenance fields that differ between calls (timings, the call's benchmark list).
RUN_FIELDS = ("wall_s", "scoring_wall_s", "model_load_s", "created_utc", "job_benchmarks")


def test_one_call_scores_several_benchmarks_like_separate_calls(trained, tmp_path, monkeypatch):
    final, sel = trained
    sets = three_sets(tmp_path)
    one, sep = tmp_path / "one", tmp_path / "sep"
    one.mkdir(), sep.mkdir()
    from rmselect.eval import scorer

    loads = []
    real_load = scorer.load_reward_model
    monkeypatch.setattr(scorer, "load_reward_model", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    argv = [x for b, d in sets.items() for x in group(b, d, one)]
    assert run.main(argv + common(final, sel, ["--limit-per-subset", "1"])) == 0
    assert len(loads) == 1  # the RM is loaded once for the three benchmarks
    for bench, data in sets.items():  # the same settings, one benchmark per call
        assert run.main(group(bench, data, sep) + common(final, sel, ["--limit-per-subset", "1"])) == 0
    assert len(loads) == 4
    for bench in sets:
        a = json.loads((one / f"{bench}.json").read_text())
        b = json.loads((sep / f"{bench}.json").read_text())
        assert a["benchmark"] == bench and a["provenance"]["job_benchmarks"] == list(sets)
        assert b["provenance"]["job_benchmarks"] == [bench]
        for d in (a, b):
            for k in RUN_FIELDS:
                d["provenance"].pop(k)
        assert a == b, bench
        assert a["overall"]["score"] is not None
        pa = pl.read_parquet(one / f"{bench}.scores.parquet")
        pb = pl.read_parquet(sep / f"{bench}.scores.parquet")
        assert pa.equals(pb), bench
    # the per-benchmark limit in --data wins over --limit-per-subset; the others use it
    rb = json.loads((one / "rewardbench.json").read_text())
    rb2 = json.loads((one / "rewardbench2.json").read_text())
    assert rb["provenance"]["limit_per_subset"] == 1 and rb["subsets"]["alpacaeval-easy"]["n"] == 1
    assert rb2["provenance"]["limit_per_subset"] == 2


def test_several_benchmarks_write_nothing_when_one_fails(trained, tmp_path, capsys):
    final, sel = trained
    sets = three_sets(tmp_path)
    write_v1(tmp_path / "bad.jsonl", ["alpacaeval-easy", "not-a-subset"])
    out = tmp_path / "out"
    out.mkdir()
    argv = group("rewardbench2", sets["rewardbench2"], out) + group("rewardbench", {"path": str(tmp_path / "bad.jsonl")}, out)
    assert run.main(argv + common(final, sel)) == 1
    assert "unknown subset(s) 'not-a-subset'" in capsys.readouterr().err
    assert not list(out.iterdir())
    # the per-benchmark options must pair up, and no output may be given twice
    argv = group("rewardbench", sets["rewardbench"], out) + ["--benchmark", "rmbench"]
    assert run.main(argv + common(final, sel)) == 1
    assert "once per --benchmark" in capsys.readouterr().err
    argv = group("rewardbench", sets["rewardbench"], out) * 2
    assert run.main(argv + common(final, sel)) == 1
    assert "more than once" in capsys.readouterr().err
    assert not list(out.iterdir())


def test_one_call_scores_several_rms_like_separate_calls(trained, tmp_path, monkeypatch):
    """eval.jobs: per_model — a model's RMs in one process, argument sets cut at --next-rm."""
    final, sel = trained
    bt = tmp_path / "results" / "rm" / "bt" / "toyx"
    bt_final = build_tiny_rm(bt / "final", ["question about cats", "a helpful answer", "no"] * 5,
                             num_labels=1, seed=11)  # fmt: skip
    bt_sel = bt / "selected.json"
    bt_sel.write_text(json.dumps({"model": "toyx", "objective": "bt", "lr": 1e-5, "step": 20,
                                  "val_accuracy": 0.55, "candidates": []}))  # fmt: skip
    sets = three_sets(tmp_path)
    from rmselect.eval import scorer

    loads = []
    real_load = scorer.load_reward_model
    monkeypatch.setattr(scorer, "load_reward_model", lambda *a, **k: loads.append(a) or real_load(*a, **k))

    def rm_set(out, rm, selected, objective):
        argv = [x for b, d in sets.items() for x in group(b, d, out)] + common(rm, selected)
        argv[argv.index("--objective") + 1] = objective
        return argv

    dirs = {k: tmp_path / k for k in ("one_reg", "one_bt", "sep_reg", "sep_bt")}
    for d in dirs.values():
        d.mkdir()
    argv = rm_set(dirs["one_reg"], final, sel, "regression") + [run.NEXT_RM] + rm_set(
        dirs["one_bt"], bt_final, bt_sel, "bt"
    )
    assert run.main(argv) == 0
    assert [a[0] for a in loads] == [str(final), str(bt_final)]  # each RM loaded once, in order
    assert run.main(rm_set(dirs["sep_reg"], final, sel, "regression")) == 0
    assert run.main(rm_set(dirs["sep_bt"], bt_final, bt_sel, "bt")) == 0
    for obj, tag in (("regression", "reg"), ("bt", "bt")):
        for bench in sets:
            a = json.loads((dirs[f"one_{tag}"] / f"{bench}.json").read_text())
            b = json.loads((dirs[f"sep_{tag}"] / f"{bench}.json").read_text())
            assert a["objective"] == obj and a["provenance"]["rm_path"].endswith(f"{obj}/toyx/final")
            for d in (a, b):
                for k in RUN_FIELDS:
                    d["provenance"].pop(k)
            assert a == b, (obj, bench)
            pa = pl.read_parquet(dirs[f"one_{tag}"] / f"{bench}.scores.parquet")
            assert pa.equals(pl.read_parquet(dirs[f"sep_{tag}"] / f"{bench}.scores.parquet"))
    # the two RMs really differ (a mix-up of the sets would make the comparison vacuous)
    ra = pl.read_parquet(dirs["one_reg"] / "rewardbench.scores.parquet")["score_chosen"]
    rb = pl.read_parquet(dirs["one_bt"] / "rewardbench.scores.parquet")["score_chosen"]
    assert not np.allclose(ra.to_numpy(), rb.to_numpy())


def test_several_rms_check_every_set_before_scoring(trained, tmp_path, capsys):
    final, sel = trained
    sets = three_sets(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    one = group("rewardbench", sets["rewardbench"], out) + common(final, sel)
    # the same outputs in two sets: refused before any RM is scored
    assert run.main(one + [run.NEXT_RM] + one) == 1
    assert "more than one RM" in capsys.readouterr().err
    assert not list(out.iterdir())
    # a bad option in the second set stops the call before the first set is scored
    with pytest.raises(SystemExit):
        run.main(one + [run.NEXT_RM] + one[:-2] + ["--no-such-option"])
    with pytest.raises(SystemExit):
        run.main(one + [run.NEXT_RM])
    assert "one of them is empty" in capsys.readouterr().err
    assert not list(out.iterdir())
    # bad data for the second RM: the first RM is scored, but nothing of the call is written
    write_v1(tmp_path / "bad.jsonl", ["alpacaeval-easy", "not-a-subset"])
    out2 = tmp_path / "out2"
    out2.mkdir()
    second = group("rmbench", {"path": str(tmp_path / "bad.jsonl")}, out2) + common(final, sel)
    assert run.main(one + [run.NEXT_RM] + second) == 1
    assert "not-a-subset" in capsys.readouterr().err
    assert not list(out.iterdir()) and not list(out2.iterdir())


def test_script_help():
    out = subprocess.run(
        [sys.executable, str(REPO / "workflow/scripts/eval_rm.py"), "--help"],
        capture_output=True, text=True, env={"PYTHONPATH": str(REPO / "workflow"), "PATH": ""},
    )
    assert out.returncode == 0 and "--benchmark" in out.stdout
    assert "once per --benchmark" in out.stdout  # how to score several benchmarks in one call


# ----------------------------------------------------------------- tables and imports

HEADER = "model,objective,benchmark,chat,chat_hard,safety,reasoning,score,score_lo,score_hi,source\n"


def eval_json(path, model, objective, chat=80.0, hard=40.0, safety=60.0, reasoning=70.0):
    sections = {
        k: {"score": v, "lo": v - 5, "hi": v + 5}
        for k, v in {"chat": chat, "chat_hard": hard, "safety": safety, "reasoning": reasoning}.items()
    }
    overall = (chat + hard + safety + reasoning) / 4
    path.write_text(
        json.dumps(
            {"benchmark": "rewardbench", "model": model, "objective": objective,
             "sections": sections, "overall": {"score": overall, "lo": overall - 3, "hi": overall + 3}}
        )
    )
    return path


def test_import_validation_names_file_row_and_column(tmp_path):
    p = tmp_path / "imp.csv"
    cases = [
        (HEADER.replace("safety,", ""), r"missing column\(s\) safety"),
        (HEADER + "m1,bt,rewardbench,50,50,50,150,,,,\n", r"row 2 \(model 'm1'\): column 'reasoning': 150 is outside 0-100"),
        (HEADER + "m1,dpo,rewardbench,50,50,50,50,,,,\n", r"row 2 \(model 'm1'\): column 'objective'"),
        (HEADER + "m9,bt,rewardbench,50,50,50,50,,,,\n", r"column 'model': not in the model table"),
        (HEADER + "m1,bt,,50,50,50,50,70,,,\n", r"column 'score': 70.0 but the mean of the four sections is 50.00"),
        (HEADER + "m1,bt,,50,50,50,x,,,,\n", r"column 'reasoning': 'x' is not a number"),
        (HEADER + "m1,bt,,50,50,50,50,,,,\nm1,bt,,50,50,50,50,,,,\n", r"row 3 .*duplicate .* first seen in row 2"),
        (HEADER + "m1,bt,,50,50,50,50,,51,60,\n", r"score_lo'/'score_hi': \[51.0, 60.0\] does not contain"),
    ]
    for text, msg in cases:
        p.write_text(text)
        with pytest.raises(ResultsImportError, match=msg):
            read_import(p, ["m1", "m2"])
    p.write_text(HEADER + "m1,bt,,50,60,70,80,,,,\n")
    df = read_import(p, ["m1"])
    assert df.columns == TABLE_COLS
    assert df["score"][0] == 65.0 and df["source"][0] == "imported"


def test_evaluated_pairs_and_precedence(tmp_path):
    p = tmp_path / "imp.csv"
    p.write_text(HEADER + "m1,bt,,50,60,70,80,,,,\n")
    imp = read_import(p)
    pairs = evaluated_pairs(["m1", "m2"], ["bt", "regression"], imp, "imported")
    assert ("m1", "bt") not in pairs and len(pairs) == 3
    assert len(evaluated_pairs(["m1", "m2"], ["bt", "regression"], imp, "trained")) == 4
    with pytest.raises(ValueError, match="both imported and trained"):
        evaluated_pairs(["m1"], ["bt"], imp, "error")
    assert evaluated_pairs(["m1"], ["bt"], imp, train_and_evaluate=False) == []


def test_tables_merge_trained_and_imported(tmp_path):
    p = tmp_path / "imp.csv"
    p.write_text(HEADER + "m1,bt,,50,60,70,80,,,,\nm2,bt,,10,20,30,40,25,20,30,\n")
    imp = read_import(p)
    j = eval_json(tmp_path / "a.json", "m3", "regression")
    j2 = eval_json(tmp_path / "b.json", "m1", "bt", chat=99.0)
    table, long = build_tables([j], imp)
    assert table["model"].to_list() == ["m1", "m2", "m3"]
    assert table["source"].to_list() == ["imported", "imported", "trained"]
    assert table.filter(pl.col("model") == "m3")["score"][0] == pytest.approx(62.5)
    assert table.filter(pl.col("model") == "m3")["chat_lo"][0] == pytest.approx(75.0)
    assert long.filter((pl.col("model") == "m2") & (pl.col("section") == "overall"))["lo"][0] == 20.0
    # precedence between an imported and a trained (m1, bt)
    t_imp, _ = build_tables([j2], imp, "imported")
    assert t_imp.filter(pl.col("model") == "m1")["chat"][0] == 50.0
    t_tr, _ = build_tables([j2], imp, "trained")
    assert t_tr.filter(pl.col("model") == "m1")["chat"][0] == 99.0
    assert t_tr.height == 2
    out, out_all = tmp_path / "rm_scores.csv", tmp_path / "rm_scores_all.csv"
    assert table_main(["--evals", str(j), "--import-csv", str(p), "--out", str(out), "--out-all", str(out_all)]) == 0
    csv = pl.read_csv(out)
    assert csv.columns == TABLE_COLS and csv.height == 3
    # only imported rows: no evaluation needed at all
    assert table_main(["--import-csv", str(p), "--out", str(out), "--out-all", str(out_all)]) == 0
    assert pl.read_csv(out)["source"].to_list() == ["imported", "imported"]
    assert np.isnan(pl.read_csv(out)["chat_lo"].cast(pl.Float64).fill_null(np.nan)[0])


def test_incomplete_evaluation_is_an_empty_cell_with_its_reason(tmp_path):
    """A run whose reasoning section has no rows: empty reasoning and score, never the mean
    of the three sections present; the reason is in 'incomplete'; the analyses skip it."""
    from rmselect.analysis.data import align, load_rm_scores

    full = eval_json(tmp_path / "full.json", "m1", "bt")
    part = json.loads(eval_json(tmp_path / "part.json", "m2", "bt").read_text())
    part["sections"]["reasoning"] = {"score": None, "lo": None, "hi": None, "subsets": [],
                                     "missing_subsets": ["math-prm", "hep-cpp"]}
    part["overall"].update(score=60.0, complete=False)  # what aggregate() gives: a partial mean
    (tmp_path / "part.json").write_text(json.dumps(part))
    out, out_all = tmp_path / "rm_scores.csv", tmp_path / "rm_scores_all.csv"
    assert table_main(["--evals", str(full), str(tmp_path / "part.json"),
                       "--out", str(out), "--out-all", str(out_all)]) == 0
    csv = pl.read_csv(out)
    row = csv.filter(pl.col("model") == "m2").row(0, named=True)
    assert row["score"] is None and row["reasoning"] is None and row["chat"] is not None
    assert row["incomplete"] == "reasoning: no rows for math-prm, hep-cpp"
    assert csv.filter(pl.col("model") == "m1")["incomplete"][0] is None
    long = pl.read_csv(out_all)
    assert long.filter((pl.col("model") == "m2") & (pl.col("section") == "overall"))["score"][0] is None
    rm = load_rm_scores(out, "rewardbench")
    models = pl.DataFrame({"model": ["m1", "m2"], "family": ["a", "b"], "publisher": ["p", "p"],
                           "params_b": [1.0, 2.0], "stage": ["base", "base"],
                           "size_group": ["s", "s"], "in_population": [True, True],
                           "lineage": ["a", "b"]})
    feats = pl.DataFrame({"model": ["m1", "m2"], "f": [1.0, 2.0]})
    al = align(rm, feats, models, "bt", "drop_feature")
    assert al.models == ["m1"] and not np.isnan(al.y["overall"]).any()
