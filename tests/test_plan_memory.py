"""The plan's memory, communication and disk model (rmselect.plan.memory) on hand-computed
cases, and the feasibility check built on it (rmselect.plan.feasibility)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from rmselect.cluster.resources import ClusterSettings, projected_runtime, resources_for
from rmselect.config import load_study, load_study_file
from rmselect.plan import feasibility as F
from rmselect.plan import memory as M
from rmselect.plan.cost_model import GpuProfile

REPO = Path(__file__).resolve().parents[1]
GB = 1e9
# A Llama-3.1-8B-like shape with round numbers: N = 8e9, 32 layers, h = 4096, V = 128,256.
S8 = M.Shape(params=8e9, layers=32, hidden=4096, vocab=128_256)
# ZeRO-3's gathered working set of S8: 2 bytes x (2 layers + embedding), by hand:
# per layer (8e9 - 128,256 x 4,096) / 32 = 233,583,232; x 2 = 467,166,464;
# + 525,336,576 (embedding) = 992,503,040 parameters -> 1,985,006,080 bytes.
LIVE8 = 1_985_006_080


def test_zero_states_per_gpu_by_hand():
    # 16 bytes/param (bf16 params 2 + bf16 grads 2 + fp32 master and Adam 12)
    gpu, host = M.train_states(S8, zero=3, ranks=8)
    assert M.zero3_live(S8) == LIVE8
    assert gpu - LIVE8 == pytest.approx(16 * GB)  # the 8B ZeRO-3 on 8 ranks
    assert host == 0
    assert M.train_states(S8, zero=2, ranks=8)[0] == pytest.approx(30 * GB)  # 16 + 112/8
    assert M.train_states(S8, zero=1, ranks=8)[0] == pytest.approx(44 * GB)  # 32 + 96/8
    assert M.train_states(S8, zero=0, ranks=8)[0] == pytest.approx(128 * GB)  # 16 x 8
    assert M.train_states(S8, zero=0, ranks=1)[0] == pytest.approx(128 * GB)


def test_offload_moves_states_to_host():
    gpu, host = M.train_states(S8, zero=2, ranks=8, offload="optimizer")
    assert gpu == pytest.approx(18 * GB)  # bf16 params 16 + grad partition 16/8
    assert host == pytest.approx(16 * GB)  # (Adam 96 + fp32 grads 32) / 8
    gpu, host = M.train_states(S8, zero=3, ranks=1, offload="param")
    assert gpu == pytest.approx(16 * GB + LIVE8)  # bf16 grads stay; params gathered per layer
    assert host == pytest.approx((96 + 32 + 16) * GB)
    with pytest.raises(ValueError, match="ZeRO-3"):
        M.train_states(S8, zero=2, ranks=1, offload="param")


def test_activations_and_logits_by_hand():
    t = 1 * 2 * 4096  # one BT pair at 4,096 tokens per side
    # checkpointed: 32 layers x 2 bytes x 4096 x 8192 + one layer 34 x 4096 x 8192
    assert M.train_activations(S8, t, True) == 2_147_483_648 + 1_140_850_688
    assert M.train_activations(S8, t, False) == 32 * 34 * 4096 * 8192
    assert M.logits_bytes(S8, t, train=True) == 128_256 * 8192 * 12
    # forward-only: the batch's bf16 logits + fp32 log-softmax of one 2,049-token sequence
    assert M.logits_bytes(S8, 32768, train=False, seq=2049) == 128_256 * (2 * 32768 + 4 * 2049)
    s = M.TrainSetup(zero=3, ranks=8, micro_batch=1, seqs=2, max_length=4096)
    mem = M.train_memory(S8, s, overhead_gb=4)
    assert mem.gpu == pytest.approx(16 * GB + LIVE8 + 3_288_334_336 + 4 * GB)
    assert s.accumulation == 8 and s.tokens == 8192


def test_zero_communication_by_hand():
    f = 7 / 8
    assert M.comm_bytes_per_step(S8, 3, 8, 8) == pytest.approx(6 * 8e9 * f * 8)  # 336 GB
    assert M.comm_bytes_per_step(S8, 2, 8, 8) == pytest.approx(2 * 8e9 * f * 9)  # 126 GB
    assert M.comm_bytes_per_step(S8, 0, 8, 8) == pytest.approx(4 * 8e9 * f)
    assert M.comm_bytes_per_step(S8, 3, 1, 64) == 0


def test_shape_heuristic_and_columns():
    s = M.shape_of(8.0)
    assert s.layers == 32 and s.vocab == M.DEFAULT_VOCAB
    assert 12 * s.layers * s.hidden**2 + s.vocab * s.hidden == pytest.approx(8e9, rel=0.01)
    t = M.shape_of(8.0, {"layers": "32", "hidden": "4096", "vocab": "128256"})
    assert (t.layers, t.hidden, t.vocab) == (32, 4096, 128_256)


A6000 = GpuProfile("A6000", 154.8, 768.0, 0.3, 0.4, gpu_mem_gb=48, interconnect_gbs=20)


def test_choose_keeps_the_global_batch_and_fits():
    base = M.TrainSetup(zero=2, ranks=8, micro_batch=1, seqs=2, max_length=4096)
    s = F.choose_train(S8, A6000, base, overhead_gb=4)
    assert s is not None
    assert s.micro_batch * s.accumulation * s.ranks == 64
    assert M.train_memory(S8, s, 4).gpu <= 48 * GB
    # one step larger does not fit at the same stage (the largest micro batch was taken)
    bigger = replace(s, micro_batch=s.micro_batch * 2)
    assert M.train_memory(S8, bigger, 4).gpu > 48 * GB
    # one 48 GB GPU: no offload cannot hold 128 GB of states; offload makes it fit
    one = replace(base, ranks=1)
    assert F.choose_train(S8, A6000, one, 4, offloads=("none",)) is None
    got = F.choose_train(S8, A6000, one, 4, offloads=("none", "optimizer", "param"))
    assert got is not None and got.offload != "none" and got.micro_batch * got.accumulation == 64
    tiny = replace(A6000, gpu_mem_gb=10)
    assert F.choose_train(S8, tiny, one, 4, offloads=("none", "optimizer", "param")) is None


def test_runtime_from_projection_floor_ceiling_and_retries():
    site = ClusterSettings(runtime_floor=30, runtime_ceiling=2880)
    assert projected_runtime(100, 2.0, site) == 200
    assert projected_runtime(4.2, 2.0, site) == 30  # floor
    assert projected_runtime(5000, 2.0, site) == 2880  # ceiling
    cfg = {"resources": {"gpu_tiers": [{"max_b": 100, "train_gpus": 8, "infer_gpus": 1}],
                         "runtime_from": "projection", "runtime_safety": 1.5}}
    r1 = resources_for("rm_train", 8.0, cfg, cluster=site, projected_min=100)
    r2 = resources_for("rm_train", 8.0, cfg, cluster=site, projected_min=100, attempt=2)
    assert r1["runtime"] == 150 and r2["runtime"] == 300  # a retry lengthens the runtime
    formula = resources_for("rm_train", 8.0, {"resources": {**cfg["resources"],
                                                            "runtime_from": "formula"}},
                            cluster=site, projected_min=100)
    assert formula["runtime"] != 150


def _paper() -> dict:
    return yaml.safe_load((REPO / "config" / "paper.yaml").read_text())


def test_paper_study_fits():
    """The acceptance of issues 26 and 27 on the config alone: on A6000 x8 and H100 x8 every
    job fits (presence scoring in shards included), and the study's peak disk is <= 5 TB."""
    study = load_study_file("config/paper.yaml")
    df, lines, ws = F.report(study, cluster=ClusterSettings(runtime_floor=30,
                                                            runtime_ceiling=2880))
    bad = [ln for ln in lines if ln.startswith("infeasible")]
    assert not bad, bad[:3]
    shards = df.filter(df["rule"] == "presence_score")
    assert shards.height > 0 and (shards["verdict"] == "fits").all()
    assert set(df["profile"]) == {"A6000", "H100"}
    disk = df.filter(df["rule"] == "(study)")["disk_peak_gb"]
    assert (disk <= 5000).all() and (disk > 500).all()
    rm = df.filter(df["rule"].str.starts_with("rm_train"))
    assert rm.height == 2 * 2 * 42 and (rm["verdict"] == "fits").all()
    assert (rm["gpu_gb"] <= rm["gpu_limit_gb"]).all()
    # workstations: every model of the zoo trains on one H100 or one A6000, with settings
    assert len(ws) == 2 * 42 and all(" fits: ZeRO-" in w for w in ws)


