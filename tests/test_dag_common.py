"""rmselect.dag.common: the DAG-build helpers every stage shares, written once.

The stage modules that still carry their own copies (rmselect.rm.rules, rmselect.eval.settings)
must give the same strings, so that switching them to these helpers later changes no job's
command line or params (a changed param reruns finished jobs).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import replace

import pytest

from conftest import REPO
from rmselect.config import load_study_file
from rmselect.dag import common


@pytest.fixture(scope="module")
def paper():
    return load_study_file(REPO / "config" / "paper.yaml", REPO)


def test_name_regex_matches_exactly_the_names():
    rx = common.name_regex(["a.b", "c-d"])
    assert re.fullmatch(rx, "a.b") and re.fullmatch(rx, "c-d")
    assert not re.fullmatch(rx, "aXb") and not re.fullmatch(rx, "a.b-c")
    assert common.name_regex([]) == common.NEVER
    assert not re.fullmatch(common.NEVER, "") and not re.fullmatch(common.NEVER, "x")
    assert common.name_regex(n for n in ["x"]) == "x"  # any iterable


def test_quoting_round_trips_and_none_is_an_empty_argument():
    assert shlex.split(common.shell_word("a b")) == ["a b"]
    assert shlex.split(common.shell_words(["a b", 3])) == ["a b", "3"]
    assert common.shell_words([]) == ""
    assert shlex.split(common.shell_json({"b": 1, "a": "x y"})) == ['{"a": "x y", "b": 1}']
    assert shlex.split(common.shell_json({"b": 1, "a": 2}, sort_keys=False)) == ['{"b": 1, "a": 2}']
    assert shlex.split(common.shell_json(None)) == [""]
    assert shlex.split(common.shell_flags(["--x", "a b", "--y"])) == ["--x", "a b", "--y"]


def test_model_flags_follow_the_table_row(paper):
    spec = paper.model("Phi-3-small-8k-instruct")
    assert spec.trust_remote_code
    assert common.model_flags(spec)[-1] == "--trust-remote-code"
    plain = replace(spec, trust_remote_code=False, chat_template=None)
    assert common.model_flags(plain) == []
    tpl = replace(plain, chat_template="{{ x }}", trust_remote_code=True)
    assert common.model_flags(tpl) == ["--chat-template", "{{ x }}", "--trust-remote-code"]
    assert common.model_flags(tpl, chat_template=False) == ["--trust-remote-code"]


def test_model_files_by_kind(paper):
    toy = load_study_file(REPO / "config" / "config.yaml", REPO)
    assert common.model_files(toy, "toyllama-2-m") == ["results/toy/models/toyllama-2-m/config.json"]
    assert common.model_files(toy, "toyllama-2-m-sft") == [
        "results/variants/toyllama-2-m-sft/model/config.json"]
    # a hub id resolves at run time, after rule model_check looked at its cached files
    assert common.model_files(paper, "gemma-2-2b-it") == ["results/checks/models/gemma-2-2b-it.json"]
    assert common.model_files(paper, "gemma-2-2b-it", check=False) == []
    assert common.dataset_files({"path": "x.jsonl"}) == ["x.jsonl"]
    assert common.dataset_files({"hub": "a/b"}) == []


@pytest.mark.parametrize("gpus", [0, 1, 4])
@pytest.mark.parametrize("ranks", [1, 2])
def test_launcher_is_the_rm_trainers(gpus, ranks):
    """Follow-up check: rmselect.rm.rules.launcher can become this one unchanged."""
    from rmselect.rm import rules

    assert common.launcher(gpus, ranks) == rules.launcher(ranks, gpus)


def test_gpu_trainers_get_resources_nccl():
    """resources.nccl reaches launch.py for GPU jobs only (CPU command lines unchanged)."""
    from rmselect.rm import rules

    cfg = {"resources": {"nccl": {"socket_ifname": "ib0"}}}
    assert common.launcher(8, 8, config=cfg) == (
        f"{common.LAUNCH} --nproc auto --cpu-procs 8 --gpus 8 --nccl-timeout-min 30 "
        "--nccl-ifname ib0 -- python")
    assert common.launcher(1, config={}) == (
        f"{common.LAUNCH} --gpus 1 --nccl-timeout-min 30 -- python")  # schema default, no ifname
    assert common.launcher(0, 2, config=cfg) == common.launcher(0, 2)
    assert rules.launch_for(cfg, 4) == common.launcher(4, 4, config=cfg)


def test_pg_timeout_from_the_launcher(monkeypatch):
    from datetime import timedelta

    from rmselect import runtime

    assert runtime.pg_timeout({}) is None
    assert runtime.pg_timeout({"RMSELECT_PG_TIMEOUT_S": "2700"}) == timedelta(minutes=45)


def test_launcher_of_one_process_jobs():
    assert common.launcher(0) == common.launcher(None) == "python"
    assert common.launcher(2) == f"{common.LAUNCH} --gpus 2 -- python"


def test_model_flags_give_the_eval_stages_string(paper):
    """Follow-up check: rmselect.eval.settings.model_flags is shell_flags(model_flags(spec))."""
    from rmselect.eval.settings import model_flags as eval_model_flags

    base = paper.model("Phi-3-small-8k-instruct")
    for spec in (base, replace(base, chat_template="{% a b %}"),
                 replace(base, trust_remote_code=False)):
        assert common.shell_flags(common.model_flags(spec)) == eval_model_flags(spec)


def test_screen_args_extend_the_bench_model_command():
    """bench_model_screen is bench_model (use rule) plus these words after its --out-dir."""
    from rmselect.dag.bench import screen_args

    assert screen_args("full", ["a", "b"], "m") == (
        " --screen-mode full --screen-task a --screen-task b"
        " --screen-out-dir results/screening/full/m"
    )
