#!/usr/bin/env python
"""The first run on a GPU: is RM training fast, are packed rewards right, does the scorer pay off?

Runs with no network and nothing outside the repository: model weights cannot travel, so it
builds random-initialised models from configs (throughput does not depend on the weights, and
the equality checks hold for any weights): a ~1B Llama-architecture config on a GPU
(Llama-3.2-1B's shape with a 32k vocabulary), a tiny one on CPU. It prints, then one
PASS/FAIL/SKIP line per check (exit status 1 if any FAILs):

1. ``train``: RM-training tokens/s through our trainer (DeepSpeed, bf16 on CUDA, ZeRO-2, one
   rank, packed batches) and through TRL's RewardTrainer on the same data and attention
   kernel (flash-attention 2 when installed, else sdpa)
   (``bench/train_throughput.py``, each in a fresh process), their ratio (goal >= 1.3x) and
   our MFU = 6 N tokens/s / the GPU's dense bf16 peak (:data:`PEAK_TFLOPS`; goal >= 40 %),
   N = the parameters without the input embedding. The goals apply on a GPU; on CPU the
   check only has to run.
2. ``packing``: packed (one row, and the cost model's rows) vs padded rewards of real-length
   sequences, equal within bf16 tolerance (fp32 on CPU: 1e-4 relative), for sdpa and, when
   installed, flash-attention 2.
3. ``scorer``: the RewardBench scorer's pairs/s against the naive loop
   (``bench/eval_throughput.py``) on the same RM, and their rewards' agreement.
4. ``memory``: ``torch.cuda.max_memory_allocated`` of our training step (max RSS on CPU)
   beside the memory model's projection (``rmselect.plan.memory``; ``n/a`` when that module
   is not in this checkout).

    .venv/bin/python bench/gpu_check.py                 # on a GPU node: < 8 min on one H100
    .venv/bin/python bench/gpu_check.py --device cpu    # tiny config, ~1 min (tests run it)
    make gpu-check
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(REPO / "tests"))  # support.tiny_rm: test-only tokenizer and data
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(REPO / ".torch_extensions"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

#: Dense bf16 tensor-core peak, TFLOP/s, by a substring of ``torch.cuda.get_device_name()``
#: (first match wins; vendor data sheets, without sparsity).
PEAK_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100", 989.4),  # SXM / HBM3
    ("H200", 989.4),
    ("GH200", 989.4),
    ("A100", 312.0),
    ("A6000", 154.8),  # RTX A6000
    ("L40S", 362.0),
)

#: Model shapes: (hidden, layers, heads, kv heads, ffn, vocab).
SHAPES = {
    "1b": (2048, 16, 32, 8, 8192, 32000),  # Llama-3.2-1B's trunk, 32k vocabulary
    "tiny": (64, 2, 4, 4, 128, 512),
}
#: Per device: shape, pairs, words per response (min, max), global/micro batch, steps,
#: max length, and scorer pairs.
PLANS = {
    "cuda": dict(shape="1b", pairs=1200, words=(150, 700), global_batch=32, micro_batch=8,
                 steps=12, max_length=1024, eval_pairs=256),
    "cpu": dict(shape="tiny", pairs=64, words=(4, 40), global_batch=8, micro_batch=8,
                steps=3, max_length=128, eval_pairs=24),
}


def peak_tflops(name: str) -> float | None:
    """The dense bf16 peak of a GPU named ``name`` (None when not in the table)."""
    return next((v for key, v in PEAK_TFLOPS if key.lower() in name.lower()), None)


def verdict(ok: bool | None) -> str:
    return "SKIP" if ok is None else ("PASS" if ok else "FAIL")


def build_base(out: Path, shape: str, device: str, seed: int = 0) -> tuple[Path, int]:
    """A random-init Llama causal LM of ``shape`` with the tiny word-level tokenizer (ids
    past its words are spare rows); returns (dir, N without the input embedding)."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from support import tiny_rm

    hidden, layers, heads, kv, ffn, vocab = SHAPES[shape]
    tok = tiny_rm.make_tokenizer(out)
    cfg = LlamaConfig(vocab_size=max(vocab, len(tok) + 1), hidden_size=hidden,
                      num_hidden_layers=layers, num_attention_heads=heads,
                      num_key_value_heads=kv, intermediate_size=ffn,
                      max_position_embeddings=4096, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, tie_word_embeddings=False)
    torch.manual_seed(seed)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    model.save_pretrained(str(out), safe_serialization=True)
    n = sum(p.numel() for n_, p in model.model.named_parameters() if "embed_tokens" not in n_)
    del model
    return out, int(n)


