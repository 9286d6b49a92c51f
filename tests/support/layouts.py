"""Small files in the exact published layouts of the study's data sets (../DATA_LAYOUTS).

:func:`write_layouts` writes, under ``root``, a few deterministic rows of each data set with
the hub's file names, split names, column names and types, and returns config entries
that read them through ``datasets.load_dataset`` (``{hub: <local dir>, data_files: ...}``),
the same code path as the hub ids in ``config/paper.yaml``:

* ``nvidia/HelpSteer2``: ``train.jsonl.gz`` and ``validation.jsonl.gz`` (no split column;
  ``prompt, response`` and five integer attributes 0-4), multi-turn prompts with the inline
  ``<extra_id_1>Assistant`` / ``<extra_id_1>User`` markers;
  ``preference/preference.jsonl.gz`` (HelpSteer2-Preference): one file whose ``split``
  column holds ``train`` and ``val``, ``preference_strength`` -3..3 (negative: response_1
  better) and the card's extra columns.
* ``allenai/reward-bench``: ``data/filtered-00000-of-00001.parquet`` (split ``filtered``).
* ``allenai/reward-bench-2``: ``data/test-00000-of-00001.parquet`` (split ``test``), list
  columns, a Ties subset with ``ref:<n>`` / ``tied:<n>`` ids.
* ``THU-KEG/RM-Bench``: ``total_dataset.json`` (split ``train``), three chosen and three
  rejected responses per row and a ``domain`` column.

:data:`COUNTS` gives the rows each loader must find.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import Any

ATTRS = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
#: Per data set: rows written, and what the pipeline's loaders make of them.
COUNTS: dict[str, int] = {
    "helpsteer2_train": 24,
    "helpsteer2_validation": 6,
    "preference_train": 20,  # of which 4 ties (strength 0)
    "preference_val": 8,  # of which 2 ties
    "preference_ties_train": 4,
    "preference_ties_val": 2,
    "rewardbench_subsets": 23,  # one row per v1 subset
    "rewardbench2_rows": 5 * 2 + 3,  # 2 rows per non-Ties subset, 3 Ties rows
    "rmbench_rows": 5 * 2,  # 2 rows per domain
}

MULTI_TURN = (
    "What is the capital of France?\n<extra_id_1>Assistant\nThe capital of France is Paris."
    "\n<extra_id_1>User\nAnd how many people live there?"
)


def _prompt(rng: random.Random, i: int) -> str:
    """Every third prompt is a two-turn conversation in HelpSteer2's inline form."""
    if i % 3 == 0:
        return MULTI_TURN.replace("France", ["France", "Italy", "Spain"][i % 9 // 3])
    return f"Question {i}: tell me about topic {rng.randint(0, 99)}."


def _write_jsonl_gz(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)


def _write_parquet(path: Path, rows: list[dict[str, Any]]) -> None:
    import polars as pl

    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(rows, infer_schema_length=None).write_parquet(path)


def helpsteer2_rows(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        row: dict[str, Any] = {"prompt": _prompt(rng, i), "response": f"Answer {i}: it is so."}
        row.update({a: rng.randint(0, 4) for a in ATTRS})
        rows.append(row)
    return rows


def preference_rows(split: str, n: int, ties: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        s = 0 if i < ties else rng.choice([-3, -2, -1, 1, 2, 3])
        rows.append({
            "split": split,
            "prompt": _prompt(rng, i),
            "response_1": f"First answer {i}.",
            "response_2": f"Second answer {i}.",
            "preference_strength": s,
            "preference_statement": f"@Response {1 if s < 0 else 2} is better.",
            "preference_elaboration": "It answers the question directly.",
            "three_most_similar_preferences": [
                {"statement": "@Response 1 is better.", "elaboration": "Clearer.", "strength": -1}
            ] * 3,
            "all_preferences_unprocessed": [-1, -2, 1],
        })
    return rows


def rewardbench_rows() -> list[dict[str, Any]]:
    from rmselect.eval.benchmarks.rewardbench import RB1_SECTIONS

    subsets = [s for subs in RB1_SECTIONS.values() for s in subs]
    return [{"prompt": f"Prompt {i} ({s})", "chosen": f"good answer {i}", "chosen_model": "gpt-4",
             "rejected": f"bad answer {i}", "rejected_model": "llama-2-7b-chat", "subset": s,
             "id": i} for i, s in enumerate(subsets)]


def rewardbench2_rows() -> list[dict[str, Any]]:
    rows = []
    for subset in ("Factuality", "Precise IF", "Math", "Safety", "Focus"):
        for k in range(2):
            rows.append({"id": str(len(rows)), "prompt": f"{subset} prompt {k}",
                         "chosen": [f"right {k}"],
                         "rejected": [f"wrong {k}.{j}" for j in range(3)],
                         "num_correct": 1, "num_rejected": 3, "total_completions": 4,
                         "models": ["model-a", "model-b", "model-c", "model-d"],
                         "subset": subset})
    ties = [("ref:0", 1, 3), ("tied:0", 3, 4), ("tied:1", 2, 5)]
    for tid, n_ok, n_bad in ties:
        rows.append({"id": tid, "prompt": f"Name a prime ({tid})",
                     "chosen": [f"{p}" for p in (2, 3, 5, 7)[:n_ok]],
                     "rejected": [f"{c}" for c in (4, 6, 8, 9, 10)[:n_bad]],
                     "num_correct": n_ok, "num_rejected": n_bad,
                     "total_completions": n_ok + n_bad,
                     "models": ["model-a"] * (n_ok + n_bad), "subset": "Ties"})
    return rows


def rmbench_rows() -> list[dict[str, Any]]:
    rows = []
    for domain in ("chat", "code", "math", "safety-refuse", "safety-response"):
        for k in range(2):
            rows.append({"id": f"{domain}/{k}", "prompt": f"{domain} prompt {k}",
                         "chosen": [f"ok {k} concise", f"ok {k} detailed", f"**ok** {k}"],
                         "rejected": [f"no {k} concise", f"no {k} detailed", f"**no** {k}"],
                         "domain": domain})
    return rows


def write_layouts(root: Path) -> dict[str, Any]:
    """Write every layout under ``root``; return ``{"data": {...}, "eval": {"benchmarks": ...}}``.

    The entries name local folders as ``hub`` so that ``datasets.load_dataset`` reads them
    exactly as it reads the hub copies (``data_files`` relative to the folder).
    """
    root = Path(root)
    hs2 = root / "nvidia" / "HelpSteer2"
    _write_jsonl_gz(hs2 / "train.jsonl.gz", helpsteer2_rows(COUNTS["helpsteer2_train"], 1))
    _write_jsonl_gz(hs2 / "validation.jsonl.gz",
                    helpsteer2_rows(COUNTS["helpsteer2_validation"], 2))
    pref = (preference_rows("train", COUNTS["preference_train"], COUNTS["preference_ties_train"], 3)
            + preference_rows("val", COUNTS["preference_val"], COUNTS["preference_ties_val"], 4))
    _write_jsonl_gz(hs2 / "preference" / "preference.jsonl.gz", pref)
    rb = root / "allenai" / "reward-bench"
    _write_parquet(rb / "data" / "filtered-00000-of-00001.parquet", rewardbench_rows())
    rb2 = root / "allenai" / "reward-bench-2"
    _write_parquet(rb2 / "data" / "test-00000-of-00001.parquet", rewardbench2_rows())
    rmb = root / "THU-KEG" / "RM-Bench"
    rmb.mkdir(parents=True, exist_ok=True)
    (rmb / "total_dataset.json").write_text(json.dumps(rmbench_rows()))
    return {
        "data": {
            "helpsteer2": {"hub": str(hs2), "data_files": {
                "train": "train.jsonl.gz", "validation": "validation.jsonl.gz"}},
            "helpsteer2_preference": {"hub": str(hs2),
                                      "data_files": "preference/preference.jsonl.gz"},
        },
        "eval": {"benchmarks": {
            "rewardbench": {"hub": str(rb), "split": "filtered",
                            "data_files": {"filtered": "data/filtered-*.parquet"}},
            "rewardbench2": {"hub": str(rb2), "split": "test",
                             "data_files": {"test": "data/test-*.parquet"}},
            "rmbench": {"hub": str(rmb), "split": "train", "data_files": "total_dataset.json"},
        }},
    }
