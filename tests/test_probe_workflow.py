"""The probe stage in the DAG: one job per model feeding the feature table, and off switch."""

from __future__ import annotations

from pipeline import make_workdir, rules_of


def test_probe_jobs_feed_the_feature_table_and_can_be_switched_off(tmp_path):
    wd = make_workdir(tmp_path / "wd")
    jobs = wd.dry_run("results/tables/features.csv")
    probed = {j["wildcards"]["model"] for j in jobs if j["rule"] == "probe_model"}
    # Every model of the effective table (variants included) has a parameter-count job.
    models = {j["wildcards"]["model"] for j in jobs if j["rule"] == "bench_params"}
    assert probed == models and {r["name"] for r in _table(wd)} <= probed
    cfg = wd.load_config()
    cfg["probe"] = {"enabled": False}
    wd.save_config(cfg)
    jobs = wd.dry_run("results/tables/features.csv")
    assert "probe_model" not in rules_of(jobs) and "features_table" in rules_of(jobs)


def _table(wd):
    import csv

    with wd.table.open() as fh:
        return list(csv.DictReader(fh, delimiter="\t"))
