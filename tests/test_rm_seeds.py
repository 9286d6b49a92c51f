"""RM training seeds (``rm.seeds``): config, paths, one process for several seeds, the seed
columns of the score tables, and the seed intervals of the analyses."""

from __future__ import annotations

import copy
import json
import shlex
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from rmselect.analysis import seeds as S
from rmselect.analysis.data import Aligned
from rmselect.config import ConfigError, load_study, load_study_file
from rmselect.eval.table import SD_COLS, TABLE_COLS, build_seed_tables
from rmselect.rm import rules

REPO = Path(__file__).resolve().parents[1]
TOY = yaml.safe_load((REPO / "config/config.yaml").read_text())


# --------------------------------------------------------------------------- config, paths


def test_seeds_default_to_the_study_seed_and_the_toy_default_has_three():
    assert rules.seeds({"seed": 7}) == [7]
    assert rules.seeds({"seed": 7, "rm": {"seeds": None}}) == [7]
    paper = load_study_file("config/paper.yaml").config
    assert rules.seeds(paper) == [paper["seed"]]  # one seed, the study's (as before seeds)
    toy = load_study_file("config/config.yaml").config
    assert rules.seeds(toy) == [1234, 1, 2] and rules.seeds_together(toy)
    assert not rules.seeds_together({"rm": {"seeds": [1, 2]}})  # schema default: per_seed
    assert not rules.seeds_together({"rm": {"seeds": [1], "seed_jobs": "together"}})


def test_seed_list_is_validated():
    cfg = copy.deepcopy(TOY)
    cfg["rm"]["seeds"] = [1, 1]
    with pytest.raises(ConfigError, match=r"rm\.seeds"):
        load_study(cfg, source="config/config.yaml")
    cfg["rm"]["seeds"] = [1, 2]
    cfg["rm"]["seed_jobs"] = "sometimes"
    with pytest.raises(ConfigError, match=r"rm\.seed_jobs"):
        load_study(cfg, source="config/config.yaml")


def test_paths_and_flags_carry_the_seed():
    assert rules.run_path("bt", "m", 3, "0.001") == "results/rm/bt/m/seed3/lr0.001/run.json"
    assert rules.selected_path("bt", "m", 3) == "results/rm/bt/m/seed3/selected.json"
    assert rules.rung_path("bt", "m", 3, "0.001", 1) == "results/rm/bt/m/seed3/lr0.001/rung1.json"
    assert rules.decision_path("bt", "m", 3, 0) == "results/rm/bt/m/seed3/halving/rung0.json"
    from rmselect.rm.train import build_parser, run_seeds

    study = load_study_file("config/config.yaml")
    model = study.trained_models()[0]
    flags = rules.train_flags(study, model, "bt", "0.001")
    assert "--seed" not in shlex.split(flags)  # the seeds come with their run dirs
    runs = rules.seed_out_flags([(1234, "a/seed1234/lr0.001"), (1, "a/seed1/lr0.001")])
    args = build_parser().parse_args(shlex.split(f"{flags} {runs}"))
    assert run_seeds(args) == [(1234, Path("a/seed1234/lr0.001")), (1, Path("a/seed1/lr0.001"))]
    with pytest.raises(SystemExit, match="one --seed per run directory"):
        run_seeds(build_parser().parse_args(shlex.split(f"{flags} --seed 1 --out a --out b")))
    # the parser's default seed is the study default (0), not a second number
    assert run_seeds(build_parser().parse_args(shlex.split(f"{flags} --out a"))) == [(0, Path("a"))]


# --------------------------------------------------------------------------- one process


@pytest.mark.slow
def test_two_seeds_in_one_process_equal_two_separate_runs(tmp_path):
    """The trainer's multi-seed call gives each seed exactly the run a call of its own
    gives (same metrics, same selection), and the two seeds differ from each other."""
    from support import tiny_rm as tiny

    from rmselect.rm import train

    tiny.make_model(tmp_path / "base", arch="llama", hidden=32, layers=2, heads=4,
                    pad_is_eos=True)
    tiny.write_preference_data(tmp_path / "pref.jsonl", 128, 48)
    base = [
        "--model", str(tmp_path / "base"), "--objective", "bt", "--lr", "0.002",
        "--train-data", json.dumps({"path": str(tmp_path / "pref.jsonl")}),
        "--val-data", json.dumps({"path": str(tmp_path / "pref.jsonl")}),
        "--global-batch", "16", "--micro-batch", "8", "--warmup-steps", "2",
        "--eval-every", "4", "--max-length", "64", "--log-every", "100",
    ]
    both = tmp_path / "both"
    assert train.main(base + ["--seed", "5", "--out", str(both / "seed5"),
                              "--seed", "6", "--out", str(both / "seed6")]) == 0
    alone = tmp_path / "alone"
    assert train.main(base + ["--seed", "6", "--out", str(alone / "seed6")]) == 0

    def curve(d: Path) -> list[float]:
        run = json.loads((d / "run.json").read_text())
        return [e["val_accuracy"] for e in run["evals"]]

    def losses(d: Path) -> list[float]:
        return [json.loads(x)["loss"] for x in (d / "metrics.jsonl").read_text().splitlines()
                if "loss" in json.loads(x)]

    r5 = json.loads((both / "seed5" / "run.json").read_text())
    r6 = json.loads((both / "seed6" / "run.json").read_text())
    assert (r5["seed"], r6["seed"]) == (5, 6) and r5["signature"] != r6["signature"]
    assert curve(both / "seed6") == curve(alone / "seed6")
    assert losses(both / "seed6") == pytest.approx(losses(alone / "seed6"), rel=1e-6)
    assert losses(both / "seed5") != pytest.approx(losses(both / "seed6"), rel=1e-3)


