"""Successive halving through Snakemake: per-rung jobs, checkpoint decisions, selection, reruns.

A copied workflow with the REDUCED config (tests/pipeline.py), one toy model, a 3-rate bt
grid (eta 3: rungs of 3 then 1 rate) with evaluations every 2 steps and a first-rung budget
of 2 steps. The real DAG runs to selected.json; then a dry run must find nothing to do, and
a changed ``min_steps`` must rerun only the rung jobs and what follows them.
"""

from __future__ import annotations

import json

import pytest

from pipeline import make_workdir

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

MODEL = "toyllama-2-s"
SEED = 1234  # the reduced study's one training seed
TARGET = f"results/rm/bt/{MODEL}/seed{SEED}/selected.json"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    wd = make_workdir(tmp_path_factory.mktemp("halving"), models=(MODEL,))
    cfg = wd.load_config()
    cfg["size_groups"] = [{"name": "all", "min_b": 0.0, "max_b": 1000.0, "default": MODEL}]
    rm = cfg["rm"]
    rm["lr_grid"] = {"bt": [1.0e-7, 1.0e-3, 3.0e-7], "regression": [1.0e-3]}
    rm["eval_every"] = 2
    rm["max_train_examples"] = None  # the reduced study's 96 pairs: 6 steps
    rm["lr_search"] = {"mode": "halving", "eta": 3, "min_steps": 2}
    wd.save_config(cfg)
    wd.snakemake("--cores", "2", "--", TARGET, timeout=1500)
    return wd


def test_halving_dag_trains_rungs_and_selects_over_every_rate(built):
    wd = built
    base = wd.path / "results" / "rm" / "bt" / MODEL / f"seed{SEED}"
    d0 = json.loads((base / "halving" / "rung0.json").read_text())
    assert [p["lr"] for p in d0["participants"]] == ["1e-07", "3e-07", "0.001"]
    assert len(d0["survivors"]) == 1 and not d0["final"] and d0["budget"] == 2
    (win,) = d0["survivors"]
    best0 = {p["lr"]: p["best_val_accuracy"] for p in d0["participants"]}
    assert best0[win] == max(best0.values())
    d1 = json.loads((base / "halving" / "rung1.json").read_text())
    assert d1["final"] and d1["runs"][win].endswith(f"lr{win}/rung1.json")
    for lr in d0["stopped"]:
        assert d1["runs"][lr].endswith(f"lr{lr}/rung0.json")
        stopped = json.loads((base / f"lr{lr}" / "rung0.json").read_text())
        assert [e["step"] for e in stopped["evals"]] == [2] and not stopped["complete"]
        assert (base / f"lr{lr}" / "ds").exists()  # kept: a changed search can continue it
        assert not (base / f"lr{lr}" / "rung1.json").exists()
    done = json.loads((base / f"lr{win}" / "rung1.json").read_text())
    assert done["complete"] and [e["step"] for e in done["evals"]] == [2, 4, 6]
    sel = json.loads((base / "selected.json").read_text())
    assert {c["lr"] for c in sel["candidates"]} == {1e-7, 3e-7, 1e-3}  # stopped rates too
    assert len(sel["candidates"]) == 2 + 3
    assert sel["val_accuracy"] == max(c["val_accuracy"] for c in sel["candidates"])
    assert not list(base.glob("lr*/run.json"))  # no full-grid training


def test_rerun_only_what_changed(built):
    wd = built
    assert not [j for j in wd.dry_run(TARGET) if j["rule"] != "all"]
    saved = wd.config.read_text()
    cfg = wd.load_config()
    cfg["rm"]["lr_search"]["min_steps"] = 4
    wd.save_config(cfg)
    try:
        jobs = wd.dry_run(TARGET)
    finally:
        wd.config.write_text(saved)
    rules = {j["rule"] for j in jobs}
    # the budget of rung 0 changed: its jobs, the decisions and the selection rerun
    assert rules <= {"rm_train_rung", "rm_halving", "rm_select"}, rules
    assert {j["wildcards"]["rung"] for j in jobs if j["rule"] == "rm_train_rung"} == {"0"}
    assert not [j for j in wd.dry_run(TARGET) if j["rule"] != "all"]