def test_paper_before_fixes_lists_lm_eval_and_gate(monkeypatch):
    cfg = _paper()
    cfg["benchmarks"]["max_length"] = None  # lm-eval at the models' full context
    cfg["plan"]["on_infeasible"] = "error"
    study = load_study(cfg, "paper")
    rows = F.feasibility(study, "A6000", 8, REPO)
    bench = [r for r in rows if r.rule == "bench_run"]
    assert bench and all(r.verdict == "infeasible" for r in bench)
    assert any("benchmarks.max_length" in b for r in bench for b in r.breaks)
    mode, lines = F.gate(study, ClusterSettings(runtime_ceiling=2880))
    assert mode == "error" and any("bench_run" in ln and "GPU memory" in ln for ln in lines)
    cfg["plan"]["on_infeasible"] = "warn"
    assert F.gate(load_study(cfg, "paper"), ClusterSettings(runtime_ceiling=2880)) == (
        "warn", lines)


def test_toy_study_is_untouched():
    """The embedded CPU study: no feasibility, no projected runtimes, pinned settings."""
    from rmselect.rm.rules import size_settings, size_settings_raw

    study = load_study_file("config/config.yaml")
    assert F.job_minutes_of(study) == {}
    assert F.gate(replace_plan(study, "error"), None) == ("error", [])
    for b in (0.001, 0.1, 5.0):
        assert size_settings(study.config, b) == size_settings_raw(study.config, b)


