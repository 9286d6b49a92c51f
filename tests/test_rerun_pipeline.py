"""Rerun only what changed, on the embedded default with a REDUCED config.

One build of a copied workflow (3 toy models, one learning rate, fewer tasks and documents;
tests/pipeline.py), then `snakemake -n` after each change with Snakemake's default rerun
triggers (mtime, params, input, software-env, code):

(a) no change                       -> nothing runs;
(b) the LR grid of one model / one objective -> only those trainings and what follows them;
(c) analysis parameters or code     -> only analysis rules (tables, figures, report);
(d) one more model                  -> only that model's jobs plus the aggregates.

Every change is undone afterwards and (a) must hold again.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from pipeline import EXTRA_MODEL, REDUCED_MODELS, Workdir, make_workdir, write_model_table

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

PER_STUDY_UPSTREAM = {"toy_world", "toy_tokenizer", "toy_data"}


def stage_rules(wd: Workdir, stage: str) -> set[str]:
    """Rule names defined in workflow/rules/<stage>.smk (``use rule A as B with:`` too)."""
    path = wd.path / "workflow" / "rules" / f"{stage}.smk"
    if not path.exists():
        return set()
    text = path.read_text()
    return set(re.findall(r"^\s*rule (\w+):", text, re.M)) | set(
        re.findall(r"^\s*use rule \w+ as (\w+)", text, re.M))


def job_rules(jobs) -> set[str]:
    return {j["rule"] for j in jobs} - {"all"}


def need(wd: Workdir, stage: str, rule: str) -> None:
    if rule not in stage_rules(wd, stage):
        pytest.skip(f"stage {stage} has no rule {rule} yet (workflow/rules/{stage}.smk)")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Workdir:
    wd = make_workdir(tmp_path_factory.mktemp("rerun"))
    cfg = wd.load_config()
    corr = (cfg.get("analysis") or {}).get("correlations")
    if isinstance(corr, dict) and "bootstrap" in corr:
        corr["bootstrap"] = 100
        wd.save_config(cfg)
    t0 = time.monotonic()
    wd.snakemake("--cores", "2", timeout=3000)
    print(f"reduced build: {time.monotonic() - t0:.0f} s")
    return wd


def assert_nothing_to_do(wd: Workdir) -> None:
    jobs = wd.dry_run()
    assert not job_rules(jobs), [(j["rule"], j["wildcards"], j["reason"]) for j in jobs]


def test_a_no_change_runs_nothing(built):
    assert_nothing_to_do(built)


def test_a_moved_checkout_runs_nothing(built):
    """Params and code hashes name paths relative to the checkout (issue 30: the analysis
    rules carried the absolute script path), so moving the finished study reruns nothing."""
    moved = built.path.with_name(built.path.name + "-moved")
    os.rename(built.path, moved)
    try:
        assert_nothing_to_do(Workdir(moved))
    finally:
        os.rename(moved, built.path)


def _downstream_of_rm(wd: Workdir) -> set[str]:
    """Rules allowed to rerun after RM training changes: rm selection, evaluation, analysis."""
    return (
        stage_rules(wd, "rm")
        | stage_rules(wd, "eval")
        | stage_rules(wd, "analysis")
        | stage_rules(wd, "posttrain") - {"posttrain"}  # lineage tables read RM scores
    )


def test_b_lr_grid_of_one_objective(built):
    """Adding a learning rate to the bt grid trains only (bt, new lr) for each model."""
    wd = built
    need(wd, "rm", "rm_train")
    saved = wd.config.read_text()
    cfg = wd.load_config()
    grid = cfg["rm"]["lr_grid"]
    old = grid["bt"][0]
    new = float(old) * 3
    grid["bt"] = [old, new]
    wd.save_config(cfg)
    try:
        jobs = wd.dry_run()
    finally:
        wd.config.write_text(saved)
    train = [j for j in jobs if j["rule"] == "rm_train"]
    assert sorted(j["wildcards"]["model"] for j in train) == sorted(REDUCED_MODELS)
    assert {j["wildcards"]["objective"] for j in train} == {"bt"}
    assert {float(j["wildcards"]["lr"]) for j in train} == {new}
    for j in jobs:
        assert j["wildcards"].get("objective", "bt") == "bt", j
    assert job_rules(jobs) <= _downstream_of_rm(wd) | {"rm_train"}, job_rules(jobs)
    assert "rm_select" in job_rules(jobs)
    assert not job_rules(jobs) & (PER_STUDY_UPSTREAM | {"toy_pretrain"})
    assert_nothing_to_do(wd)


def test_b_lr_grid_of_one_model(built):
    """A per-model LR grid reruns only that model's training and what follows it."""
    wd = built
    need(wd, "rm", "rm_train")
    cfg = wd.load_config()
    if "lr_grid_by_model" not in str(
        (wd.path / "workflow" / "rmselect" / "rm" / "rules.py").read_text()
    ):
        pytest.skip(
            "rm stage has no per-model LR grid (rm.lr_grid is per objective); "
            "test_b_lr_grid_of_one_objective covers grid changes"
        )
    saved = wd.config.read_text()
    model = REDUCED_MODELS[1]
    bt = cfg["rm"]["lr_grid"]["bt"]
    cfg["rm"]["lr_grid_by_model"] = {model: {"bt": [float(bt[0]) * 3]}}
    wd.save_config(cfg)
    try:
        jobs = wd.dry_run()
    finally:
        wd.config.write_text(saved)
    per_model = [j for j in jobs if "model" in j["wildcards"]]
    assert {j["wildcards"]["model"] for j in per_model} == {model}
    assert {j["rule"] for j in jobs if j["rule"] == "rm_train"} == {"rm_train"}
    assert job_rules(jobs) <= _downstream_of_rm(wd) | {"rm_train"}
    assert_nothing_to_do(wd)