# --------------------------------------------------------------------------- checks


def check_train(base: Path, data: Path, plan: dict, device: str, work: Path,
                n_params: int) -> dict:
    """Ours vs TRL through bench/train_throughput.py (fresh processes, same data)."""
    import train_throughput as tt
    from rmselect.hf import flash_attention_available

    work.mkdir(parents=True, exist_ok=True)
    # both trainers on the best kernel here: flash-attention 2 when installed (ours then packs
    # one row per micro-batch), else sdpa
    attn = "flash_attention_2" if flash_attention_available() else "auto"
    args = tt.parse(["--attn", attn, "--model", str(base), "--data", str(data),
                     "--global-batch", str(plan["global_batch"]),
                     "--micro-batch", str(plan["micro_batch"]), "--steps", str(plan["steps"]),
                     "--max-length", str(plan["max_length"]), "--lr", "1e-5",
                     "--threads", str(1 if device == "cpu" else 8), "--device", device,
                     "--zero-stage", "2"])
    if device == "cuda":  # one after the other: the timings are compared
        trl, ours = tt._spawn(args, "trl", work), tt._spawn(args, "ours", work)
    else:  # CPU smoke test: both at once (no goal applies to their timings)
        trl, ours = tt.spawn_both(args, work)
    ratio = ours["tokens_per_s"] / trl["tokens_per_s"]
    res = {"ours": ours, "trl": trl, "ratio": ratio, "mfu": None, "peak_tflops": None,
           "attn": attn}
    if device == "cuda":
        import torch

        peak = peak_tflops(torch.cuda.get_device_name())
        if peak:
            res["peak_tflops"] = peak
            res["mfu"] = 6.0 * n_params * ours["tokens_per_s"] / (peak * 1e12)
            res["trl_mfu"] = 6.0 * n_params * trl["tokens_per_s"] / (peak * 1e12)
    return res


def check_packing(base: Path, data: Path, device: str, max_length: int) -> dict:
    """Packed vs padded rewards per kernel (sdpa; flash-attention 2 when available)."""
    import torch

    from rmselect.hf import flash_attention_available, load_tokenizer
    from rmselect.rm import data as D
    from rmselect.rm.model import (RewardModel, attention_ratio, head_of, kernel_of,
                                   load_for_training, prepare_tokenizer)

    tok = prepare_tokenizer(load_tokenizer(base))
    pairs = D.load_pairs({"path": str(data)}, "validation")[:6]
    prompts = [p.prompt for p in pairs]
    seqs = D.tokenize_responses(tok, prompts + prompts, [p.chosen for p in pairs]
                                + [p.rejected for p in pairs], None, max_length)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    rtol = 5e-2 if dtype == torch.bfloat16 else 1e-4
    kernels = ["sdpa"] + (["flash_attention_2"] if flash_attention_available() else [])
    out: dict = {"lengths": [len(s) for s in seqs], "kernels": {}}
    for kernel in kernels:
        torch.manual_seed(0)
        hf = load_for_training(base, 1, tok, dtype=dtype, attn_implementation=kernel)
        with torch.no_grad():
            head_of(hf).weight.normal_(0, hf.config.hidden_size ** -0.5)
        rm = RewardModel(hf).to(device).eval()
        with torch.no_grad():
            ids, mask = D.pad_batch(seqs, tok.pad_token_id)
            padded = rm(ids.to(device), mask.to(device)).float()
            diffs = {}
            for label, n_rows in (("one row", 1), ("cost-model rows", None)):
                if n_rows is None and kernel == "flash_attention_2":
                    continue  # training packs one row for flash-attention
                pk = D.pack_rows(seqs, tok.pad_token_id, n_rows=n_rows,
                                 kappa=attention_ratio(hf.config))
                got = rm(pk.input_ids.to(device), position_ids=pk.position_ids.to(device),
                         last_row=pk.last_row.to(device), last_col=pk.last_col.to(device)).float()
                diffs[label] = float((got - padded).abs().max())
        scale = float(padded.abs().max())
        ok = max(diffs.values()) <= 1e-6 + rtol * scale
        out["kernels"][kernel] = {"resolved": kernel_of(hf), "diffs": diffs, "scale": scale,
                                  "ok": ok}
        del rm, hf
        if device == "cuda":
            torch.cuda.empty_cache()
    out["ok"] = all(k["ok"] for k in out["kernels"].values())
    return out


