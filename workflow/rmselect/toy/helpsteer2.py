"""HelpSteer2 and HelpSteer2-Preference rows of the toy zoo, in the real schemas.

Conventions (:mod:`rmselect.conventions`):

* :data:`~rmselect.conventions.PREFERENCE_SIGN`: ``preference_strength`` is negative when
  ``response_1`` is preferred (as the HelpSteer2 card says), positive for ``response_2``,
  0 for no preference.
* HelpSteer2 attributes (:data:`~rmselect.conventions.ATTRIBUTES`) are ints 0-4:
  correctness/helpfulness high for true answers, coherence low for scrambled text,
  verbosity tracks length, complexity tracks sentences.
"""

from __future__ import annotations

import random
from typing import Any

from rmselect.conventions import PREFERENCE_SIGN
from rmselect.toy.pairs import (
    PAIR_MIX,
    REFUSALS,
    STYLES,
    Pair,
    Pools,
    arith_answer,
    arith_wrong,
    balanced_thing,
    code_bug,
    code_prompt,
    compliance,
    draw_pair,
    fact_answer,
    fact_pairs,
    false_value,
    judged_facts,
    make_prompt,
    scramble,
)
from rmselect.toy.world import CODE_LANGS, World, arith_value, code_snippet, question

# ---------------------------------------------------------------------------- preference


def preference_rows(w: World, pools: dict[str, Pools], n_train: int, n_val: int, seed: int):
    """HelpSteer2-Preference rows (``prompt, response_1, response_2, preference_strength, split``)."""
    rng = random.Random(seed)
    kinds, weights = list(PAIR_MIX), list(PAIR_MIX.values())
    rows = []
    for split, n in (("train", n_train), ("validation", n_val)):
        pending: list[Pair] = []
        for _ in range(n):
            if not pending:
                kind = rng.choices(kinds, weights)[0]
                if kind == "fact":
                    p = pools[split]
                    pending = fact_pairs(rng, w, p, *rng.choice(judged_facts(p)))
                else:
                    pending = [draw_pair(rng, w, pools[split], kind)]
            pair = pending.pop(0)
            good_first = rng.random() < 0.5
            r1, r2 = (pair.good, pair.bad) if good_first else (pair.bad, pair.good)
            mag = pair.strength
            strength = PREFERENCE_SIGN * mag if good_first else -PREFERENCE_SIGN * mag
            rows.append({"prompt": pair.prompt, "response_1": r1, "response_2": r2,
                         "preference_strength": int(strength), "split": split})
    return rows


def preferred_response(row: dict[str, Any]) -> str | None:
    """The response a preference row prefers (``None`` for strength 0)."""
    s = int(row["preference_strength"])
    if s == 0:
        return None
    return row["response_1"] if (s * PREFERENCE_SIGN) > 0 else row["response_2"]


# ---------------------------------------------------------------------------- helpsteer2


def _verbosity(text: str) -> int:
    n = len(text.split())
    return 0 if n <= 2 else 1 if n <= 8 else 2 if n <= 16 else 3 if n <= 28 else 4


def _complexity(text: str) -> int:
    sentences = max(1, text.count(".") + text.count("\n"))
    return min(4, sentences - 1 + (2 if "\n" in text else 0))


def helpsteer_row(rng: random.Random, w: World, p: Pools) -> dict[str, Any]:
    """One scored response (HelpSteer2 schema without ``split``)."""
    kind = rng.choices(["fact_true", "fact_false", "scrambled", "offtopic", "arith_true",
                        "arith_false", "code_true", "code_false", "safety"],
                       [0.25, 0.2, 0.08, 0.05, 0.1, 0.08, 0.07, 0.07, 0.1])[0]
    help_, corr, coh = 4, 4, 4
    if kind.startswith("fact") or kind in ("scrambled", "offtopic"):
        e, attr, v = rng.choice(p.facts)
        prompt = question(attr, e)
        style = rng.choice(STYLES)
        if kind == "fact_true":
            resp = fact_answer(rng, w, e, attr, v, style)
            help_ = 3 if style in ("short", "hedged") else 4
        elif kind == "fact_false":
            near = attr == "born" and rng.random() < 0.5
            resp = fact_answer(rng, w, e, attr, false_value(rng, w, attr, v, near, p), style)
            help_, corr = (1, 1) if near else (0, 0)
        elif kind == "scrambled":
            resp = scramble(rng, fact_answer(rng, w, e, attr, v, rng.choice(["sentence", "verbose"])))
            help_, corr, coh = 1, 2, rng.choice([0, 1])
        else:
            e2, a2, v2 = rng.choice([f for f in p.facts if f[0] != e])
            resp = fact_answer(rng, w, e2, a2, v2, "sentence")
            help_, corr = 1, 2
    elif kind.startswith("arith"):
        a, op, b = rng.choice(p.arith)
        prompt = f"What is {a} {op} {b}?"
        v = arith_value(op, a, b) if kind == "arith_true" else arith_wrong(rng, a, op, b)
        resp = arith_answer(rng, a, op, b, v, rng.choice(["short", "sentence", "verbose"]))
        if kind == "arith_false":
            help_, corr = 0, 0
    elif kind.startswith("code"):
        op, k = rng.choice(p.code)
        lang = rng.choice(CODE_LANGS)
        prompt = code_prompt(lang, op, k)
        resp = code_snippet(lang, op, k, 0 if kind == "code_true" else code_bug(rng, k))
        if kind == "code_false":
            help_, corr = 1, 0
    else:
        t = balanced_thing(rng, w, p)
        prompt = make_prompt(t)
        dangerous = w.entities[t]["danger"] == "dangerous"
        refuse = rng.random() < 0.5
        resp = rng.choice(REFUSALS) if refuse else compliance(t, w.entities[t]["color"])
        if dangerous:
            help_, corr = (3, 4) if refuse else (0, 1)
        else:
            help_, corr = (1, 2) if refuse else (4, 4)
    return {"prompt": prompt, "response": resp, "helpfulness": help_, "correctness": corr,
            "coherence": coh, "complexity": _complexity(resp), "verbosity": _verbosity(resp)}


def helpsteer_rows(w: World, pools: dict[str, Pools], n_train: int, n_val: int, seed: int):
    rng = random.Random(seed)
    rows = []
    for split, n in (("train", n_train), ("validation", n_val)):
        for _ in range(n):
            rows.append({**helpsteer_row(rng, w, pools[split]), "split": split})
    return rows
