"""Toy build: settings, determinism of the whole reduced zoo, build record, real build checks."""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import pytest

from rmselect.config import ConfigError, load_study_file, parse_toy_spec
from rmselect.toy.build import build_record, file_hashes, toy_defaults, toy_settings
from rmselect.toy.data import write_data
from rmselect.toy.models import pretrain, read_corpus
from rmselect.toy.tokenizer import save_tokenizer, train_tokenizer
from rmselect.toy.world import write_world

REPO = Path(__file__).resolve().parents[1]
TINY = parse_toy_spec("toy:arch=qwen2,hidden=32,layers=1,heads=2,seq=32,batch=4,steps=3")
SIZES = {"preference_train": 20, "preference_validation": 10, "helpsteer2_train": 20,
         "helpsteer2_validation": 10, "rewardbench_per_subset": 2, "sft": 5, "dpo": 5,
         "domain_docs": 5}


def _build(root: Path, seed: int) -> dict[str, str]:
    write_world(seed, root / "world.json", root / "corpus/train.txt", root / "corpus/heldout.txt",
                6, 6, 6, 300, 40)
    save_tokenizer(train_tokenizer(read_corpus(root / "corpus/train.txt"), 300), root / "tokenizer")
    from rmselect.toy.world import load_world

    write_data(load_world(root / "world.json"), seed, root / "data", root / "tasks",
               root / "domains", SIZES)
    pretrain("toyqwen-1-s", TINY, root / "tokenizer", root / "corpus/train.txt",
             root / "corpus/heldout.txt", root / "models/toyqwen-1-s", seed, log=lambda *_: None)
    return file_hashes(root)


def test_reduced_zoo_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = _build(tmp_path / "a", 3)
    b = _build(tmp_path / "b", 3)
    c = _build(tmp_path / "c", 4)
    assert "models/toyqwen-1-s/model.safetensors" in a and "tasks/toy_facts.yaml" in a
    assert "pretrain.json" not in " ".join(a)  # wall times are excluded from the hashes
    assert a == b
    differing = {k for k in a if a[k] != c.get(k)}
    for k in ("world.json", "corpus/train.txt", "tokenizer/tokenizer.json",
              "data/helpsteer2_preference.jsonl", "data/rewardbench.jsonl",
              "models/toyqwen-1-s/model.safetensors"):
        assert k in differing, k


def test_toy_settings_defaults_and_unknown_keys():
    s = toy_settings({"toy": {"seed": 5, "data": {"sft": 3}}})
    assert s["seed"] == 5 and s["data"]["sft"] == 3
    assert s["data"]["dpo"] == toy_defaults()["data"]["dpo"]
    assert toy_settings({})["seed"] == toy_defaults()["seed"]
    with pytest.raises(ConfigError, match="toy.data.sfft"):
        toy_settings({"toy": {"data": {"sfft": 3}}})
    with pytest.raises(ConfigError, match="toy.wrld"):
        toy_settings({"toy": {"wrld": {}}})


def test_build_record_elapsed_and_hashes(tmp_path):
    root = tmp_path / "toy"
    (root / "models/m").mkdir(parents=True)
    (root / "world.json").write_text("{}")
    (root / "models/m/pretrain.json").write_text(json.dumps(
        {"params": 10, "steps": 2, "tokens": 64, "train_loss": 1.0, "heldout_loss": 1.5,
         "wall_s": 3.0}))
    bench = tmp_path / "b.tsv"
    bench.write_text("s\th:m:s\tmax_rss\tcpu_time\n12.5\t0:00:12\t100\t11.0\n")
    past = time.time() - 20
    os.utime(bench, (past, past))
    rec = build_record(root, [bench, tmp_path / "missing.tsv"], root / "build.json")
    assert 31 <= rec["elapsed_s"] <= 60  # started 20 s + 12.5 s ago
    assert rec["job_wall_s_total"] == 12.5
    assert set(rec["files"]) == {"world.json"}
    assert rec["models"]["m"]["heldout_loss"] == 1.5
    assert json.loads((root / "build.json").read_text())["files"] == rec["files"]


