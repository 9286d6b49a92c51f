"""Fault injection (issue 30): every bad input stopped in one line, every run folder owned once.

Each case plants one fault into the embedded default (or a tiny file) and asserts the one
line that names the file, row, field or model, and that nothing was written. Most cases call
the validators and loaders directly (milliseconds); a few run ``snakemake -n`` on a bad
config (each under 30 s); the slow ones start real trainers on the tiny test model (two
trainers on one run folder, a killed wrapper).
"""

from __future__ import annotations

import copy
import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from rmselect import runlock, validate
from rmselect.config import ConfigError, load_study
from rmselect.datasets_io import DatasetError, load_frame
from rmselect.rm import data as D

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
DEFAULT = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def _one_line(err: BaseException | str) -> str:
    text = str(err)
    assert text and "\n" not in text.strip(), text
    return text


def _study(mutate=None, table: Path | None = None):
    cfg = copy.deepcopy(DEFAULT)
    if table is not None:
        cfg["models"] = str(table)
    if mutate:
        mutate(cfg)
    return load_study(cfg, "cfg.yaml", REPO)


def _plan_error(mutate=None, table: Path | None = None) -> str:
    with pytest.raises(ConfigError) as err:
        validate.check_plan(_study(mutate, table), REPO)
    return _one_line(err.value)


def _load_error(mutate=None, table: Path | None = None) -> str:
    with pytest.raises(ConfigError) as err:
        _study(mutate, table)
    return _one_line(err.value)


