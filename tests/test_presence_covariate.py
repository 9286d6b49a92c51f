"""The regression estimator of a domain's mean presence score (rmselect.presence.covariate):
planted-truth populations, the n it needs by hand, the sampler's pool moments and the
summary's estimate column."""

from __future__ import annotations

import json
import math
import sys
import zlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from rmselect.presence import corpus as pc
from rmselect.presence import covariate as cv
from rmselect.presence import distributions as pd

sys.path.insert(0, str(Path(__file__).parent))


def _population(seed: int, size: int = 200_000, rho: float = 0.85):
    """Scores y = -2 + x·β + e with corr(x, y) = rho, sd(y) = 0.7 (as on real text)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.4, 0.05, size)
    sd_y = 0.7
    beta = -rho * sd_y / 0.05
    e = rng.normal(0.0, sd_y * math.sqrt(1 - rho * rho), size)
    return x, -2.0 + beta * (x - 0.4) + e


def test_regression_estimator_beats_the_plain_mean_and_covers():
    """Over 600 draws (pool of 20,000 from the population, 400 scored from the pool) the
    regression estimate is centred on the population mean, its spread is about
    sqrt(1 - rho²) + the pool's share of the plain mean's, and its 95 % half-width covers."""
    x, y = _population(0)
    truth = float(y.mean())
    rng = np.random.default_rng(1)
    reg, mean, cover = [], [], 0
    for _ in range(600):
        pool = rng.choice(len(x), 20_000, replace=False)
        take = rng.choice(pool, 400, replace=False)
        e = cv.regression(y[take], x[take], float(x[pool].mean()), len(pool))
        assert e.estimator == "regression" and e.pool_docs == 20_000
        reg.append(e.estimate - truth)
        mean.append(e.mean - truth)
        cover += abs(e.estimate - truth) <= e.halfwidth
    reg, mean = np.array(reg), np.array(mean)
    # theory: sd(plain) = 0.7/20 = 0.035; sd(reg)^2 = 0.49·(1-.7225)/400 + .7225·.49/20000
    want = math.sqrt(0.49 * (1 - 0.7225) / 400 + 0.7225 * 0.49 / 20_000)
    assert abs(reg.mean()) < 3 * want / math.sqrt(600)
    assert 0.85 * want < reg.std() < 1.15 * want
    assert reg.std() < 0.65 * mean.std()
    assert 0.92 <= cover / 600 <= 0.98  # binomial sd at 0.95: 0.009


def test_the_whole_pool_sampled_is_the_plain_mean():
    x, y = _population(2, size=64)
    e = cv.regression(y, x, float(x.mean()), 64)
    p = cv.plain(y)
    assert e.estimate == pytest.approx(p.estimate, abs=1e-12)
    assert e.halfwidth == pytest.approx(p.halfwidth, rel=1e-12)
    # a constant covariate or too few documents: the plain mean
    assert cv.regression(y, np.ones(64), 1.0, 100).estimator == "mean"
    assert cv.regression(y[:2], x[:2], 0.4, 100).estimator == "mean"


def test_n_for_halfwidth_by_hand():
    # room = (0.01 / 1.95996)^2 - 0.75 x 0.25 / 1e5 = 2.60318e-5 - 1.875e-6 = 2.41568e-5
    # n = 0.25 x 0.25 / 2.41568e-5 = 2587.3 -> 2588
    assert cv.n_for_halfwidth(0.5, 0.75, 0.01, 100_000) == 2588
    # R² = 0 and an infinite pool: the plain mean's n
    from rmselect.presence.precision import n_for_halfwidth

    assert cv.n_for_halfwidth(0.5, 0.0, 0.01, 10**12) == n_for_halfwidth(0.5, 0.01)
    assert cv.n_for_halfwidth(0.5, 0.9, 0.01, 1000) is None  # the pool alone is too coarse
    assert cv.n_for_halfwidth(0.5, 0.75, 0.01, 2587) is None  # more than the pool holds


def test_zlib_ratio_reads_the_first_characters():
    text = "abc" * 1000 + "".join(chr(65 + (i * 7919) % 57) for i in range(3000))
    assert cv.zlib_ratio(text, 3000) == len(zlib.compress(text[:3000].encode(), 1)) / 3000
    assert cv.zlib_ratio(text, 3000) < cv.zlib_ratio(text[3000:], 3000)  # repetition compresses
    assert cv.zlib_ratio("", 10) == 1.0


def test_sampler_records_the_pools_covariate(tmp_path):
    from test_presence_shards import _docs, _stream_files

    src = _docs(tmp_path / "d.jsonl")
    out = tmp_path / "c"
    args = pc.SampleArgs(domain="dom", entry=json.dumps({"path": str(src)}), n_docs=5, seed=1,
                         shard_docs=5, out_dir=str(out), covariate_chars=8)
    man = pc.write_corpus(args)
    texts = [json.loads(line)["text"] for line in src.read_text().splitlines()]
    xs = [cv.zlib_ratio(t, 8) for t in texts if t]  # the pool: 19 non-empty documents
    assert man["covariate"]["pool_docs"] == 19 == len(xs)
    assert man["covariate"]["mean"] == pytest.approx(np.mean(xs), abs=1e-12)
    assert man["covariate"]["sd"] == pytest.approx(np.std(xs, ddof=1), abs=1e-12)
    shard = pl.read_parquet(out / "part-00000.parquet")
    assert shard[cv.NAME].to_list() == [cv.zlib_ratio(t, 8) for t in shard["text"]]
    # a stream: every matching document of the blocks read, whatever the workers
    entry = {**_stream_files(tmp_path / "src"), "pool_docs": 25}
    c1, c3 = pc.StreamCounts(), pc.StreamCounts()
    pc.sample_documents(entry, 6, 3, counts=c1, block_files=2, covariate_chars=8)
    pc.sample_documents(entry, 6, 3, counts=c3, workers=3, block_files=2, covariate_chars=8)
    assert c1.x_n == c3.x_n == c1.matched == 40
    assert c1.x_sum == pytest.approx(c3.x_sum, abs=1e-12)
    # without a covariate nothing is recorded
    args.covariate_chars, args.out_dir = 0, str(tmp_path / "none")
    assert pc.write_corpus(args)["covariate"] is None


def test_summary_estimate_uses_the_corpus_covariate(tmp_path):
    """estimates(): the regression estimate where the corpus has a covariate and the
    estimator asks for it; the plain mean otherwise."""
    x, y = _population(3, size=5000)
    pool = np.arange(5000)
    take = np.sort(np.random.default_rng(0).choice(pool, 300, replace=False))
    folder = tmp_path / "dom"
    folder.mkdir()
    pl.DataFrame({"doc_id": take, "text": ["t"] * 300, cv.NAME: x[take]}).write_parquet(
        folder / "part-00000.parquet")
    (folder / "manifest.json").write_text(json.dumps(
        {"covariate": {"name": cv.NAME, "pool_docs": 5000, "mean": float(x.mean())}}))
    scores = pl.DataFrame({"model": "m", "domain": "dom", "doc_id": take,
                           "n_tokens": 10, "score": y[take]})
    covs = pd.corpus_covariates(tmp_path, ["dom"])
    got = pd.estimates(scores, covs).row(0, named=True)
    want = cv.regression(y[take], x[take], float(x.mean()), 5000)
    assert got["estimator"] == "regression"
    assert got["estimate"] == pytest.approx(want.estimate) and got["r2"] == pytest.approx(want.r2)
    plain = pd.estimates(scores, covs, "mean").row(0, named=True)
    assert plain["estimator"] == "mean" and plain["estimate"] == pytest.approx(y[take].mean())
    # a corpus sampled without the covariate: the plain mean
    (folder / "manifest.json").write_text(json.dumps({"covariate": None}))
    assert pd.estimates(scores, pd.corpus_covariates(tmp_path, ["dom"])).row(
        0, named=True)["estimator"] == "mean"
    # the feature table reads the estimate
    from rmselect.bench.features import read_presence

    summ = tmp_path / "summary.csv"
    pl.DataFrame({"model": ["m"], "domain": ["dom"], "mean": [-2.0], "estimate": [-1.5]}
                 ).write_csv(summ)
    assert read_presence(summ) == {"m": {"presence_dom": -1.5}}
