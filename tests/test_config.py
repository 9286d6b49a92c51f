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


# --------------------------------------------------------------------------- defaults (issue 18)
# The schema's `default:` values are the one place a config default is written; every stage
# reads its section through rmselect.config.section_settings (fill_defaults).


def test_fill_defaults_fills_nested_objects_and_keeps_given_values():
    from rmselect.config import fill_defaults

    schema = {
        "properties": {
            "a": {"default": 1},
            "inner": {"properties": {"x": {"default": 2}, "y": {"default": [3]}, "z": {}}},
            "bare": {"properties": {"z": {"type": "string"}}},
            "obj": {"default": {"p": 1}, "properties": {"q": {"default": 2}}},
            "table": {"additionalProperties": {"properties": {"n": {"default": 100}}}},
        }
    }
    assert fill_defaults({}, schema) == {"a": 1, "inner": {"x": 2, "y": [3]}, "obj": {"p": 1, "q": 2}}
    given = {"inner": {"y": [9], "z": "s"}, "extra": 5, "table": {"t": {}, "u": {"n": 1}}}
    out = fill_defaults(given, schema)
    assert out == {
        "a": 1,
        "inner": {"x": 2, "y": [9], "z": "s"},
        "obj": {"p": 1, "q": 2},
        "table": {"t": {"n": 100}, "u": {"n": 1}},
        "extra": 5,
    }
    out["inner"]["y"].append(1)  # a copy: the config is never changed through the result
    assert given["inner"]["y"] == [9]
    # a given null stays null; a given object is filled from its properties, not its default
    assert fill_defaults({"inner": None, "obj": {"q": 5}}, schema)["inner"] is None
    assert fill_defaults({"obj": {"q": 5}}, schema)["obj"] == {"q": 5}
    # the schema's defaults are copied too
    fill_defaults({}, schema)["inner"]["y"].append(4)
    assert schema["properties"]["inner"]["properties"]["y"]["default"] == [3]


#: Defaults the code used before they moved into the schema (issue 18), per section: the
#: schema must keep holding them and section_settings must fill them (behaviour unchanged).
EXPECTED_DEFAULTS = {
    "eval": {
        "train_and_evaluate": True, "import": None, "import_precedence": "imported",
        "n_boot": 1000, "seed": None, "batch_size": 64, "max_tokens": 32768, "max_length": 2048,
        "dtype": "auto", "limit_per_subset": None, "toy_ties": 10, "jobs": "per_rm",
    },
    "presence": {
        "domains": {}, "max_tokens": 2048, "n_docs": 7500, "seed": None, "batch_tokens": 16384,
        "prefix": "auto", "bins": 40, "family_reuse": False, "reference_models": [],
    },
    "benchmarks": {
        "mode": "small", "backend": "hf", "device": "auto", "dtype": "auto", "batch_size": 8,
        "max_length": 4096, "apply_chat_template": False, "jobs": "per_task",
        "bootstrap_iters": 0, "params_tolerance": 0.05, "threads": 1,
    },
    "toy": {
        "seed": 1234,
        "world": {"countries": 24, "people": 24, "things": 24},
        "corpus": {"train_docs": 12000, "heldout_docs": 600},
        "tokenizer": {"vocab_size": 768},
        "data": {
            "preference_train": 640, "preference_validation": 160, "helpsteer2_train": 600,
            "helpsteer2_validation": 150, "rewardbench_per_subset": 15, "sft": 400, "dpo": 300,
            "domain_docs": 64,
        },
    },
}


@pytest.mark.parametrize("section", sorted(EXPECTED_DEFAULTS))
def test_schema_holds_each_sections_defaults(section):
    from rmselect.config import section_settings

    got = section_settings({}, section)
    assert {k: got[k] for k in EXPECTED_DEFAULTS[section]} == EXPECTED_DEFAULTS[section]
    assert section_settings({section: {"x_given": 1}}, section)["x_given"] == 1


def test_settings_functions_fill_the_schema_defaults():
    from rmselect.bench.spec import bench_config
    from rmselect.posttrain.recipes import stage_defaults
    from rmselect.rm.halving import LrSearch, lr_search
    from rmselect.toy.build import toy_settings

    assert lr_search({}) == LrSearch("full", 3, 40)
    b = bench_config({"benchmarks": {"tasks": {"t": {}}, "sandbox": {"mem_mb": 2048}}})
    assert (b.mode, b.batch_size, b.max_length, b.params_tolerance) == ("small", 8, 4096, 0.05)
    assert dict(b.sandbox) == {"timeout_s": 10.0, "cpu_s": 5, "mem_mb": 2048}
    t = b.tasks["t"]
    assert (t.kind, t.n, t.scale, t.run, t.max_new_tokens, t.heal_prompt) == (
        "lm_eval", 100, 1.0, True, 64, True)
    assert toy_settings({"toy": {"data": {"sft": 7}}})["data"] == {
        **EXPECTED_DEFAULTS["toy"]["data"], "sft": 7}
    common = {
        "epochs": 1.0, "max_length": 2048, "global_batch": 64, "warmup_steps": 0,
        "weight_decay": 0.0, "max_steps": None, "max_examples": None, "zero_stage": None,
        "precision": "auto", "gradient_checkpointing": False, "grad_clip": 1.0,
        "checkpoint_every": 200,
    }
    assert stage_defaults("sft") == {**common, "lr": 1e-5, "micro_batch": 4}
    assert stage_defaults("dpo") == {**common, "lr": 5e-7, "micro_batch": 2, "beta": 0.1}


def test_toy_data_builder_sizes_equal_the_schema_defaults():
    from rmselect.config import section_settings
    from rmselect.toy.data import DATA_DEFAULTS

    assert DATA_DEFAULTS == section_settings({}, "toy")["data"]


#: Module-level ``*DEFAULTS`` names that are not study-config defaults, and why.
NOT_CONFIG_DEFAULTS = {
    # the toy:key=value spec of a model-table row (batch, seq, lr, ctx), not the study config
    ("rmselect/toy/spec.py", "DEFAULTS"),
    # the toy data builder's own sizes for its CLI and write_data(sizes=None); the pipeline
    # always passes every toy.data size, and a test above pins them to the schema's
    ("rmselect/toy/data.py", "DATA_DEFAULTS"),
    # site values (slurm/local.yaml, RMSELECT_SLURM_* variables), never in the study config
    ("rmselect/cluster/site.py", "DEFAULTS"),
    # the job-sizing model per resource kind: CPU jobs' MB and minutes, and GPU jobs' runtime
    # scaling; whether a study gives resources.runtime.<kind> changes how a CPU job is sized,
    # so these cannot be schema defaults without changing behaviour
    ("rmselect/cluster/resources.py", "CPU_DEFAULTS"),
    ("rmselect/cluster/resources.py", "RUNTIME_DEFAULTS"),
}


def test_no_python_copy_of_config_defaults_reappears():
    import ast

    root = REPO / "workflow"
    found = set()
    for path in sorted((root / "rmselect").rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, ast.AnnAssign) else [])
            for t in targets:
                if isinstance(t, ast.Name) and t.id.upper().endswith("DEFAULTS"):
                    found.add((path.relative_to(root).as_posix(), t.id))
    unexpected = sorted(found - NOT_CONFIG_DEFAULTS)
    assert not unexpected, (
        f"module-level defaults {unexpected}: write config defaults as `default:` in"
        " config/schemas/config.schema.yaml and read them through"
        " rmselect.config.section_settings"
    )
    assert found == NOT_CONFIG_DEFAULTS  # the allow-list names only what exists