def _toy_table(tmp: Path, edit) -> Path:
    """The toy model table with ``edit(rows)`` applied (rows: list of dicts)."""
    src = REPO / "config" / "models_toy.tsv"
    with src.open(newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        header = list(reader.fieldnames or [])
        rows = list(reader)
    edit(rows)
    out = tmp / "models.tsv"
    with out.open("w", newline="") as fh:
        w = csv.DictWriter(fh, header, delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return out


# --------------------------------------------------------------------------- plan time


def test_embedded_default_and_paper_pass_every_plan_check():
    validate.check_plan(_study(), REPO)
    from rmselect.config import load_study_file

    t0 = time.time()
    validate.check_plan(load_study_file("config/paper.yaml"), REPO)
    assert time.time() - t0 < 10  # 30 lm-eval tasks resolved by the YAML scan, no TaskManager


def test_overlapping_size_groups():
    msg = _load_error(lambda c: c["size_groups"][1].update(min_b=0.0002))
    assert "field 'size_groups[1]': 'medium' [0.0002, 0.001) B overlaps size_groups[0]" in msg


def test_size_group_gap_names_file_row_and_model():
    msg = _load_error(lambda c: c["size_groups"][1].update(min_b=0.0008))
    assert "models_toy.tsv row 4 (model 'toyllama-2-m'): no size group covers 0.000701312 B" in msg
    assert "extend 'size_groups'" in msg


def test_size_group_default_without_rms():
    msg = _load_error(lambda c: c["size_groups"][1].update(default="toyqwen-2-m"))
    assert "'size_groups[1].default': model 'toyqwen-2-m' is a recommendation candidate" in msg


def test_size_group_default_in_another_group():
    msg = _load_error(lambda c: c["size_groups"][0].update(default="toyllama-2-m"))
    assert "model 'toyllama-2-m' (0.000701312 B) lies in group 'medium', not 'small'" in msg


def test_model_names_equal_up_to_case(tmp_path):
    table = _toy_table(tmp_path, lambda rows: rows.append({**rows[0], "name": "ToyLlama-1-S"}))
    msg = _load_error(table=table)
    assert "model names 'toyllama-1-s' and 'ToyLlama-1-S' differ only in case" in msg


def test_variant_name_equal_up_to_case():
    msg = _load_error(lambda c: c["posttrain"]["variants"].append(
        {"parent": "toyqwen-1-m", "stage": "sft", "name": "TOYLLAMA-2-M-SFT"}))
    assert "differ only in case" in msg


def test_cycle_through_variants_is_named_a_cycle():
    def cyc(c):
        c["posttrain"]["variants"] = [
            {"parent": "vb", "stage": "sft", "name": "va"},
            {"parent": "va", "stage": "dpo", "name": "vb"},
        ]
    msg = _load_error(cyc)
    assert "cycle through variants va -> vb -> va" in msg and "unknown model" not in msg


def test_variant_parent_listed_later():
    def order(c):
        c["posttrain"]["variants"] = [
            {"parent": "toyllama-2-m-sft", "stage": "dpo"},
            {"parent": "toyllama-2-m", "stage": "sft"},
        ]
    msg = _load_error(order)
    assert "'toyllama-2-m-sft' is a variant listed after 'toyllama-2-m-sft-dpo'" in msg


def test_global_batch_not_divisible_by_micro_batch():
    msg = _plan_error(lambda c: c["rm"]["by_size"][0].update(micro_batch=12))
    assert "field 'rm.global_batch': 16 is not divisible by micro_batch 12" in msg
    assert "x 1 rank(s) = 12 for config/models_toy.tsv row 2 (model 'toyllama-1-s')" in msg


def test_global_batch_not_divisible_by_rank_count_of_a_gpu_tier():
    def tiers(c):
        c["resources"] = {"gpu_tiers": [
            {"max_b": 0.0005, "train_gpus": 1, "infer_gpus": 1},
            {"max_b": 1000.0, "train_gpus": 3, "infer_gpus": 1}]}
        c["rm"]["by_size"][0].update(micro_batch=4)
    msg = _plan_error(tiers)
    assert "16 is not divisible by micro_batch 4 (rm.by_size, max_b 1000.0) x 3 rank(s) = 12" in msg
    assert "(model 'toyllama-2-m')" in msg


def test_posttrain_global_batch_not_divisible():
    msg = _plan_error(lambda c: c["resources"].update(posttrain={"gpus": 3}))
    assert "field 'posttrain.recipes.sft.global_batch': 16 is not divisible by micro_batch 8" \
        " x 3 rank(s) = 24 for variant 'toyllama-2-m-sft'" in msg


def test_missing_chat_template_file(tmp_path):
    table = _toy_table(tmp_path, lambda rows: rows[0].update(chat_template="templates/nope.jinja"))
    msg = _plan_error(table=table)
    assert "row 2 (model 'toyllama-1-s'): field 'chat_template': 'templates/nope.jinja' is" \
        " neither an existing file nor a Jinja template" in msg


def test_chat_template_file_and_jinja_literal_are_accepted(tmp_path):
    tpl = tmp_path / "t.jinja"
    tpl.write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    assert validate.template_problem(str(tpl)) is None
    assert validate.template_problem("{{ messages[0]['content'] }}") is None
    assert validate.template_problem("chat.jinja") is not None


def test_format_refuses_a_template_that_is_neither_file_nor_jinja():
    from rmselect.rm.format import resolve_template

    with pytest.raises(ValueError) as err:
        resolve_template(None, "templates/missing.jinja")
    assert "neither an existing file nor a Jinja template" in _one_line(err.value)


def test_population_too_small_for_correlations():
    msg = _plan_error(lambda c: c["analysis"]["population"].update(
        column=None, values=[], models=["toyllama-1-s", "toyllama-2-s"]))
    assert "field 'analysis.population': 2 model(s) with RMs (toyllama-1-s, toyllama-2-s)" in msg
    assert "correlations" in msg and "at least 3" in msg


def test_population_too_small_for_selection_folds():
    msg = _plan_error(lambda c: c["analysis"]["selection"].update(outer_folds=10))
    assert "8 model(s) with RMs" in msg and "outer_folds = 10" in msg


def test_unknown_lm_eval_task():
    msg = _plan_error(lambda c: c["benchmarks"]["tasks"].update(hellaswagg={"n": 5}))
    assert "field 'benchmarks.tasks.hellaswagg': lm-eval task 'hellaswagg' is unknown" in msg


def test_missing_include_path():
    msg = _plan_error(lambda c: c["benchmarks"]["tasks"].update(
        mine={"include_path": "my/tasks", "n": 5}))
    assert "'benchmarks.tasks.mine.include_path': folder my/tasks does not exist" in msg


def test_registry_and_include_path_tasks_resolve():
    def add(c):
        c["benchmarks"]["tasks"].update(
            hellaswag={"n": 5}, anli={"n": 5},
            humaneval={"task": "rms_humaneval", "include_path": "workflow/rmselect/bench/lm_tasks"})
    validate.check_lmeval_tasks(_study(add), REPO)


# --------------------------------------------------------------------------- data values


def _jsonl(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def _pair(**kw):
    row = {"prompt": "q ?", "response_1": "a", "response_2": "b",
           "preference_strength": 2, "split": "train"}
    return {**row, **kw}


def _rated(**kw):
    row = {"prompt": "q ?", "response": "a", "helpfulness": 3, "correctness": 3,
           "coherence": 4, "complexity": 1, "verbosity": 2}
    return {**row, **kw}


def test_helpsteer2_attribute_out_of_range(tmp_path):
    p = _jsonl(tmp_path / "hs2.jsonl", [_rated(), _rated(), _rated(coherence=7)])
    with pytest.raises(DatasetError) as err:
        D.load_rated({"path": str(p)})
    msg = _one_line(err.value)
    assert f"{p}: row 3: field 'coherence' = 7 is outside the HelpSteer2 scale 0-4" in msg


def test_empty_prompt_in_pairs(tmp_path):
    p = _jsonl(tmp_path / "pref.jsonl", [_pair(), _pair(prompt="  ")])
    with pytest.raises(DatasetError) as err:
        D.load_pairs({"path": str(p)}, "train")
    assert "row 2: field 'prompt' is empty" in _one_line(err.value)


def test_empty_response_in_rated_rows(tmp_path):
    p = _jsonl(tmp_path / "hs2.jsonl", [_rated(response="")])
    with pytest.raises(DatasetError) as err:
        D.load_rated({"path": str(p)})
    assert "row 1: field 'response' is empty" in _one_line(err.value)


def test_identical_responses_refused_when_configured(tmp_path):
    p = _jsonl(tmp_path / "pref.jsonl", [_pair(), _pair(response_2="a")])
    with pytest.raises(DatasetError) as err:
        D.load_pairs({"path": str(p)}, "train", identical="error")
    msg = _one_line(err.value)
    assert "row 2: fields 'response_1' and 'response_2' are identical but preference_strength" \
        " is 2" in msg and "rm.identical_pairs" in msg


def test_identical_responses_dropped_and_counted(tmp_path):
    p = _jsonl(tmp_path / "pref.jsonl", [_pair(), _pair(response_2="a"), _pair(response_1="b ")])
    counts: dict[str, int] = {}
    pairs = D.load_pairs({"path": str(p)}, "train", counts=counts)
    assert len(pairs) == 1 and counts == {"identical": 2}


def test_identical_pairs_option_reaches_the_trainer_and_schema_default_is_drop():
    from rmselect.config import section_settings
    from rmselect.rm.rules import train_flags

    assert section_settings({}, "rm")["identical_pairs"] == "drop"
    assert "--identical-pairs" not in train_flags(_study(), "toyllama-1-s", "bt", "0.001")
    st = _study(lambda c: c["rm"].update(identical_pairs="error"))
    assert "--identical-pairs error" in train_flags(st, "toyllama-1-s", "bt", "0.001")


def _rb_rows(**kw):
    rows = []
    for i, sub in enumerate(["alpacaeval-easy", "mt-bench-easy"]):
        rows.append({"id": str(i), "subset": sub, "prompt": "q ?", "chosen": "good",
                     "rejected": "bad"})
    rows[1].update(kw)
    return rows


@pytest.mark.parametrize("field,needle", [
    ("prompt", "field 'prompt' is empty"),
    ("chosen", "field 'chosen' holds an empty response"),
])
def test_rewardbench_empty_prompt_or_response(tmp_path, field, needle):
    from rmselect.eval.benchmarks.base import BenchmarkDataError
    from rmselect.eval.benchmarks.loading import load

    p = _jsonl(tmp_path / "rb.jsonl", _rb_rows(**{field: ""}))
    with pytest.raises(BenchmarkDataError) as err:
        load("rewardbench", {"path": str(p)})
    msg = _one_line(err.value)
    assert "row 2 (id 1, subset 'mt-bench-easy')" in msg and needle in msg


def test_imported_scores_on_a_fraction_scale(tmp_path):
    from rmselect.eval.results_import import ResultsImportError, read_import

    p = tmp_path / "scores.csv"
    p.write_text("model,objective,chat,chat_hard,safety,reasoning\n"
                 "a,bt,0.91,0.52,0.8,0.77\nb,bt,0.88,0.41,0.7,1.0\n")
    with pytest.raises(ResultsImportError) as err:
        read_import(p)
    msg = _one_line(err.value)
    assert f"{p}: every score" in msg and "multiply by 100" in msg


def test_imported_scores_in_percent_pass(tmp_path):
    from rmselect.eval.results_import import read_import

    p = tmp_path / "scores.csv"
    p.write_text("model,objective,chat,chat_hard,safety,reasoning\na,bt,91,52,80,0.5\n")
    assert read_import(p).height == 1


def test_corrupt_jsonl_names_the_line(tmp_path):
    p = _jsonl(tmp_path / "pref.jsonl", [_pair(), _pair(), "", _pair(), '{"prompt": "x", '])
    with pytest.raises(DatasetError) as err:
        load_frame({"path": str(p)})
    assert f"data set file {p} line 5: not JSON" in _one_line(err.value)


def test_non_utf8_byte_names_file_and_line(tmp_path):
    p = tmp_path / "pref.jsonl"
    p.write_bytes(json.dumps(_pair()).encode() + b"\n" + b'{"prompt": "caf\xe9"}\n')
    with pytest.raises(DatasetError) as err:
        load_frame({"path": str(p)})
    assert f"data set file {p} line 2: not UTF-8 (byte 0xe9" in _one_line(err.value)


def test_non_utf8_csv(tmp_path):
    p = tmp_path / "x.csv"
    p.write_bytes(b"a,b\n1,2\n3,\xff\n")
    with pytest.raises(DatasetError) as err:
        load_frame({"path": str(p)})
    assert f"{p} line 3: not UTF-8" in _one_line(err.value)


def test_empty_preference_file_names_the_file_not_a_column(tmp_path):
    p = tmp_path / "pref.jsonl"
    p.write_text("")
    with pytest.raises(DatasetError) as err:
        D.load_pairs({"path": str(p)}, "train")
    msg = _one_line(err.value)
    assert f"data set file {p} is empty" in msg and "_row" not in msg


def test_missing_column_lists_the_files_columns_only(tmp_path):
    p = _jsonl(tmp_path / "pref.jsonl", [{"prompt": "q", "response_1": "a", "split": "train"}])
    with pytest.raises(DatasetError) as err:
        D.load_pairs({"path": str(p)}, "train")
    msg = _one_line(err.value)
    assert "missing column(s) response_2, preference_strength; found prompt, response_1, split" \
        in msg and "_row" not in msg


def test_blank_lines_only_and_non_object_lines(tmp_path):
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n  \n")
    with pytest.raises(DatasetError) as err:
        load_frame({"path": str(blank)})
    assert "holds no rows" in _one_line(err.value)
    arr = _jsonl(tmp_path / "arr.jsonl", [_pair(), "[1, 2]"])
    with pytest.raises(DatasetError) as err:
        load_frame({"path": str(arr)})
    assert "line 2: a JSON list, not an object" in _one_line(err.value)


def test_toy_data_of_the_embedded_default_passes_every_range_check(tmp_path):
    """The toy generators write valid data: no identical pairs, attributes in 0-4, no empty
    texts, so the embedded default's tables are unchanged by the new checks."""
    from rmselect.eval.benchmarks.loading import load
    from rmselect.toy.data import write_data
    from rmselect.toy.world import make_world

    t = DEFAULT["toy"]
    w = make_world(t["seed"], t["world"]["countries"], t["world"]["people"], t["world"]["things"])
    write_data(w, t["seed"], tmp_path / "data", tmp_path / "tasks", tmp_path / "domains",
               t["data"])
    pref = {"path": str(tmp_path / "data" / "helpsteer2_preference.jsonl")}
    for split in ("train", "validation"):
        assert D.load_pairs(pref, split, identical="error")
    assert len(D.load_rated({"path": str(tmp_path / "data" / "helpsteer2.jsonl")})) == \
        t["data"]["helpsteer2_train"]
    assert load("rewardbench", {"path": str(tmp_path / "data" / "rewardbench.jsonl")}).examples.height


# --------------------------------------------------------------------------- run folders


def _holder_script(folder: Path) -> str:
    return textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO / 'workflow')!r})
        from rmselect import runlock
        runlock.acquire({str(folder)!r})
        print("locked", flush=True)
        time.sleep(120)
    """)


def _start_holder(folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _holder_script(folder)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_second_process_on_a_run_folder_is_refused_naming_the_holder(tmp_path):
    run = tmp_path / "run"
    proc = _start_holder(run)
    try:
        before = (run / runlock.LOCK_NAME).read_text()
        with pytest.raises(runlock.RunLocked) as err:
            runlock.acquire(run)
        msg = _one_line(err.value)
        assert f"in use by pid {proc.pid} on " in msg and " since 20" in msg
        assert (run / runlock.LOCK_NAME).read_text() == before  # nothing written
        assert sorted(p.name for p in run.iterdir()) == [runlock.LOCK_NAME]
    finally:
        proc.kill()
        proc.wait()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    run = tmp_path / "run"
    proc = _start_holder(run)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    lock = runlock.acquire(run)
    try:
        assert lock.took_over and lock.took_over["pid"] == proc.pid
        assert json.loads((run / runlock.LOCK_NAME).read_text())["pid"] == os.getpid()
    finally:
        lock.release()
    runlock.acquire(run).release()  # released: free again


def test_a_failed_start_leaves_no_run_folder(tmp_path):
    run = tmp_path / "a" / "run"
    runlock.acquire(run).release()  # nothing written: the folder it created goes again
    assert not run.exists()
    lock = runlock.acquire(run)
    (run / "metrics.jsonl").write_text("{}\n")
    lock.release()  # a folder with run files keeps them and its lock file
    assert sorted(p.name for p in run.iterdir()) == [runlock.LOCK_NAME, "metrics.jsonl"]


def test_hold_exits_75_with_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    proc = _start_holder(run)
    try:
        with pytest.raises(SystemExit) as ex:
            runlock.hold([run], "RM run", prog="train_rm")
        assert ex.value.code == 75
        err = capsys.readouterr().err.strip()
        assert err.startswith("train_rm: error: ") and "\n" not in err
        assert f"RM run folder in use by pid {proc.pid}" in err
    finally:
        proc.kill()
        proc.wait()


def test_posttrain_refuses_a_held_variant_folder(tmp_path, capsys):
    from rmselect.posttrain.train import main

    folder = tmp_path / "variants" / "v"
    proc = _start_holder(folder)
    try:
        with pytest.raises(SystemExit) as ex:
            main(["--parent", str(tmp_path / "none"), "--recipe", json.dumps({"stage": "sft"}),
                  "--out-dir", str(folder / "model"), "--train-json", str(folder / "train.json")])
        assert ex.value.code == 75
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"post-training folder in use by pid {proc.pid}" in err[0]
        assert sorted(p.name for p in folder.iterdir()) == [runlock.LOCK_NAME]
    finally:
        proc.kill()
        proc.wait()


def _dies_with(wrapper: subprocess.Popen, pid: int, within: float) -> bool:
    """SIGKILL the job's shell ``wrapper``; whether ``pid`` is gone ``within`` seconds."""
    wrapper.send_signal(signal.SIGKILL)
    wrapper.wait()
    deadline = time.time() + within
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_child_dies_with_its_shell_wrapper(tmp_path):
    pidfile = tmp_path / "pid"
    code = (f"import os, sys, time; sys.path.insert(0, {str(REPO / 'workflow')!r}); "
            "from rmselect.runlock import die_with_parent; die_with_parent(); "
            f"open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(120)")
    wrapper = subprocess.Popen(["bash", "-c", f"set -euo pipefail; {sys.executable} -c \"{code}\""])
    deadline = time.time() + 30
    while not pidfile.exists() or not pidfile.read_text():
        assert time.time() < deadline
        time.sleep(0.05)
    child = int(pidfile.read_text())
    assert _alive(child)
    assert _dies_with(wrapper, child, within=10)


