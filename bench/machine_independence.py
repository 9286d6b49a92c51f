#!/usr/bin/env python
"""Does the toy zoo's "more compute -> lower held-out loss" hold under other numerics?

Pre-trains toy models of ``config/models_toy.tsv`` (all rows, or ``--models``) on the built
toy corpus and tokenizer (``snakemake --cores 1 results/toy/tokenizer`` first) under several
numerical set-ups, each in its own process because the set-up must be fixed before torch
is imported:

``native``   this CPU's best kernels (``torch.backends.cpu.get_cpu_capability()``)
``avx2``     ``ATEN_CPU_CAPABILITY=avx2``: the vectorised kernels of an older CPU, i.e. a
             different reduction order in every matmul/softmax/norm -- what "another machine"
             changes
``nomkldnn`` ``torch.backends.mkldnn.enabled = False`` and two intra-op threads requested
             (pre-training pins one thread itself, see ``rmselect.toy.models.deterministic``)

For each set-up it prints every model's held-out loss, checks the family ordering with the
margin the real-build test asserts (``tests/test_toy_build.py``: more params x tokens ->
held-out loss lower by at least ``MARGIN``), and prints how far each loss moved from the
``native`` run. Exit status 1 if an ordering fails under any set-up.

    .venv/bin/python bench/machine_independence.py                     # whole zoo, ~3 min
    .venv/bin/python bench/machine_independence.py --models toyllama-2-s,toyllama-2-m
    .venv/bin/python bench/machine_independence.py --rm --setups native,avx2   # + RM training

``--rm`` also trains one BT reward model per set-up from the weak and the strong base model
of the signal test (``toyllama-1-s``, 80 steps; ``toyllama-2-s``, 360; built under
``--root``/models) with the default recipe (workflow/scripts/train_rm.py: 2,400 toy pairs,
lr 1e-3, batch 16, one epoch), selects its checkpoint as rm_select does (best validation accuracy), scores it on RewardBench's eight fact
subsets (eval-split entities, ``rmselect.toy.rewardbench.JUDGED_SUBSETS``) and checks the property
tests/test_rm_signal.py asserts: the strong base model's RM wins on those pairs. It prints how
far the validation and fact accuracies moved from ``native``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))

SETUPS = {
    "native": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "nomkldnn": {"RMSELECT_BENCH_NOMKLDNN": "1", "OMP_NUM_THREADS": "2"},
}
#: The margin (nats/token) tests/test_toy_build.py asserts between neighbours of a family.
MARGIN = 0.02


def _worker(name: str, spec: str, root: Path, seed: int) -> dict:
    import torch

    if os.environ.get("RMSELECT_BENCH_NOMKLDNN"):
        torch.backends.mkldnn.enabled = False
    from rmselect.config import parse_toy_spec
    from rmselect.toy.models import pretrain

    with tempfile.TemporaryDirectory() as d:
        r = pretrain(name, parse_toy_spec(spec), root / "tokenizer", root / "corpus/train.txt",
                     root / "corpus/heldout.txt", Path(d) / "m", seed, log=lambda *_: None)
    return {"model": name, "params": r["params"], "tokens": r["tokens"],
            "heldout_loss": r["heldout_loss"], "wall_s": r["wall_s"],
            "capability": torch.backends.cpu.get_cpu_capability()}


RM_PAIR = ("toyllama-1-s", "toyllama-2-s")


def _rm_worker(model: str, root: Path, seed: int) -> dict:
    """Train one BT RM with the default recipe and score it on RewardBench's fact pairs."""
    import torch

    if os.environ.get("RMSELECT_BENCH_NOMKLDNN"):
        torch.backends.mkldnn.enabled = False
    import numpy as np
    import polars as pl

    from rmselect.eval.scorer import load_reward_model, render_texts, score_texts
    from rmselect.toy.rewardbench import JUDGED_SUBSETS

    data = json.dumps({"path": str(root / "data/helpsteer2_preference.jsonl")})
    with tempfile.TemporaryDirectory() as d:
        cmd = [sys.executable, str(REPO / "workflow/scripts/train_rm.py"),
               "--model", str(root / "models" / model), "--objective", "bt", "--lr", "1e-3",
               "--train-data", data, "--val-data", data, "--global-batch", "16",
               "--micro-batch", "16", "--epochs", "1", "--warmup-steps", "2",
               "--eval-every", "50", "--max-length", "256", "--seed", str(seed),
               "--out", str(Path(d) / "run"), "--threads", "1"]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        run = json.loads((Path(d) / "run/run.json").read_text())
        # the pipeline's BT selection: best validation accuracy, ties to the earlier step
        last = max(run["evals"], key=lambda e: (e["val_accuracy"], -e["step"]))
        rm = load_reward_model(last["checkpoint"], dtype="float32", max_length=256)
        rb = pl.read_ndjson(root / "data/rewardbench.jsonl")
        facts = rb.filter(pl.col("subset").is_in(list(JUDGED_SUBSETS)))
        prompts = facts["prompt"].to_list()
        ch = score_texts(rm, render_texts(rm, prompts, facts["chosen"].to_list()), progress=False)
        rj = score_texts(rm, render_texts(rm, prompts, facts["rejected"].to_list()), progress=False)
        acc = float(np.mean(ch.rewards > rj.rewards))
    return {"model": model, "val_accuracy": last["val_accuracy"], "fact_accuracy": acc,
            "fact_pairs": facts.height, "capability": torch.backends.cpu.get_cpu_capability()}


def _rows(models: list[str] | None) -> list[dict]:
    with (REPO / "config/models_toy.tsv").open() as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["source"].startswith("toy:")]
    return [r for r in rows if not models or r["name"] in models]


