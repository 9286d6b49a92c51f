#!/usr/bin/env python
"""Successive halving vs the full LR grid on the toy study, in one run (issue 19, part 2).

Builds two copies of the workflow (like tests/pipeline.py) with the same study: a 5-rate
grid for every toy model and both objectives. ``full/`` trains every rate to the end
(``rm.lr_search.mode: full``); ``halving/`` reuses the toy zoo ``full/`` built (copied, times
kept) and runs the successive-halving DAG (rm_train_rung jobs and rm_halving checkpoints).
Both then select and score the chosen RMs on the toy RewardBench. Prints, per (objective,
model) and overall:

* ``ratio``: optimizer steps trained, halving / full (each run counts the step it stopped at);
* ``same``: how often both pick the same (LR, step) checkpoint;
* the RewardBench score loss (full - halving, points on 0-100): mean and worst.

Goal: ratio <= 0.50 with a mean score loss <= 1 point.

    .venv/bin/python bench/lr_search.py                       # every toy model (long)
    .venv/bin/python bench/lr_search.py --quick --models toyllama-2-s,toyqwen-1-s

``--quick``: the reduced study of tests/pipeline.py (fewer documents, 20 pre-training steps)
with 480 preference / 240 rated training rows, 20 RewardBench rows per subset and
evaluation every 5 steps.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(REPO / "tests"))

from pipeline import SNAKEMAKE, copy_workflow, reduced_config, write_model_table  # noqa: E402

GRID = [1.0e-4, 3.0e-4, 1.0e-3, 3.0e-3, 1.0e-2]
ALL_TOY = ("toyllama-1-s", "toyllama-2-s", "toyllama-2-m", "toyqwen-1-s", "toyqwen-1-m",
           "toyqwen-1-l", "toyneox-1-s", "toyneox-1-m", "toyqwen-2-m")


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", default=",".join(ALL_TOY), help="comma-separated toy models")
    p.add_argument("--workdir", default="bench_lr_search", help="where the two copies go")
    p.add_argument("--quick", action="store_true", help="the reduced study (see above)")
    p.add_argument("--eta", type=int, default=3)
    p.add_argument("--min-steps", type=int, default=None,
                   help="first-rung budget (default: eval_every)")
    p.add_argument("--eval-every", type=int, default=None, help="default 10 (quick: 5)")
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--seeds", default="1234",
                   help="comma-separated RM training seeds (rm.seeds); each (objective, model,"
                   " seed) is one comparison")
    p.add_argument("--json", default=None, help="also write the numbers here")
    p.add_argument("--compare-only", action="store_true",
                   help="do not run anything: compare the two copies already in --workdir")
    return p.parse_args(argv)


def seeds_of(args: argparse.Namespace) -> list[int]:
    return [int(x) for x in str(args.seeds).split(",") if x]


def study_config(args: argparse.Namespace, mode: str, models: list[str]) -> dict:
    base = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    if args.quick:
        cfg = reduced_config(base, "config/models_bench.tsv")
        cfg["toy"]["data"].update(preference_train=480, helpsteer2_train=240,
                                  rewardbench_per_subset=20)
        cfg["rm"]["max_train_examples"] = None
        cfg["rm"]["max_val_pairs"] = None
    else:
        cfg = base
        cfg["models"] = "config/models_bench.tsv"
    # only the chosen models exist: one size group, no variants or candidates
    cfg["size_groups"] = [{"name": "all", "min_b": 0.0, "max_b": 1000.0, "default": models[0]}]
    cfg.setdefault("posttrain", {})["variants"] = []
    cfg.setdefault("recommend", {})["candidates"] = []
    every = args.eval_every or (5 if args.quick else 10)
    rm = cfg["rm"]
    rm["lr_grid"] = {"bt": list(GRID), "regression": list(GRID)}
    rm.pop("lr_grid_by_model", None)
    rm["eval_every"] = every
    rm["lr_search"] = {"mode": mode, "eta": args.eta, "min_steps": args.min_steps or every}
    rm["seeds"] = seeds_of(args)
    ev = cfg["eval"]
    ev["benchmarks"] = {"rewardbench": ev["benchmarks"]["rewardbench"]}
    ev.pop("import", None)
    return cfg


def prepare(root: Path, args: argparse.Namespace, mode: str, models: list[str]) -> Path:
    wd = copy_workflow(root / mode)
    write_model_table(wd / "config" / "models_bench.tsv", tuple(models),
                      steps=20 if args.quick else None)
    (wd / "config" / "bench.yaml").write_text(
        yaml.safe_dump(study_config(args, mode, models), sort_keys=False))
    return wd


def snakemake(wd: Path, targets: list[str], cores: int, *extra: str) -> float:
    t0 = time.monotonic()
    cmd = [SNAKEMAKE, "--configfile", "config/bench.yaml", "--cores", str(cores), *extra,
           "--", *targets]
    out = subprocess.run(cmd, cwd=wd, capture_output=True, text=True,
                         env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-6000:])
        raise SystemExit(f"snakemake failed in {wd} (exit {out.returncode})")
    return time.monotonic() - t0


def last_step(path: Path) -> int:
    run = json.loads(path.read_text())
    return max(int(e["step"]) for e in run["evals"])


def compare(full: Path, halv: Path, models: list[str], seeds: list[int]) -> dict:
    from rmselect.rm.halving import read_decision

    rows = []
    for objective, m, seed in ((o, m, s) for o in ("bt", "regression") for m in models
                               for s in seeds):
        rm_dir = Path("results/rm") / objective / m / f"seed{seed}"
        f_runs = sorted((full / rm_dir).glob("lr*/run.json"))
        decisions = sorted((halv / rm_dir / "halving").glob("rung*.json"),
                           key=lambda p: int(p.stem[4:]))
        final = read_decision(decisions[-1])
        h_runs = [halv / p for p in final["runs"].values()]
        fs, hs = (json.loads((d / rm_dir / "selected.json").read_text())
                  for d in (full, halv))
        fe, he = (json.loads((d / "results/eval/rewardbench" / objective / m
                              / f"seed{seed}.json").read_text())["overall"]["score"]
                  for d in (full, halv))
        # every (LR, step) halving evaluated must equal the full grid's evaluation
        full_acc = {(r.parent.name, e["step"]): e["val_accuracy"] for r in f_runs
                    for e in json.loads(r.read_text())["evals"]}
        pairs = [(full_acc.get((p.parent.name, e["step"])), e["val_accuracy"])
                 for p in h_runs for e in json.loads(p.read_text())["evals"]]
        rows.append({
            "evals_halving": len(pairs), "evals_differing": sum(a != b for a, b in pairs),
            "objective": objective, "model": m, "seed": seed,
            "steps_full": sum(last_step(p) for p in f_runs),
            "steps_halving": sum(last_step(p) for p in h_runs),
            "rungs": len(decisions),
            "full_pick": [fs["lr"], fs["step"]], "halving_pick": [hs["lr"], hs["step"]],
            "same": (fs["lr"], fs["step"]) == (hs["lr"], hs["step"]),
            "score_full": fe, "score_halving": he, "loss": fe - he,
        })
    sf, sh = sum(r["steps_full"] for r in rows), sum(r["steps_halving"] for r in rows)
    losses = [r["loss"] for r in rows]
    return {"rows": rows, "ratio": sh / sf,
            "evals_halving": sum(r["evals_halving"] for r in rows),
            "evals_differing": sum(r["evals_differing"] for r in rows), "steps_full": sf, "steps_halving": sh,
            "same": sum(r["same"] for r in rows), "n": len(rows),
            "loss_mean": sum(losses) / len(losses), "loss_worst": max(losses)}


def main(argv=None) -> int:
    args = parse(argv)
    models = [m for m in args.models.split(",") if m]
    root = Path(args.workdir).resolve()
    full, halv = root / "full", root / "halving"
    t_full = t_halv = float("nan")
    if not args.compare_only:
        for mode in ("full", "halving"):
            shutil.rmtree(root / mode, ignore_errors=True)
        full, halv = (prepare(root, args, mode, models) for mode in ("full", "halving"))
        targets = [f"results/eval/rewardbench/{o}/{m}/seed{s}.json"
                   for o in ("bt", "regression") for m in models for s in seeds_of(args)]
        t_full = snakemake(full, targets, args.cores)
        shutil.copytree(full / "results" / "toy", halv / "results" / "toy")  # keeps times
        t_halv = snakemake(halv, targets, args.cores, "--rerun-triggers", "mtime")
    res = compare(full, halv, models, seeds_of(args))
    res.update(wall_full_s=t_full, wall_halving_s=t_halv, quick=args.quick, models=models,
               eta=args.eta)
    print(f"{'objective':<11}{'model':<14}{'steps full':>11}{'halving':>9}{'rungs':>6}  "
          f"{'full pick':<16}{'halving pick':<16}{'RB full':>8}{'halving':>8}")
    for r in res["rows"]:
        print(f"{r['objective']:<11}{r['model']:<14}{r['steps_full']:>11}{r['steps_halving']:>9}"
              f"{r['rungs']:>6}  {r['full_pick'][0]:g}@{r['full_pick'][1]:<9}"
              f"{r['halving_pick'][0]:g}@{r['halving_pick'][1]:<9}"
              f"{r['score_full']:>8.2f}{r['score_halving']:>8.2f}")
    print(f"ratio {res['ratio']:.3f}  (training steps, halving / full: "
          f"{res['steps_halving']} / {res['steps_full']})")
    print(f"same checkpoint {res['same']}/{res['n']}")
    print(f"evaluations identical to the full grid's: "
          f"{res['evals_halving'] - res['evals_differing']}/{res['evals_halving']}")
    print(f"score loss mean {res['loss_mean']:.2f} worst {res['loss_worst']:.2f} "
          "(RewardBench points, full - halving)")
    print(f"wall: full {t_full:.0f} s (incl. toy zoo), halving {t_halv:.0f} s")
    ok = res["ratio"] <= 0.5 and res["loss_mean"] <= 1.0
    print(f"goal (ratio <= 0.50, mean loss <= 1 point): {'met' if ok else 'NOT met'}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
