"""The published data layouts (tests/support/layouts.py) read through the pipeline's loaders.

Each data set is read by the code a real run uses: ``datasets.load_dataset`` on the
``{hub, data_files}`` entry, then the RM-data or benchmark loader.
"""

from __future__ import annotations

import pytest

from rmselect.eval.benchmarks import load_benchmark, sections_of
from rmselect.rm import data as D
from rmselect.rm.format import render, to_messages
from support import tiny_rm
from support.layouts import COUNTS, MULTI_TURN, write_layouts

#: SmolLM2-Instruct's chat template (ChatML with a default system prompt).
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging"
    " Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' +"
    " message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    return write_layouts(tmp_path_factory.mktemp("layouts"))


def test_helpsteer2_rows_read_through_load_dataset(layouts):
    rows = D.load_rated(layouts["data"]["helpsteer2"], "train")
    assert len(rows) == COUNTS["helpsteer2_train"]
    assert all(0 <= s <= 4 for r in rows for s in r.scores)
    assert sum("<extra_id_1>" in r.prompt for r in rows) == 8  # every third prompt


def test_preference_val_split_is_the_validation_split(layouts):
    entry = layouts["data"]["helpsteer2_preference"]
    train = D.load_pairs(entry, "train")
    val = D.load_pairs(entry, "validation")
    assert len(train) == COUNTS["preference_train"] - COUNTS["preference_ties_train"]
    assert len(val) == COUNTS["preference_val"] - COUNTS["preference_ties_val"]
    assert not {p.prompt + p.chosen for p in train} & {p.prompt + p.chosen for p in val}


def test_bad_preference_row_names_file_row_and_field(tmp_path):
    import gzip
    import json

    from rmselect.datasets_io import DatasetError
    from support.layouts import preference_rows

    rows = preference_rows("train", 4, 0, 0) + preference_rows("val", 3, 0, 1)
    rows[5]["preference_strength"] = "much better"
    path = tmp_path / "preference.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    with pytest.raises(DatasetError, match=r"preference.jsonl.gz: row 6: field 'preference_strength'"):
        D.load_pairs({"path": str(path)}, "validation")


def test_multi_turn_prompt_renders_as_alternating_turns():
    msgs = to_messages(MULTI_TURN, "About two million.")
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant"]
    assert msgs[1]["content"] == "The capital of France is Paris."
    tok = tiny_rm.make_tokenizer()
    text = render(tok, MULTI_TURN, "About two million.", SMOLLM2_TEMPLATE)
    assert "<extra_id_1>" not in text
    assert text == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging"
        " Face<|im_end|>\n"
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
        "<|im_start|>assistant\nThe capital of France is Paris.<|im_end|>\n"
        "<|im_start|>user\nAnd how many people live there?<|im_end|>\n"
        "<|im_start|>assistant\nAbout two million.<|im_end|>\n"
    )
    assert to_messages("one turn", "r") == [{"role": "user", "content": "one turn"},
                                            {"role": "assistant", "content": "r"}]


@pytest.mark.parametrize("bench,n_examples,n_texts", [
    ("rewardbench", COUNTS["rewardbench_subsets"], 2 * COUNTS["rewardbench_subsets"]),
    ("rewardbench2", COUNTS["rewardbench2_rows"], 10 * 4 + (1 + 3) + (3 + 4) + (2 + 5)),
    ("rmbench", COUNTS["rmbench_rows"], 6 * COUNTS["rmbench_rows"]),
])
def test_benchmarks_read_with_every_section(layouts, bench, n_examples, n_texts):
    data = load_benchmark(bench, layouts["eval"]["benchmarks"][bench])
    assert data.n_examples == n_examples and data.items.height == n_texts
    assert data.missing_subsets == []
    assert set(data.present_subsets) == {s for subs in sections_of(bench).values() for s in subs}


def test_trainer_reads_the_layouts(layouts, tmp_path):
    """train_rm (regression) on HelpSteer2 with HelpSteer2-Preference's 'val' rows as
    validation, both through load_dataset; the multi-turn prompts are rendered as turns."""
    import json

    from rmselect.rm import train

    tiny_rm.make_model(tmp_path / "base", hidden=16, layers=1, heads=2)
    data = layouts["data"]
    out = tmp_path / "run"
    args = ["--model", str(tmp_path / "base"), "--objective", "regression", "--lr", "0.001",
            "--out", str(out), "--train-data", json.dumps(data["helpsteer2"]),
            "--val-data", json.dumps(data["helpsteer2_preference"]), "--global-batch", "8",
            "--micro-batch", "8", "--eval-every", "100", "--max-length", "256",
            "--warmup-steps", "1", "--log-every", "100", "--merge-grid-step", "0.5"]
    assert train.main(args) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["n_train"] == COUNTS["helpsteer2_train"]
    assert run["n_val_pairs"] == COUNTS["preference_val"] - COUNTS["preference_ties_val"]
    assert run["truncation"]["train"]["truncated"] == 0