# --------------------------------------------------------------------------- model sources


def _tiny(tmp: Path, name="m") -> Path:
    from support import tiny_rm

    return tiny_rm.make_model(tmp / name, hidden=16, layers=1, heads=2)


def test_model_check_accepts_a_complete_local_model(tmp_path):
    from rmselect.model_check import check_model

    found = check_model(str(_tiny(tmp_path)), "m")
    assert found["model_type"] == "llama" and found["weights"] == "model.safetensors"


def test_model_check_missing_tokenizer_files(tmp_path):
    from rmselect.model_check import ModelSourceError, check_model

    m = _tiny(tmp_path)
    for f in m.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens", "vocab", "chat_template")):
            f.unlink()
    with pytest.raises(ModelSourceError) as err:
        check_model(str(m), "m")
    assert "model 'm'" in _one_line(err.value) and "tokenizer files missing" in str(err.value)


def test_model_check_unknown_architecture(tmp_path):
    from rmselect.model_check import ModelSourceError, check_model

    m = _tiny(tmp_path)
    cfg = json.loads((m / "config.json").read_text())
    cfg["model_type"] = "frobnicator"
    (m / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelSourceError) as err:
        check_model(str(m), "m")
    msg = _one_line(err.value)
    assert "model_type 'frobnicator' is unknown to the installed transformers" in msg


