"""Config and model-table validation: each kind of bad input gets one line naming the field."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rmselect.config import (
    ConfigError,
    check_models,
    load_study,
    load_study_file,
    read_model_table,
    size_group,
    source_kind,
)

REPO = Path(__file__).resolve().parents[1]
HEADER = "name\tsource\tpublisher\tfamily\tparams_b\ttokens_t\treleased\tstage\tparent\ttrust_remote_code\tchat_template\n"


def _table(tmp_path: Path, rows: list[str]) -> Path:
    p = tmp_path / "models.tsv"
    p.write_text(HEADER + "".join(r + "\n" for r in rows))
    return p


def _row(name="a", source="org/a", params="1.0", stage="instruct", parent="", trc="false", tokens="1"):
    return "\t".join([name, source, "Pub", "fam", params, tokens, "2024-01", stage, parent, trc, ""])


def _config(tmp_path: Path, table: Path) -> dict:
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["models"] = str(table)
    cfg["size_groups"] = [{"name": "all", "min_b": 0, "max_b": 100}]
    cfg["posttrain"] = {"variants": []}
    cfg["recommend"] = {"candidates": []}
    return cfg


def test_default_and_paper_configs_validate():
    toy = load_study_file("config/config.yaml")
    assert len(toy.models) >= 8
    assert {toy.model(n).toy_spec()["arch"] for n in toy.toy_models()} >= {"llama", "qwen2", "gpt_neox"}
    paper = load_study_file("config/paper.yaml")
    assert len(paper.models) == 42
    assert paper.model("Qwen2.5-7B-Instruct").kind == "hub"
    assert paper.size_group("Qwen2.5-0.5B-Instruct") == "<3B"
    assert paper.size_group("Phi-3.5-mini-instruct") == "3-6B"
    assert paper.size_group("gemma-2-9b-it") == ">=6B"
    # Lineage from the table: Tulu-3 RLVR -> DPO -> SFT -> Llama-3.1-8B base.
    assert paper.model("Llama-3.1-Tulu-3-8B").parent == "Llama-3.1-Tulu-3-8B-DPO"


def test_variants_enter_table_as_children():
    toy = load_study_file("config/config.yaml")
    sft = toy.model("toyllama-2-m-sft")
    dpo = toy.model("toyllama-2-m-sft-dpo")
    assert (sft.parent, sft.stage, sft.kind) == ("toyllama-2-m", "sft", "variant")
    assert dpo.parent == "toyllama-2-m-sft"
    assert toy.model_path(dpo.name) == "results/variants/toyllama-2-m-sft-dpo/model"


@pytest.mark.parametrize(
    "rows, needle",
    [
        ([_row("a"), _row("a")], "duplicate model name 'a'"),
        ([_row("a", parent="ghost")], "field 'parent': unknown model 'ghost'"),
        ([_row("a", params="-3")], "row 2 (model 'a'): field 'params_b'"),
        ([_row("a", params="")], "field 'params_b'"),
        ([_row("a", stage="chat")], "field 'stage'"),
        ([_row("a", source="./no/such/dir")], "field 'source': local path './no/such/dir' does not exist"),
        ([_row("a", parent="b"), _row("b", parent="a")], "lineage cycle"),
        ([_row("a b")], "field 'name'"),
        ([_row("a", trc="maybe")], "field 'trust_remote_code'"),
    ],
)
def test_bad_model_tables_name_the_problem(tmp_path, rows, needle):
    cfg = _config(tmp_path, _table(tmp_path, rows))
    with pytest.raises(ConfigError) as err:
        load_study(cfg, "cfg.yaml", REPO)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda c: c.pop("rm"), "'rm' is a required property"),
        (lambda c: c.update(seed=-1), "field 'seed'"),
        (lambda c: c.update(size_groups=[{"name": "x", "min_b": 0}]), "field 'size_groups[0]'"),
        (lambda c: c.update(size_groups=[{"name": "x", "min_b": 0, "max_b": 0.5}]), "no size group covers 1.0"),
        (lambda c: c["size_groups"][0].update(default="nobody"), "field 'size_groups[0].default': unknown model 'nobody'"),
        (lambda c: c.update(unknown_key=1), "Additional properties are not allowed ('unknown_key'"),
        (lambda c: c["data"].update(helpsteer2={"nothing": 1}), "field 'data.helpsteer2'"),
        (lambda c: c["posttrain"].update(variants=[{"parent": "zzz", "stage": "sft"}]), "posttrain.variants[0].parent': unknown model 'zzz'"),
        (lambda c: c["posttrain"].update(variants=[{"parent": "a", "stage": "rlhf"}]), "field 'posttrain.variants[0].stage'"),
        (lambda c: c["recommend"].update(candidates=["zzz"]), "recommend.candidates': unknown model 'zzz'"),
    ],
)
def test_bad_configs_name_the_field(tmp_path, mutate, needle):
    cfg = _config(tmp_path, _table(tmp_path, [_row("a")]))
    cfg = copy.deepcopy(cfg)
    mutate(cfg)
    with pytest.raises(ConfigError) as err:
        load_study(cfg, "cfg.yaml", REPO)
    assert needle in str(err.value), str(err.value)


def test_variant_cycle_is_rejected(tmp_path):
    cfg = _config(tmp_path, _table(tmp_path, [_row("a")]))
    cfg["posttrain"]["variants"] = [
        {"parent": "a", "stage": "sft", "name": "b"},
        {"parent": "b", "stage": "dpo", "name": "a"},
    ]
    with pytest.raises(ConfigError, match="duplicate model name 'a'"):
        load_study(cfg, "cfg.yaml", REPO)


def test_source_kinds_and_size_groups():
    assert source_kind("microsoft/Phi-3.5-mini-instruct") == "hub"
    assert source_kind("./models/x") == "local"
    assert source_kind("/abs/x") == "local"
    assert source_kind("toy:arch=llama") == "toy"
    groups = [{"name": "s", "min_b": 0, "max_b": 3}, {"name": "m", "min_b": 3, "max_b": 6}]
    assert size_group(2.99, groups) == "s"
    assert size_group(3.0, groups) == "m"
    with pytest.raises(ConfigError):
        size_group(6.0, groups)


def test_check_models_direct_cycle(tmp_path):
    specs = read_model_table(_table(tmp_path, [_row("a", parent="a")]), REPO)
    with pytest.raises(ConfigError, match="lineage cycle"):
        check_models(specs, "t.tsv")


def test_snakemake_rejects_bad_config_with_one_line_and_writes_nothing(tmp_path):
    table = _table(tmp_path, [_row("a"), _row("a")])
    cfg = _config(tmp_path, table)
    cfg_path = tmp_path / "bad.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    workdir = tmp_path / "wd"
    workdir.mkdir()
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "snakemake"),
            "--snakefile", str(REPO / "Snakefile"),
            "--directory", str(workdir),
            "--configfile", str(cfg_path),
            "--cores", "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    lines = [l for l in proc.stderr.splitlines() if l.startswith("rmselect: configuration error")]
    assert len(lines) == 1 and "duplicate model name 'a'" in lines[0], proc.stderr
    assert not (workdir / "results").exists()
