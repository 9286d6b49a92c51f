"""Presence's cost terms (rmselect.presence.cost), the n_docs arithmetic
(rmselect.presence.precision) and the plan rows they feed, against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np

import polars as pl
import pytest

from rmselect.plan.cost_model import GpuProfile
from rmselect.presence import cost as pc
from rmselect.presence import precision as pp

PROF = GpuProfile("P", peak_tflops=100.0, mem_bw_gbs=1.0, mfu_train=0.5, mfu_forward=0.5)


def test_sample_cost_of_a_stream_by_hand():
    plan = {"presence": {"stream": {"total_docs": 1e6, "bytes_per_doc": 1500,
                                    "docs_per_cpu_s": 2000, "match_share": {"book": 0.001}}}}
    entry = {"hub": "x/y", "streaming": True, "pool_docs": 200}
    c = pc.sample_cost("book", entry, 100, plan)
    # 200 matching docs at a 0.1 % share: 200,000 read, 300 MB, 100 CPU-s
    assert c.docs_read == pytest.approx(2e5) and c.network_bytes == pytest.approx(3e8)
    assert c.cpu_s == pytest.approx(100.0)
    # without a pool: the whole stream
    c = pc.sample_cost("book", {"hub": "x/y", "streaming": True}, 100, plan)
    assert c.docs_read == 1e6 and c.network_bytes == pytest.approx(1.5e9)
    # the pool never reads past the stream; a local file costs nothing
    c = pc.sample_cost("book", {**entry, "pool_docs": 10**9}, 100, plan)
    assert c.docs_read == 1e6
    assert pc.sample_cost("d", {"path": "f.jsonl"}, 100, plan).network_bytes == 0.0
    assert math.isnan(pc.sample_cost("d", {"hub": "x", "streaming": True}, 5, {}).network_bytes)


def test_shard_seconds_and_auto_size_by_hand():
    # 2 x 1e9 x 1000 tokens / (100e12 x 0.5) = 0.04 s
    assert pc.shard_seconds(1.0, 1000, PROF) == pytest.approx(0.04)
    # 10B model, limit 100 s: per doc of 1000 tokens 0.4 s; half the limit = 50 s -> 125 docs
    models = {"big": (10.0, 100.0), "small": (1.0, 100.0)}
    assert pc.auto_shard_docs(models, 1000, 10_000, PROF) == 125
    assert pc.auto_shard_docs(models, 1000, 60, PROF) == 60  # capped at n_docs
    assert pc.auto_shard_docs({"huge": (1e6, 1.0)}, 1000, 60, PROF) == 1
    fits = {f.model: f for f in pc.shard_fits(models, {"a": 500, "b": 1000}, 300, PROF)}
    assert fits["big"].domain == "b" and fits["big"].gpu_s == pytest.approx(120.0)
    assert not fits["big"].fits and fits["small"].fits
    assert pc.n_shard_jobs(1000, 300, 5) == 20


def test_n_for_halfwidth_by_hand():
    # (1.96 x 0.5 / 0.01)^2 = 9604.0 (z = 1.95996...: 9603.6 -> 9604)
    assert pp.n_for_halfwidth(0.5, 0.01) == 9604
    assert pp.n_for_halfwidth(0.0, 0.01) == 1
    with pytest.raises(ValueError):
        pp.n_for_halfwidth(1.0, 0.0)


def test_spread_and_paired_spread():
    scores = pl.DataFrame({
        "model": ["a"] * 4 + ["b"] * 4, "domain": ["d"] * 8, "doc_id": [0, 1, 2, 3] * 2,
        "n_tokens": [5] * 8, "score": [-1.0, -2.0, -3.0, -4.0, -1.5, -2.5, -3.5, -4.5]})
    s = pp.spread(scores, 0.01).row(0, named=True)
    assert s["std"] == pytest.approx(1.2909944, abs=1e-6)
    assert s["n_needed"] == pp.n_for_halfwidth(1.2909944, 0.01)
    p = pp.paired_spread(scores, 0.01).row(0, named=True)
    assert p["max_paired_std"] == pytest.approx(0.0) and p["n_needed"] == 1  # b = a - 0.5


def test_stdlib_corpora_from_a_planted_tree(tmp_path):
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "t.py").write_text('"""' + "x" * 300 + '"""\n')
    doc = "Return the thing. " * 20
    for i in range(5):
        (tmp_path / f"m{i}.py").write_text(f'"""{doc}"""\n\ndef f():\n    """{doc}"""\n')
    (tmp_path / "bad.py").write_text("def (:\n" + "y" * 300)
    out = pp.stdlib_corpora(3, seed=0, root=tmp_path)
    assert out["code"].height == 3 and out["prose"].height == 3
    assert all(t.startswith('"""Return') for t in out["code"]["text"])  # tests and bad.py skipped
    assert all(t.startswith("Return the thing.") for t in out["prose"]["text"])
    assert out["code"].equals(pp.stdlib_corpora(3, seed=0, root=tmp_path)["code"])


def test_plan_counts_sampling_and_shard_jobs():
    from rmselect.config import load_study_file
    from rmselect.dag import presence as dp
    from rmselect.plan.projection import project

    for name in ("config.yaml", "paper.yaml"):
        study = load_study_file(f"config/{name}")
        cfg = dp.settings(study)
        items, _, _ = project(study)
        sample = [w for w in items if w.rule == "presence_sample"]
        score = [w for w in items if w.rule == "presence_score"]
        assert {w.model for w in sample} == {f"corpus:{d}" for d in cfg["domains"]}
        assert all(w.flops == 0 and "network" in w.notes[0] for w in sample)
        shards = len(dp.shard_ids(cfg))
        assert all(w.runs == len(cfg["domains"]) * shards for w in score)
        # every shard job within its limit on the plan's profile
        assert all(w.notes[-1].endswith(": fits") for w in score), [
            w.notes[-1] for w in score if not w.notes[-1].endswith(": fits")]


