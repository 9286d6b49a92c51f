"""Cost projection (rmselect.plan.projection): the arithmetic on a hand-computed two-model
study, the caps, local-file counting, the post-run join, and the `plan` target itself."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

from rmselect.analysis.cost import projected_frame, with_projection
from rmselect.config import ConfigError, load_study
from rmselect.plan.projection import (
    PROFILES,
    format_table,
    gpu_col,
    plan_settings,
    project,
    projection_csv,
)

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
HEADER = "name\tsource\tpublisher\tfamily\tparams_b\ttokens_t\treleased\tstage\tparent\n"


def _config(tmp: Path) -> dict:
    """Two hub models (1 B and 2 B) and hub data with stated sizes; a profile T with round
    numbers (peak 1 TFLOP/s, 1 GB/s, MFU 0.5 train / 0.25 forward)."""
    (tmp / "models.tsv").write_text(
        HEADER + "m1\torg/m1\tP\tF1\t1.0\t\t\tinstruct\t\n"
        "m2\torg/m2\tP\tF2\t2.0\t\t\tinstruct\t\n")
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["models"] = str(tmp / "models.tsv")
    cfg["size_groups"] = [{"name": "all", "min_b": 0.0, "max_b": 1000.0}]
    cfg["data"] = {"helpsteer2": {"hub": "x/hs2"},
                   "helpsteer2_preference": {"hub": "x/hs2", "data_files": "p.jsonl.gz"}}
    cfg["rm"].update(objectives=["bt", "regression"],
                     lr_grid={"bt": [1e-6, 2e-6], "regression": [1e-6]},
                     epochs={"bt": 1, "regression": 2}, global_batch=10, eval_every=5,
                     max_length=1000, max_train_examples=None, max_val_pairs=None,
                     seeds=None)  # one training seed (a list multiplies runs: test below)
    cfg["eval"]["benchmarks"] = {"rewardbench": {"hub": "x/rb", "split": "filtered"}}
    cfg["eval"].update(max_length=2048, jobs="per_rm")
    cfg["benchmarks"]["tasks"] = {"t1": {"n": 10, "fewshot": 2}, "g1": {"n": 5, "fewshot": 0}}
    cfg["benchmarks"]["aggregates"] = {}
    cfg["benchmarks"]["screening"] = {"enabled": False}
    cfg["presence"].update(domains={"d": {"hub": "x/corpus"}}, n_docs=100, max_tokens=64,
                           reference_models=[], family_reuse=False)
    cfg["posttrain"]["variants"] = []
    cfg["recommend"]["candidates"] = []
    cfg["analysis"]["population"] = {"column": "stage", "values": ["instruct"], "models": []}
    cfg["probe"] = {"enabled": False}
    cfg["plan"] = {
        "profile": "T",
        "profiles": {"T": {"peak_tflops": 1.0, "mem_bw_gbs": 1.0, "mfu_train": 0.5,
                           "mfu_forward": 0.25}},
        "padding": 0.0, "decode_batch": 16,
        "data": {"helpsteer2": {"train": 105, "tokens": 100},
                 "helpsteer2_preference": {"train": 52, "validation": 4, "tokens": 100}},
        "eval": {"rewardbench": {"rows": 10, "sequences": 2, "tokens": 50}},
        "benchmarks": {"default": {"subtasks": 1, "choices": 1, "tokens": 150, "generate": 0},
                       "tasks": {"t1": {"choices": 4, "tokens": 20},
                                 "g1": {"tokens": 10, "generate": 8}}},
        "presence": {"tokens_per_doc": {"d": 50}},
    }
    return cfg


def _rows(study, root):
    full, totals = projection_csv(study, root)
    work = full.filter(~pl.col("stage").is_in(["assumption"]) & (pl.col("model") != "(all)"))
    return {(r["stage"], r["model"]): r for r in work.iter_rows(named=True)}, totals


def test_two_model_study_by_hand(tmp_path):
    study = load_study(_config(tmp_path), "test", REPO)
    rows, totals = _rows(study, tmp_path)
    # RM grid, per model. BT: 52 // 10 = 5 steps x 10 pairs x 2 sequences x 100 tokens =
    # 10,000 per LR, 2 LRs; validation at step 5 only: 4 pairs x 2 x 100 = 800 per LR.
    # Regression: 2 epochs x (105 // 10) = 20 steps x 10 x 100 = 20,000; validation at
    # steps 5, 10, 15, 20: 4 x 800 = 3,200. Sum: train 40,000, forward 4,800, 3 runs.
    rm1 = rows[("rm_train", "m1")]
    assert (rm1["runs"], rm1["train_tokens"], rm1["forward_tokens"]) == (3, 40_000, 4_800)
    assert rm1["flops"] == pytest.approx(6e9 * 40_000 + 2e9 * 4_800)  # 2.496e14
    assert rows[("rm_train", "m2")]["flops"] == pytest.approx(2 * rm1["flops"])
    # T profile: 2.4e14 / (1e12 x 0.5) + 9.6e12 / (1e12 x 0.25) = 480 + 38.4 s
    assert rm1[gpu_col("T")] * 3600 == pytest.approx(518.4)
    # RewardBench: 2 RMs x 10 rows x 2 sequences x 50 tokens = 2,000 forward tokens
    assert rows[("eval", "m1")]["forward_tokens"] == 2_000
    assert (rows[("eval", "m1")]["runs"], rows[("eval", "m1")]["rule"]) == (2, "eval_rm")
    # three training seeds: three times the runs and tokens of the RM grid and its evaluation
    cfg3 = _config(tmp_path)
    cfg3["rm"]["seeds"] = [0, 1, 2]
    rows3, _ = _rows(load_study(cfg3, "test", REPO), tmp_path)
    r3 = rows3[("rm_train", "m1")]
    assert (r3["runs"], r3["train_tokens"], r3["forward_tokens"]) == (9, 120_000, 14_400)
    assert (rows3[("eval", "m1")]["runs"], rows3[("eval", "m1")]["forward_tokens"]) == (6, 6_000)
    # t1: 10 items x (2 + 1) x 20 tokens x 4 choices = 2,400; g1: 5 x 1 x 10 = 50 prefill,
    # 5 x 8 = 40 decoded. Decoding 2 B: max(4e9 / 0.25e12, 4e9 / (1e9 x 16)) = 0.25 s/token.
    b2 = rows[("benchmarks", "m2")]
    assert (b2["forward_tokens"], b2["decode_tokens"]) == (2_450, 40)
    assert b2[gpu_col("T")] * 3600 == pytest.approx(2e9 * 2 * 2_450 / 0.25e12 + 0.25 * 40)
    # presence: 100 documents x 50 tokens
    assert rows[("presence", "m1")]["forward_tokens"] == 5_000
    # screening (benchmarks + presence) over the RM grid, in T seconds:
    # m1 24.6 + 40, m2 49.2 + 80 = 193.8; RM grid 518.4 + 1,036.8 = 1,555.2
    t = {r["quantity"]: r for r in totals.iter_rows(named=True)}
    assert t["screening"][gpu_col("T")] * 3600 == pytest.approx(193.8)
    assert t["rm_grid"][gpu_col("T")] * 3600 == pytest.approx(1555.2)
    assert t["screening_to_rm_grid_ratio"][gpu_col("T")] == pytest.approx(193.8 / 1555.2)
    assert t["total"]["flops"] == pytest.approx(sum(r["flops"] for r in rows.values()))
    # every shipped profile is priced, and the printed table names them
    text = format_table(totals, list(PROFILES) + ["T"])
    assert all(f"GPU-h {p}" in text for p in ("A6000", "A100", "H100", "H200"))


def test_caps_and_padding_change_the_counts(tmp_path):
    cfg = _config(tmp_path)
    cfg["rm"].update(max_train_examples=30, max_length=80)
    cfg["plan"]["padding"] = 0.5
    study = load_study(cfg, "test", REPO)
    rows, _ = _rows(study, tmp_path)
    # BT 3 steps x 10 x 2 x 80 x 1.5 = 7,200 per LR (x 2); regression 6 x 10 x 80 x 1.5 =
    # 7,200; validation: BT step 3 (1 pass), regression steps 5, 6 (2): 4 x 2 x 80 each
    rm = rows[("rm_train", "m1")]
    assert rm["train_tokens"] == pytest.approx(3 * 7_200)
    assert rm["forward_tokens"] == pytest.approx((2 * 1 + 2) * 640)


def test_local_data_is_counted_ties_dropped(tmp_path):
    cfg = _config(tmp_path)
    rows = [{"prompt": "p" * 40, "response_1": "a" * 20, "response_2": "b" * 60,
             "preference_strength": 2, "split": "train"},
            {"prompt": "p" * 40, "response_1": "a", "response_2": "b",
             "preference_strength": 0, "split": "train"},  # a tie: not a training pair
            {"prompt": "p" * 40, "response_1": "a" * 20, "response_2": "b" * 60,
             "preference_strength": -1, "split": "train"},
            {"prompt": "q", "response_1": "c", "response_2": "d",
             "preference_strength": 1, "split": "validation"}]
    (tmp_path / "pref.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg["data"]["helpsteer2_preference"] = {"path": "pref.jsonl"}
    cfg["rm"].update(objectives=["bt"], global_batch=1, eval_every=100)
    cfg["plan"].update(chars_per_token=4.0, template_tokens=10)
    study = load_study(cfg, "test", REPO)
    r, _ = _rows(study, tmp_path)
    # 2 pairs, 1 step each; (40 + (20 + 60) / 2) / 4 + 10 = 30 tokens per text; 2 LRs
    assert r[("rm_train", "m1")]["train_tokens"] == pytest.approx(2 * 2 * 2 * 30)
    assert "counted in pref.jsonl" in r[("rm_train", "m1")]["note"]


def test_hub_data_without_a_stated_size_is_one_clear_error(tmp_path, monkeypatch):
    cfg = _config(tmp_path)
    cfg["eval"]["benchmarks"] = {"rmbench": {"hub": "x/rm", "split": "train"}}
    cfg["plan"]["eval"] = {}
    study = load_study(cfg, "test", REPO)
    import rmselect.plan.projection as P

    shipped = P.plan_defaults
    with monkeypatch.context() as m:  # the schema's defaults without an rmbench entry
        m.setattr("rmselect.plan.cost_model.plan_defaults", lambda: {**shipped(), "eval": {
            k: v for k, v in shipped()["eval"].items() if k != "rmbench"}})
        with pytest.raises(ConfigError, match=r"plan\.eval\.rmbench"):
            project(study, tmp_path)
    assert plan_settings(cfg)["eval"]["rmbench"]["rows"] == 1327


def test_unknown_profile_is_named(tmp_path):
    cfg = _config(tmp_path)
    cfg["plan"]["profile"] = "B200"
    with pytest.raises(ConfigError, match=r"plan\.profile.*B200"):
        project(load_study(cfg, "test", REPO), tmp_path)


def test_local_presence_corpus_uses_its_text_column(tmp_path):
    cfg = _config(tmp_path)
    (tmp_path / "d.jsonl").write_text("".join(
        json.dumps({"body": "x" * n}) + "\n" for n in (40, 80, 400)))
    cfg["presence"].update(domains={"d": {"path": "d.jsonl", "text_column": "body"}},
                           n_docs=2, max_tokens=64)
    cfg["plan"]["chars_per_token"] = 4.0
    r, _ = _rows(load_study(cfg, "test", REPO), tmp_path)
    # min(n_docs, 3 rows) = 2 documents x min(mean 520 / 3 / 4 chars per token, 64) tokens
    assert r[("presence", "m1")]["forward_tokens"] == pytest.approx(2 * (520 / 3 / 4))


def test_cost_table_puts_projected_beside_measured(tmp_path):
    cfg = _config(tmp_path)
    proj = projected_frame(cfg, tmp_path)
    assert set(proj["stage"]) == {"rm_train", "eval", "benchmarks", "presence"}
    cost = pl.DataFrame({"stage": ["rm_train", "analysis"], "rule": ["rm_train", "analysis_x"],
                         "model": ["m1", "(none)"], "jobs": [3, 1], "wall_s": [600.0, 2.0],
                         "cpu_s": [1.0, 1.0], "max_rss_mb": [1.0, 1.0], "gpu_s": [0.0, 0.0],
                         "gpu_s_alloc": [0.0, 0.0]})
    out = with_projection(cost, proj)
    m1 = out.filter((pl.col("stage") == "rm_train") & (pl.col("model") == "m1")).row(0, named=True)
    assert m1["wall_s"] == 600.0 and m1["projected_s"] == pytest.approx(518.4)
    m2 = out.filter((pl.col("stage") == "rm_train") & (pl.col("model") == "m2")).row(0, named=True)
    assert m2["jobs"] == 0 and m2["wall_s"] is None  # projected, never measured
    an = out.filter(pl.col("stage") == "analysis").row(0, named=True)
    assert an["projected_s"] is None


@pytest.mark.workflow
def test_plan_target_runs_alone_offline_and_prints_totals(tmp_path):
    """`snakemake plan --configfile config/paper.yaml` in an empty directory: one job (it
    needs no other rule's output), seconds, both A6000 and H200 totals, the CSV."""
    t0 = time.time()
    run = subprocess.run(
        [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
         "--cores", "1", "plan", "--configfile", str(REPO / "config" / "paper.yaml")],
        capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": str(SNAKEMAKE.parent)
                                             + ":/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert time.time() - t0 < 60
    out = run.stdout + run.stderr
    assert "1 of 1 steps" in out
    total = next(line for line in run.stdout.splitlines() if line.startswith("total"))
    assert "GPU-h A6000" in run.stdout and "GPU-h H200" in run.stdout
    a6000 = float(total.split()[2].replace(",", ""))
    assert 4_500 / 2 <= a6000 <= 4_500 * 2  # the paper's ~4,500 A6000 GPU-hours
    csv = pl.read_csv(tmp_path / "results" / "plan" / "cost_projection.csv")
    assert csv.filter(pl.col("stage") == "rm_train").height == 42
    assert csv.filter(pl.col("stage") == "assumption").height >= 5


def test_probe_stage_by_hand(tmp_path):
    """Probe features: one forward per response of min(cap, 52) train + 4 validation pairs,
    at min(max_length, 100) tokens: 2 x (30 + 4) x 64 = 4,352 tokens, 2 N FLOPs per token."""
    cfg = _config(tmp_path)
    cfg["probe"] = {"enabled": True, "max_train_pairs": 30, "max_length": 64}
    rows, _ = _rows(load_study(cfg, "test", REPO), tmp_path)
    p2 = rows[("probe", "m2")]
    assert (p2["rule"], p2["forward_tokens"], p2["train_tokens"]) == ("probe_model", 4_352, 0)
    assert p2["flops"] == pytest.approx(2 * 2e9 * 4_352)