def test_c_analysis_parameters(built):
    wd = built
    need(wd, "analysis", "analysis_correlations")
    saved = wd.config.read_text()
    cfg = wd.load_config()
    cfg["analysis"]["correlations"]["bootstrap"] = int(
        cfg["analysis"]["correlations"].get("bootstrap", 100)
    ) + 1
    wd.save_config(cfg)
    try:
        jobs = wd.dry_run()
    finally:
        wd.config.write_text(saved)
    assert "analysis_correlations" in job_rules(jobs)
    assert job_rules(jobs) <= stage_rules(wd, "analysis"), job_rules(jobs)
    assert_nothing_to_do(wd)


def dry_run_after_edit(wd: Workdir, rel: str):
    """The dry run after appending a comment to ``rel``; the file is restored (mtime too)."""
    path = wd.path / rel
    text, st = path.read_text(), path.stat()
    path.write_text(text + "\n# an edit\n")
    try:
        return wd.dry_run()
    finally:
        path.write_text(text)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_c_analysis_code(built):
    """Editing an analysis script reruns the rules that run it (and their figures) only."""
    wd = built
    need(wd, "analysis", "analysis_gains")
    jobs = dry_run_after_edit(wd, "workflow/scripts/analysis_gains.py")
    assert "analysis_gains" in job_rules(jobs), (
        "editing workflow/scripts/analysis_gains.py does not rerun analysis_gains: the rule "
        "must depend on its code (params: code=code_hash(...) or the script as input)"
    )
    assert job_rules(jobs) <= stage_rules(wd, "analysis"), job_rules(jobs)
    assert_nothing_to_do(wd)


def test_c_code_reached_only_through_an_import(built):
    """Editing a module that an analysis script reaches only through imports
    (rmselect/plotting.py, the figure style) reruns that script's rule: the code hash follows
    imports, nobody lists the module by hand."""
    wd = built
    need(wd, "analysis", "analysis_gains")
    jobs = dry_run_after_edit(wd, "workflow/rmselect/plotting.py")
    assert "analysis_gains" in job_rules(jobs), "plotting.py is not part of analysis_gains' code"
    # the other figure makers, and the feature table below the presence summary they rewrite
    others = {"presence_distributions", "posttrain_lineage", "features_table"}
    assert job_rules(jobs) <= stage_rules(wd, "analysis") | others, job_rules(jobs)
    assert not job_rules(jobs) & {"rm_train", "eval_rm", "eval_rm_model", "bench_model",
                                  "probe_model", "toy_pretrain"}, job_rules(jobs)
    assert_nothing_to_do(wd)


def test_d_adding_a_model(built):
    wd = built
    table = wd.table
    saved = table.read_text()
    write_model_table(table, REDUCED_MODELS + (EXTRA_MODEL,))
    try:
        jobs = wd.dry_run()
    finally:
        table.write_text(saved)
    per_model = [j for j in jobs if "model" in j["wildcards"]]
    assert per_model, "no job for the new model"
    assert {j["wildcards"]["model"] for j in per_model} == {EXTRA_MODEL}, {
        (j["rule"], j["wildcards"]["model"]) for j in per_model
    }
    rules = job_rules(jobs)
    assert "toy_pretrain" in rules
    # (eval: one job per RM, or per model with eval.jobs: per_model, the toy default)
    for stage, names in (("rm", {"rm_train"}), ("eval", {"eval_rm", "eval_rm_model"})):
        if names & stage_rules(wd, stage):
            assert names & rules, f"{stage} not run for the new model"
    assert not rules & PER_STUDY_UPSTREAM, rules & PER_STUDY_UPSTREAM
    aggregates = [j for j in jobs if "model" not in j["wildcards"]]
    for j in aggregates:  # aggregates rerun because their inputs or parameters changed
        assert re.search(r"[Ii]nput|[Pp]aram|updated", j["reason"]), j
    assert_nothing_to_do(wd)