def test_model_table_sizes_match_size_groups():
    """params_b / tokens_t in the toy table are the true counts of the toy specs."""
    from transformers import AutoModelForCausalLM

    from rmselect.toy.models import parse_spec, toy_config

    study = load_study_file("config/config.yaml")
    groups = {}
    with (REPO / "config/models_toy.tsv").open() as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert len(rows) >= 8
    assert {parse_toy_spec(r["source"])["arch"] for r in rows} == {"llama", "qwen2", "gpt_neox"}
    for r in rows:
        s = parse_spec(parse_toy_spec(r["source"]), r["name"])
        n = sum(p.numel() for p in AutoModelForCausalLM.from_config(
            toy_config(s, vocab_size=toy_defaults()["tokenizer"]["vocab_size"])).parameters())
        assert float(r["params_b"]) == pytest.approx(n / 1e9, rel=1e-4), r["name"]
        assert float(r["tokens_t"]) == pytest.approx(s["steps"] * s["batch"] * s["seq"] / 1e12)
        groups.setdefault(study.size_group(r["name"]), []).append(r["name"])
    assert set(groups) == {"small", "medium", "large"}
    for g in study.config["size_groups"]:
        assert study.size_group(g["default"]) == g["name"]


def test_zoo_recipe_larger_model_of_a_family_trains_at_least_as_long():
    """The cause of the zoo's inverted losses, checked without a build: at these budgets
    (80-360 steps of 1k tokens) held-out loss is set by the steps, and a wider model trained
    for fewer steps ends worse whatever its FLOPs (toyllama-2-m, 160 steps: 0.909 vs
    toyllama-2-s, 360: 0.779; a lower LR made it worse). So within a family the model with
    more parameters gets at least the steps of every smaller one. (Its peak LR may be lower:
    toyqwen-1-l, 4x160, ends at 1.062 with 5e-3 and 0.975 with 3e-3 after 160 steps.)"""
    from rmselect.toy.models import parse_spec

    with (REPO / "config/models_toy.tsv").open() as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    fams: dict[str, list] = {}
    for r in rows:
        fams.setdefault(r["family"], []).append(
            (float(r["params_b"]), parse_spec(parse_toy_spec(r["source"]), r["name"]), r["name"]))
    for fam, ms in fams.items():
        ms.sort(key=lambda m: m[0])
        for (_, a, na), (_, b, nb) in zip(ms, ms[1:]):
            assert b["steps"] >= a["steps"], (fam, na, a["steps"], nb, b["steps"])


# ----------------------------------------------------------------------------- real build

BUILD = REPO / "results/toy/build.json"
MARGIN = 0.02  # nats/token; bench/machine_independence.py uses the same


@pytest.mark.slow
@pytest.mark.skipif(not BUILD.exists(), reason="run `snakemake --cores 2 toy` first")
def test_real_build_models_differ_and_load():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rmselect.rm.format import render

    study = load_study_file("config/config.yaml")
    recs = {}
    for name in study.toy_models():
        d = REPO / "results/toy/models" / name
        recs[name] = json.loads((d / "pretrain.json").read_text())
        m = AutoModelForCausalLM.from_pretrained(d, use_safetensors=True)
        assert sum(p.numel() for p in m.parameters()) / 1e9 == pytest.approx(
            study.model(name).params_b, rel=1e-4)
        tok = AutoTokenizer.from_pretrained(d)
        assert render(tok, "Q?", "A.").endswith("A.<|end|>")
    # Within a family, more pre-training compute (params x tokens) -> lower held-out loss, by
    # at least MARGIN nats/token between neighbours. The margin is a property, not a machine's
    # digits: other kernels (bench/machine_independence.py: ATEN_CPU_CAPABILITY=avx2) move a
    # held-out loss by up to 0.01, another model seed by up to 0.013; the closest neighbours
    # (toyllama-2-s/-m) differ by 0.040-0.057 over those (docs/toy-world.md).
    # The old assertion (strictly lower, no margin) failed on every machine: toyllama-2-m had
    # 160 steps to toyllama-2-s's 360 and ended at 0.909 vs 0.779 (toyqwen-1-l, 140 steps, at
    # 1.17 vs toyqwen-1-m's 0.82); a lower learning rate made it worse (3e-3: 0.937, 2e-3:
    # 0.990), so the larger models were under-trained, and now get at least the smaller's steps.
    fams: dict[str, list] = {}
    for name, r in recs.items():
        fams.setdefault(study.model(name).family, []).append(
            (r["params"] * r["tokens"], r["heldout_loss"], name))
    for fam, ms in fams.items():
        ms.sort()
        losses = [x[1] for x in ms]
        assert all(a - b >= MARGIN for a, b in zip(losses, losses[1:])), (fam, ms)
    rec = json.loads(BUILD.read_text())
    assert rec["files"] == file_hashes(REPO / "results/toy")
