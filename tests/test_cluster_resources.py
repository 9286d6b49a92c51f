"""Per-job resources from model size: the documented table, overrides, CPU-only kinds."""

from __future__ import annotations

import pytest

from rmselect.cluster.resources import (
    CPU_KINDS,
    EXTRA_KEYS,
    GPU_KINDS,
    KEYS,
    ClusterSettings,
    ResourceError,
    resource_table,
    resources_for,
)
from rmselect.config import load_study_file

PAPER = load_study_file("config/paper.yaml")
TOY = load_study_file("config/config.yaml")

# The documented paper table (config/paper.yaml, resources.gpu_tiers), written out by hand:
# (params_b, training GPUs, inference GPUs, nodes of a training job, ZeRO stage).
EXPECTED_TIERS = [
    (1.24, 2, 1, 1, 2),
    (2.0, 2, 1, 1, 2),
    (2.61, 4, 1, 1, 2),
    (3.82, 4, 1, 1, 2),
    (8.03, 8, 1, 1, 3),
    (10.3, 8, 1, 1, 3),
    (14.0, 16, 2, 2, 3),
    (70.0, 32, 4, 4, 3),
]


@pytest.mark.parametrize("params_b,train,infer,nodes,zero", EXPECTED_TIERS)
def test_paper_tiers(params_b, train, infer, nodes, zero):
    cfg = PAPER.config
    for kind in ("rm_train", "posttrain"):
        r = resources_for(kind, params_b, cfg)
        assert (r["gpu"], r["nodes"], r["zero"]) == (train, nodes, zero)
        per_node = train // nodes
        assert r["gpus_per_node"] == per_node
        assert r["cpus_per_task"] == 8 * per_node
        assert r["mem_mb"] == 48000 * per_node
        assert r["tasks"] == nodes and r["tasks_per_gpu"] == 0
        assert r["mpi"] == ("srun" if nodes > 1 else None)
        assert r["slurm_extra"] == ("--ntasks-per-node=1" if nodes > 1 else None)
    for kind in ("eval", "benchmarks", "presence"):
        r = resources_for(kind, params_b, cfg)
        assert r["gpu"] == infer and r["zero"] == 0 and r["nodes"] == 1


def test_runtime_scales_with_size_and_attempt():
    cfg = PAPER.config
    small = resources_for("rm_train", 1.24, cfg)["runtime"]
    big = resources_for("rm_train", 9.24, cfg)["runtime"]
    assert small == 100  # 60 + 30 * 1.24 = 97.2, rounded up to 10
    assert big == 340  # 60 + 30 * 9.24 = 337.2
    r2 = resources_for("rm_train", 9.24, cfg, attempt=2)
    assert r2["runtime"] == 2 * big


def test_retry_scaled_hand_cases():
    from rmselect.cluster.resources import retry_scaled

    assert retry_scaled(48000, 100, 1, 384000) == (48000, 100)
    assert retry_scaled(48000, 100, 3, 384000) == (144000, 300)  # below the node: grows
    assert retry_scaled(384000, 340, 2, 512000) == (512000, 680)  # capped at the node
    assert retry_scaled(384000, 340, 3, 384000) == (384000, 1020)  # a full node stays full
    assert retry_scaled(600000, 60, 2, 512000) == (600000, 120)  # never shrunk below the ask


def test_a_retry_does_not_grow_memory_past_the_node():
    """Paper config, 8-GPU tier on 8-GPU nodes of 48 GB per GPU: every attempt asks for the
    node's 384,000 MB (today's x attempt asked 768,000 then 1,152,000); the runtime grows.
    A 2-GPU job grows its memory per attempt up to the node."""
    cfg = PAPER.config
    first = resources_for("rm_train", 9.24, cfg)
    assert (first["gpu"], first["mem_mb"], first["runtime"]) == (8, 384000, 340)
    for attempt in (2, 3):
        r = resources_for("rm_train", 9.24, cfg, attempt=attempt)
        assert r["mem_mb"] == 384000 and r["runtime"] == 340 * attempt
    bigger = {**cfg, "resources": {**cfg["resources"], "node_mem_mb": 512000}}
    assert [resources_for("rm_train", 9.24, bigger, attempt=a)["mem_mb"]
            for a in (1, 2, 3)] == [384000, 512000, 512000]
    small = [resources_for("rm_train", 1.24, cfg, attempt=a) for a in (1, 2, 3)]
    assert [r["gpu"] for r in small] == [2, 2, 2]
    assert [r["mem_mb"] for r in small] == [96000, 192000, 288000]
    nine = resources_for("rm_train", 1.24, cfg, attempt=9)
    assert nine["mem_mb"] == 384000 and nine["runtime"] == 9 * small[0]["runtime"]


def test_every_paper_model_gets_a_row_with_all_keys():
    rows = resource_table(PAPER.config, PAPER.models)
    assert len(rows) == len(PAPER.models) * len(GPU_KINDS)
    for row in rows:
        assert set(KEYS) <= set(row)
        assert row["gpu"] >= 1
    falcon = [r for r in rows if r["model"] == "Falcon3-10B-Instruct" and r["kind"] == "rm_train"]
    assert falcon[0]["gpu"] == 8


