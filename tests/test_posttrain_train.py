"""SFT/DPO data masking, losses with hand-computed values, and the DeepSpeed loop on CPU.

Models and tokenizers are built in the test: a byte-level BPE tokenizer with a toy-style chat
template and a tiny random Llama (or one whose head is zero, so every next-token
distribution is uniform and the first SFT loss is exactly log V).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl
import pytest
import torch

from rmselect.config import ConfigError, ModelSpec
from rmselect.datasets_io import DatasetError
from rmselect.posttrain import data as pd
from rmselect.posttrain import recipes, train as pt

TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIALS = ["<|pad|>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>"]


def make_tokenizer(template: str | None = TEMPLATE):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["what is two plus two", "four", "the sky is blue"] * 5, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|end|>", pad_token="<|pad|>")
    if template:
        fast.chat_template = template
    return fast


def make_model(path: Path, zero_head: bool = False, template: str | None = TEMPLATE) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = make_tokenizer(template)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                      max_position_embeddings=256, tie_word_embeddings=False,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    if zero_head:
        with torch.no_grad():
            model.lm_head.weight.zero_()
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


# --------------------------------------------------------------------------- data


def _decode_labels(tok, seq: pd.Sequence_) -> str:
    return tok.decode([t for t in seq.labels if t != pd.IGNORE_INDEX])


def test_sft_loss_mask_covers_assistant_turns_only():
    tok = make_tokenizer()
    msgs = [{"role": "user", "content": "what is two plus two"},
            {"role": "assistant", "content": "four"},
            {"role": "user", "content": "the sky"},
            {"role": "assistant", "content": "is blue"}]
    df = pl.DataFrame({"messages": [msgs]})
    (seq,), dropped = pd.sft_examples(df, tok, TEMPLATE, max_length=512)
    assert dropped == 0
    text = tok.decode(seq.input_ids)
    assert text == ("<|user|>\nwhat is two plus two<|end|>\n<|assistant|>\nfour<|end|>\n"
                    "<|user|>\nthe sky<|end|>\n<|assistant|>\nis blue<|end|>\n")
    # both assistant turns with their end-of-turn text; no user text, no assistant header
    assert _decode_labels(tok, seq) == "four<|end|>\nis blue<|end|>\n"


def test_sft_truncation_drops_rows_without_assistant_tokens():
    tok = make_tokenizer()
    msgs = [{"role": "user", "content": "what is two plus two " * 5},
            {"role": "assistant", "content": "four"}]
    examples, dropped = pd.sft_examples(pl.DataFrame({"messages": [msgs]}), tok, TEMPLATE, 4)
    assert examples == [] and dropped == 1


def test_dpo_pairs_mask_the_response():
    tok = make_tokenizer()
    df = pl.DataFrame({"prompt": ["what is two plus two"], "chosen": ["four"], "rejected": ["blue"]})
    (pair,), _ = pd.dpo_examples(df, tok, TEMPLATE, max_length=512)
    assert _decode_labels(tok, pair.chosen) == "four<|end|>\n"
    assert _decode_labels(tok, pair.rejected) == "blue<|end|>\n"


def test_dpo_conversational_format_matches_strings():
    tok = make_tokenizer()
    q = [{"role": "user", "content": "what is two plus two"}]
    strings = pl.DataFrame({"prompt": ["what is two plus two"], "chosen": ["four"], "rejected": ["blue"]})
    full = pl.DataFrame({"chosen": [q + [{"role": "assistant", "content": "four"}]],
                         "rejected": [q + [{"role": "assistant", "content": "blue"}]]})
    (a,), _ = pd.dpo_examples(strings, tok, TEMPLATE, 512)
    (b,), _ = pd.dpo_examples(full, tok, TEMPLATE, 512)
    assert a == b
    with pytest.raises(DatasetError, match="row 0 field 'chosen': a string response needs"):
        pd.dpo_examples(strings.drop("prompt"), tok, TEMPLATE, 512)


def test_bad_rows_are_named():
    tok = make_tokenizer()
    with pytest.raises(DatasetError, match=r"row 0 field 'messages': no assistant turn"):
        pd.sft_examples(pl.DataFrame({"messages": [[{"role": "user", "content": "x"}]]}),
                        tok, TEMPLATE, 64)
    with pytest.raises(DatasetError, match="missing column"):
        pd.dpo_examples(pl.DataFrame({"prompt": ["x"], "chosen": ["y"]}), tok, TEMPLATE, 64)
    with pytest.raises(DatasetError, match="must end with an assistant turn"):
        pd.dpo_examples(pl.DataFrame({"chosen": [[{"role": "user", "content": "x"}]],
                                      "rejected": [[{"role": "user", "content": "x"}]]}),
                        tok, TEMPLATE, 64)


def test_non_prefix_stable_template_is_rejected():
    tok = make_tokenizer()
    # renders a count of messages first: a prefix of the conversation renders differently
    bad = "{{ messages|length }}" + TEMPLATE
    msgs = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]
    with pytest.raises(DatasetError, match="prefix"):
        pd.sft_examples(pl.DataFrame({"messages": [msgs]}), tok, bad, 64)


# --------------------------------------------------------------------------- losses


def test_dpo_loss_hand_computed():
    # margin = beta·((pc-rc)-(pr-rr)) = 0.5·((-1+2)-(-3+2)) = 1 → loss = -log σ(1)
    loss, margin = pt.dpo_loss(torch.tensor([-1.0]), torch.tensor([-3.0]),
                               torch.tensor([-2.0]), torch.tensor([-2.0]), beta=0.5)
    assert margin.item() == pytest.approx(1.0)
    assert loss.item() == pytest.approx(math.log1p(math.exp(-1.0)))
    # policy == reference: log 2
    loss, _ = pt.dpo_loss(torch.tensor([-1.0]), torch.tensor([-3.0]),
                          torch.tensor([-1.0]), torch.tensor([-3.0]), beta=0.1)
    assert loss.item() == pytest.approx(math.log(2))


def test_sequence_logps_sum_labelled_tokens():
    # vocab 2, uniform logits: each labelled token contributes log 1/2
    logits = torch.zeros(1, 4, 2)
    labels = torch.tensor([[pd.IGNORE_INDEX, pd.IGNORE_INDEX, 1, 0]])
    assert pt.sequence_logps(logits, labels).item() == pytest.approx(2 * math.log(0.5))


def test_schedule_and_step_plan():
    assert [pt.schedule(s, 4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert pt.schedule(0, 0) == 1.0
    assert pt.plan_steps(10, 4, 1.0, None) == 2
    assert pt.plan_steps(10, 4, 3.0, 5) == 5
    plan = pt.step_indices(10, 4, 5, seed=0)
    assert [len(b) for b in plan] == [4] * 5
    assert len(set(plan[0] + plan[1])) == 8  # no repeats within an epoch
    with pytest.raises(ValueError, match="global batch"):
        pt.plan_steps(3, 4, 1.0, None)


# --------------------------------------------------------------------------- recipes


def _variant(stage="sft", produce=None):
    return ModelSpec(name="v", source=f"variant:{stage}", publisher="", family="f", params_b=1.0,
                     tokens_t=None, released="", stage=stage, parent="p", produce=produce)


def test_recipe_resolution_and_errors():
    cfg = {"posttrain": {"recipes": {"sft": {"data": {"path": "x"}, "lr": 1e-3},
                                     "long": {"stage": "sft", "data": {"path": "y"}}}}}
    r = recipes.resolve_recipe(cfg, _variant())
    assert r["lr"] == 1e-3 and r["global_batch"] == 64 and r["stage"] == "sft"
    with pytest.raises(ConfigError, match="posttrain.recipes.dpo' is missing"):
        recipes.resolve_recipe(cfg, _variant("dpo"))
    with pytest.raises(ConfigError, match="is a sft recipe"):
        recipes.resolve_recipe(cfg, _variant("dpo", produce="long"))


# --------------------------------------------------------------------------- training loop


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _sft_recipe(data: Path, **kw) -> dict:
    r = recipes.stage_defaults("sft")
    r.update(stage="sft", name="sft", data={"path": str(data)}, lr=3e-2, global_batch=4,
             micro_batch=2, max_length=64, epochs=3.0, zero_stage=0)
    r.update(kw)
    return r


@pytest.mark.slow
def test_sft_then_dpo_chain_on_cpu(tmp_path):
    from transformers import AutoModelForCausalLM

    from rmselect.hf import load_tokenizer

    parent = make_model(tmp_path / "parent", zero_head=True)
    rows = [{"messages": [{"role": "user", "content": "what is two plus two"},
                          {"role": "assistant", "content": "four"}]}] * 8
    sft = _sft_recipe(_write_jsonl(tmp_path / "sft.jsonl", rows))
    out = tmp_path / "sft" / "model"
    info = pt.train(sft, str(parent), out, tmp_path / "sft" / "train.json", seed=1,
                    name="v-sft", parent_name="parent")
    # zero head → uniform over V tokens; every micro-batch of step 1 sees the initial weights
    assert info["history"][0]["loss"] == pytest.approx(math.log(len(load_tokenizer(parent))), abs=1e-4)
    assert info["steps"] == 6 and info["final_loss"] < 0.5 * info["initial_loss"]
    assert (out / "config.json").exists() and (out / "model.safetensors").exists()
    saved = json.loads((tmp_path / "sft" / "train.json").read_text())
    assert saved["parent"] == "parent" and saved["recipe"]["lr"] == 3e-2
    child = load_tokenizer(out)
    assert child.chat_template == TEMPLATE
    AutoModelForCausalLM.from_pretrained(out, use_safetensors=True)

    # DPO on the SFT child: the first loss is exactly log 2 (policy = reference = parent)
    pairs = [{"prompt": "what is two plus two", "chosen": "four", "rejected": "the sky is blue"}] * 4
    dpo = recipes.stage_defaults("dpo")
    dpo.update(stage="dpo", name="dpo", data={"path": str(_write_jsonl(tmp_path / "d.jsonl", pairs))},
               lr=1e-2, beta=0.5, global_batch=4, micro_batch=2, max_length=64, epochs=4.0,
               zero_stage=0)
    info2 = pt.train(dpo, str(out), tmp_path / "dpo" / "model", tmp_path / "dpo" / "train.json",
                     seed=1, name="v-sft-dpo", parent_name="v-sft")
    assert info2["history"][0]["loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert info2["final_loss"] < info2["initial_loss"]
    assert info2["history"][-1]["reward_accuracy"] == 1.0


@pytest.mark.slow
def test_template_fallback_is_saved_and_bad_data_writes_nothing(tmp_path):
    parent = make_model(tmp_path / "parent", template=None)
    rows = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "four"}]}] * 4
    out = tmp_path / "v" / "model"
    pt.train(_sft_recipe(_write_jsonl(tmp_path / "s.jsonl", rows), epochs=1.0), str(parent), out,
             tmp_path / "v" / "train.json", seed=0)
    from rmselect.hf import load_tokenizer
    from rmselect.rm.format import FALLBACK_TEMPLATE, render

    child = load_tokenizer(out)
    assert child.chat_template == pd.POSTTRAIN_FALLBACK_TEMPLATE
    # the RM stage renders a single exchange exactly as the parent's fallback does
    parent_tok = load_tokenizer(parent)
    assert render(child, "hi", "four") == render(parent_tok, "hi", "four", FALLBACK_TEMPLATE)
    bad = _write_jsonl(tmp_path / "bad.jsonl", [{"text": "no messages"}] * 4)
    with pytest.raises(DatasetError, match="posttrain.recipes.sft.data: missing column"):
        pt.train(_sft_recipe(bad), str(parent), tmp_path / "w" / "model",
                 tmp_path / "w" / "train.json", seed=0)
    assert not (tmp_path / "w").exists()


# --------------------------------------------------------------------------- at scale


def test_reference_shards_are_disjoint_and_gather_to_the_unsharded_table():
    """10 pairs on 3 ranks, 2 per forward: each rank scores only its block, every rank
    makes the same number of forwards (ZeRO-3), and the gathered table is the 1-rank one."""
    n, micro, world = 10, 2, 3
    seen: dict[int, list[list[int]]] = {}

    def scorer(rank: int):
        def score(idx: list[int]) -> torch.Tensor:
            seen.setdefault(rank, []).append(list(idx))
            return torch.tensor([[float(i), -0.5 * i] for i in idx])
        return score

    whole = pt.reference_shard(scorer(-1), n, micro, 0, 1)
    blocks = [pt.reference_shard(scorer(r), n, micro, r, world) for r in range(world)]
    assert torch.equal(pt.gather_shards(blocks, n), whole[:n])
    real = [sorted({i for call in seen[r] for i in call}) for r in range(world)]
    assert real == [[0, 1, 2, 3], [4, 5, 6, 7], [0, 8, 9]]  # rank 2 pads with item 0
    assert [len(seen[r]) for r in range(world)] == [2, 2, 2]
    assert pt.shard_bounds(10, 2, 3) == (8, 10, 4) and pt.shard_bounds(2, 2, 3) == (2, 2, 1)


def test_sharded_reference_logps_equal_the_unsharded_ones(tmp_path):
    """On a real tiny model: per-rank blocks of _pair_logps, gathered, equal one pass."""
    from transformers import AutoModelForCausalLM

    from rmselect.hf import load_tokenizer

    parent = make_model(tmp_path / "p")
    tok = load_tokenizer(parent)
    prompts = ["what is two plus two", "the sky is", "two plus", "blue sky", "what is"]
    df = pl.DataFrame({"prompt": prompts, "chosen": ["four", "blue", "two", "is", "four"],
                       "rejected": ["the sky is blue", "four", "sky", "what", "blue blue"]})
    pairs, _ = pd.dpo_examples(df, tok, TEMPLATE, 64, what="t")

    class Engine:  # what reference_logps uses of a DeepSpeed engine
        module = AutoModelForCausalLM.from_pretrained(parent).eval()
        device = torch.device("cpu")

        def __call__(self, **kw):
            return self.module(**kw)

    eng = Engine()
    full = pt.reference_logps(eng, pairs, 2, tok.pad_token_id)
    with torch.no_grad():
        def score(idx):
            c, r = pt._pair_logps(eng, [pairs[i] for i in idx], tok.pad_token_id)
            return torch.stack([c, r], 1)
        blocks = [pt.reference_shard(score, len(pairs), 2, r, 2) for r in range(2)]
    torch.testing.assert_close(pt.gather_shards(blocks, len(pairs)), full, atol=1e-5, rtol=0)
    assert full.shape == (5, 2) and bool((full < 0).all())


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["sft", "dpo"])
def test_stop_then_rerun_resumes_to_identical_losses_and_weights(tmp_path, stage, caplog):
    """A run stopped after step 3 (checkpoint every 2 steps) and rerun resumes from step 2
    and ends with the losses and weights of an uninterrupted run; DPO reads its reference
    log-probs back instead of recomputing them from the trained weights."""
    from safetensors.torch import load_file

    parent = make_model(tmp_path / "parent")
    if stage == "sft":
        rows = [{"messages": [{"role": "user", "content": f"what is two plus {w}"},
                              {"role": "assistant", "content": "four"}]} for w in range(8)]
        recipe = _sft_recipe(_write_jsonl(tmp_path / "d.jsonl", rows), epochs=3.0)
    else:
        pairs = [{"prompt": f"what is two plus {w}", "chosen": "four", "rejected": "the sky"}
                 for w in range(8)]
        recipe = recipes.stage_defaults("dpo")
        recipe.update(stage="dpo", name="dpo", data={"path": str(_write_jsonl(tmp_path / "d.jsonl", pairs))},
                      lr=1e-2, global_batch=4, micro_batch=2, max_length=64, epochs=3.0, zero_stage=0)
    recipe["checkpoint_every"] = 2
    full = pt.train(recipe, str(parent), tmp_path / "a" / "model", tmp_path / "a" / "t.json", seed=1)
    cut = tmp_path / "b"
    got = pt.train(recipe, str(parent), cut / "model", cut / "t.json", seed=1, stop_after_steps=3)
    assert got == {"stopped_at": 3} and (cut / "train_state" / "ds" / "step2").is_dir()
    assert not (cut / "model").exists() and not (cut / "t.json").exists()
    if stage == "dpo":
        assert (cut / "train_state" / "ref_logps.safetensors").exists()
    caplog.set_level("INFO", logger="rmselect.posttrain")
    again = pt.train(recipe, str(parent), cut / "model", cut / "t.json", seed=1)
    assert "at step 2" in " ".join(r.getMessage() for r in caplog.records if "resumed" in r.getMessage())
    assert [(h["step"], h["loss"]) for h in again["history"]] == [
        (h["step"], h["loss"]) for h in full["history"]]
    assert len(full["history"]) == 6 and not (cut / "train_state").exists()
    wa = load_file(str(tmp_path / "a" / "model" / "model.safetensors"))
    wb = load_file(str(cut / "model" / "model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.slow
def test_dpo_on_two_ranks_matches_one_rank(tmp_path):
    """torchrun, 2 CPU ranks, ZeRO-2: the reference log-probs are scored half per rank and
    gathered, and the losses are those of one rank."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    parent = make_model(tmp_path / "parent")
    pairs = [{"prompt": f"what is two plus {w}", "chosen": "four", "rejected": "the sky"}
             for w in range(9)]  # 9 pairs: the ranks' blocks are 5 and 4 (padded)
    recipe = recipes.stage_defaults("dpo")
    recipe.update(stage="dpo", name="dpo", data={"path": str(_write_jsonl(tmp_path / "d.jsonl", pairs))},
                  lr=1e-2, global_batch=4, micro_batch=2, max_length=64, epochs=2.0, zero_stage=2)
    one = pt.train({**recipe, "zero_stage": 0}, str(parent), tmp_path / "a" / "model",
                   tmp_path / "a" / "t.json", seed=1)
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
                        "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(repo / "workflow"))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(repo / "workflow/scripts/posttrain_train.py"), "--parent", str(parent),
           "--recipe", json.dumps(recipe), "--out-dir", str(tmp_path / "b" / "model"),
           "--train-json", str(tmp_path / "b" / "t.json"), "--seed", "1"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = json.loads((tmp_path / "b" / "t.json").read_text())
    assert two["world_size"] == 2 and two["history"][0]["loss"] == pytest.approx(math.log(2), abs=1e-5)
    np_one = [h["loss"] for h in one["history"]]
    assert [h["loss"] for h in two["history"]] == pytest.approx(np_one, rel=2e-3, abs=2e-4)