def test_model_check_hub_id_not_cached_offline(tmp_path, monkeypatch):
    from rmselect.model_check import ModelSourceError, check_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(ModelSourceError) as err:
        check_model("nobody-here/absent-model", "absent")
    msg = _one_line(err.value)
    assert "model 'absent' (nobody-here/absent-model): hub id not in the offline cache" in msg


def test_model_check_script_writes_nothing_on_failure(tmp_path):
    from rmselect.model_check import main

    m = _tiny(tmp_path)
    (m / "model.safetensors").unlink()
    out = tmp_path / "check.json"
    assert main(["--model", str(m), "--name", "m", "--out", str(out)]) == 2
    assert not out.exists()


def test_training_jobs_of_hub_models_wait_for_model_check():
    from rmselect.config import load_study_file
    from rmselect.dag.common import checked_models, model_files

    paper = load_study_file("config/paper.yaml")
    name = checked_models(paper)[0]
    assert f"results/checks/models/{name}.json" in model_files(paper, name)
    toy = _study()
    assert checked_models(toy) == []  # the toy zoo is built by the workflow: no checks


# --------------------------------------------------------------------------- snakemake -n


def _dry_run(tmp: Path, cfg: dict, *targets: str) -> subprocess.CompletedProcess:
    path = tmp / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cmd = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(tmp / "wd"), "-n",
           *targets, "--configfile", str(path)]
    (tmp / "wd").mkdir()
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    proc.wall = time.time() - t0  # type: ignore[attr-defined]
    return proc


