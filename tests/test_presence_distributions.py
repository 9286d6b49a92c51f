"""Presence summary, shared bins, Jensen–Shannon distance, sampling and the family reuse rule."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from rmselect.config import ModelSpec
from rmselect.datasets_io import DatasetError
from rmselect.presence import corpus, distributions as dist, reuse


def test_jsd_identical_is_zero_and_symmetric():
    p = [0.1, 0.4, 0.5]
    q = [0.3, 0.3, 0.4]
    assert dist.js_distance(p, p) == 0.0
    assert dist.js_distance(p, q) == pytest.approx(dist.js_distance(q, p), abs=1e-12)


def test_jsd_hand_computed_base2():
    # disjoint supports: the maximum, 1 bit
    assert dist.js_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    # P=(1,0), Q=(1/2,1/2), M=(3/4,1/4): KL(P||M)=log2(4/3), KL(Q||M)=1/2·log2(2/3)+1/2·log2(2)
    kl_p = math.log2(4 / 3)
    kl_q = 0.5 * math.log2(2 / 3) + 0.5
    assert dist.js_distance([1, 0], [0.5, 0.5]) == pytest.approx(math.sqrt((kl_p + kl_q) / 2))
    # counts are normalised first
    assert dist.js_distance([2, 0], [3, 3]) == pytest.approx(dist.js_distance([1, 0], [0.5, 0.5]))


def _scores() -> pl.DataFrame:
    rows = []
    for m, vals in {"A": [-1.0, -2.0, -3.0], "B": [-1.0, -2.0, -3.0], "C": [-3.0, -3.0, -3.0]}.items():
        for i, v in enumerate(vals):
            rows.append({"model": m, "domain": "d1", "doc_id": i, "n_tokens": 5, "score": v})
        rows.append({"model": m, "domain": "d2", "doc_id": 0, "n_tokens": 5, "score": -1.0})
    return pl.DataFrame(rows)


def test_summary_mean_std_n():
    s = dist.summarise(_scores())
    a = s.filter((pl.col("model") == "A") & (pl.col("domain") == "d1")).row(0, named=True)
    assert a["mean"] == pytest.approx(-2.0)
    assert a["std"] == pytest.approx(1.0)  # ddof=1 of (-1,-2,-3)
    assert a["n_docs"] == 3
    one = s.filter((pl.col("model") == "A") & (pl.col("domain") == "d2")).row(0, named=True)
    assert one["n_docs"] == 1 and one["std"] is None


def test_histograms_share_bins_within_domain():
    h = dist.histograms(_scores(), n_bins=2)
    d1 = h.filter(pl.col("domain") == "d1")
    # bins over [-3, -1] for every model: [-3,-2), [-2,-1]
    for m in ("A", "B", "C"):
        sub = d1.filter(pl.col("model") == m).sort("bin")
        assert sub["lo"].to_list() == [-3.0, -2.0]
        assert sub["hi"].to_list() == [-2.0, -1.0]
    assert d1.filter(pl.col("model") == "A").sort("bin")["count"].to_list() == [1, 2]
    assert d1.filter(pl.col("model") == "C").sort("bin")["count"].to_list() == [3, 0]
    # constant domain: widened by 0.5 each side
    d2 = h.filter((pl.col("domain") == "d2") & (pl.col("model") == "A")).sort("bin")
    assert d2["lo"].to_list() == [-1.5, -1.0]


def test_jsd_table_pairs_and_mean():
    j = dist.jsd_table(dist.histograms(_scores(), n_bins=2))
    get = lambda a, b, d: j.filter(  # noqa: E731
        (pl.col("model_a") == a) & (pl.col("model_b") == b) & (pl.col("domain") == d)
    )["js_distance"].item()
    assert j.height == 3 * 3 * 3  # ordered pairs × (2 domains + mean)
    assert get("A", "B", "d1") == 0.0 and get("A", "A", "mean") == 0.0
    # A = (1/3, 2/3), C = (1, 0) on d1; all equal on d2
    expected = dist.js_distance([1 / 3, 2 / 3], [1, 0])
    assert get("A", "C", "d1") == pytest.approx(expected)
    assert get("C", "A", "d1") == pytest.approx(expected)
    assert get("A", "C", "mean") == pytest.approx(expected / 2)


def test_main_writes_tables_and_figures(tmp_path):
    scores = _scores()
    for (m, d), df in scores.group_by(["model", "domain"]):
        (tmp_path / "p" / m).mkdir(parents=True, exist_ok=True)
        df.select("doc_id", "n_tokens", "score").write_parquet(tmp_path / "p" / m / f"{d}.parquet")
    (tmp_path / "p" / "B" / "presence.json").write_text(json.dumps({"scored_by": "A"}))
    out = tmp_path / "o"
    dist.main(["--presence-dir", str(tmp_path / "p"), "--models", "A", "B", "C",
               "--domains", "d1", "d2", "--bins", "2", "--summary", str(out / "summary.csv"),
               "--histograms", str(out / "h.csv"), "--jsd", str(out / "jsd.csv"),
               "--fig-distributions", str(out / "fd"), "--fig-jsd", str(out / "fj")])
    s = pl.read_csv(out / "summary.csv")
    assert s.columns == ["model", "domain", "mean", "std", "n_docs", "scored_by", "estimate",
                         "halfwidth", "estimator", "r2"]
    # no corpus directory: the estimate is the plain mean, with z·sd/sqrt(n) as half-width
    assert s["estimator"].unique().to_list() == ["mean"]
    assert s["estimate"].to_list() == s["mean"].to_list()
    assert s["halfwidth"].to_list() == pytest.approx(
        (1.959963984540054 * s["std"] / s["n_docs"].sqrt()).to_list())
    assert s.filter(pl.col("model") == "B")["scored_by"].to_list() == ["A", "A"]
    assert pl.read_csv(out / "jsd.csv").columns == ["model_a", "model_b", "domain", "js_distance"]
    for stem in ("fd", "fj"):
        assert (out / f"{stem}.png").stat().st_size > 0 and (out / f"{stem}.pdf").exists()


def test_missing_scores_name_model_and_domain(tmp_path):
    with pytest.raises(FileNotFoundError, match="model 'X', domain 'd'"):
        dist.load_scores(tmp_path, ["X"], ["d"])


# --------------------------------------------------------------------------- sampling


def test_sampling_is_seeded_filtered_and_keeps_row_ids(tmp_path):
    f = tmp_path / "c.jsonl"
    rows = [{"text": f"doc {i}", "meta": {"set": "Git" if i % 2 else "Book"}} for i in range(20)]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    entry = {"path": str(f), "filter": {"meta.set": "Git"}}
    a = corpus.sample_documents(entry, 4, seed=7)
    b = corpus.sample_documents(entry, 4, seed=7)
    assert a.equals(b) and a.height == 4
    assert all(i % 2 == 1 for i in a["doc_id"].to_list())  # only odd rows are "Git"
    assert a["text"].to_list() == [f"doc {i}" for i in a["doc_id"].to_list()]
    expected = np.sort(np.random.default_rng(7).choice(10, 4, replace=False))
    assert a["doc_id"].to_list() == [int(2 * k + 1) for k in expected]
    assert corpus.sample_documents(entry, 100, seed=7).height == 10  # all when fewer


def test_streaming_sample_with_filter(tmp_path):
    f = tmp_path / "c.jsonl"
    rows = [{"text": f"doc {i}", "meta": {"set": "Git" if i % 2 else "Book"}} for i in range(20)]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    entry = {"hub": "json", "data_files": str(f), "streaming": True, "filter": {"meta.set": "Git"}}
    s = corpus.sample_documents(entry, 3, seed=1)
    assert s.height == 3
    assert all(i % 2 == 1 for i in s["doc_id"].to_list())
    assert s["text"].to_list() == [f"doc {i}" for i in s["doc_id"].to_list()]


def test_bad_filter_column_is_named(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_text(json.dumps({"text": "x"}) + "\n")
    with pytest.raises(DatasetError, match="filter column 'meta.set'"):
        corpus.sample_documents({"path": str(f), "filter": {"meta.set": "Git"}}, 1, 0, what="d")


# --------------------------------------------------------------------------- family reuse


def _spec(name, params, family="f", tokens=1.0, stage="base"):
    return ModelSpec(name=name, source="org/" + name, publisher="P", family=family, params_b=params,
                     tokens_t=tokens, released="", stage=stage, parent=None)


def test_family_reuse_plan():
    specs = [_spec("s", 1.0), _spec("l", 7.0), _spec("m", 3.0), _spec("l2", 7.0),
             _spec("other-tokens", 0.5, tokens=2.0), _spec("unknown", 0.5, tokens=None),
             _spec("sft", 0.5, stage="sft"), _spec("g", 0.1, family="g")]
    models = {s.name: s for s in specs}
    plan = reuse.reuse_plan(models, models, enabled=True)
    assert plan == {"s": "l", "l": "l", "m": "l", "l2": "l2", "other-tokens": "other-tokens",
                    "unknown": "unknown", "sft": "sft", "g": "g"}
    assert reuse.reuse_plan(models, models, enabled=False) == {n: n for n in models}


def test_reuse_copies_files_with_provenance(tmp_path):
    src = tmp_path / "big"
    src.mkdir()
    df = pl.DataFrame({"doc_id": [0], "n_tokens": [3], "score": [-1.5]})
    df.write_parquet(src / "d.parquet")
    (src / "presence.json").write_text(json.dumps({"model": "big", "scored_by": "big"}))
    reuse.main(["--name", "small", "--from-dir", str(src), "--out-dir", str(tmp_path / "small"),
                "--domains", "d"])
    assert pl.read_parquet(tmp_path / "small" / "d.parquet").equals(df)
    prov = json.loads((tmp_path / "small" / "presence.json").read_text())
    assert prov["model"] == "small" and prov["reused_from"] == "big"


# --------------------------------------------------------------------------- DAG helpers


def _study(presence: dict):
    import yaml

    from rmselect.config import load_study

    repo = Path(__file__).resolve().parents[1]
    cfg = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    cfg["presence"] = presence
    return load_study(cfg, "config/config.yaml", repo)


def test_settings_defaults_references_and_flags():
    from rmselect.dag import presence as smk

    study = _study({"domains": {"d": {"path": "x.jsonl"}},
                    "reference_models": [{"name": "Crystal", "source": "LLM360/Crystal",
                                          "params_b": 7.0, "trust_remote_code": True}]})
    cfg = smk.settings(study)
    assert cfg["max_tokens"] == 2048 and cfg["prefix"] == "auto" and cfg["family_reuse"] is False
    assert cfg["seed"] == study.config["seed"]
    models = smk.presence_models(study, cfg)
    assert models[-1] == "Crystal" and len(models) == len(study.models) + 1
    assert smk.model_files(study, cfg, "Crystal") == []
    assert smk.params_b(study, cfg, "Crystal") == 7.0
    flags = smk.score_flags(study, cfg, "Crystal")
    assert "--model LLM360/Crystal" in flags and flags.endswith("--trust-remote-code")
    assert "--trust-remote-code" not in smk.score_flags(study, cfg, "toyllama-2-m")
    assert smk.model_files(study, cfg, "toyllama-2-m-sft") == [
        "results/variants/toyllama-2-m-sft/model/config.json"]


def test_settings_reject_reserved_domain_and_duplicate_reference():
    from rmselect.config import ConfigError
    from rmselect.dag import presence as smk

    with pytest.raises(ConfigError, match="presence.domains.mean"):
        smk.settings(_study({"domains": {"mean": {"path": "x"}}}))
    with pytest.raises(ConfigError, match=r"reference_models\[0\].name': 'toyllama-2-m'"):
        smk.settings(_study({"reference_models": [{"name": "toyllama-2-m", "source": "a/b"}]}))


def test_schema_rejects_unknown_presence_field():
    from rmselect.config import ConfigError

    with pytest.raises(ConfigError, match="presence"):
        _study({"n_doc": 3})
