"""The eval config section: benchmarks, derived toy sets, imports and which RMs are needed."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rmselect.config import ConfigError, load_study
from rmselect.eval.settings import covered_by_import, eval_settings, model_flags
from rmselect.rm import rules

REPO = Path(__file__).resolve().parents[1]
TOY = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
HEADER = "model,objective,chat,chat_hard,safety,reasoning\n"


def settings(eval_section, tmp_path=None):
    cfg = copy.deepcopy(TOY)
    cfg["eval"] = eval_section
    study = load_study(cfg, "test.yaml", REPO)
    return study, eval_settings(study, study.trained_models())


def test_toy_default_evaluates_every_trained_rm_on_three_benchmarks():
    study, ev = settings(TOY["eval"])
    assert list(ev.benchmarks) == ["rewardbench", "rewardbench2", "rmbench"]
    assert ev.benchmarks["rmbench"]["path"] == "results/eval/data/rmbench.jsonl"
    assert ev.derived["rewardbench2"]["source"] == {"path": "results/toy/data/rewardbench.jsonl"}
    assert len(ev.pairs) == 2 * len(study.trained_models())
    assert ev.makes_table and ev.options["seed"] == TOY["seed"]
    assert ev.data_files("rewardbench2") == ["results/eval/data/rewardbench2.jsonl"]


def test_one_job_gets_every_benchmark_as_one_option_group():
    import shlex

    from rmselect.eval.run import benchmark_jobs, build_parser

    section = {
        "benchmarks": {
            "rewardbench": {"path": "rb v1.jsonl", "weights": "official"},
            "rewardbench2": {"derive_from": "rewardbench", "limit_per_subset": 20},
            "rmbench": {"hub": "THU-KEG/RM-Bench", "split": "train"},
        },
        "limit_per_subset": 5,
    }
    _, ev = settings(section)
    names = list(ev.benchmarks)
    jsons = [f"results/eval/{b}/bt/m.json" for b in names]
    scores = [f"results/eval/{b}/bt/m.scores.parquet" for b in names]
    assert ev.job_data_files() == ["rb v1.jsonl", "results/eval/data/rewardbench2.jsonl"]
    argv = shlex.split(ev.benchmark_args(jsons, scores)) + ["--rm", "x", "--model", "m",
                                                            "--limit-per-subset", "5"]  # fmt: skip
    jobs = benchmark_jobs(build_parser().parse_args(argv))
    assert [j.benchmark for j in jobs] == names
    assert [j.entry for j in jobs] == [ev.benchmarks[b] for b in names]
    assert [(j.out_json, j.out_scores) for j in jobs] == list(zip(jsons, scores))
    assert [j.limit_per_subset for j in jobs] == [5, 20, 5]
    with pytest.raises(ValueError, match="not under benchmark rewardbench"):
        ev.benchmark_args(jsons[::-1], scores[::-1])
    with pytest.raises(ValueError, match="3 benchmarks"):
        ev.benchmark_args(jsons[:1], scores[:1])


def test_import_only_needs_no_rm(tmp_path):
    imp = tmp_path / "imp.csv"
    imp.write_text(HEADER + "toyllama-2-m,bt,50,50,50,50\n")
    study, ev = settings(
        {"train_and_evaluate": False, "import": str(imp), "benchmarks": {"rewardbench": {"path": "x.jsonl"}}}
    )
    assert ev.pairs == [] and ev.makes_table
    study, ev = settings({"import": str(imp), "benchmarks": {"rewardbench": {"path": "x.jsonl"}}})
    assert ("toyllama-2-m", "bt") not in ev.pairs and ("toyllama-2-m", "regression") in ev.pairs
    assert covered_by_import(study) == {("toyllama-2-m", "bt")}


def test_config_errors_name_the_field(tmp_path):
    imp = tmp_path / "imp.csv"
    imp.write_text(HEADER + "nosuchmodel,bt,50,50,50,50\n")
    with pytest.raises(ConfigError, match=r"eval.import.*row 2 \(model 'nosuchmodel'\)"):
        settings({"import": str(imp), "benchmarks": {}})
    with pytest.raises(ConfigError, match="derive_from"):
        settings({"benchmarks": {"rmbench": {"derive_from": "rewardbench"}}})
    with pytest.raises(ConfigError, match=r"eval.benchmarks"):
        settings({"benchmarks": {"rewardbench3": {"path": "x"}}})
    with pytest.raises(ConfigError, match="weights"):
        settings({"benchmarks": {"rewardbench": {"path": "x", "weights": "equal"}}})
    imp.write_text(HEADER + "toyllama-2-m,bt,50,50,50,50\n")
    with pytest.raises(ConfigError, match="both imported and trained"):
        settings({"import": str(imp), "import_precedence": "error", "benchmarks": {"rewardbench": {"path": "x"}}})


def test_model_flags_follow_the_table_row():
    study, _ = settings(TOY["eval"])
    spec = study.model("toyqwen-2-m")
    assert model_flags(spec) == ""
    from dataclasses import replace

    assert model_flags(replace(spec, trust_remote_code=True, chat_template="t.jinja")) == (
        "--chat-template t.jinja --trust-remote-code"
    )


def _import_only_config(tmp_path):
    """The toy config with imported RM scores and train_and_evaluate: false, as a file."""
    imp = tmp_path / "imp.csv"
    imp.write_text(HEADER + "toyllama-2-m,bt,50,50,50,50\n")
    cfg = copy.deepcopy(TOY)
    cfg["eval"] = {"train_and_evaluate": False, "import": str(imp),
                   "benchmarks": {"rewardbench": TOY["eval"]["benchmarks"]["rewardbench"]}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.workflow
def test_dry_run_import_only_runs_just_the_table(tmp_path):
    path = _import_only_config(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "eval", "--configfile", str(path), "--forceall", "--quiet", "rules"],
        cwd=REPO, capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout + out.stderr
    assert "rm_scores_table" in text and "eval_rm" not in text and "rm_train" not in text


@pytest.mark.workflow
def test_default_target_trains_no_rm_without_evaluation(tmp_path):
    """eval.train_and_evaluate: false -> the default target plans no rm_train / rm_select
    (it used to schedule every RM of the LR grid); the explicit `rm` target still does."""
    path = _import_only_config(tmp_path)
    for target, wants_rm in (([], False), (["rm"], True)):
        out = subprocess.run(
            [sys.executable, "-m", "snakemake", "-n", *target, "--configfile", str(path), "--forceall", "--quiet", "rules"],
            cwd=REPO, capture_output=True, text=True,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        text = out.stdout + out.stderr
        assert ("rm_train" in text) == wants_rm and ("rm_select" in text) == wants_rm
        if not target:
            assert "rm_scores_table" in text


def test_per_model_jobs_score_all_rms_of_a_model_in_one_call(tmp_path):
    import shlex

    from rmselect.eval.run import benchmark_jobs, build_parser, split_calls

    study, ev = settings(TOY["eval"])  # the toy default groups a model's RMs
    assert ev.options["jobs"] == "per_model"
    assert ev.grouped_models == list(study.trained_models())
    objs = ev.objectives
    assert objs == ["bt", "regression"]
    rms_of = [(o, seed) for o in objs for seed in ev.seeds]  # one RM per objective and seed
    jsons = [f"results/eval/{b}/{o}/m/seed{x}.json" for b in ev.benchmarks for o, x in rms_of]
    scores = [f"results/eval/{b}/{o}/m/seed{x}.scores.parquet"
              for b in ev.benchmarks for o, x in rms_of]
    rms = [f"results/rm/{o}/m/seed{x}/final" for o, x in rms_of]
    sels = [f"results/rm/{o}/m/seed{x}/selected.json" for o, x in rms_of]
    sets = split_calls(shlex.split(ev.model_args("m", rms_of, rms, sels, jsons, scores)))
    assert len(sets) == len(objs) * len(ev.seeds)
    for (obj, x), argv in zip(rms_of, sets):
        a = build_parser().parse_args(argv)
        assert (a.rm, a.selected, a.objective, a.model) == (
            f"results/rm/{obj}/m/seed{x}/final", f"results/rm/{obj}/m/seed{x}/selected.json",
            obj, "m"
        )
        assert [(j.benchmark, j.out_json) for j in benchmark_jobs(a)] == [
            (b, f"results/eval/{b}/{obj}/m/seed{x}.json") for b in ev.benchmarks
        ]
        assert a.n_boot == TOY["eval"]["n_boot"] and a.seed == TOY["seed"]
    # one job per RM: the default, and for a model with only some objectives left to evaluate
    assert settings(TOY["eval"] | {"jobs": "per_rm"})[1].grouped_models == []
    imp = tmp_path / "imp.csv"
    imp.write_text(HEADER + "toyllama-2-m,bt,50,50,50,50\n")
    _, ev = settings(TOY["eval"] | {"import": str(imp)})
    assert "toyllama-2-m" not in ev.grouped_models and len(ev.grouped_models) == len(study.trained_models()) - 1
    with pytest.raises(ConfigError, match=r"eval\.jobs.*per_job.*per_rm"):
        settings(TOY["eval"] | {"jobs": "per_job"})


@pytest.mark.workflow
def test_dry_run_per_model_jobs_leave_a_partly_imported_model_per_rm(tmp_path):
    imp = tmp_path / "imp.csv"
    imp.write_text(HEADER + "toyllama-2-m,bt,50,50,50,50\n")
    cfg = copy.deepcopy(TOY)
    cfg["eval"]["import"] = str(imp)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "eval", "--configfile", str(path), "--forceall"],
        cwd=REPO, capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    counts = dict(
        (m.group(1), int(m.group(2)))
        for m in re.finditer(r"^(eval_rm\w*)\s+(\d+)$", out.stdout + out.stderr, re.M)
    )
    study = load_study(cfg, "c.yaml", REPO)
    n, seeds = len(study.trained_models()), rules.seeds(study.config)
    # the partly imported model: one job per RM left, i.e. per training seed of regression
    assert counts == {"eval_rm_model": n - 1, "eval_rm": len(seeds)}
    assert f"logs/eval_rm/regression/toyllama-2-m/seed{seeds[0]}.log" in out.stdout + out.stderr