def eval_pairs(n: int, seed: int) -> list[dict[str, str]]:
    """Pairs with RewardBench-like heavy-tailed lengths in the tiny tokenizer's words."""
    import numpy as np

    from support import tiny_rm

    words = tiny_rm.GOOD + tiny_rm.BAD + tiny_rm.FILLER
    rng = np.random.default_rng(seed)

    def text(k: float, cap: int) -> str:
        return " ".join(rng.choice(words, size=max(1, int(min(k, cap)))))

    return [{"prompt": text(rng.lognormal(3.0, 0.6), 200),
             "chosen": text(rng.lognormal(3.6, 0.9), 900),
             "rejected": text(rng.lognormal(3.6, 0.9), 900)} for _ in range(n)]


def check_scorer(base: Path, work: Path, device: str, n_pairs: int) -> dict:
    """Our scorer vs the naive RewardBench loop (bench/eval_throughput.py) on one RM."""
    import numpy as np
    import torch

    import eval_throughput as et
    from rmselect.eval.scorer import load_reward_model, render_texts, score_texts

    rm_dir = et.as_reward_model(str(base), work / "rm", seed=0)
    rm = load_reward_model(rm_dir, device=device, max_length=4096)
    pairs = eval_pairs(n_pairs, 0)
    prompts = [x["prompt"] for x in pairs]
    chosen = render_texts(rm, prompts, [x["chosen"] for x in pairs])
    rejected = render_texts(rm, prompts, [x["rejected"] for x in pairs])
    et.naive_scores(rm, chosen[:4])  # warm-up
    score_texts(rm, chosen[:4], progress=False)

    def timed(fn):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        r = fn()
        if device == "cuda":
            torch.cuda.synchronize()
        return r, time.perf_counter() - t0

    naive, t_naive = timed(lambda: np.concatenate([et.naive_scores(rm, chosen),
                                                  et.naive_scores(rm, rejected)]))
    ours, t_ours = timed(lambda: score_texts(rm, chosen + rejected, progress=False).rewards)
    diff, scale = float(np.abs(naive - ours).max()), float(np.abs(naive).max())
    rtol = 5e-2 if rm.dtype == torch.bfloat16 else 1e-5
    agree = diff <= 1e-5 + rtol * scale
    # the speed goal applies on a GPU; a tiny CPU model measures start-up, not scoring
    faster = t_ours <= t_naive if device == "cuda" else True
    return {"pairs": n_pairs, "naive_pairs_per_s": n_pairs / t_naive,
            "ours_pairs_per_s": n_pairs / t_ours, "speedup": t_naive / t_ours,
            "max_diff": diff, "scale": scale, "dtype": str(rm.dtype).replace("torch.", ""),
            "ok": agree and faster}


def memory_projection(n_params: int, shape: str, plan: dict, max_tokens: int) -> float | None:
    """HOOK (issue 26's memory model): projected peak GPU bytes of our training step, or None
    when ``rmselect.plan.memory`` is not in this checkout. Worst case: every text of a
    micro-batch at the longest length seen, no gradient checkpointing, ZeRO-2 on one rank."""
    try:
        from rmselect.plan.memory import Shape, TrainSetup, train_memory
    except ImportError:
        return None
    hidden, layers, _, _, _, vocab = SHAPES[shape]
    full = n_params + vocab * hidden  # the embedding is trained too
    setup = TrainSetup(zero=2, ranks=1, micro_batch=plan["micro_batch"], seqs=2,
                       max_length=max_tokens, grad_ckpt=False,
                       global_batch=plan["global_batch"])
    return float(train_memory(Shape(full, layers, hidden, vocab), setup, 0.0).gpu)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    p.add_argument("--shape", choices=sorted(SHAPES), default=None,
                   help="model shape (default: 1b on cuda, tiny on cpu)")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps per trainer")
    p.add_argument("--json", default=None, help="also write every number here")
    a = p.parse_args(argv)

    import torch

    device = a.device if a.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        print(f"gpu_check: error: --device cuda but torch {torch.__version__} sees no CUDA device")
        return 2
    plan = dict(PLANS[device])
    if a.shape:
        plan["shape"] = a.shape
    if a.steps:
        plan["steps"] = a.steps
    t_all = time.time()
    gpu = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(f"[gpu_check] device {gpu}, torch {torch.__version__}, model shape {plan['shape']} "
          f"{SHAPES[plan['shape']]}", flush=True)
    from support import tiny_rm

    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        work = Path(tmp)
        base, n_params = build_base(work / "base", plan["shape"], device)
        w0, w1 = plan["words"]
        data = tiny_rm.write_preference_data(work / "pairs.jsonl", plan["pairs"], 16,
                                             min_len=w0, max_len=w1)
        print(f"[gpu_check] random-init Llama: {n_params / 1e6:.1f} M parameters without the "
              f"embedding; {plan['pairs']} synthetic pairs ({time.time() - t_all:.0f} s)",
              flush=True)
        res: dict = {"device": gpu, "plan": plan, "n_params": n_params}
        res["train"] = check_train(base, data, plan, device, work / "train", n_params)
        print(f"[gpu_check] training done ({time.time() - t_all:.0f} s)", flush=True)
        res["packing"] = check_packing(base, data, device, plan["max_length"])
        res["scorer"] = check_scorer(base, work, device, plan["eval_pairs"])
        proj = memory_projection(n_params, plan["shape"], plan, plan["max_length"])
    res["memory"] = {"measured_mb": res["train"]["ours"]["max_mem_mb"],
                     "projected_mb": None if proj is None else proj / 2**20}
    res["wall_s"] = time.time() - t_all
    return report(res, device, a.json)


