"""The toy zoo's data stage: which files it writes, with which sizes, from one world.

:func:`write_data` is what ``workflow/scripts/toy_data.py`` (rule ``toy_data``) runs: every
data set in the real schemas, the presence domain corpora and the lm-eval task directory, each
drawn with its own seed offset from ``toy.seed``. What each file holds is built elsewhere,
one module per kind (the design of the pairs is in :mod:`rmselect.toy.pairs`):

* :mod:`rmselect.toy.helpsteer2`: HelpSteer2 and HelpSteer2-Preference rows;
* :mod:`rmselect.toy.rewardbench`: the RewardBench v1 set;
* :mod:`rmselect.toy.posttrain_data`: SFT and DPO rows;
* :mod:`rmselect.toy.tasks`: the lm-eval tasks and the HumanEval-schema code problems.

The rule file imports :data:`DATA_FILES` and :data:`DOMAINS` from here to name the outputs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from rmselect import cli
from rmselect.cli import opt
from rmselect.io import write_jsonl
from rmselect.toy.helpsteer2 import helpsteer_rows, preference_rows
from rmselect.toy.pairs import split_pools
from rmselect.toy.posttrain_data import dpo_rows, sft_rows
from rmselect.toy.rewardbench import rewardbench_rows
from rmselect.toy.tasks import code_problems, write_tasks
from rmselect.toy.world import World, make_document

#: Presence domains: ``fables`` never occurs in the pre-training corpus, ``dialogue`` rarely.
DOMAINS = ("facts", "arithmetic", "code", "dialogue", "fables")


def domain_rows(w: World, domain: str, n: int, seed: int) -> list[dict[str, str]]:
    """``n`` documents of one presence domain, seeded by the domain (corpus form, world.py)."""
    rng = random.Random(f"{seed}-{domain}")
    return [{"text": make_document(rng, w, domain)} for _ in range(n)]


#: Default data sizes (``toy.data`` in the config overrides them).
DATA_DEFAULTS = {
    "preference_train": 640,
    "preference_validation": 160,
    "helpsteer2_train": 600,
    "helpsteer2_validation": 150,
    "rewardbench_per_subset": 15,
    "sft": 400,
    "dpo": 300,
    "domain_docs": 64,
}
DATA_FILES = ("helpsteer2", "helpsteer2_preference", "rewardbench", "sft", "dpo", "code_problems")


def write_data(w: World, seed: int, data_dir: str | Path, tasks_dir: str | Path,
               domains_dir: str | Path, sizes: dict[str, int] | None = None) -> dict[str, int]:
    """Write every toy data file; returns row counts per file."""
    n = {**DATA_DEFAULTS, **(sizes or {})}
    pools = split_pools(w, seed)
    tables = {
        "helpsteer2": helpsteer_rows(w, pools, n["helpsteer2_train"], n["helpsteer2_validation"],
                                     seed + 11),
        "helpsteer2_preference": preference_rows(w, pools, n["preference_train"],
                                                 n["preference_validation"], seed + 12),
        "rewardbench": rewardbench_rows(w, pools, n["rewardbench_per_subset"], seed + 13),
        "sft": sft_rows(w, pools, n["sft"], seed + 14),
        "dpo": dpo_rows(w, pools, n["dpo"], seed + 15),
        "code_problems": code_problems(w),
    }
    counts = {}
    for name, rows in tables.items():
        write_jsonl(Path(data_dir) / f"{name}.jsonl", rows)
        counts[name] = len(rows)
    for d in DOMAINS:
        write_jsonl(Path(domains_dir) / f"{d}.jsonl", domain_rows(w, d, n["domain_docs"], seed + 16))
    write_tasks(w, tasks_dir, seed + 17)
    return counts


@dataclass(kw_only=True)
class DataArgs:
    """Write the toy zoo's data in the real schemas (HelpSteer2, HelpSteer2-Preference,
    RewardBench, SFT, DPO, HumanEval-style code problems), the presence domain corpora and the
    lm-eval task directory, all drawn from world.json."""

    world: str = opt("world.json")
    seed: int = opt("toy.seed")
    sizes: dict = opt("JSON object overriding " + ", ".join(DATA_DEFAULTS), default={}, json=True)
    data_dir: str = opt()
    tasks_dir: str = opt()
    domains_dir: str = opt()


def main(argv: list[str] | None = None) -> int:
    return cli.run(DataArgs, run_data, argv, prog="toy_data.py")


def run_data(a: DataArgs) -> int:
    import json

    from rmselect.toy.world import load_world

    sizes = a.sizes
    unknown = sorted(set(sizes) - set(DATA_DEFAULTS))
    if unknown:
        raise SystemExit(f"toy_data.py: --sizes (config toy.data): unknown key(s) {unknown}; "
                         f"allowed: {sorted(DATA_DEFAULTS)}")
    counts = write_data(load_world(a.world), a.seed, a.data_dir, a.tasks_dir, a.domains_dir, sizes)
    print("toy data rows:", json.dumps(counts))
    return 0
