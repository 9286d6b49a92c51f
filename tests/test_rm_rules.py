"""What rm.smk asks of the config: LR wildcards, per-size settings, launcher, flags."""

from __future__ import annotations

import shlex

import pytest

from rmselect.config import ConfigError, load_study_file
from rmselect.rm import rules


def test_lr_labels_are_python_float_reprs():
    assert rules.lr_label(5e-6) == "5e-06" and rules.lr_label("3e-4") == "0.0003"
    with pytest.raises(ConfigError, match="rm.lr_grid"):
        rules.lr_label("fast")


def test_paper_grid_and_sizes():
    study = load_study_file("config/paper.yaml")
    assert len(rules.lr_grid(study.config, "bt")) == 10
    assert rules.lr_grid(study.config, "regression")[0] == "1e-07"
    assert rules.size_settings(study.config, 1.5)["zero_stage"] == 2
    # by_size says auto: the plan's memory model picks what fits 8 A6000s (plan.profile)
    big = rules.size_settings(study.config, 8.0)
    assert big["zero_stage"] in (2, 3) and big["grad_checkpointing"]
    assert 64 % (big["micro_batch"] * 8) == 0 and big["micro_batch"] > 1
    assert rules.size_settings(study.config, 0.5)["micro_batch"] > big["micro_batch"]
    with pytest.raises(ConfigError, match="lr_grid.bt"):
        rules.lr_grid({"rm": {"lr_grid": {}}}, "bt")


def test_launcher():
    assert rules.launcher(1) == "python"
    two = rules.launcher(2)
    assert "launch.py --nproc 2" in two and two.endswith("-- python")
    assert "--nproc auto" in rules.launcher(8, gpus=8) and "--gpus 8" in rules.launcher(8, 8)
    assert rules.nproc({"rm": {"nproc_per_node": 3}}, 0) == 3
    assert rules.nproc({"rm": {"nproc_per_node": 3}}, 4) == 4


def test_train_flags_parse_with_the_trainer():
    from rmselect.rm.train import build_parser

    study = load_study_file("config/config.yaml")
    model = study.trained_models()[0]
    for objective in ("bt", "regression"):
        lr = rules.lr_grid(study.config, objective)[0]
        flags = shlex.split(rules.train_flags(study, model, objective, lr))
        args = build_parser().parse_args(flags + ["--out", "x"])
        assert args.objective == objective and args.lr == float(lr)
        assert args.global_batch == study.config["rm"]["global_batch"]
        data = "helpsteer2_preference" if objective == "bt" else "helpsteer2"
        assert study.config["data"][data]["path"] in args.train_data
    assert rules.train_data_files(study.config, "regression") == sorted(
        {study.config["data"]["helpsteer2"]["path"],
         study.config["data"]["helpsteer2_preference"]["path"]})


def test_lr_grid_by_model_replaces_one_models_grid():
    from rmselect.rm.rules import lr_grid

    cfg = {"rm": {"lr_grid": {"bt": [1e-3, 3e-4]}, "lr_grid_by_model": {"m": {"bt": [5e-6]}}}}
    assert lr_grid(cfg, "bt") == ["0.001", "0.0003"]
    assert lr_grid(cfg, "bt", "m") == ["5e-06"]
    assert lr_grid(cfg, "bt", "other") == ["0.001", "0.0003"]


def test_checkpoints_kept_follow_whether_training_logs_the_selections_accuracy():
    rc = rules.rm_config({"rm": {"keep_checkpoints": 3, "train_merge_grid_step": 0.25,
                                 "merge_grid_step": 0.05}})
    assert rules.keep_checkpoints(rc, "bt") == 1  # the logged accuracy is the criterion
    assert rules.keep_checkpoints(rc, "regression") == 3  # a coarser training grid
    same = rules.rm_config({"rm": {"keep_checkpoints": 3}})  # both grids 0.05 by default
    assert same["keep_checkpoints"] == 3 and rules.keep_checkpoints(same, "regression") == 1
    assert rules.rm_config({})["keep_checkpoints"] == 1
    every = rules.rm_config({"rm": {"keep_checkpoints": 0}})
    assert rules.keep_checkpoints(every, "bt") == 0  # 0 keeps every point, whatever the grid


def test_offload_and_checkpoint_flags_reach_the_trainer():
    from rmselect.rm.train import build_parser

    rc = rules.rm_config({"rm": {"offload": "optimizer"}})
    assert rules.offload_of(rc, {"offload_optimizer": False}) == "optimizer"
    assert rules.offload_of(rules.rm_config({}), {"offload_optimizer": True}) == "optimizer"
    assert rules.offload_of(rc, {"offload": "param", "offload_optimizer": False}) == "param"
    assert rules.rm_config({})["offload"] == "none" and rules.rm_config({})["ds_save_minutes"] == 30

    study = load_study_file("config/config.yaml")
    study.config["rm"].update(offload="param", ds_save_minutes=5, keep_checkpoints=2,
                              train_merge_grid_step=0.25, merge_grid_step=0.05)
    model = study.trained_models()[0]
    for objective, keep in (("bt", 1), ("regression", 2)):
        flags = shlex.split(rules.train_flags(study, model, objective, "0.001"))
        args = build_parser().parse_args(flags + ["--out", "x"])
        assert (args.offload, args.ds_save_minutes, args.keep_checkpoints) == ("param", 5.0, keep)


def test_attention_kernel_from_the_config_and_the_model_row():
    import dataclasses

    from rmselect.eval.settings import model_flags
    from rmselect.rm.train import build_parser

    study = load_study_file("config/config.yaml")
    model = study.trained_models()[0]
    lr = rules.lr_grid(study.config, "bt")[0]
    flags = rules.train_flags(study, model, "bt", lr)
    assert "--attn-implementation" not in flags  # auto: the trainer's default, no flag
    study.config["rm"]["attn_implementation"] = "eager"
    args = build_parser().parse_args(shlex.split(rules.train_flags(study, model, "bt", lr))
                                     + ["--out", "x"])
    assert args.attn_implementation == "eager"
    spec = dataclasses.replace(study.model(model), attn_implementation="flash_attention_2")
    study.model = lambda name: spec  # the row's column wins over the config
    args = build_parser().parse_args(shlex.split(rules.train_flags(study, model, "bt", lr))
                                     + ["--out", "x"])
    assert args.attn_implementation == "flash_attention_2"
    assert "--attn-implementation flash_attention_2" in model_flags(spec)


def test_model_table_attn_column_is_checked(tmp_path):
    from rmselect.model_table import read_model_table

    head = "name\tsource\tparams_b\tstage\tattn_implementation\n"
    good = tmp_path / "good.tsv"
    good.write_text(head + "g2\tgoogle/gemma-2-2b-it\t2.6\tinstruct\teager\n"
                    "q\tQwen/Qwen2-0.5B\t0.5\tbase\t\n")
    specs = read_model_table(good)
    assert [s.attn_implementation for s in specs] == ["eager", None]
    bad = tmp_path / "bad.tsv"
    bad.write_text(head + "g2\tgoogle/gemma-2-2b-it\t2.6\tinstruct\txformers\n")
    with pytest.raises(ConfigError, match="attn_implementation"):
        read_model_table(bad)