def test_sample_job_runtime_is_twice_its_planned_cpu_time_over_its_workers():
    from rmselect.config import load_study_file
    from rmselect.dag import presence as dp

    study = load_study_file("config/paper.yaml")
    cfg = dp.settings(study)
    assert dp.sample_workers(cfg, "book") == cfg["sample_workers"] == 16
    # Books: 100,000 / 0.00036 = 277.8 M docs at 2,000 per CPU-s = 138,889 CPU-s over 16
    # workers = 8,681 s (2.4 h); x 2 / 60
    assert dp.sample_runtime(study, cfg, "book") == math.ceil(2 * 1e5 / 0.00036 / 2000 / 16 / 60)
    # memory: Books' documents of at most 2,048 x 64 characters, twice, on top of the base
    assert dp.max_chars(cfg) == 2048 * 64
    n = cfg["domains"]["book"]["n_docs"]
    assert dp.sample_mem_mb(cfg, "book", 4000) == 4000 + math.ceil(2 * n * 131072 / 1e6)
    toy = load_study_file("config/config.yaml")
    assert dp.sample_runtime(toy, dp.settings(toy), "facts") == 30  # local file: the floor


def test_sampling_jobs_are_checked_against_the_sites_runtime_ceiling():
    from rmselect.cluster.resources import ClusterSettings
    from rmselect.config import load_study_file
    from rmselect.plan.cost_model import plan_settings, profiles
    from rmselect.plan.feasibility import sample_rows

    study = load_study_file("config/paper.yaml")
    prof = profiles(plan_settings(study.config))["A6000"]
    rows = {r.model: r for r in sample_rows(study, prof)}
    assert set(rows) == {f"corpus:{d}" for d in ("github", "book", "arxiv", "wikipedia",
                                                  "stackexchange")}
    book = rows["corpus:book"]
    # 138,889 CPU-s over 16 workers; the request is twice that, rounded up to a minute
    assert book.minutes == pytest.approx(1e5 / 0.00036 / 2000 / 16 / 60)
    assert book.runtime_limit_min == math.ceil(2 * book.minutes) and book.verdict == "fits"
    # disk: the shards kept (documents x max_tokens x 64 characters); at the peak the
    # resumable candidates file of as many documents beside them
    from rmselect.dag import presence as dp

    text_gb = dp.domain_docs(dp.settings(study), "book") * 2048 * 64 / 1e9
    assert book.disk_kept_gb == pytest.approx(text_gb) and book.disk_peak_gb == pytest.approx(
        2 * text_gb)
    # a site ceiling of 2 hours: Books asks for 290 min and is flagged with the workers
    # that would fit; the shorter domains still fit
    capped = {r.model: r for r in sample_rows(study, prof, ClusterSettings(runtime_ceiling=120))}
    assert capped["corpus:book"].verdict == "infeasible"
    assert "presence.sample_workers >= 39" in capped["corpus:book"].breaks[0]
    assert capped["corpus:github"].verdict == "fits"


def test_precision_table_separates_shared_difficulty_from_model_differences():
    """Planted: each document has a difficulty shared by every model (sd 0.7) and each model
    its own per-document noise (sd 0.1), so a model's mean needs ~19k documents for ±0.01
    nats but the difference of two models only ~770; a reused copy adds no pair."""
    rng = np.random.default_rng(0)
    n = 4000
    difficulty = rng.normal(-2.0, 0.7, n)
    rows = []
    for m in ("a", "b", "c"):
        s = difficulty + rng.normal(0.0, 0.1, n) + {"a": 0.0, "b": 0.3, "c": -0.2}[m]
        rows.append(pl.DataFrame({"model": m, "domain": "d", "doc_id": np.arange(n),
                                  "score": s}))
    copy = rows[0].with_columns(pl.lit("a-small").alias("model"))
    t = pp.precision_table(pl.concat(rows + [copy]), 0.01).row(0, named=True)
    assert t["models"] == 4 and t["pairs"] == 3 and t["n_docs"] == n
    assert 0.68 < t["max_std"] < 0.74
    assert 0.13 < t["max_paired_std"] < 0.16  # sqrt(2) x 0.1
    assert 17000 < t["n_needed_mean"] < 21000 and 650 < t["n_needed_paired"] < 1000
    assert t["halfwidth_paired"] == pytest.approx(1.96 * t["max_paired_std"] / np.sqrt(n),
                                                  rel=1e-3)


def test_readme_corpus_dedupes_filters_and_is_seeded():
    long = [f"README {i} " + "words " * 50 for i in range(6)]
    bodies = long + [long[0], "short", ""]
    out = pp.readme_corpus(4, seed=1, bodies=bodies)
    assert out.height == 4 and out["text"].n_unique() == 4
    assert set(out["text"]) <= {b.strip() for b in long}
    assert out.equals(pp.readme_corpus(4, seed=1, bodies=list(reversed(bodies))))
    assert pp.readme_corpus(50, seed=1, bodies=bodies).height == 6  # all six distinct
    assert pp.readme_corpus(3, seed=0).height == 3  # the installed distributions' READMEs
