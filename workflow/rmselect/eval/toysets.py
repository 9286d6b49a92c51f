"""RewardBench-2- and RM-Bench-format toy sets derived from a RewardBench v1 set.

The toy zoo ships only a v1-format set (``results/toy/data/rewardbench.jsonl``). To run the
other two scorers end to end on the embedded default, ``workflow/scripts/eval_toy_sets.py``
derives (deterministically, no randomness) :

RewardBench 2 (best-of-4)
    Subsets map chat -> Focus, chat_hard -> Precise IF, safety -> Safety, math-prm -> Math,
    hep-* -> Factuality (a stand-in: v1 has no factuality data). Each v1 row keeps its
    chosen response; its rejected list is its own rejected response plus the rejected
    responses of the next two rows of the same v1 subset (cyclic, file order), i.e.
    responses to other prompts. Ties: the first ``n_ties`` chat rows give a reference prompt
    ``ref:<k>`` (one correct answer) and a tied prompt ``tied:<k>`` whose correct answers
    are the chosen response and two light rewrites of it.
RM-Bench (3 styles)
    Domains map chat / chat_hard -> chat, xstest-should-respond -> safety-response, the
    other safety subsets -> safety-refuse, math-prm -> math, hep-* -> code. Styles of a
    response ``r``: concise = ``r``; detailed = ``r`` plus an elaboration; markdown = the
    detailed text with a heading and a bullet.

These toy sets exercise the code paths; their numbers mean nothing about real RMs.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import polars as pl

from rmselect import cli
from rmselect.cli import opt
from rmselect.datasets_io import load_frame
from rmselect.eval.benchmarks import prepare
from rmselect.eval.benchmarks.rewardbench import CODE_PREFIX, MATH_SUBSET, RB1_SECTIONS, RewardBench
from rmselect.eval.benchmarks.rewardbench2 import RB2_TIES, RewardBench2
from rmselect.eval.benchmarks.rmbench import RMBench
from rmselect.io import write_jsonl

_SECTION_OF = {s: k for k, subs in RB1_SECTIONS.items() for s in subs}
RB2_MAP = {"chat": "Focus", "chat_hard": "Precise IF", "safety": "Safety"}


def _rb2_subset(v1: str) -> str:
    if v1 == MATH_SUBSET:
        return "Math"
    if v1.startswith(CODE_PREFIX):
        return "Factuality"
    return RB2_MAP[_SECTION_OF[v1]]


def _rmb_domain(v1: str) -> str:
    if v1 == MATH_SUBSET:
        return "math"
    if v1.startswith(CODE_PREFIX):
        return "code"
    if v1 == "xstest-should-respond":
        return "safety-response"
    sec = _SECTION_OF[v1]
    return "safety-refuse" if sec == "safety" else "chat"


def detailed(r: str) -> str:
    return f"{r}\n\nIn more detail: {r}"


def markdown(r: str) -> str:
    return f"## Answer\n\n- {detailed(r)}"


def derive_rewardbench2(v1: pl.DataFrame, n_ties: int = 10) -> list[dict[str, Any]]:
    """RewardBench-2-format rows from v1 rows (see module doc)."""
    rows: list[dict[str, Any]] = []
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in v1.iter_rows(named=True):
        groups.setdefault(r["subset"], []).append(r)
    for subset, grp in groups.items():
        n = len(grp)
        for i, r in enumerate(grp):
            others = [grp[(i + k) % n]["rejected"] for k in (1, 2) if n > k]
            rows.append(
                {
                    "id": f"rb2-{r['id']}",
                    "prompt": r["prompt"],
                    "chosen": [r["chosen"]],
                    "rejected": [r["rejected"], *others],
                    "subset": _rb2_subset(subset),
                }
            )
    chat = [r for r in v1.iter_rows(named=True) if _SECTION_OF.get(r["subset"]) == "chat"]
    for k, r in enumerate(chat[:n_ties]):
        negatives = [r["rejected"]] + [chat[(k + j) % len(chat)]["rejected"] for j in (1, 2) if len(chat) > j]
        base = {"prompt": r["prompt"], "rejected": negatives, "subset": RB2_TIES}
        rows.append({**base, "id": f"ref:{k}", "chosen": [r["chosen"]]})
        rows.append(
            {**base, "id": f"tied:{k}", "chosen": [r["chosen"], f"{r['chosen']} Indeed.", f"In short: {r['chosen']}"]}
        )
    return rows


def derive_rmbench(v1: pl.DataFrame) -> list[dict[str, Any]]:
    """RM-Bench-format rows from v1 rows (see module doc)."""
    return [
        {
            "id": f"rmb-{r['id']}",
            "prompt": r["prompt"],
            "chosen": [r["chosen"], detailed(r["chosen"]), markdown(r["chosen"])],
            "rejected": [r["rejected"], detailed(r["rejected"]), markdown(r["rejected"])],
            "domain": _rmb_domain(r["subset"]),
        }
        for r in v1.iter_rows(named=True)
    ]


#: Target format -> its derivation from v1 rows (``n_ties`` is RewardBench 2's only).
DERIVERS: dict[str, Callable[[pl.DataFrame, int], list[dict[str, Any]]]] = {
    RewardBench2.name: derive_rewardbench2,
    RMBench.name: lambda v1, n_ties: derive_rmbench(v1),
}


@dataclass(kw_only=True)
class ToySetsArgs:
    """Derive a RewardBench-2 or RM-Bench-format toy set from a RewardBench v1 set."""

    source: str = opt("v1 data-set entry as JSON ({\"path\": ...})")
    format: str = opt(choices=tuple(DERIVERS))
    n_ties: int = opt("Ties prompts (rewardbench2)", default=10)
    out: str = opt("output .jsonl")


def build_parser() -> argparse.ArgumentParser:
    return cli.build_parser(ToySetsArgs, prog="eval_toy_sets.py")


def main(argv: Sequence[str] | None = None) -> int:
    args = cli.parse(ToySetsArgs, argv, prog="eval_toy_sets.py")
    try:
        entry = json.loads(args.source)
        v1 = load_frame(entry)
        # validate the source as v1 data (names the file and subsets on error)
        prepare(RewardBench.name, v1, str(entry.get("path") or entry.get("hub")))
        if "id" not in v1.columns:
            v1 = v1.with_row_index("id")
        v1 = v1.with_columns(pl.col("id").cast(pl.Utf8))
        rows = DERIVERS[args.format](v1, args.n_ties)
        prepare(args.format, pl.DataFrame(rows, infer_schema_length=None), args.out)
    except (ValueError, OSError) as err:
        sys.stderr.write(f"rmselect eval: error: {err}\n")
        return 1
    write_jsonl(args.out, rows)
    sys.stderr.write(f"rmselect eval: wrote {len(rows)} {args.format} rows to {args.out}\n")
    return 0
