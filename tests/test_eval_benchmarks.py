"""Loading and validating benchmark data: columns, subsets, formats, toy-set derivation."""

from __future__ import annotations

import json

import polars as pl
import pytest

from rmselect.eval.benchmarks import BenchmarkDataError, load_benchmark, prepare
from rmselect.eval.benchmarks.rewardbench import RB1_OFFICIAL_WEIGHTS, RB1_ROWS
from rmselect.eval.toysets import derive_rewardbench2, derive_rmbench


def v1(subsets: list[str]) -> pl.DataFrame:
    n = len(subsets)
    return pl.DataFrame(
        {
            "prompt": [f"p{i}" for i in range(n)],
            "chosen": [f"c{i}" for i in range(n)],
            "rejected": [f"r{i}" for i in range(n)],
            "subset": subsets,
            "id": list(range(n)),
        }
    )


def test_paper_counts():
    assert sum(RB1_ROWS.values()) == 2985 and len(RB1_ROWS) == 23
    assert RB1_OFFICIAL_WEIGHTS["math-prm"] == 6 * 164


def test_local_jsonl_loads_with_items_interleaved(tmp_path):
    p = tmp_path / "rb.jsonl"
    v1(["hep-go", "donotanswer"]).write_ndjson(p)
    data = load_benchmark("rewardbench", {"path": str(p)})
    assert data.n_examples == 2 and data.items.height == 4
    assert data.items["role"].to_list() == ["chosen", "rejected", "chosen", "rejected"]
    assert data.items["response"].to_list() == ["c0", "r0", "c1", "r1"]
    assert data.present_subsets == ["donotanswer", "hep-go"]  # benchmark order
    assert len(data.missing_subsets) == 21
    assert data.source == str(p)


def test_unknown_subset_is_an_error_naming_it_unless_ignored(capsys):
    df = v1(["hep-go", "hep-cobol", "hep-cobol"])
    with pytest.raises(BenchmarkDataError, match=r"unknown subset\(s\) 'hep-cobol' \(2 rows\).*ignore_unknown_subsets"):
        prepare("rewardbench", df, "x.jsonl")
    data = prepare("rewardbench", df, "x.jsonl", ignore_unknown_subsets=True)
    assert data.ignored_subsets == {"hep-cobol": 2} and data.n_examples == 1
    assert "ignoring unknown subset" in capsys.readouterr().err


def test_prior_subsets_need_the_switch():
    with pytest.raises(BenchmarkDataError, match="include_prior_sets"):
        prepare("rewardbench", v1(["shp"]), "x")
    assert prepare("rewardbench", v1(["shp"]), "x", include_prior_sets=True).n_examples == 1


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.drop("rejected"), r"missing column\(s\) rejected"),
        (lambda d: d.with_columns(pl.lit(1).alias("id")), r"duplicate id\(s\) 1"),
        (lambda d: d.with_columns(pl.lit(None, pl.Utf8).alias("subset")), "empty 'subset'"),
        (lambda d: d.with_columns(pl.lit(3).alias("chosen")), r"row 1 .*field 'chosen' must be text"),
    ],
)
def test_bad_v1_data_names_the_problem(change, message):
    with pytest.raises(BenchmarkDataError, match=message):
        prepare("rewardbench", change(v1(["hep-go", "hep-js"])), "bench.jsonl")


def test_rewardbench2_checks_ties_ids_and_single_chosen():
    base = {"prompt": "p", "chosen": ["a"], "rejected": ["b", "c", "d"]}
    with pytest.raises(BenchmarkDataError, match="Ties ids must look like 'ref:<n>'"):
        prepare("rewardbench2", pl.DataFrame([{**base, "id": "7", "subset": "Ties"}]), "x")
    with pytest.raises(BenchmarkDataError, match="needs? exactly one"):
        prepare("rewardbench2", pl.DataFrame([{**base, "id": "7", "subset": "Math", "chosen": ["a", "b"]}]), "x")
    data = prepare("rewardbench2", pl.DataFrame([{**base, "id": "tied:3", "subset": "Ties"}]), "x")
    assert data.examples["tie_kind"][0] == "tied" and data.examples["tie_prompt"][0] == 3