# --------------------------------------------------------------------------- tables


def _eval_json(path: Path, model: str, objective: str, seed: int | None, chat: float,
               complete: bool = True) -> str:
    secs = {k: {"score": v, "lo": v - 4, "hi": v + 4}
            for k, v in {"chat": chat, "chat_hard": 40.0, "safety": 60.0,
                         "reasoning": 70.0}.items()}
    overall = (chat + 40 + 60 + 70) / 4
    path.write_text(json.dumps({
        "benchmark": "rewardbench", "model": model, "objective": objective, "rm_seed": seed,
        "sections": secs,
        "overall": {"score": overall, "lo": overall - 2, "hi": overall + 2,
                    "complete": complete}}))
    return str(path)


def test_score_table_reports_seed_mean_sd_and_count(tmp_path):
    js = [_eval_json(tmp_path / f"a{s}.json", "m1", "bt", s, c)
          for s, c in ((1, 70.0), (2, 80.0), (3, 90.0))]
    js.append(_eval_json(tmp_path / "b.json", "m2", "bt", 1, 50.0))
    table, long, per_seed = build_seed_tables(js)
    assert table.columns == TABLE_COLS and {"n_seeds", *SD_COLS} <= set(table.columns)
    m1 = table.filter(pl.col("model") == "m1").row(0, named=True)
    assert m1["n_seeds"] == 3 and m1["chat"] == pytest.approx(80.0)
    assert m1["chat_seed_sd"] == pytest.approx(10.0)  # sample sd of 70, 80, 90
    assert m1["score"] == pytest.approx((80 + 40 + 60 + 70) / 4)
    assert m1["score_seed_sd"] == pytest.approx(2.5)
    assert m1["chat_lo"] == pytest.approx(76.0)  # the seed mean of the per-seed bounds
    m2 = table.filter(pl.col("model") == "m2").row(0, named=True)
    assert m2["n_seeds"] == 1 and m2["chat_seed_sd"] is None
    ov = long.filter((pl.col("model") == "m1") & (pl.col("section") == "overall")).row(
        0, named=True)
    assert ov["n_seeds"] == 3 and ov["seed_sd"] == pytest.approx(2.5)
    assert per_seed.filter(pl.col("model") == "m1").height == 3 * 5  # 4 sections + overall
    assert sorted(per_seed.filter((pl.col("model") == "m1") & (pl.col("section") == "chat"))
                  ["score"].to_list()) == [70.0, 80.0, 90.0]


def test_one_incomplete_seed_empties_the_mean_and_says_which(tmp_path):
    js = [_eval_json(tmp_path / "a.json", "m1", "bt", 1, 70.0),
          _eval_json(tmp_path / "b.json", "m1", "bt", 2, 80.0, complete=False)]
    table, _, _ = build_seed_tables(js)
    row = table.row(0, named=True)
    assert row["score"] is None and row["chat"] == pytest.approx(75.0)
    assert row["incomplete"].startswith("seed 2: ")
    with pytest.raises(ValueError, match="same RM"):
        build_seed_tables([js[0], _eval_json(tmp_path / "c.json", "m1", "bt", 1, 71.0)])


# --------------------------------------------------------------------------- analyses


def _aligned(x: dict[str, list[float]], y: list[float]) -> Aligned:
    n = len(y)
    models = [f"m{i}" for i in range(n)]
    return Aligned(objective="bt", models=models, features=list(x),
                   X=np.column_stack([x[f] for f in x]).astype(float),
                   y={s: np.array(y, dtype=float) for s in
                      ("chat", "chat_hard", "safety", "reasoning", "overall")},
                   family=models, params_b=np.arange(1, n + 1, dtype=float),
                   missing_policy="drop_feature")


