"""No presence or probe scoring job touches the network or imports a data-set hub client.

Each entry point runs in a subprocess whose ``sitecustomize`` makes every internet socket
``connect`` raise and, at exit, writes the imported module names; the job environment is the
rule's (``HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1``), and the sampled corpus files are present.
The guard is checked to bite first, so the test can fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from support import tiny_rm

GUARD = '''
import atexit, os, socket, sys
_real = socket.socket.connect
def _no_net(self, address, *a, **k):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        raise OSError("network blocked by the test: connect to %r" % (address,))
    return _real(self, address, *a, **k)
socket.socket.connect = _no_net
socket.socket.connect_ex = _no_net
@atexit.register
def _dump():
    with open(os.environ["MODULES_OUT"], "w") as fh:
        fh.write("\\n".join(sorted(sys.modules)))
'''


def _run(tmp_path: Path, script: str, *args: str) -> set[str]:
    guard = tmp_path / "guard"
    guard.mkdir(exist_ok=True)
    (guard / "sitecustomize.py").write_text(GUARD)
    mods = tmp_path / f"{Path(script).stem}.modules"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "MODULES_OUT": str(mods),
           "PYTHONPATH": os.pathsep.join([str(guard), str(REPO / "workflow")])}
    r = subprocess.run([sys.executable, *( [script] if script == "-c" else
                        [str(REPO / "workflow" / "scripts" / script)]), *args],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return set(mods.read_text().split())


def test_the_guard_blocks_connections(tmp_path):
    code = ("import socket\ntry:\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\n"
            "except OSError as e:\n    assert 'blocked by the test' in str(e), e\n"
            "else:\n    raise SystemExit('connected')")
    assert "socket" in _run(tmp_path, "-c", code)


@pytest.mark.slow
def test_presence_and_probe_jobs_stay_offline(tmp_path):
    from rmselect.presence import corpus as pc
    from test_presence_score import build_bigram_model

    model = build_bigram_model(tmp_path / "m")
    src = tmp_path / "d.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in ["a b c", "b b", "c a b a"]))
    corpus = tmp_path / "corpus" / "dom"
    pc.write_corpus(pc.SampleArgs(domain="dom", entry=json.dumps({"path": str(src)}), n_docs=3,
                                  seed=0, shard_docs=2, out_dir=str(corpus)))
    shard = tmp_path / "shards" / "part-00000.parquet"
    mods = _run(tmp_path, "presence_score.py", "--model", str(model), "--name", "m",
                "--corpus", str(corpus / "part-00000.parquet"), "--out", str(shard),
                "--meta", str(shard.with_suffix(".json")), "--device", "cpu")
    assert shard.exists()
    assert "datasets" not in mods and "transformers" in mods  # it did load a model
    mods = _run(tmp_path, "presence_aggregate.py", "--name", "m", "--domain", "dom",
                "--shards", str(shard), "--out", str(tmp_path / "dom.parquet"),
                "--meta", str(tmp_path / "dom.json"))
    assert "datasets" not in mods and "huggingface_hub" not in mods

    pm = tmp_path / "pm"
    tiny_rm.make_model(pm, pad_is_eos=True)
    data = tiny_rm.write_preference_data(tmp_path / "pref.jsonl", n_train=8, n_val=4)
    mods = _run(tmp_path, "probe_model.py", "--model", str(pm), "--name", "pm",
                "--data", json.dumps({"path": str(data)}), "--out", str(tmp_path / "p.json"),
                "--batch-size", "4", "--device", "cpu")
    assert "datasets" not in mods
    assert json.loads((tmp_path / "p.json").read_text())["pairs_train"] == 8


@pytest.mark.parametrize("kind", ["toy", "hub"])
def test_rule_environment_is_offline(kind):
    from rmselect.config import load_study_file
    from rmselect.dag import presence as dp

    study = load_study_file(REPO / "config" / ("config.yaml" if kind == "toy" else "paper.yaml"))
    cfg = dp.settings(study)
    env = {dp.offline_env(study, cfg, m) for m in dp.presence_models(study, cfg)}
    assert all(e.startswith("HF_DATASETS_OFFLINE=1") for e in env)
    if kind == "toy":
        assert env == {"HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1"}
