"""Successive halving over the LR grid: budgets, survivor choice, decisions, rung training.

The pure parts (rmselect.rm.halving) are checked on hand-built validation curves; the
trainer's rung mode on a tiny model: a run continued through rungs equals a full run, and
halving over a grid with one planted good rate (the others too small to learn) keeps it
and the final selection picks it.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from rmselect.config import ConfigError, load_schema, load_study_file
from rmselect.rm import halving as H
from rmselect.rm import rules, select, train
from support import tiny_rm

SEARCH = H.LrSearch("halving", eta=3, min_steps=40)


def _run(lr: float, curve: list[tuple[int, float]], complete: bool) -> dict:
    return {"lr": lr, "evals": [{"step": s, "val_accuracy": a} for s, a in curve],
            "complete": complete}


def test_rung_sizes_and_budgets():
    assert H.rung_sizes(10, 3) == [10, 4, 2, 1]  # the paper grid: 3 decisions
    assert H.rung_sizes(5, 3) == [5, 2, 1]
    assert H.rung_sizes(5, 2) == [5, 3, 2, 1]
    assert H.rung_sizes(1, 3) == [1]  # one rate: a single full-length rung
    assert [H.rung_budget(r, 10, SEARCH) for r in range(4)] == [40, 120, 360, None]
    assert H.rung_budget(0, 1, SEARCH) is None
    with pytest.raises(ValueError, match="outside 0..2"):
        H.rung_budget(3, 5, SEARCH)


def test_survivors_by_best_accuracy_so_far_ties_to_smaller_lr():
    # best-so-far, not last: 3e-3 peaked at 0.9 then fell; 1e-2 ends higher than it peaked
    curves = {"1e-07": [(20, 0.5), (40, 0.5)], "0.001": [(20, 0.7), (40, 0.85)],
              "0.003": [(20, 0.9), (40, 0.6)], "0.01": [(20, 0.8), (40, 0.88)]}
    scores = {lr: max(a for _, a in c) for lr, c in curves.items()}
    assert H.choose_survivors(scores, 2) == ["0.003", "0.01"]
    assert H.choose_survivors(scores, 1) == ["0.003"]
    tied = {"0.003": 0.8, "0.001": 0.8, "1e-05": 0.8, "0.01": 0.7}
    assert H.choose_survivors(tied, 1) == ["1e-05"]  # as the selection: smaller LR
    assert H.choose_survivors(tied, 2) == ["1e-05", "0.001"]
    assert H.choose_survivors(tied, 9) == ["1e-05", "0.001", "0.003", "0.01"]


def test_decisions_carry_stopped_runs_to_the_selection():
    grid = ["1e-07", "3e-07", "0.001", "0.003", "0.01"]
    accs = {"1e-07": 0.5, "3e-07": 0.52, "0.001": 0.8, "0.003": 0.75, "0.01": 0.6}
    r0 = {lr: _run(float(lr), [(40, accs[lr])], False) for lr in grid}
    p0 = {lr: f"lr{lr}/rung0.json" for lr in grid}
    d0 = H.decide(r0, p0, 0, 5, SEARCH)
    assert d0["survivors"] == ["0.001", "0.003"] and not d0["final"]
    assert d0["stopped"] == ["1e-07", "3e-07", "0.01"] and d0["budget"] == 40
    nxt = H.next_participants(d0, lambda lr, k: f"lr{lr}/rung{k}.json")
    assert nxt == {"0.001": "lr0.001/rung1.json", "0.003": "lr0.003/rung1.json"}
    # rung 1: 0.003 overtakes; both still short of their end
    r1 = {"0.001": _run(1e-3, [(40, 0.8), (120, 0.82)], False),
          "0.003": _run(3e-3, [(40, 0.75), (120, 0.9)], False)}
    d1 = H.decide(r1, nxt, 1, 5, SEARCH, d0)
    assert d1["survivors"] == ["0.003"] and not d1["final"]
    r2 = {"0.003": _run(3e-3, [(40, 0.75), (120, 0.9), (150, 0.88)], True)}
    d2 = H.decide(r2, H.next_participants(d1, lambda lr, k: f"lr{lr}/rung{k}.json"), 2, 5,
                  SEARCH, d1)
    assert d2["final"] and d2["last_rung"] == 2
    assert d2["runs"] == {"1e-07": "lr1e-07/rung0.json", "3e-07": "lr3e-07/rung0.json",
                          "0.001": "lr0.001/rung1.json", "0.003": "lr0.003/rung2.json",
                          "0.01": "lr0.01/rung0.json"}
    decisions = [d0, d1, d2]
    assert H.final_runs(lambda r: decisions[r]) == list(d2["runs"].values())
    assert H.steps_spent(list(r0.values())) == 200


def test_a_finished_survivor_takes_part_with_its_file_and_ends_the_race():
    # a short run: both survivors of rung 0 already reached their last step
    r0 = {"0.001": _run(1e-3, [(20, 0.7), (30, 0.8)], True),
          "0.003": _run(3e-3, [(20, 0.6), (30, 0.7)], True),
          "0.01": _run(1e-2, [(20, 0.5), (30, 0.5)], True)}
    d0 = H.decide(r0, {lr: f"{lr}.json" for lr in r0}, 0, 3, SEARCH)
    assert d0["survivors"] == ["0.001"] and d0["final"]
    r0["0.001"]["complete"] = False
    d0 = H.decide(r0, {lr: f"{lr}.json" for lr in r0}, 0, 3, SEARCH)
    assert not d0["final"]
    assert H.next_participants(d0, lambda lr, k: f"{lr}-{k}") == {"0.001": "0.001-1"}


def test_lr_search_config_and_schema_defaults():
    assert H.lr_search({}) == H.LrSearch("full", 3, 40)
    assert H.lr_search({"rm": {"lr_search": {"mode": "halving", "eta": 2}}}).halving
    with pytest.raises(ConfigError, match="rm.lr_search.mode"):
        H.lr_search({"rm": {"lr_search": {"mode": "asha"}}})
    with pytest.raises(ConfigError, match="rm.lr_search.eta"):
        H.lr_search({"rm": {"lr_search": {"eta": 1}}})
    props = load_schema("config")["properties"]["rm"]["properties"]["lr_search"]
    expected = {"mode": "full", "eta": 3, "min_steps": 40}  # the code's defaults before issue 18
    assert props["default"] == expected
    assert {k: v["default"] for k, v in props["properties"].items()} == expected
    assert H.lr_search({"rm": {"lr_search": {"mode": "halving"}}}) == H.LrSearch("halving", 3, 40)
    assert H.lr_search({"rm": {"lr_search": None}}) == H.LrSearch("full", 3, 40)
    assert H.lr_search(load_study_file("config/paper.yaml").config).mode == "full"
    assert H.lr_search(load_study_file("config/config.yaml").config).mode == "full"


def test_rung_flags_budget_per_rung():
    study = load_study_file("config/config.yaml")
    cfg = study.config
    cfg["rm"]["lr_grid"] = {"bt": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2], "regression": [1e-3]}
    cfg["rm"]["lr_search"] = {"mode": "halving", "eta": 3, "min_steps": 50}
    model = study.trained_models()[0]
    base = rules.train_flags(study, model, "bt", "0.001")
    assert rules.rung_flags(study, model, "bt", "0.001", 0) == base + " --max-steps 50"
    assert rules.rung_flags(study, model, "bt", "0.001", 1) == base + " --max-steps 150"
    assert rules.rung_flags(study, model, "bt", "0.001", 2) == base  # last rung: to the end
    args = train.build_parser().parse_args(
        shlex.split(rules.rung_flags(study, model, "bt", "0.001", 0)) + ["--out", "x"])
    assert args.max_steps == 50
    assert rules.rung_flags(study, model, "regression", "0.001", 0) == rules.train_flags(
        study, model, "regression", "0.001")  # one rate: one full rung
    ins = rules.halving_inputs(cfg, "bt", model, 1234, 0, None)
    assert ins == {"runs": [f"results/rm/bt/{model}/seed1234/lr{lr}/rung0.json"
                            for lr in ("0.0001", "0.0003", "0.001", "0.003", "0.01")]}
    assert rules.halving_flags(cfg, "bt", model, 1) == "--rung 1 --grid-size 5 --eta 3 --min-steps 50"


# --------------------------------------------------------------------------- trainer


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("halving")
    tiny_rm.make_model(root / "base", arch="llama", hidden=32, layers=2, heads=4, pad_is_eos=True)
    tiny_rm.write_preference_data(root / "pref.jsonl", 256, 64)
    return root


def _args(root: Path, out: Path, lr: str = "0.002", **kw) -> list[str]:
    opts = {
        "--model": str(root / "base"), "--objective": "bt", "--lr": lr, "--out": str(out),
        "--train-data": json.dumps({"path": str(root / "pref.jsonl")}),
        "--val-data": json.dumps({"path": str(root / "pref.jsonl")}),
        "--global-batch": "16", "--micro-batch": "8", "--epochs": "1", "--warmup-steps": "2",
        "--eval-every": "4", "--max-length": "64", "--seed": "3", "--log-every": "100",
    }
    opts.update({k: str(v) for k, v in kw.items()})
    return [x for k, v in opts.items() for x in (k, v)]


def _losses(out: Path) -> list[tuple[int, float]]:
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in rows if "loss" in r]


def test_rungs_continue_to_exactly_the_full_run(setup, tmp_path):
    full, cut = tmp_path / "full", tmp_path / "cut"
    assert train.main(_args(setup, full)) == 0
    ref = json.loads((full / "run.json").read_text())
    r0 = cut / "rung0.json"
    assert train.main(_args(setup, cut, **{"--max-steps": 5, "--result": r0})) == 0
    a = json.loads(r0.read_text())
    # stops at the first evaluation point at or after the budget, keeps the DeepSpeed state
    assert [e["step"] for e in a["evals"]] == [4, 8] and a["complete"] is False
    assert a["stop_step"] == 8 and (cut / "ds" / "latest").exists()
    assert not (cut / "run.json").exists() and _losses(cut)[-1][0] == 8
    r1 = cut / "rung1.json"
    assert train.main(_args(setup, cut, **{"--max-steps": 12, "--result": r1})) == 0
    assert [e["step"] for e in json.loads(r1.read_text())["evals"]] == [4, 8, 12]
    r2 = cut / "rung2.json"
    assert train.main(_args(setup, cut, **{"--result": r2})) == 0
    b = json.loads(r2.read_text())
    assert b["complete"] is True and not (cut / "ds").exists()
    assert [(e["step"], e["val_accuracy"]) for e in b["evals"]] == [
        (e["step"], e["val_accuracy"]) for e in ref["evals"]]
    assert _losses(cut) == _losses(full)  # same schedule and data order, each step once


def test_a_rung_behind_its_checkpoint_trains_nothing(setup, tmp_path):
    out = tmp_path / "run"
    assert train.main(_args(setup, out, **{"--max-steps": 12, "--result": out / "r1.json"})) == 0
    before = _losses(out)
    kept = sorted((out / "ckpt").iterdir())
    r1 = json.loads((out / "r1.json").read_text())
    assert kept == [out / "ckpt" / f"step{r1['best']['step']}"]  # the best point so far
    assert train.main(_args(setup, out, **{"--max-steps": 4, "--result": out / "r0.json"})) == 0
    r0 = json.loads((out / "r0.json").read_text())
    assert [e["step"] for e in r0["evals"]] == [4] and r0["complete"] is False
    assert _losses(out) == before and sorted((out / "ckpt").iterdir()) == kept


def test_halving_keeps_the_planted_best_rate_and_selection_picks_it(setup, tmp_path):
    """One rate learns (2e-3); the others (1e-7 .. 5e-7) are too small to move the RM off
    its random start. Rung budgets 4, 12 then the end (16 steps): 5 -> 2 -> 1 rates."""
    grid = ["1e-07", "2e-07", "3e-07", "5e-07", "0.002"]
    search = H.LrSearch("halving", eta=3, min_steps=4)
    decisions: list[dict] = []
    participants = {lr: str(tmp_path / f"lr{lr}" / "rung0.json") for lr in grid}
    for rung in range(H.last_rung(len(grid), search.eta) + 1):
        budget = H.rung_budget(rung, len(grid), search)
        runs = {}
        for lr, path in participants.items():
            if path.endswith(f"rung{rung}.json"):  # still short of its end: train this rung
                extra = {"--result": path, **({"--max-steps": budget} if budget else {})}
                assert train.main(_args(setup, Path(path).parent, lr, **extra)) == 0
            runs[lr] = json.loads(Path(path).read_text())
        d = H.decide(runs, participants, rung, len(grid), search,
                     decisions[-1] if decisions else None)
        decisions.append(d)
        assert "0.002" in d["survivors"], d["participants"]
        if d["final"]:
            break
        participants = H.next_participants(
            d, lambda lr, k: str(tmp_path / f"lr{lr}" / f"rung{k}.json"))
    assert [len(d["participants"]) for d in decisions] == [5, 2, 1]
    good = {p["lr"]: p["best_val_accuracy"] for p in decisions[0]["participants"]}
    assert good["0.002"] >= max(v for k, v in good.items() if k != "0.002") + 0.1
    final = H.final_runs(lambda r: decisions[r])
    steps = H.steps_spent([json.loads(Path(p).read_text()) for p in final])
    assert steps == 3 * 4 + 12 + 16  # three stop at step 4, one at 12, the winner ends at 16
    assert steps <= 0.5 * 5 * 16
    best = select.best_candidate(select.collect(final, "bt", 0.05))
    assert best["lr"] == 0.002
    # pruning at selection also drops the DeepSpeed state the stopped runs kept
    assert len(list(tmp_path.glob("lr*/ds"))) == 4
    assert select.main(["--runs", *final, "--model-name", "tiny", "--objective", "bt",
                        "--final", str(tmp_path / "final"),
                        "--selected", str(tmp_path / "selected.json"), "--prune"]) == 0
    assert not list(tmp_path.glob("lr*/ds")) and (tmp_path / "final" / "config.json").exists()
