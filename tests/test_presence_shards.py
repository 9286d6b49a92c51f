"""Sampling once and scoring in shards (rmselect.presence.corpus / score / aggregate).

* The sampler: the same seed gives the same documents (local files: the numpy draw the
  stage always used, so the toy corpora are unchanged; streams: the hash bottom-k sample,
  independent of the stream's order); shards and the manifest.
* A shard job killed mid-way leaves no output, and `snakemake -n` on a copied workflow then
  reruns that shard only (plus its aggregation), not the finished ones.
* Aggregation = concatenation in shard order; its mean is the unsharded mean.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from rmselect.presence import aggregate as agg
from rmselect.presence import corpus as pc
from rmselect.presence import score as ps

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))


def _docs(path: Path, n: int = 20) -> Path:
    words = ["a", "b", "c"]
    rng = np.random.default_rng(0)
    lines = [" ".join(rng.choice(words, size=int(rng.integers(1, 9)))) for _ in range(n)]
    lines[3] = ""  # an empty document is never sampled
    path.write_text("".join(json.dumps({"text": t, "kind": i % 2}) + "\n"
                            for i, t in enumerate(lines)))
    return path


def test_local_sample_is_the_numpy_draw_of_before(tmp_path):
    src = _docs(tmp_path / "d.jsonl")
    entry = {"path": str(src)}
    got = pc.sample_documents(entry, 8, seed=5)
    frame = pl.read_ndjson(src).with_row_index("__doc_id")
    frame = frame.filter(pl.col("text").str.len_chars() > 0)
    want = np.sort(np.random.default_rng(5).choice(frame.height, 8, replace=False))
    assert got["doc_id"].to_list() == frame["__doc_id"][want.tolist()].to_list()
    assert got.equals(pc.sample_documents(entry, 8, seed=5))
    assert not got.equals(pc.sample_documents(entry, 8, seed=6))


def test_bottom_k_depends_on_seed_and_set_not_order():
    rows = [(i, f"doc {i}") for i in range(500)]
    a, seen = pc.bottom_k(iter(rows), 50, seed=1)
    b, _ = pc.bottom_k(iter(rows[::-1]), 50, seed=1)
    c, _ = pc.bottom_k(iter(rows), 50, seed=2)
    assert seen == 500 and a == b and len(a) == 50 and a != c
    assert [d for d, _ in a] == sorted(d for d, _ in a)
    # uniform: over many seeds every document is drawn about 50/500 of the time
    hits = np.zeros(500)
    for s in range(200):
        for d, _ in pc.bottom_k(iter(rows), 50, seed=s)[0]:
            hits[d] += 1
    assert abs(hits.mean() / 200 - 0.1) < 1e-9
    assert hits.std() / 200 < 0.05  # binomial sd: sqrt(.1 * .9 / 200) = 0.021
    assert pc.bottom_k(iter(rows[:10]), 50, seed=1)[0] == rows[:10]



def _stream_files(folder: Path, n_files: int = 7, rows: int = 30) -> dict:
    """A stream of ``n_files`` JSON-lines files; rows of kind 1 match the filter; row 0 of
    file 0 is long."""
    folder.mkdir()
    for f in range(n_files):
        lines = [json.dumps({"text": ("x" * 500 if f == r == 0 else f"f{f} r{r}"),
                             "meta": {"kind": r % 3}}) for r in range(rows)]
        (folder / f"part-{f:03d}.jsonl").write_text("\n".join(lines) + "\n")
    files = sorted(str(p) for p in folder.glob("*.jsonl"))
    return {"hub": "json", "data_files": files, "streaming": True, "filter": {"meta.kind": 0}}


def test_stream_sample_is_the_same_for_any_worker_count_and_stops_at_a_block(tmp_path):
    entry = _stream_files(tmp_path / "src")
    c1, c2 = pc.StreamCounts(), pc.StreamCounts()
    one = pc.sample_documents(entry, 12, seed=3, counts=c1, block_files=2)
    two = pc.sample_documents(entry, 12, seed=3, counts=c2, workers=2, block_files=2)
    assert one.equals(two) and one.height == 12
    assert (c1.read, c1.matched, c1.files) == (c2.read, c2.matched, c2.files) == (210, 70, 7)
    # doc_id = file << 32 | row, and the text is that row's
    for d, t in zip(one["doc_id"].to_list(), one["text"].to_list()):
        f, r = d >> pc.ROW_BITS, d & ((1 << pc.ROW_BITS) - 1)
        assert r % 3 == 0 and (t == f"f{f} r{r}" or (f, r) == (0, 0))
    # pool_docs 25: blocks of 2 files hold 20 matching documents each, so reading stops
    # after the second block (40 matched, 4 files), whatever the workers
    pooled = {**entry, "pool_docs": 25}
    for w in (1, 3):
        c = pc.StreamCounts()
        s = pc.sample_documents(pooled, 12, seed=3, counts=c, workers=w, block_files=2)
        assert (c.files, c.matched) == (4, 40)
        assert max(d >> pc.ROW_BITS for d in s["doc_id"].to_list()) <= 3
    # texts keep max_chars characters
    c = pc.StreamCounts()
    cut = pc.sample_documents(entry, 70, seed=3, counts=c, max_chars=100, block_files=2)
    assert cut["text"].str.len_chars().max() == 100 and c.truncated == 1


def test_stream_sample_resumes_after_the_last_finished_block(tmp_path, monkeypatch):
    entry = _stream_files(tmp_path / "src")
    whole = pc.sample_documents(entry, 12, seed=3, block_files=2)
    state = tmp_path / "out" / pc.STATE_DIR
    scanned: list[int] = []
    real = pc.scan_file

    def dies_in_block_3(index: int):
        scanned.append(index)
        if index == 5:  # the third block (files 4, 5): the job is killed here
            raise KeyboardInterrupt
        return real(index)

    monkeypatch.setattr(pc, "scan_file", dies_in_block_3)
    with pytest.raises(KeyboardInterrupt):
        pc.sample_documents(entry, 12, seed=3, state_dir=state, block_files=2, save_every_s=0)
    assert json.loads((state / "state.json").read_text())["next_block"] == 2
    scanned.clear()
    monkeypatch.setattr(pc, "scan_file", lambda i: (scanned.append(i), real(i))[1])
    c = pc.StreamCounts()
    again = pc.sample_documents(entry, 12, seed=3, counts=c, state_dir=state, block_files=2,
                                save_every_s=0)
    assert scanned == [4, 5, 6]  # the finished blocks are not read again
    assert again.equals(whole) and (c.files, c.read) == (7, 210)
    # a kill between writing the next candidates and the state that names them: the
    # resumed run uses the last complete state and samples no document twice
    pc.clear_state(tmp_path / "out")
    assert not state.exists()
    monkeypatch.setattr(pc, "scan_file", dies_in_block_3)
    with pytest.raises(KeyboardInterrupt):
        pc.sample_documents(entry, 12, seed=3, state_dir=state, block_files=2, save_every_s=0)
    (state / "candidates-000003.parquet").write_bytes(
        (state / "candidates-000002.parquet").read_bytes())  # a newer file, never committed
    monkeypatch.setattr(pc, "scan_file", lambda i: (scanned.append(i), real(i))[1])
    scanned.clear()
    again = pc.sample_documents(entry, 12, seed=3, state_dir=state, block_files=2,
                                save_every_s=0)
    assert scanned == [4, 5, 6] and again.equals(whole)
    assert again["doc_id"].n_unique() == again.height
    # another seed does not take over the state of this one
    scanned.clear()
    pc.sample_documents(entry, 12, seed=4, state_dir=state, block_files=2, save_every_s=0)
    assert scanned == list(range(7))


def test_write_corpus_shards_and_manifest(tmp_path):
    src = _docs(tmp_path / "d.jsonl")
    out = tmp_path / "corpus" / "dom"
    args = pc.SampleArgs(domain="dom", entry=json.dumps({"path": str(src), "filter": {"kind": 1}}),
                         n_docs=7, seed=3, shard_docs=3, out_dir=str(out))
    man = pc.write_corpus(args)
    parts = [pl.read_parquet(out / f"part-{k:05d}.parquet") for k in range(3)]
    assert [p.height for p in parts] == [3, 3, 1]
    ids = pl.concat(parts)["doc_id"].to_list()
    assert ids == sorted(ids) and all(i % 2 == 1 for i in ids)
    assert ids == pc.sample_documents(json.loads(args.entry), 7, 3)["doc_id"].to_list()
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == json.loads(json.dumps(man))
    assert man["seed"] == 3 and man["filter"] == {"kind": 1} and man["n_docs"] == 7
    assert [s["n_docs"] for s in man["shards"]] == [3, 3, 1]
    # fewer documents than shards: the trailing shards exist and are empty
    args.n_docs, args.out_dir = 40, str(tmp_path / "big")
    man = pc.write_corpus(args)
    assert len(man["shards"]) == 14 and man["n_docs"] == 9  # 10 odd-kind rows, row 3 empty
    assert pl.read_parquet(Path(args.out_dir) / "part-00013.parquet").height == 0


def _bigram(tmp_path):
    from test_presence_score import build_bigram_model

    return build_bigram_model(tmp_path)


def _score_argv(model, corpus, out):
    return ["--model", str(model), "--name", "bigram", "--corpus", str(corpus),
            "--out", str(out), "--meta", str(out.with_suffix(".json")), "--device", "cpu"]


def test_shards_aggregate_to_the_unsharded_scores(tmp_path):
    from rmselect.hf import load_causal_lm, load_tokenizer

    model_dir = _bigram(tmp_path / "m")
    src = _docs(tmp_path / "d.jsonl")
    args = pc.SampleArgs(domain="dom", entry=json.dumps({"path": str(src)}), n_docs=12, seed=0,
                         shard_docs=5, out_dir=str(tmp_path / "corpus"))
    pc.write_corpus(args)
    outs = [tmp_path / "shards" / f"part-{k:05d}.parquet" for k in range(3)]
    argv = _score_argv(model_dir, tmp_path / "corpus" / outs[0].name, outs[0])
    for out in outs[1:]:  # presence.jobs: per_model -- one process, every shard in turn
        argv += ["--corpus", str(tmp_path / "corpus" / out.name), "--out", str(out),
                 "--meta", str(out.with_suffix(".json"))]
    assert ps.main(argv) == 0
    outs = [str(o) for o in outs]
    agg.aggregate_domain(agg.DomainArgs(name="bigram", domain="dom", shards=outs,
                                        out=str(tmp_path / "dom.parquet"),
                                        meta=str(tmp_path / "dom.json")))
    whole, _ = ps.score_frame(load_causal_lm(model_dir).eval(), load_tokenizer(model_dir),
                              pc.sample_documents({"path": str(src)}, 12, 0))
    got = pl.read_parquet(tmp_path / "dom.parquet")
    assert got["doc_id"].to_list() == whole["doc_id"].to_list()
    assert np.allclose(got["score"].to_numpy(), whole["score"].to_numpy(), atol=1e-6)
    meta = json.loads((tmp_path / "dom.json").read_text())
    assert meta["shards"] == 3 and meta["n_docs"] == 12
    assert meta["mean"] == pytest.approx(float(whole["score"].mean()), abs=1e-9)
    agg.model_provenance(agg.ModelArgs(name="bigram", domains=["dom"], presence_dir=str(tmp_path),
                                       out=str(tmp_path / "presence.json")))
    prov = json.loads((tmp_path / "presence.json").read_text())
    assert prov["scored_by"] == "bigram" and prov["domains"]["dom"]["n_docs"] == 12


HANG = """
import sys, time
from pathlib import Path
import rmselect.presence.score as ps
orig = ps.score_frame
def slow(*a, **k):
    out = orig(*a, **k)
    Path(sys.argv[1]).write_text("scored")
    time.sleep(120)
    return out
