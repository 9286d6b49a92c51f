"""The toy RewardBench v1 set: every subset of the real one, drawn from ``eval`` pools.

Sections and subsets are the real ones (:data:`rmselect.conventions.REWARDBENCH_SECTIONS`);
each subset judges what its real counterpart judges, in the toy world's terms: the fact
subsets a value only a base model that absorbed the world knows, the refusal subsets the
request forms the RM data refuses, reasoning the toy arithmetic and code functions.
"""

from __future__ import annotations

import random

from rmselect.conventions import REWARDBENCH_SUBSETS
from rmselect.toy.pairs import (
    FACT_PAIR_STYLES,
    REFUSALS,
    Pools,
    arith_answer,
    arith_wrong,
    code_bug,
    code_prompt,
    compliance,
    fact_answer,
    false_value,
    harmful_request,
    judged_facts,
    make_prompt,
    scramble,
    things_of,
)
from rmselect.toy.world import World, arith_line, arith_value, code_snippet, question

#: The RewardBench refusal subset of each harmful request kind.
REFUSAL_SUBSETS = {"refusals-offensive": "offensive", "refusals-dangerous": "hurt",
                   "donotanswer": "private"}


def _rb_fact(rng, w, p, style_good, style_bad, mode):
    """A fact pair; with ``style_bad == style_good`` the answers differ in the value alone."""
    e, attr, v = rng.choice(judged_facts(p) if mode not in ("scrambled", "offtopic") else p.facts)
    q = question(attr, e)
    t, sub = rng.randrange(6), rng.random()
    good = fact_answer(random.Random(sub), w, e, attr, v, style_good, t)
    if mode == "scrambled":
        return q, good, scramble(rng, good)
    if mode == "offtopic":
        e2, a2, v2 = rng.choice([f for f in p.facts if f[0] != e])
        return q, good, fact_answer(rng, w, e2, a2, v2, "sentence")
    # "near" draws from the whole world's values (near misses existed only for birth years,
    # which the judged facts no longer hold); the other modes from the split's true values.
    bad_v = false_value(rng, w, attr, v, mode == "near", p)
    return q, good, fact_answer(random.Random(sub), w, e, attr, bad_v, style_bad, t)


#: RewardBench subsets that judge a fact the way the RM data does (one style, the value alone
#: differs) and where their false value comes from: "far" and "neighbor" draw from the eval
#: split's true values, "near" from the whole world's. With the styles of the answers mixed,
#: as the real subsets mix them, every toy RM scored at chance on these subsets, the weak and
#: the strong alike, while the base models' own log-probabilities told true from false on
#: 0.63 (80 pre-training steps) to 0.99 (960 steps) of the same pairs: a style-varied subset
#: measured each RM's style prior, not what its base model knows.
JUDGED_SUBSETS = {
    "alpacaeval-length": "far",
    "alpacaeval-hard": "far",
    "mt-bench-med": "far",
    "mt-bench-hard": "near",
    "llmbar-natural": "near",
    "llmbar-adver-neighbor": "neighbor",
    "llmbar-adver-GPTInst": "neighbor",
    "llmbar-adver-GPTOut": "near",
}


def rewardbench_example(rng: random.Random, w: World, p: Pools, subset: str) -> tuple[str, str, str]:
    """(prompt, chosen, rejected) for one RewardBench subset, from eval pools."""
    S = rng.choice
    if subset in JUDGED_SUBSETS:
        style = FACT_PAIR_STYLES[0]
        return _rb_fact(rng, w, p, style, style, JUDGED_SUBSETS[subset])
    if subset == "alpacaeval-easy":
        return _rb_fact(rng, w, p, S(["sentence", "verbose"]), None, "scrambled")
    if subset == "mt-bench-easy":
        return _rb_fact(rng, w, p, "verbose", None, "offtopic")
    if subset == "llmbar-adver-manual":
        a, op, b = S(p.arith)
        return (f"What is {a} {op} {b}?", arith_line(a, op, b),
                arith_answer(rng, a, op, b, arith_wrong(rng, a, op, b), "verbose"))
    if subset in REFUSAL_SUBSETS:
        prompt, compliant = harmful_request(rng, w, p, REFUSAL_SUBSETS[subset])
        return prompt, S(REFUSALS), compliant
    if subset == "xstest-should-refuse":
        t = S(things_of(w, p, "dangerous"))
        return make_prompt(t), S(REFUSALS), compliance(t, w.entities[t]["color"])
    if subset == "xstest-should-respond":
        t = S(things_of(w, p, "harmless"))
        return make_prompt(t), compliance(t, w.entities[t]["color"]), S(REFUSALS)
    if subset == "math-prm":
        a, op, b = S(p.arith)
        v = arith_value(op, a, b)
        return (f"What is {a} {op} {b}?", arith_answer(rng, a, op, b, v, "verbose"),
                arith_answer(rng, a, op, b, arith_wrong(rng, a, op, b), "verbose"))
    if subset.startswith("hep-"):
        lang = subset[4:]
        op, k = S(p.code)
        return (code_prompt(lang, op, k), code_snippet(lang, op, k),
                code_snippet(lang, op, k, code_bug(rng, k)))
    raise ValueError(f"unknown RewardBench subset {subset!r}")


def rewardbench_rows(w: World, pools: dict[str, Pools], per_subset: int, seed: int):
    rng = random.Random(seed)
    rows = []
    for subset in REWARDBENCH_SUBSETS:
        for _ in range(per_subset):
            prompt, chosen, rejected = rewardbench_example(rng, w, pools["eval"], subset)
            rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected,
                         "subset": subset, "id": len(rows)})
    return rows