@pytest.mark.workflow
@pytest.mark.parametrize("mutate,needle", [
    (lambda c: c["rm"]["by_size"][0].update(micro_batch=12),
     "field 'rm.global_batch': 16 is not divisible by micro_batch 12"),
    (lambda c: c["size_groups"][1].update(min_b=0.0002), "overlaps size_groups[0]"),
    (lambda c: c["benchmarks"]["tasks"].update(hellaswagg={"n": 5}),
     "lm-eval task 'hellaswagg' is unknown"),
    (lambda c: c["analysis"]["population"].update(column=None, values=[],
                                                  models=["toyllama-1-s", "toyllama-2-s"]),
     "2 model(s) with RMs"),
])
def test_snakemake_dry_run_stops_in_one_line(tmp_path, mutate, needle):
    validate.lm_eval_registry()  # the lm-eval task index is cached once per installation
    cfg = copy.deepcopy(DEFAULT)
    mutate(cfg)
    proc = _dry_run(tmp_path, cfg)
    assert proc.returncode != 0
    assert proc.wall < 30  # type: ignore[attr-defined]
    lines = [ln for ln in proc.stderr.splitlines() if "rmselect: configuration error" in ln]
    assert len(lines) == 1 and needle in lines[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "wd" / "results").exists()


@pytest.mark.workflow
def test_snakemake_dry_run_stops_on_a_missing_chat_template_file(tmp_path):
    cfg = copy.deepcopy(DEFAULT)
    cfg["models"] = str(_toy_table(tmp_path, lambda rows: rows[2].update(
        chat_template="templates/llama.jinja")))
    proc = _dry_run(tmp_path, cfg)
    assert proc.returncode != 0 and proc.wall < 30  # type: ignore[attr-defined]
    lines = [ln for ln in proc.stderr.splitlines() if "rmselect: configuration error" in ln]
    assert len(lines) == 1 and "(model 'toyllama-2-m'): field 'chat_template'" in lines[0]
    assert not (tmp_path / "wd" / "results").exists()