ps.score_frame = slow
sys.exit(ps.main(sys.argv[2:]))
"""


@pytest.mark.slow
def test_killed_shard_reruns_alone(tmp_path):
    from pipeline import REDUCED_MODELS, make_workdir, parse_jobs

    model = REDUCED_MODELS[0]
    wd = make_workdir(tmp_path / "wd")
    cfg = wd.load_config()
    src = _docs(wd.path / "dom.jsonl")
    cfg["presence"].update(domains={"dom": {"path": "dom.jsonl"}}, n_docs=6, shard_docs=2,
                           jobs="per_shard")
    wd.save_config(cfg)
    model_dir = _bigram(wd.path / "results" / "toy" / "models" / model)
    corpus = wd.path / "results" / "presence" / "corpus" / "dom"
    pc.write_corpus(pc.SampleArgs(domain="dom", entry=json.dumps({"path": str(src)}), n_docs=6,
                                  seed=int(cfg["seed"]), shard_docs=2, out_dir=str(corpus)))
    shards = wd.path / "results" / "presence" / model / "shards" / "dom"
    for k in (0, 2):
        name = f"part-{k:05d}.parquet"
        assert ps.main(_score_argv(model_dir, corpus / name, shards / name)) == 0
    flag = tmp_path / "scored"
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow")}
    proc = subprocess.Popen([sys.executable, "-c", HANG, str(flag),
                             *_score_argv(model_dir, corpus / "part-00001.parquet",
                                          shards / "part-00001.parquet")], env=env)
    try:
        deadline = time.monotonic() + 120
        while not flag.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    left = sorted(p.name for p in shards.iterdir())
    assert left == ["part-00000.json", "part-00000.parquet", "part-00002.json",
                    "part-00002.parquet"]  # the killed shard wrote nothing, not even a temp
    out = wd.snakemake("-n", "--cores", "1", f"results/presence/{model}/dom.parquet",
                       "--allowed-rules", "presence_score", "presence_aggregate")
    jobs = parse_jobs(out.stdout + out.stderr)
    assert sorted(j["rule"] for j in jobs) == ["presence_aggregate", "presence_score"]
    (score_job,) = [j for j in jobs if j["rule"] == "presence_score"]
    assert score_job["wildcards"]["shard"] == "00001"


def test_write_corpus_takes_the_shared_shard_count(tmp_path):
    """--shards: a smaller domain writes as many (smaller) shards as the largest one."""
    src = _docs(tmp_path / "d.jsonl")
    entry = json.dumps({"path": str(src), "filter": {"kind": 1}})
    args = pc.SampleArgs(domain="dom", entry=entry, n_docs=5, seed=3, shard_docs=2, shards=4,
                         out_dir=str(tmp_path / "c"))
    man = pc.write_corpus(args)
    assert [s["n_docs"] for s in man["shards"]] == [2, 2, 1, 0]
    args.shards, args.out_dir = 2, str(tmp_path / "bad")
    with pytest.raises(pc.DatasetError, match="2 shards of 2 cannot hold n_docs 5"):
        pc.write_corpus(args)
    assert not (tmp_path / "bad" / "manifest.json").exists()


def test_domain_n_docs_sizes_its_sample_and_shares_the_shard_count():
    from rmselect.config import load_study_file
    from rmselect.dag import presence as dp
    from rmselect.plan.stages import presence_work

    study = load_study_file("config/paper.yaml")
    study.config["presence"]["shard_docs"] = 1000
    study.config["presence"]["n_docs"] = 2500
    for entry in study.config["presence"]["domains"].values():
        entry.pop("n_docs", None)  # every domain takes presence.n_docs but github
    study.config["presence"]["domains"]["github"]["n_docs"] = 4200
    cfg = dp.settings(study)
    assert dp.domain_docs(cfg, "github") == 4200 and dp.domain_docs(cfg, "book") == 2500
    assert dp.most_docs(cfg) == 4200 and len(dp.shard_ids(cfg)) == 5  # ceil(4200 / 1000)
    assert dp.domain_shard_docs(cfg, "github") == 840  # 4200 over 5 shards
    assert dp.domain_shard_docs(cfg, "book") == 500
    flags = dp.sample_flags(cfg, "github")
    assert "--n-docs 4200 " in flags and "--shard-docs 840 " in flags and "--shards 5 " in flags
    assert '"n_docs"' not in flags  # the entry (the sample's signature) is the source alone
    assert dp.sample_mem_mb(cfg, "github", 0) == math.ceil(2 * 4200 * 2048 * 64 / 1e6)
    # the plan: github's 4,200 documents of 1,000 tokens, the others 2,500 each; 5 x 5 jobs
    from rmselect.plan.cost_model import plan_settings

    work = {w.model: w for w in presence_work(study, plan_settings(study.config), Path("."))
            if w.rule == "presence_score"}
    w = work["Crystal"]
    assert w.runs == 25
    assert w.forward_tokens == 4200 * 1000 + 2500 * (2048 + 2048 + 700 + 600)
    assert "github: 4200 docs" in w.notes[0]