def test_rmbench_needs_three_styles_and_accepts_domain():
    row = {"id": "1", "prompt": "p", "chosen": ["a", "b", "c"], "rejected": ["d", "e", "f"], "domain": "code"}
    assert prepare("rmbench", pl.DataFrame([row]), "x").present_subsets == ["code"]
    with pytest.raises(BenchmarkDataError, match="need 3 responses each"):
        prepare("rmbench", pl.DataFrame([{**row, "chosen": ["a"]}]), "x")


def test_hub_entry_error_names_the_dataset(monkeypatch):
    import datasets

    def boom(*a, **k):
        raise ConnectionError("offline and not cached")

    monkeypatch.setattr(datasets, "load_dataset", boom)
    with pytest.raises(BenchmarkDataError, match="allenai/reward-bench split=filtered.*cache"):
        load_benchmark("rewardbench", {"hub": "allenai/reward-bench"})


def test_toy_derivations_are_valid_sets():
    src = v1(["alpacaeval-easy"] * 4 + ["math-prm", "hep-go", "hep-go", "xstest-should-respond"])
    src = src.with_columns(pl.col("id").cast(pl.Utf8))
    rb2 = derive_rewardbench2(src, n_ties=2)
    data = prepare("rewardbench2", pl.DataFrame(rb2), "derived")
    assert set(data.present_subsets) == {"Focus", "Math", "Factuality", "Safety", "Ties"}
    first = rb2[0]
    assert first["chosen"] == ["c0"] and first["rejected"] == ["r0", "r1", "r2"]
    assert sum(1 for r in rb2 if r["subset"] == "Ties") == 4
    rmb = derive_rmbench(src)
    data = prepare("rmbench", pl.DataFrame(rmb), "derived")
    assert set(data.present_subsets) == {"chat", "math", "code", "safety-response"}
    assert json.dumps(rmb[0]["chosen"][0]) == '"c0"' and rmb[0]["chosen"][2].startswith("## Answer")


def test_hub_path_uses_load_dataset_with_the_default_split(monkeypatch):
    import datasets

    calls = []

    def fake(hub, split=None, **kw):
        calls.append((hub, split))
        if hub == "allenai/preference-test-sets":
            return datasets.Dataset.from_dict({"prompt": ["p"], "chosen": ["c"], "rejected": ["r"]})
        return datasets.Dataset.from_pandas(v1(["hep-go", "math-prm"]).to_pandas())

    monkeypatch.setattr(datasets, "load_dataset", fake)
    data = load_benchmark("rewardbench", {"hub": "allenai/reward-bench"})
    assert calls == [("allenai/reward-bench", "filtered")] and data.n_examples == 2
    assert data.source == "allenai/reward-bench split=filtered"
    # prior sets from the hub: one split per subset, a subset column added
    data = load_benchmark(
        "rewardbench",
        {"hub": "allenai/reward-bench"},
        include_prior_sets=True,
        prior_sets={"hub": "allenai/preference-test-sets"},
    )
    assert ("allenai/preference-test-sets", "shp") in calls
    assert set(data.present_subsets) == {"hep-go", "math-prm", "anthropic_helpful", "anthropic_hhh", "shp", "summarize"}
    with pytest.raises(BenchmarkDataError, match="no 'prior_sets' data set"):
        load_benchmark("rewardbench", {"hub": "allenai/reward-bench"}, include_prior_sets=True)


def test_eval_toy_sets_script_writes_a_loadable_set(tmp_path):
    from rmselect.eval.toysets import main

    src = tmp_path / "rb.jsonl"
    v1(["alpacaeval-easy"] * 3 + ["hep-go"] * 2).write_ndjson(src)
    out = tmp_path / "rb2.jsonl"
    assert main(["--source", json.dumps({"path": str(src)}), "--format", "rewardbench2", "--n-ties", "1", "--out", str(out)]) == 0
    data = load_benchmark("rewardbench2", {"path": str(out)})
    assert data.n_examples == 5 + 2 and "Ties" in data.present_subsets
    bad = tmp_path / "bad.jsonl"
    v1(["nope"]).write_ndjson(bad)
    assert main(["--source", json.dumps({"path": str(bad)}), "--format", "rmbench", "--out", str(tmp_path / "x.jsonl")]) == 1
    assert not (tmp_path / "x.jsonl").exists()