def check_order(recs: list[dict], families: dict[str, str], margin: float = MARGIN) -> list[str]:
    """Failures of "more params x tokens -> held-out loss lower by >= margin" per family."""
    fams: dict[str, list] = {}
    for r in recs:
        fams.setdefault(families[r["model"]], []).append(r)
    bad = []
    for fam, ms in fams.items():
        ms.sort(key=lambda r: r["params"] * r["tokens"])
        for a, b in zip(ms, ms[1:]):
            if not a["heldout_loss"] - b["heldout_loss"] >= margin:
                bad.append(f"{fam}: {a['model']} {a['heldout_loss']:.4f} vs "
                           f"{b['model']} {b['heldout_loss']:.4f} (more compute)")
    return bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--models", help="comma-separated model names (default: every toy row)")
    ap.add_argument("--setups", default=",".join(SETUPS), help=f"of {', '.join(SETUPS)}")
    ap.add_argument("--root", default=str(REPO / "results/toy"), help="built toy dir")
    ap.add_argument("--seed", type=int, default=1234, help="toy.seed")
    ap.add_argument("--rm", action="store_true",
                    help=f"also train and score a BT RM of {' and '.join(RM_PAIR)} per set-up")
    ap.add_argument("--rm-only", action="store_true", help="only the RM part")
    ap.add_argument("--rm-seed", type=int, default=1234, help="RM training seed")
    ap.add_argument("--worker", nargs=2, metavar=("NAME", "SPEC"), help=argparse.SUPPRESS)
    ap.add_argument("--rm-worker", metavar="NAME", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    root = Path(a.root)
    if a.rm_worker:
        print(json.dumps(_rm_worker(a.rm_worker, root, a.rm_seed)))
        return 0
    if a.worker:
        print(json.dumps(_worker(a.worker[0], a.worker[1], root, a.seed)))
        return 0
    if not (root / "tokenizer/tokenizer.json").exists():
        print(f"bench: {root}/tokenizer is missing; run "
              "`.venv/bin/snakemake --cores 1 results/toy/tokenizer` first", file=sys.stderr)
        return 2
    rows = [] if a.rm_only else _rows(a.models.split(",") if a.models else None)
    families = {r["name"]: r["family"] for r in rows}
    results: dict[str, list[dict]] = {}
    for setup in a.setups.split(","):
        env = {**os.environ, "OMP_NUM_THREADS": "1", **SETUPS[setup]}
        env["PYTHONPATH"] = str(REPO / "workflow")
        results[setup] = []
        for r in rows:
            out = subprocess.run(
                [sys.executable, __file__, "--root", str(root), "--seed", str(a.seed),
                 "--worker", r["name"], r["source"]],
                env=env, capture_output=True, text=True, check=True)
            rec = json.loads(out.stdout.strip().splitlines()[-1])
            results[setup].append(rec)
            print(f"{setup:9s} {rec['capability']:8s} {rec['model']:14s} "
                  f"held-out {rec['heldout_loss']:.4f}  {rec['wall_s']:6.1f} s", flush=True)
    failed = False
    if a.rm or a.rm_only:
        failed |= rm_part(a, root)
    base = {r["model"]: r["heldout_loss"] for r in results.get("native", [])}
    for setup, recs in results.items():
        bad = check_order(recs, families)
        failed |= bool(bad)
        moved = [abs(r["heldout_loss"] - base[r["model"]]) for r in recs if r["model"] in base]
        print(f"{setup}: ordering {'FAILS: ' + '; '.join(bad) if bad else f'holds (margin {MARGIN})'}"
              + (f"; max |loss - native| {max(moved):.2e}" if moved and setup != "native" else ""))
    return 1 if failed else 0


def rm_part(a: argparse.Namespace, root: Path) -> bool:
    """Train and score the RM pair under every set-up; True if the property fails anywhere."""
    if not all((root / "models" / m / "config.json").exists() for m in RM_PAIR):
        print(f"bench: {root}/models lacks {RM_PAIR}; run `.venv/bin/snakemake --cores 2 toy`",
              file=sys.stderr)
        return True
    recs: dict[str, dict[str, dict]] = {}
    for setup in a.setups.split(","):
        env = {**os.environ, "OMP_NUM_THREADS": "1", **SETUPS[setup]}
        env["PYTHONPATH"] = str(REPO / "workflow")
        recs[setup] = {}
        for m in RM_PAIR:
            out = subprocess.run([sys.executable, __file__, "--root", str(root), "--rm-seed",
                                  str(a.rm_seed), "--rm-worker", m],
                                 env=env, capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            recs[setup][m] = r
            print(f"{setup:9s} {r['capability']:8s} RM of {m:14s} validation "
                  f"{r['val_accuracy']:.3f}  fact pairs {r['fact_accuracy']:.3f} "
                  f"(n={r['fact_pairs']})", flush=True)
    failed = False
    weak, strong = RM_PAIR
    for setup, by in recs.items():
        gap = by[strong]["fact_accuracy"] - by[weak]["fact_accuracy"]
        ok = gap > 0
        failed |= not ok
        moved = ""
        if setup != "native" and "native" in recs:
            dv = max(abs(by[m]["val_accuracy"] - recs["native"][m]["val_accuracy"]) for m in RM_PAIR)
            df = max(abs(by[m]["fact_accuracy"] - recs["native"][m]["fact_accuracy"]) for m in RM_PAIR)
            moved = f"; max |change| vs native: validation {dv:.3f}, fact pairs {df:.3f}"
        print(f"{setup}: RM property (strong base model's RM wins on fact pairs) "
              f"{'holds' if ok else 'FAILS'}: gap {gap:+.3f}{moved}")
    return failed


if __name__ == "__main__":
    sys.exit(main())
