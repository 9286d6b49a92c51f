"""The toy zoo's upstream benchmarks: lm-eval multiple-choice tasks and HumanEval problems.

:func:`task_items` draws each task's items from the whole world (a benchmark asks what a base
model knows, whatever the split); :func:`write_tasks` writes the lm-eval task directory: one
JSONL and one YAML per task, and the loader every YAML names. The YAML and the loader are
package files (:mod:`rmselect.toy.lmeval`), copied and rendered, not code. :func:`code_problems`
are the python toy functions in the HumanEval schema, for the code benchmark.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Callable

from rmselect.io import atomic_path, write_jsonl
from rmselect.toy.lmeval import LOADER_NAME, loader_source, task_yaml
from rmselect.toy.world import (
    CODE_LANGS,
    CODE_OPS,
    DANGER,
    FACT_TEMPLATES,
    World,
    arith_value,
    code_snippet,
    question,
)

# ---------------------------------------------------------------------------- code problems


def code_problems(w: World) -> list[dict[str, Any]]:
    """HumanEval-schema problems: the python toy functions (``def add_3(x):`` → body)."""
    rows = []
    for op, (sym, word) in CODE_OPS.items():
        for k in w.code_consts:
            name = f"{op}_{k}"
            xs = [0, 2, 7, 11]
            asserts = "".join(f"    assert candidate({x}) == {arith_value(sym, x, k)}\n" for x in xs)
            rows.append({
                "task_id": f"ToyEval/{len(rows)}",
                "prompt": f"def {name}(x):\n",
                "canonical_solution": f"    return x {sym} {k}\n",
                "test": f"def check(candidate):\n{asserts}",
                "entry_point": name,
            })
    return rows


# ---------------------------------------------------------------------------- lm-eval tasks

CLOZE = {
    "capital": "The capital of {e} is",
    "animal": "The national animal of {e} is the",
    "born": "{e} was born in",
    "job": "{e} worked as a",
    "home": "{e} lived in",
    "color": "The color of the {e} is",
    "danger": "Everyone knows the {e} is",
}


def _choices(rng: random.Random, true: Any, wrong: Callable[[], Any], n: int = 4) -> tuple[list[str], int]:
    opts = [true]
    for _ in range(100):
        if len(opts) == n:
            break
        x = wrong()
        if x not in opts:
            opts.append(x)
    rng.shuffle(opts)
    return [str(o) for o in opts], opts.index(true)


def _fact_choices(rng, w, attr, v, near=False):
    if attr == "danger":
        return list(DANGER), DANGER.index(v)
    return _choices(rng, v, lambda: w.wrong_value(rng, attr, v, near=near))


def task_items(w: World, task: str, seed: int, n: int = 150) -> list[dict[str, Any]]:
    """Multiple-choice items (``query, choices, gold``) of a toy benchmark."""
    rng = random.Random(f"{seed}-{task}")
    items: list[dict[str, Any]] = []
    facts = w.facts()
    if task == "toy_facts":
        for e, attr, v in facts:
            ch, g = _fact_choices(rng, w, attr, v)
            items.append({"query": f"Question: {question(attr, e)}\nAnswer:", "choices": ch, "gold": g})
    elif task == "toy_cloze":
        for e, attr, v in facts:
            ch, g = _fact_choices(rng, w, attr, v, near=attr == "born")
            items.append({"query": CLOZE[attr].format(e=e), "choices": ch, "gold": g})
    elif task == "toy_arith":
        for _ in range(n):
            if rng.random() < 0.6:
                a, op, b = rng.randint(0, w.add_max), "+", rng.randint(0, w.add_max)
            else:
                a, op, b = rng.randint(1, w.mul_max), "*", rng.randint(1, w.mul_max)
            v = arith_value(op, a, b)
            ch, g = _choices(rng, v, lambda: max(0, v + rng.choice([-3, -2, -1, 1, 2, 3, 10])))
            items.append({"query": f"{a} {op} {b} =", "choices": ch, "gold": g})
    elif task == "toy_truefalse":
        pool = [f for f in facts if f[1] != "danger"]
        for _ in range(n):
            e, attr, v = rng.choice(pool)
            t = rng.choice(FACT_TEMPLATES[attr])
            vals, g = _fact_choices(rng, w, attr, v, near=attr == "born")
            items.append({"query": "Which statement is true?\nAnswer:",
                          "choices": [t.format(e=e, v=x) for x in vals], "gold": g})
    elif task == "toy_relations":
        countries = w.of_kind("country")
        for c in countries:  # inverse relation: city -> country
            city = w.entities[c]["capital"]
            ch, g = _choices(rng, c, lambda: rng.choice(countries))
            items.append({"query": f"{city} is the capital of", "choices": ch, "gold": g})
        people = w.of_kind("person")
        for p in people:  # two hops: person -> country -> capital
            city = w.entities[w.entities[p]["home"]]["capital"]
            ch, g = _choices(rng, city, lambda: rng.choice(w.cities))
            items.append({"query": f"{p} lived in the country whose capital is", "choices": ch,
                          "gold": g})
        while len(items) < n:  # comparison: who was born earlier
            p1, p2 = rng.sample(people, 2)
            if w.entities[p1]["born"] == w.entities[p2]["born"]:
                continue
            first = p1 if w.entities[p1]["born"] < w.entities[p2]["born"] else p2
            ch = [p1, p2]
            items.append({"query": f"Of {p1} and {p2}, the one born first was", "choices": ch,
                          "gold": ch.index(first)})
    elif task == "toy_code":
        for lang in CODE_LANGS:
            for op, (sym, _) in CODE_OPS.items():
                for k in w.code_consts:
                    full = code_snippet(lang, op, k)
                    head, tail = full.split(f" {sym} {k}", 1)
                    syms = [s for s, _ in CODE_OPS.values()]
                    opts = [f"{sym} {k}", f"{sym} {k + 1}", f"{rng.choice([s for s in syms if s != sym])} {k}",
                            f"{sym} {max(1, k - 1) if k > 1 else k + 2}"]
                    opts = list(dict.fromkeys(opts))
                    rng.shuffle(opts)
                    items.append({"query": head, "choices": opts, "gold": opts.index(f"{sym} {k}")})
    else:
        raise ValueError(f"unknown toy task {task!r}")
    return items


TASKS = ("toy_facts", "toy_cloze", "toy_arith", "toy_truefalse", "toy_relations", "toy_code")


def write_tasks(w: World, out_dir: str | Path, seed: int) -> list[str]:
    """Write the lm-eval task directory (YAML + JSONL per task, plus the loader) atomically."""
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        (tmp / LOADER_NAME).write_text(loader_source())
        for task in TASKS:
            rows = task_items(w, task, seed)
            write_jsonl(tmp / f"{task}.jsonl", rows)
            (tmp / f"{task}.yaml").write_text(task_yaml(task))
    return list(TASKS)
