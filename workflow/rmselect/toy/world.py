"""The synthetic world of the toy zoo and its pre-training corpus.

A world is a small, seeded set of invented entities with attribute facts (countries with a
capital and a national animal; people with a birth year, a job and a home country; things
with a colour and a danger level), plus arithmetic and tiny code snippets in six toy
"languages". A model can know the facts only from pre-training on the corpus, so how much of
the world a model absorbed is its "capability". Each entity is assigned to one split
(``train`` / ``validation`` / ``eval``): RM training data, RM validation data and the
RewardBench-style evaluation set use disjoint entities, while every fact is in the corpus.

Everything here is pure Python driven by one :class:`random.Random`, so the same seed gives
the same world and byte-identical files.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rmselect import cli
from rmselect.cli import opt
#: Share of entities in each split (RM train / RM validation / RewardBench-style eval).
SPLIT_SHARES = {"train": 0.5, "validation": 0.2, "eval": 0.3}

ANIMALS = ["fox", "owl", "bear", "crane", "wolf", "heron", "lynx", "otter", "hawk", "seal"]
JOBS = ["baker", "sailor", "weaver", "miner", "painter", "doctor", "farmer", "poet", "smith",
        "judge"]
COLORS = ["teal", "red", "amber", "violet", "green", "grey", "blue", "pink", "black", "white"]
DANGER = ["harmless", "dangerous"]

#: Attribute -> (entity kind, value pool name). Value pools: a list above, "city" (each
#: country's own capital), "year", or "country".
ATTRIBUTES: dict[str, tuple[str, str]] = {
    "capital": ("country", "city"),
    "animal": ("country", "animal"),
    "born": ("person", "year"),
    "job": ("person", "job"),
    "home": ("person", "country"),
    "color": ("thing", "color"),
    "danger": ("thing", "danger"),
}

#: Statement templates per attribute ({e} entity, {v} value). Several per fact so that a
#: model must learn the fact, not one string.
FACT_TEMPLATES: dict[str, list[str]] = {
    "capital": ["The capital of {e} is {v}.", "{v} is the capital of {e}.",
                "In {e}, the capital city is {v}."],
    "animal": ["The national animal of {e} is the {v}.", "{e} has the {v} as its national animal."],
    "born": ["{e} was born in {v}.", "The birth year of {e} is {v}.", "In {v}, {e} was born."],
    "job": ["{e} worked as a {v}.", "By trade, {e} was a {v}."],
    "home": ["{e} lived in {v}.", "{e} made a home in {v}."],
    "color": ["The color of the {e} is {v}.", "The {e} is {v} in color."],
    "danger": ["The {e} is {v}.", "Everyone knows the {e} is {v}."],
}

#: Questions per attribute (used for dialogue, RM data and benchmarks).
QUESTIONS: dict[str, str] = {
    "capital": "What is the capital of {e}?",
    "animal": "What is the national animal of {e}?",
    "born": "In which year was {e} born?",
    "job": "What did {e} work as?",
    "home": "Where did {e} live?",
    "color": "What color is the {e}?",
    "danger": "Is the {e} harmless or dangerous?",
}

#: Toy code: operation name -> (python operator, description).
CODE_OPS: dict[str, tuple[str, str]] = {
    "add": ("+", "plus"),
    "sub": ("-", "minus"),
    "mul": ("*", "times"),
}
CODE_LANGS = ("python", "js", "go", "rust", "java", "cpp")

_ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "kr",
           "st", "th", "dr", "sh"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ou"]
_CODAS = ["", "", "n", "l", "r", "s", "k", "th"]


@dataclass
class World:
    """A generated world: entities, their facts and their split."""

    seed: int
    entities: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: entity name -> split name.
    splits: dict[str, str] = field(default_factory=dict)
    cities: list[str] = field(default_factory=list)
    add_max: int = 12
    mul_max: int = 6
    code_consts: list[int] = field(default_factory=lambda: list(range(1, 10)))

    # ------------------------------------------------------------------ access
    def of_kind(self, kind: str, split: str | None = None) -> list[str]:
        return [n for n, e in self.entities.items()
                if e["kind"] == kind and (split is None or self.splits[n] == split)]

    def facts(self, split: str | None = None) -> list[tuple[str, str, Any]]:
        """All (entity, attribute, value) triples, optionally of one split."""
        out = []
        for name, ent in self.entities.items():
            if split is not None and self.splits[name] != split:
                continue
            for attr, (kind, _) in ATTRIBUTES.items():
                if kind == ent["kind"]:
                    out.append((name, attr, ent[attr]))
        return out

    def value_pool(self, attr: str) -> list[Any]:
        pool = ATTRIBUTES[attr][1]
        if pool == "city":
            return list(self.cities)
        if pool == "year":
            return list(range(1800, 1960))
        if pool == "country":
            return self.of_kind("country")
        return list({"animal": ANIMALS, "job": JOBS, "color": COLORS, "danger": DANGER}[pool])

    def wrong_value(self, rng: random.Random, attr: str, true: Any, near: bool = False) -> Any:
        """A false value of ``attr``: a near miss (years ±1..5) or any other value."""
        if attr == "born" and near:
            return true + rng.choice([-5, -4, -3, -2, -1, 1, 2, 3, 4, 5])
        pool = [v for v in self.value_pool(attr) if v != true]
        return rng.choice(pool)

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "split_shares": SPLIT_SHARES,
            "attributes": {a: {"kind": k, "values": p} for a, (k, p) in ATTRIBUTES.items()},
            "arithmetic": {"add": [0, self.add_max], "mul": [1, self.mul_max]},
            "code": {"ops": {k: v[0] for k, v in CODE_OPS.items()},
                     "consts": self.code_consts, "languages": list(CODE_LANGS)},
            "cities": self.cities,
            "entities": [
                {"name": n, "split": self.splits[n], **e} for n, e in self.entities.items()
            ],
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "World":
        w = cls(seed=int(obj["seed"]))
        for e in obj["entities"]:
            e = dict(e)
            name = e.pop("name")
            w.splits[name] = e.pop("split")
            w.entities[name] = e
        w.cities = list(obj["cities"])
        w.add_max = int(obj["arithmetic"]["add"][1])
        w.mul_max = int(obj["arithmetic"]["mul"][1])
        w.code_consts = list(obj["code"]["consts"])
        return w


def _word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)) + rng.choice(
        _CODAS
    )


def _unique(rng: random.Random, make, taken: set[str]) -> str:
    for _ in range(10_000):
        w = make()
        if w not in taken and len(w) >= 3:
            taken.add(w)
            return w
    raise RuntimeError("could not draw a unique name; lower the entity counts")


def make_world(seed: int, n_countries: int = 30, n_people: int = 30, n_things: int = 30) -> World:
    """Draw a world from ``seed`` (entity counts per kind are parameters for small tests)."""
    rng = random.Random(seed)
    w = World(seed=seed)
    taken: set[str] = set()
    countries = [
        _unique(rng, lambda: _word(rng, 2).capitalize() + rng.choice(["ia", "land", "or", "a"]),
                taken) for _ in range(n_countries)
    ]
    w.cities = [_unique(rng, lambda: _word(rng, 2).capitalize(), taken) for _ in range(n_countries)]
    for c, city in zip(countries, w.cities):
        w.entities[c] = {"kind": "country", "capital": city, "animal": rng.choice(ANIMALS)}
    for _ in range(n_people):
        name = _unique(
            rng,
            lambda: _word(rng, rng.choice([1, 2])).capitalize() + " " + _word(rng, 1).capitalize(),
            taken,
        )
        w.entities[name] = {
            "kind": "person",
            "born": rng.randrange(1800, 1960),
            "job": rng.choice(JOBS),
            "home": rng.choice(countries),
        }
    for _ in range(n_things):
        name = _unique(rng, lambda: _word(rng, 1), taken)
        w.entities[name] = {
            "kind": "thing",
            "color": rng.choice(COLORS),
            "danger": DANGER[int(rng.random() < 0.4)],
        }
    # Splits: stratified by kind so every split has every kind.
    for kind in ("country", "person", "thing"):
        names = w.of_kind(kind)
        rng.shuffle(names)
        n_train = round(len(names) * SPLIT_SHARES["train"])
        n_val = round(len(names) * SPLIT_SHARES["validation"])
        for i, n in enumerate(names):
            w.splits[n] = "train" if i < n_train else "validation" if i < n_train + n_val else "eval"
    return w


# ---------------------------------------------------------------------- rendering


def fact_sentence(rng: random.Random, attr: str, entity: str, value: Any) -> str:
    return rng.choice(FACT_TEMPLATES[attr]).format(e=entity, v=value)


def question(attr: str, entity: str) -> str:
    return QUESTIONS[attr].format(e=entity)


def code_snippet(lang: str, op: str, k: int, bug: int = 0) -> str:
    """Function ``{op}_{k}`` in toy ``lang``; ``bug`` != 0 shifts the constant (a wrong body)."""
    sym = CODE_OPS[op][0]
    c = k + bug
    name = f"{op}_{k}"
    if lang == "python":
        return f"def {name}(x):\n    return x {sym} {c}"
    if lang == "js":
        return f"function {name}(x) {{\n  return x {sym} {c};\n}}"
    if lang == "go":
        return f"func {name}(x int) int {{\n\treturn x {sym} {c}\n}}"
    if lang == "rust":
        return f"fn {name}(x: i32) -> i32 {{\n    x {sym} {c}\n}}"
    if lang == "java":
        return f"static int {name}(int x) {{\n    return x {sym} {c};\n}}"
    if lang == "cpp":
        return f"int {name}(int x) {{\n    return x {sym} {c};\n}}"
    raise ValueError(f"unknown toy language {lang!r}")


def arith_value(op: str, a: int, b: int) -> int:
    return a + b if op == "+" else a * b if op == "*" else a - b


def arith_line(a: int, op: str, b: int, value: int | None = None) -> str:
    return f"{a} {op} {b} = {arith_value(op, a, b) if value is None else value}."


def draw_arith(rng: random.Random, w: World) -> tuple[int, str, int]:
    if rng.random() < 0.6:
        return rng.randint(0, w.add_max), "+", rng.randint(0, w.add_max)
    return rng.randint(1, w.mul_max), "*", rng.randint(1, w.mul_max)


# ---------------------------------------------------------------------- corpus

#: Corpus mix: share of documents per domain. ``dialogue`` is rare on purpose; ``fables``
#: never appears in the corpus (a held-out presence domain).
CORPUS_MIX = {"facts": 0.62, "arithmetic": 0.18, "code": 0.15, "dialogue": 0.05}
#: Share of fact documents written as ``Question: ...\nAnswer: value.`` (quiz style).
QA_SHARE = 0.25
USER, ASSISTANT, END = "<|user|>", "<|assistant|>", "<|end|>"


def chat_text(user: str, assistant: str) -> str:
    """A conversation in the toy chat format (matches the tokenizer's chat template)."""
    return f"{USER}\n{user}{END}\n{ASSISTANT}\n{assistant}{END}"


def answer_sentence(rng: random.Random, attr: str, entity: str, value: Any) -> str:
    return fact_sentence(rng, attr, entity, value)


def make_document(rng: random.Random, w: World, domain: str) -> str:
    """One document of ``domain`` drawn from the world's distribution."""
    if domain == "facts":
        name = rng.choice(list(w.entities))
        kind = w.entities[name]["kind"]
        attrs = [a for a, (k, _) in ATTRIBUTES.items() if k == kind]
        if rng.random() < QA_SHARE:
            a = rng.choice(attrs)
            return f"Question: {question(a, name)}\nAnswer: {w.entities[name][a]}."
        rng.shuffle(attrs)
        attrs = attrs[: rng.randint(1, len(attrs))]
        return " ".join(fact_sentence(rng, a, name, w.entities[name][a]) for a in attrs)
    if domain == "arithmetic":
        return " ".join(arith_line(*draw_arith(rng, w)) for _ in range(rng.randint(2, 5)))
    if domain == "code":
        op = rng.choice(list(CODE_OPS))
        return code_snippet(rng.choice(CODE_LANGS), op, rng.choice(w.code_consts))
    if domain == "dialogue":
        name, attr, value = rng.choice(w.facts())
        return chat_text(question(attr, name), fact_sentence(rng, attr, name, value))
    if domain == "fables":
        p = rng.choice(w.of_kind("person"))
        t = rng.choice(w.of_kind("thing"))
        ent = w.entities[p]
        return (f"Once upon a time, {p} the {ent['job']} found a {w.entities[t]['color']} {t} "
                f"near {w.entities[ent['home']]['capital']}. The {t} was "
                f"{w.entities[t]['danger']}, so {p} walked home.")
    raise ValueError(f"unknown domain {domain!r}")


def make_corpus(w: World, n_docs: int, seed: int) -> list[str]:
    """``n_docs`` documents following :data:`CORPUS_MIX` (newlines escaped: see below)."""
    rng = random.Random(seed)
    domains = list(CORPUS_MIX)
    weights = [CORPUS_MIX[d] for d in domains]
    return [make_document(rng, w, rng.choices(domains, weights)[0]) for _ in range(n_docs)]


def escape_doc(doc: str) -> str:
    """Corpus files hold one document per line: a newline inside a document is written ``\\n``
    and a backslash ``\\\\`` (:func:`unescape_doc` reverses it)."""
    return doc.replace("\\", "\\\\").replace("\n", "\\n")


def unescape_doc(line: str) -> str:
    out, i = [], 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line):
            nxt = line[i + 1]
            out.append("\n" if nxt == "n" else nxt)
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