def replace_plan(study, mode):
    cfg = dict(study.config)
    cfg["plan"] = {**(cfg.get("plan") or {}), "on_infeasible": mode}
    return load_study(cfg, "toy")


# One RM training step on CPU in a fresh process: the host memory it adds (peak RSS minus the
# RSS after imports) against the model's 16 bytes/parameter of states (fp32 on CPU: weights 4,
# gradients 4, Adam 8) + activations without checkpointing, doubled for fp32. AdamW runs with
# foreach=False (no temporary copies of all states at once).
_STEP = r"""
import json, resource, sys
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) * 1024
import torch
from transformers import LlamaConfig, LlamaForSequenceClassification
torch.manual_seed(0); torch.set_num_threads(1)
a = json.loads(sys.argv[1])
cfg = LlamaConfig(hidden_size=a["h"], num_hidden_layers=a["L"], intermediate_size=a["ff"],
                  num_attention_heads=a["heads"], num_key_value_heads=a["kv"],
                  vocab_size=a["V"], num_labels=1, pad_token_id=0, attn_implementation="sdpa")
base = rss()
m = LlamaForSequenceClassification(cfg)
opt = torch.optim.AdamW(m.parameters(), lr=1e-4, foreach=False)
ids = torch.randint(1, a["V"], (a["B"], a["S"]))
m(input_ids=ids).logits.float().pow(2).mean().backward()
opt.step()
print(json.dumps({"params": sum(p.numel() for p in m.parameters()), "base": base,
                  "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("arch", [
    # a toy-sized RM (57 M parameters) and SmolLM2-135M's published shape (random weights:
    # no download; hidden 576, 30 layers, MLP 1,536, 9 heads / 3 KV heads, vocabulary 49,152)
    {"h": 768, "L": 8, "ff": 2048, "heads": 12, "kv": 12, "V": 1000, "B": 4, "S": 128},
    {"h": 576, "L": 30, "ff": 1536, "heads": 9, "kv": 3, "V": 49152, "B": 2, "S": 128},
], ids=["toy57M", "smollm2_135M_shape"])
def test_memory_model_against_measured_cpu_peak(arch):
    import json
    import subprocess
    import sys

    got = json.loads(subprocess.run([sys.executable, "-c", _STEP, json.dumps(arch)],
                                    capture_output=True, text=True, check=True,
                                    timeout=300).stdout.strip().splitlines()[-1])
    shape = M.Shape(params=got["params"], layers=arch["L"], hidden=arch["h"], vocab=arch["V"])
    predicted = 16 * shape.params + 2 * M.train_activations(shape, arch["B"] * arch["S"], False)
    measured = got["peak"] - got["base"]
    # loose bound (allocator slack, the process's own buffers): within 30 % either way
    assert 0.7 * predicted <= measured <= 1.3 * predicted, (measured / 1e9, predicted / 1e9)


def test_one_gpu_machine_stops_models_that_cannot_fit():
    """On a 1-GPU machine (the site's gpus_per_node) an 8 B RM without offload cannot hold
    its 128 GB of states: with on_infeasible: error the DAG stops with one line per job;
    the 0.5 B models still fit."""
    cfg = _paper()
    cfg["plan"]["on_infeasible"] = "error"
    study = load_study(cfg, "paper")
    _, lines = F.gate(study, ClusterSettings(gpus_per_node=1, runtime_ceiling=2880))
    rm = [ln for ln in lines if "rm_train" in ln]
    assert any("Llama-3.1-8B-Instruct: GPU memory" in ln for ln in rm)
    assert not any("Qwen2.5-0.5B-Instruct" in ln for ln in rm)
    assert all(ln.count("\n") == 0 and "fix:" in ln for ln in lines)


def test_lm_eval_max_length_capped_at_the_models_context_and_site_runtime_limits(tmp_path):
    from types import SimpleNamespace

    from rmselect.bench.handle import capped_length
    from rmselect.cluster.site import cluster_settings

    def model(ctx):
        return SimpleNamespace(config=SimpleNamespace(max_position_embeddings=ctx))

    assert capped_length(4096, model(131_072)) == 4096  # Llama-3.1: 4,096, not 131,072
    assert capped_length(4096, model(512)) == 512  # a toy model keeps its own context
    assert capped_length(None, model(512)) is None
    site = cluster_settings({"RMSELECT_RUNTIME_CEILING": "720"}, cwd=tmp_path)
    assert (site.runtime_floor, site.runtime_ceiling) == (30, 720)


def test_posttrain_variants_are_checked():
    """An SFT variant of an 8 B model on the Tulu 3 mixture (939 k conversations, 2 epochs)
    runs ~74 h on 8 A6000s: beyond the 48 h site ceiling; DPO also holds the reference."""
    cfg = _paper()
    cfg["posttrain"]["variants"] = [{"parent": "Llama-3.1-8B", "stage": "sft", "name": "L8-sft"},
                                    {"parent": "Llama-3.1-8B", "stage": "dpo", "name": "L8-dpo"}]
    study = load_study(cfg, "paper")
    rows = {r.model: r for r in F.feasibility(study, "A6000", 8, REPO,
                                                ClusterSettings(runtime_ceiling=2880))
            if r.rule == "posttrain_variant"}
    sft, dpo = rows["L8-sft"], rows["L8-dpo"]
    assert sft.ranks == 8 and "accum 16 x 8 ranks = 128" in sft.settings
    assert sft.minutes > 2880 and any("runtime ceiling" in b for b in sft.breaks)
    assert dpo.gpu_gb > sft.gpu_gb and dpo.gpu_gb <= 48 and dpo.minutes < sft.minutes


def test_host_and_disk_by_hand():
    # 8 ranks each: a 6 GB process, the 16 GB bf16 checkpoint, 1 M tokens x 16 bytes of data
    assert M.host_train(S8, 8, 0.0, 1, 1e6, 6.0) == pytest.approx(8 * (6e9 + 16e9 + 16e6))
    assert M.checkpoint_bytes(S8) == (16e9, 112e9)  # HF bf16; DeepSpeed 14 bytes/param
    study = load_study_file("config/paper.yaml")
    row = next(r for r in F.feasibility(study, "A6000", 8, REPO)
               if r.rule == "rm_train[regression]" and r.model == "Llama-3.1-8B-Instruct")
    n = 8.03e9
    # one HF checkpoint kept; at the peak also the next one and two rotating DeepSpeed states
    assert row.disk_kept_gb == pytest.approx(2 * n / 1e9, abs=0.1)
    assert row.disk_peak_gb == pytest.approx((2 * 2 * n + 2 * 14 * n) / 1e9)
    assert row.disk_peak_gb <= row.disk_limit_gb == 500
    small = {**study.config, "resources": {**study.config["resources"], "mem_mb_per_gpu": 4000}}
    row = next(r for r in F.feasibility(load_study(small, "p"), "A6000", 8, REPO)
               if r.rule == "rm_train[regression]" and r.model == "Llama-3.1-8B-Instruct")
    assert any(b.startswith("host memory") and "mem_mb_per_gpu >=" in b for b in row.breaks)