def test_cpu_only_kinds_never_request_gpus_even_when_overridden():
    cfg = {**PAPER.config, "resources": {**PAPER.config["resources"], "analysis": {"gpus": 4}}}
    for kind in CPU_KINDS:
        for p in (None, 0.5, 9.0, 100.0):
            r = resources_for(kind, p, cfg, model_extra={"gpus": "8"})
            assert r["gpu"] == 0 and r["nodes"] == 1 and r["gpu_model"] is None


def test_toy_default_requests_no_gpus():
    for row in resource_table(TOY.config, TOY.models, kinds=GPU_KINDS + CPU_KINDS):
        assert row["gpu"] == 0, row
        assert row["mpi"] is None and row["nodes"] == 1


def test_per_rule_override_beats_tier():
    res = dict(PAPER.config["resources"])
    res["eval"] = {"gpus": 2, "runtime": 15, "mem_mb": 1000}
    cfg = {**PAPER.config, "resources": res}
    r = resources_for("eval", 1.0, cfg)
    assert (r["gpu"], r["runtime"], r["mem_mb"]) == (2, 15, 1000)
    assert resources_for("rm_train", 1.0, cfg)["gpu"] == 2  # other kinds unchanged


def test_per_model_column_beats_rule_override():
    res = dict(PAPER.config["resources"])
    res["rm_train"] = {"gpus": 4}
    cfg = {**PAPER.config, "resources": res}
    assert resources_for("rm_train", 1.0, cfg)["gpu"] == 4
    r = resources_for("rm_train", 1.0, cfg, "m", model_extra={"gpus": "16"})
    assert (r["gpu"], r["nodes"], r["gpus_per_node"]) == (16, 2, 8)
    r = resources_for("rm_train", 1.0, cfg, "m", model_extra={"gpus": "8", "nodes": "2"})
    assert (r["gpu"], r["nodes"], r["gpus_per_node"], r["mpi"]) == (8, 2, 4, "srun")
    # an empty cell means "no override"
    assert resources_for("rm_train", 1.0, cfg, "m", model_extra={"gpus": ""})["gpu"] == 4


def test_bad_overrides_fail_with_the_field_named():
    with pytest.raises(ResourceError, match="model 'm': column 'gpus'"):
        resources_for("rm_train", 1.0, PAPER.config, "m", model_extra={"gpus": "two"})
    with pytest.raises(ResourceError, match="do not split evenly"):
        resources_for("rm_train", 1.0, PAPER.config, "m", model_extra={"gpus": "3", "nodes": "2"})
    with pytest.raises(ResourceError, match="unknown resource kind"):
        resources_for("training", 1.0, PAPER.config)


def test_cluster_settings_shape_gpu_jobs_only():
    site = ClusterSettings(
        partition="cpu", gpu_partition="gpu", gpu_model="a100", slurm_extra="--constraint=ib"
    )
    g = resources_for("rm_train", 20.0, PAPER.config, cluster=site)
    assert g["slurm_partition"] == "gpu" and g["gpu_model"] == "a100"
    assert g["slurm_extra"] == "--constraint=ib --ntasks-per-node=1"
    c = resources_for("analysis", None, PAPER.config, cluster=site)
    assert c["slurm_partition"] == "cpu" and c["gpu_model"] is None
    assert c["slurm_extra"] == "--constraint=ib"
    # gpus_per_node of the site wins over the config's
    r = resources_for("rm_train", 20.0, PAPER.config, cluster=ClusterSettings(gpus_per_node=4))
    assert (r["gpu"], r["nodes"], r["gpus_per_node"]) == (16, 4, 4)


def test_extra_keys_are_a_subset_and_exclude_rule_keys():
    assert set(EXTRA_KEYS) <= set(KEYS)
    assert not {"gpu", "mem_mb", "runtime"} & set(EXTRA_KEYS)


def test_schema_rejects_unknown_resource_fields():
    from rmselect.config import ConfigError, load_study

    cfg = {**PAPER.config, "resources": {"gpu_tiers": [{"max_b": 3, "gpus_typo": 1}]}}
    with pytest.raises(ConfigError, match="resources.gpu_tiers"):
        load_study(cfg, "paper")
    cfg = {**PAPER.config, "resources": {"rm_train": {"gpus": -1}}}
    with pytest.raises(ConfigError, match="resources.rm_train.gpus"):
        load_study(cfg, "paper")


def test_cpu_jobs_leave_cores_to_the_rules_threads():
    r = resources_for("rm_train", 0.0001, TOY.config)
    assert r["cpus_per_task"] is None  # the plugin then asks for the rule's threads
    cfg = {**TOY.config, "resources": {"rm_train": {"cpus_per_task": 3}}}
    assert resources_for("rm_train", 0.0001, cfg)["cpus_per_task"] == 3
