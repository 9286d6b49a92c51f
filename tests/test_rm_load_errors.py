"""Real-world model and data cases of train_rm.py: what works, and one-line refusals.

Works: a base model without a chat template (the documented fallback template) whose
tokenizer has no pad token. Refused with one line naming the model or file (and the
1-based row and field for data), exit status 2, nothing written: truncated weights, a model
path that is a file, a bad preference row. Packing is used only where the probe proves it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rmselect.rm import train
from rmselect.rm.format import FALLBACK_TEMPLATE
from rmselect.rm.model import RewardModel, attention_ratio, prepare_tokenizer
from support import tiny_rm

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("rmcases")
    tiny_rm.make_model(r / "base", hidden=32, layers=2, heads=4)
    tiny_rm.write_preference_data(r / "pref.jsonl", 32, 16)
    return r


def _args(model: Path, data: Path, out: Path) -> list[str]:
    entry = json.dumps({"path": str(data)})
    return ["--model", str(model), "--objective", "bt", "--lr", "0.002", "--out", str(out),
            "--train-data", entry, "--val-data", entry, "--global-batch", "16",
            "--micro-batch", "8", "--eval-every", "100", "--max-length", "64",
            "--warmup-steps", "1", "--log-every", "100"]


def _error_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("train_rm: error:")]


def test_no_chat_template_and_no_pad_token_train_with_the_fallback(root, tmp_path):
    import shutil

    model = tmp_path / "bare"
    shutil.copytree(root / "base", model)
    cfg_path = model / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.pop("chat_template", None)
    cfg_path.write_text(json.dumps(cfg))
    (model / "chat_template.jinja").unlink(missing_ok=True)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model))
    assert tok.chat_template is None and tok.pad_token is None
    out = tmp_path / "run"
    assert train.main(_args(model, root / "pref.jsonl", out)) == 0
    run = json.loads((out / "run.json").read_text())
    saved = AutoTokenizer.from_pretrained(run["checkpoints"][-1])
    assert saved.chat_template == FALLBACK_TEMPLATE and saved.pad_token == "<|rmselect_pad|>"
    assert run["packing"]["used"] is True  # a transformers Llama keeps packed sequences apart


def test_truncated_weights_and_a_file_path_are_one_line(root, tmp_path, capsys):
    import shutil

    model = tmp_path / "cut"
    shutil.copytree(root / "base", model)
    w = model / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    for ref, msg in ((model, "weights file model.safetensors cannot be read"),
                     (model / "config.json", "is a file, not a model folder")):
        out = tmp_path / f"run-{ref.name}"
        assert train.main(_args(ref, root / "pref.jsonl", out)) == 2
        err = capsys.readouterr().err
        lines = _error_lines(err)
        assert len(lines) == 1 and f"model {ref}" in lines[0] and msg in lines[0], err
        assert "Traceback" not in err and not out.exists()


def test_bad_preference_row_is_one_line_with_its_file_row(root, tmp_path):
    rows = [json.loads(x) for x in (root / "pref.jsonl").read_text().splitlines()]
    rows[40]["preference_strength"] = None  # a validation row; file row 41
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
                        "MASTER_PORT")}
    proc = subprocess.run(
        [sys.executable, str(REPO / "workflow/scripts/train_rm.py"),
         *_args(root / "base", bad, out)],
        env={**env, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = _error_lines(proc.stderr)
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert f"data set {bad}: row 41: field 'preference_strength' is empty" in lines[0]
    assert not out.exists()


class _RowLeaky(RewardModel):
    """Like flash-attention in transformers: position ids mark sequence boundaries only in a
    one-row batch; several packed rows leak across sequences."""

    def forward(self, input_ids, attention_mask=None, position_ids=None, last_row=None,
                last_col=None):
        if attention_mask is None and input_ids.shape[0] > 1:
            return _Leaky.forward(self, input_ids, None, position_ids, last_row, last_col)
        return super().forward(input_ids, attention_mask, position_ids, last_row, last_col)


class _Leaky(RewardModel):
    """A model whose packed forward ignores position ids (like remote code that builds its
    own causal mask): the second sequence of a row sees the first."""

    def forward(self, input_ids, attention_mask=None, position_ids=None, last_row=None,
                last_col=None):
        if attention_mask is None:
            hidden = self.hf.model(input_ids=input_ids, use_cache=False).last_hidden_state
            return self.hf.score(hidden[last_row, last_col])
        return super().forward(input_ids, attention_mask)


def test_packing_probe_accepts_transformers_masks_and_refuses_leaks(root):
    from rmselect.hf import load_sequence_classifier, load_tokenizer
    from rmselect.rm.model import packed_layouts, packing_agrees

    tok = prepare_tokenizer(load_tokenizer(root / "base"))
    hf = load_sequence_classifier(root / "base", num_labels=1, dtype=torch.float32)
    hf.resize_token_embeddings(len(tok))
    kappa = attention_ratio(hf.config)
    # The probe checks the layouts training uses: one row for a flash-like kernel, one row
    # and several rows for a dense-mask kernel (so a row-leaking model fails there).
    for cls, kernel, want in ((RewardModel, "sdpa", True), (_Leaky, "sdpa", False),
                              (_Leaky, "flash_attention_2", False),
                              (_RowLeaky, "flash_attention_2", True), (_RowLeaky, "sdpa", False)):
        m = cls(hf).eval()
        ok, diff = packing_agrees(
            lambda rows, n: train._forward_rows(m, rows, tok.pad_token_id, "cpu", n > 0, kappa,
                                                n)[0],
            hf.config.vocab_size, layouts=packed_layouts(kernel))
        assert ok is want, (cls.__name__, kernel, diff)
        if not want:
            assert diff > 1e-3
    args = train.build_parser().parse_args(_args(root / "base", root / "pref.jsonl", root / "x")
                                           + ["--trust-remote-code"])
    cfg = type("C", (), {"packing": True})()
    log = train.Log(1, root / "m.jsonl", None)
    dec = train.decide_packing(None, cfg, args, 0, "cpu", kappa, torch.float32, log)
    assert dec["used"] is False and "trust_remote_code" in dec["reason"]
