"""lm-eval runs end to end on a tiny random model and a local multiple-choice task (CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rmselect.bench.run import Settings, main, run_benchmarks
from rmselect.bench.sampling import subsample_indices
from rmselect.bench.spec import TaskSpec


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A 1-layer random Llama with a small BPE tokenizer, a 30-item local lm-eval task and a
    2-problem HumanEval-schema file."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    root = tmp_path_factory.mktemp("bench")
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["def add(a, b):\n    return a + b\n", "Is 3 even? yes no"] * 20,
                            trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>")
    fast.save_pretrained(root / "model")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                      max_position_embeddings=256, bos_token_id=1, eos_token_id=2)
    LlamaForCausalLM(cfg).save_pretrained(root / "model")
    rows = [{"q": f"Is {i} even?", "choices": ["yes", "no"], "label": i % 2} for i in range(30)]
    (root / "mc.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "tasks").mkdir()
    (root / "tasks" / "tiny_mc.yaml").write_text(
        "task: tiny_mc\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {root / 'mc.jsonl'}\n"
        "output_type: multiple_choice\n"
        "test_split: test\n"
        'doc_to_text: "Question: {{q}}\\nAnswer:"\n'
        'doc_to_choice: "{{choices}}"\n'
        "doc_to_target: label\n"
        "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n"
    )
    problems = [
        {"task_id": "T/0", "prompt": "def add(a, b):\n", "canonical_solution": "    return a+b\n",
         "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n", "entry_point": "add"},
        {"task_id": "T/1", "prompt": "def one():\n", "canonical_solution": "    return 1\n",
         "test": "def check(candidate):\n    assert candidate() == 1\n", "entry_point": "one"},
    ]
    (root / "code.jsonl").write_text("".join(json.dumps(p) + "\n" for p in problems))
    return root


def _mc(root: Path, **kw) -> TaskSpec:
    return TaskSpec(name="tiny_mc", task="tiny_mc", include_path=str(root / "tasks"), n=10, **kw)


def test_small_mode_is_the_seeded_subsample_of_full(tiny: Path, tmp_path: Path):
    code = TaskSpec(name="toy_codegen", kind="code", data=str(tiny / "code.jsonl"), n=5,
                    max_new_tokens=8, stop=("\n\n", "def "))
    small = run_benchmarks("tiny", str(tiny / "model"), [_mc(tiny), code],
                           [tmp_path / "s.json", tmp_path / "c.json"],
                           Settings(mode="small", seed=7, batch_size=8,
                                    sandbox={"timeout_s": 5, "cpu_s": 2, "mem_mb": 256}))
    full = run_benchmarks("tiny", str(tiny / "model"), [_mc(tiny)], [tmp_path / "f.json"],
                          Settings(mode="full", seed=7, batch_size=8))
    s, f = small[0], full[0]
    want = subsample_indices(30, 10, 7, "tiny_mc")
    leaf_s, leaf_f = s["leaves"]["tiny_mc"], f["leaves"]["tiny_mc"]
    assert s["mode"] == "small" and s["items_used"] == 10 and s["items_total"] == 30
    assert leaf_s["indices"] == want and [i for i, _ in leaf_s["items"]] == want
    assert f["items_used"] == 30 and leaf_f["indices"] is None
    # same items, same model, 0-shot: the small score is the full per-item mean over `want`
    per_item = dict((i, v) for i, v in leaf_f["items"])
    assert leaf_s["raw"] == pytest.approx(sum(per_item[i] for i in want) / 10)
    assert leaf_f["raw"] == pytest.approx(sum(per_item.values()) / 30)
    # 2 choices -> inferred baseline 0.5 and OLL v2 normalisation of the raw accuracy
    assert leaf_f["baseline"] == 0.5 and leaf_f["baseline_source"] == "inferred"
    assert f["score"] == pytest.approx(max(0.0, (leaf_f["raw"] - 0.5) / 0.5) * 100)
    assert f["gpu_s"] == 0.0 and f["device"] == "cpu" and f["wall_s"] > 0
    on_disk = json.loads((tmp_path / "s.json").read_text())
    assert on_disk["score"] == s["score"] and on_disk["raw_metrics"]["tiny_mc"]["acc,none"] == \
        leaf_s["raw"]
    # the code task: 2 problems (n=5 >= 2: all), every program ran in the sandbox
    c = small[1]
    assert c["items_used"] == 2 and c["kind"] == "code"
    assert sum(c["raw_metrics"]["toy_codegen"]["statuses"].values()) == 2
    assert c["score"] == pytest.approx(100 * sum(r["passed"] for r in c["samples"]) / 2)
    assert c["isolation"]["limits"].startswith("rlimit-cpu")


def test_unknown_metric_and_task_are_clear_errors(tiny: Path, tmp_path: Path):
    with pytest.raises(RuntimeError, match=r"benchmarks\.tasks\.tiny_mc\.metric"):
        run_benchmarks("tiny", str(tiny / "model"), [_mc(tiny, metrics=("f1",))],
                       [tmp_path / "x.json"], Settings(mode="small", seed=1))
    with pytest.raises(RuntimeError, match="task 'no_such_task' not found in include_path"):
        spec = TaskSpec(name="x", task="no_such_task", include_path=str(tiny / "tasks"))
        run_benchmarks("tiny", str(tiny / "model"), [spec], [tmp_path / "y.json"],
                       Settings(mode="small", seed=1))
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "y.json").exists()


def test_script_entry_point(tiny: Path, tmp_path: Path):
    spec = json.dumps(_mc(tiny).to_dict())
    rc = main(["--model", "tiny", "--model-ref", str(tiny / "model"),
               "--settings", json.dumps({"mode": "small", "seed": 3, "batch_size": 4}),
               "--spec", spec, "--out-dir", str(tmp_path / "out")])
    rec = json.loads((tmp_path / "out" / "tiny_mc.json").read_text())
    assert rc == 0 and rec["model"] == "tiny" and rec["items_used"] == 10 and rec["seed"] == 3