def _seed_rows(per_model: list[list[float]]) -> pl.DataFrame:
    rows = [{"model": f"m{i}", "objective": "bt", "seed": s, "benchmark": "rewardbench",
             "section": sec, "score": v}
            for i, vals in enumerate(per_model) for s, v in enumerate(vals)
            for sec in ("chat", "chat_hard", "safety", "reasoning", "overall")]
    return pl.DataFrame(rows)


def test_seed_interval_is_a_point_without_seed_noise_and_wide_with_it():
    truth = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    al = _aligned({"good": truth, "flat_noise": [3, 1, 4, 1, 5, 9]}, truth)
    same = S.draw_seeds(al, _seed_rows([[v, v, v] for v in truth]), 200, 0)
    cols = S.seed_columns(al, same, 0.95, {("overall", "good"): 1.0,
                                          ("overall", "flat_noise"): 0.3})
    g = cols[("overall", "good")]
    assert g["spearman_seed_lo"] == pytest.approx(1.0) and g["spearman_seed_hi"] == pytest.approx(1.0)
    assert g["is_top"] and g["top_share"] == 1.0 and g["top_stable"]
    # seeds that swap neighbours' order: the interval opens below 1
    noisy = S.draw_seeds(al, _seed_rows([[v - 12, v, v + 12] for v in truth]), 400, 0)
    g = S.seed_columns(al, noisy, 0.95, {("overall", "good"): 1.0})[("overall", "good")]
    assert g["spearman_seed_lo"] < 0.9 and g["spearman_seed_hi"] == pytest.approx(1.0)
    # imported models (no per-seed rows) keep their one score in every draw
    none = S.draw_seeds(al, None, 50, 0)
    assert not none.varies and (none.y["overall"] == np.array(truth)).all()
    assert S.seed_columns(al, none, 0.95, {})[("overall", "good")]["spearman_seed_lo"] is None


def test_top_feature_is_unstable_when_another_leads_in_most_draws():
    """Two features tied on the seed means: the seed-mean top (by name, on the tie) leads
    in about half the draws at most, and a feature far behind never leads."""
    truth = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0]
    a = [1, 2, 3, 4, 5, 6, 8, 7]
    b = [2, 1, 3, 4, 5, 6, 7, 8]
    c = [8, 7, 6, 5, 4, 3, 2, 1]
    al = _aligned({"a": a, "b": b, "c": c}, truth)
    draws = S.draw_seeds(al, _seed_rows([[v - 6, v + 6] for v in truth]), 600, 1)
    rho = {("overall", "a"): 0.976, ("overall", "b"): 0.976, ("overall", "c"): -1.0}
    cols = S.seed_columns(al, draws, 0.95, rho)
    shares = {f: cols[("overall", f)]["top_share"] for f in "abc"}
    assert shares["c"] == 0.0 and 0.25 < shares["a"] < 0.75
    assert sum(shares.values()) == pytest.approx(1.0)
    assert [f for f in "abc" if cols[("overall", f)]["is_top"]] == ["b"]  # tie: larger name


def test_coverage_seed_interval_contains_the_seed_mean_coverage():
    from rmselect.analysis.coverage import coverage_at_k

    truth = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0]
    f = [1, 2, 3, 4, 5, 6, 7, 8]
    al = _aligned({"f": f}, truth)
    draws = S.draw_seeds(al, _seed_rows([[v - 15, v + 15] for v in truth]), 300, 2)
    lo, hi = S.coverage_intervals(al, draws, [3], 0.95)[("f", 3)]
    mean_cov = coverage_at_k(al.models, al.X[:, 0], al.y["overall"], 3)
    assert mean_cov == 1.0 and lo < 1.0 and hi == 1.0


def test_the_seed_table_joins_only_the_eval_stages_own_score_table(tmp_path):
    """An analysis pointed at an imported score table does not schedule the eval stage for
    a per-seed table; one reading the eval stage's table gets the seeds it wrote beside it."""
    from types import SimpleNamespace

    from rmselect.dag.analysis import companion

    rules_ = [SimpleNamespace(output=["results/tables/rm_scores.csv",
                                      "results/tables/rm_scores_all.csv",
                                      "results/tables/rm_scores_seeds.csv"])]
    seeds = "results/tables/rm_scores_seeds.csv"
    assert companion(seeds, "results/tables/rm_scores.csv", rules_)
    assert not companion(seeds, "imported/rm_scores.csv", rules_)
    assert not companion(None, "results/tables/rm_scores.csv", rules_)
    on_disk = tmp_path / "seeds.csv"
    on_disk.write_text("model\n")
    assert not companion(str(on_disk), "imported/rm_scores.csv", [])  # not asked for
    assert companion(str(on_disk), "imported/rm_scores.csv", [], explicit=True)
    assert not companion(str(tmp_path / "none.csv"), "imported/rm_scores.csv", [], explicit=True)