def report(res: dict, device: str, json_path: str | None) -> int:
    tr, pk, sc, mem = res["train"], res["packing"], res["scorer"], res["memory"]
    ours, trl = tr["ours"], tr["trl"]
    print(f"train   ours {ours['tokens_per_s']:10.0f} tok/s (padding {ours['padding_fraction']:.1%})"
          f"   TRL {trl['tokens_per_s']:10.0f} tok/s (padding {trl['padding_fraction']:.1%})"
          f"   ratio {tr['ratio']:.2f}x   (attention {tr['attn']})")
    if tr["mfu"] is not None:
        print(f"train   MFU ours {tr['mfu']:.1%}, TRL {tr['trl_mfu']:.1%} "
              f"(6 N tok/s / {tr['peak_tflops']:.0f} TFLOP/s bf16 peak)")
    else:
        print("train   MFU n/a (" + ("CPU" if device == "cpu" else "GPU not in the peak table") + ")")
    for k, v in pk["kernels"].items():
        d = ", ".join(f"{lab} {x:.2e}" for lab, x in v["diffs"].items())
        print(f"packing {k} (runs {v['resolved']}): max |packed - padded| {d} (max |r| {v['scale']:.2f})")
    print(f"scorer  ours {sc['ours_pairs_per_s']:.1f} pairs/s vs naive {sc['naive_pairs_per_s']:.1f}"
          f" pairs/s: {sc['speedup']:.2f}x; max |reward diff| {sc['max_diff']:.2e} ({sc['dtype']})")
    proj = "n/a (rmselect.plan.memory not in this checkout)" if mem["projected_mb"] is None \
        else f"{mem['projected_mb']:.0f} MB"
    what = "torch.cuda.max_memory_allocated" if device == "cuda" else "max RSS"
    print(f"memory  {what} of the training step {mem['measured_mb']:.0f} MB; memory model {proj}")
    gpu = device == "cuda"
    checks = [
        ("train throughput ours/TRL >= 1.3x", tr["ratio"] >= 1.3) if gpu else
        ("train: both trainers ran (CPU; the 1.3x goal is for GPUs)", tr["ratio"] > 0),
        ("train MFU >= 40%", None if tr["mfu"] is None else tr["mfu"] >= 0.40),
        *[(f"packed == padded rewards ({k})", v["ok"]) for k, v in pk["kernels"].items()],
        ("scorer faster than the naive loop, same rewards", sc["ok"]) if gpu else
        ("scorer: same rewards as the naive loop (CPU; speed is judged on GPUs)", sc["ok"]),
        ("memory within the memory model's projection",
         None if mem["projected_mb"] is None or not gpu
         else mem["measured_mb"] <= mem["projected_mb"]),
    ]
    for name, ok in checks:
        print(f"{verdict(ok)}  {name}")
    print(f"[gpu_check] {res['wall_s']:.0f} s")
    if json_path:
        res["checks"] = {name: verdict(ok) for name, ok in checks}
        Path(json_path).write_text(json.dumps(res, indent=2, default=str) + "\n")
    return 1 if any(ok is False for _, ok in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