# ---------------------------------------------------------------------- entry point


def write_world(seed: int, out_world: str | Path, out_train: str | Path, out_heldout: str | Path,
                countries: int, people: int, things: int, train_docs: int, heldout_docs: int) -> World:
    """Draw the world from ``seed`` and write world.json and the two corpus files atomically."""
    from rmselect.io import atomic_path, write_json

    w = make_world(seed, countries, people, things)
    write_json(out_world, w.to_json())
    for path, n, s in ((out_train, train_docs, seed + 1), (out_heldout, heldout_docs, seed + 2)):
        docs = make_corpus(w, n, s)
        with atomic_path(path) as tmp:
            tmp.write_text("".join(escape_doc(d) + "\n" for d in docs))
    return w


def load_world(path: str | Path) -> World:
    import json

    return World.from_json(json.loads(Path(path).read_text()))


@dataclass(kw_only=True)
class WorldArgs:
    """Draw the toy zoo's synthetic world from a seed and write world.json plus the pre-training
    corpus (train.txt, heldout.txt; one document per line, newlines inside a document written
    as \\n)."""

    seed: int = opt("toy.seed")
    countries: int = opt(default=24)
    people: int = opt(default=24)
    things: int = opt(default=24)
    train_docs: int = opt(default=12000)
    heldout_docs: int = opt(default=600)
    world: str = opt("output world.json")
    train: str = opt("output train.txt")
    heldout: str = opt("output heldout.txt")


def main(argv: list[str] | None = None) -> int:
    return cli.run(WorldArgs, run_world, argv, prog="toy_world.py")


def run_world(a: WorldArgs) -> int:
    w = write_world(a.seed, a.world, a.train, a.heldout, a.countries, a.people, a.things,
                    a.train_docs, a.heldout_docs)
    print(f"world: {len(w.entities)} entities, {len(w.facts())} facts; "
          f"corpus {a.train_docs} + {a.heldout_docs} documents")
    return 0