@pytest.mark.workflow
def test_no_absolute_checkout_path_in_rule_commands(tmp_path):
    """Params and commands name scripts relative to the repository: a moved checkout plans
    nothing new (the analysis rules used to carry the absolute script path)."""
    proc = subprocess.run([str(SNAKEMAKE), "-n", "-p", "--forceall"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "analysis_models.py" in proc.stdout + proc.stderr
    assert f"{REPO}/workflow" not in proc.stdout + proc.stderr


# --------------------------------------------------------------------------- slow: trainers


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    from support import tiny_rm

    root = tmp_path_factory.mktemp("faults_rm")
    tiny_rm.make_model(root / "base", arch="llama", hidden=16, layers=1, heads=2, pad_is_eos=True)
    tiny_rm.write_preference_data(root / "pref.jsonl", 512, 32)
    return root


def _train_cmd(root: Path, out: Path) -> list[str]:
    return [sys.executable, str(REPO / "workflow" / "scripts" / "train_rm.py"),
            "--model", str(root / "base"), "--objective", "bt", "--lr", "0.001",
            "--out", str(out), "--seed", "1",
            "--train-data", json.dumps({"path": str(root / "pref.jsonl")}),
            "--val-data", json.dumps({"path": str(root / "pref.jsonl")}),
            "--global-batch", "2", "--micro-batch", "2", "--epochs", "50",
            "--eval-every", "100000", "--max-length", "32", "--log-every", "1000"]


def _env() -> dict[str, str]:
    drop = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {**env, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "workflow")}


def _wait_for_lock(out: Path, timeout: float = 120) -> int:
    lock = out / runlock.LOCK_NAME
    deadline = time.time() + timeout
    while time.time() < deadline:
        if lock.exists() and lock.read_text().strip():
            return int(json.loads(lock.read_text())["pid"])
        time.sleep(0.1)
    raise AssertionError("the trainer never took its lock")


@pytest.mark.slow
def test_two_trainers_on_one_run_folder(tiny_setup, tmp_path):
    out = tmp_path / "run"
    first = subprocess.Popen(_train_cmd(tiny_setup, out), env=_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _wait_for_lock(out) == first.pid
        t0 = time.time()
        second = subprocess.run(_train_cmd(tiny_setup, out), env=_env(), capture_output=True,
                                text=True, timeout=120)
        assert second.returncode == 75
        err = [ln for ln in second.stderr.splitlines() if ln.strip()]
        assert len(err) == 1 and f"in use by pid {first.pid}" in err[0], second.stderr
        assert time.time() - t0 < 60
        assert first.poll() is None  # the holder trains on
    finally:
        first.kill()
        first.wait()


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
@pytest.mark.parametrize("launcher", [False, True], ids=["plain", "launch.py+torchrun"])
def test_killing_the_job_wrapper_kills_the_trainer(tiny_setup, tmp_path, launcher):
    """The wrapper is the job's shell (as Snakemake runs it); with the launcher, torchrun
    inherits launch.py's parent-death signal and stops its rank."""
    out = tmp_path / "run"
    argv = _train_cmd(tiny_setup, out)
    if launcher:
        argv = [sys.executable, str(REPO / "workflow" / "scripts" / "launch.py"), "--nproc", "1",
                "--cpu-procs", "1", "--", *argv]
    cmd = " ".join(f"'{a}'" for a in argv)
    wrapper = subprocess.Popen(["bash", "-c", f"set -euo pipefail; {cmd} 2> {tmp_path}/log"],
                               env=_env())
    trainer = _wait_for_lock(out)
    assert trainer != wrapper.pid and _alive(trainer)
    assert _dies_with(wrapper, trainer, within=30)
    assert not (out / "run.json").exists()


def test_population_is_checked_only_for_runs_that_reach_the_analyses():
    from rmselect.validate import wants_analysis

    assert wants_analysis(None) and wants_analysis([])  # rule all
    assert wants_analysis(["analysis"]) and wants_analysis(["results/recommendation.csv"])
    assert not wants_analysis(["rm"])
    assert not wants_analysis(["results/eval/rewardbench/bt/toyllama-1-s/seed1.json"])


def test_targets_come_from_the_snakemake_command_line(monkeypatch):
    """The Snakefile is parsed before Snakemake hands over its DAG settings: the targets
    are read from the command line with Snakemake's own parser."""
    import sys
    from types import SimpleNamespace

    from rmselect.validate import command_line_targets

    wf = SimpleNamespace(dag_settings=None)
    monkeypatch.setattr(sys, "argv", ["snakemake", "-n", "--cores", "2", "rm",
                                      "--configfile", "c.yaml"])
    assert command_line_targets(wf) == ["rm"]
    monkeypatch.setattr(sys, "argv", ["snakemake", "--cores", "2"])
    assert command_line_targets(wf) == []  # rule all: the analyses are checked
    wf = SimpleNamespace(dag_settings=SimpleNamespace(targets={"results/recommendation.csv"}))
    assert command_line_targets(wf) == ["results/recommendation.csv"]
