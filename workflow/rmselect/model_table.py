"""The model table (``config/models.tsv`` and the paper's): rows, validation, lineages.

Each row becomes a :class:`ModelSpec`; a bad row fails with one line that names the file, the
row and the column.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from rmselect.schema import REPO_ROOT, ConfigError, load_schema, validate_against

STAGES = ("base", "sft", "dpo", "rlvr", "instruct")
MODEL_COLUMNS = (
    "name",
    "source",
    "publisher",
    "family",
    "lineage",
    "params_b",
    "tokens_t",
    "released",
    "stage",
    "parent",
    "trust_remote_code",
    "chat_template",
    "attn_implementation",
)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")


# --------------------------------------------------------------------------- model table


@dataclass(frozen=True)
class ModelSpec:
    """One candidate base model (a row of the model table, or a produced variant)."""

    name: str
    source: str
    publisher: str
    #: Version-level family as the publisher names it (gemma-2, qwen2.5, llama-3.1 ...).
    family: str
    params_b: float
    tokens_t: float | None
    released: str
    stage: str
    parent: str | None
    trust_remote_code: bool = False
    chat_template: str | None = None
    #: Attention kernel for this model (overrides ``rm.attn_implementation``); None: the config's.
    attn_implementation: str | None = None
    #: For produced post-training variants: the recipe name in ``config['posttrain']``.
    produce: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    #: Model line the family belongs to (gemma-1.1, gemma-2 → gemma; Tulu-3 → llama-3):
    #: models that share pre-training data or weights. Empty → ``family``. The selection
    #: model's leave-one-out evaluation holds a whole lineage out (rmselect.analysis).
    lineage: str = ""

    def __post_init__(self) -> None:
        if not self.lineage:
            object.__setattr__(self, "lineage", self.family)

    def column(self, name: str) -> str | None:
        """The value of model-table column ``name`` as text (None when the model lacks it).

        Built-in columns come from the fields, others (e.g. ``in_main_study``) from
        ``extra``; a produced variant has no extra columns.
        """
        if name in self.__dataclass_fields__ and name not in ("extra", "produce"):
            v = getattr(self, name)
            if isinstance(v, bool):
                return "true" if v else "false"
            return "" if v is None else str(v)
        return self.extra.get(name)

    @property
    def kind(self) -> str:
        """``toy`` | ``variant`` | ``gguf`` | ``local`` | ``hub``."""
        return source_kind(self.source)

    def toy_spec(self) -> dict[str, str]:
        """Parse ``toy:key=value,key=value`` into a dict (toy models only)."""
        if self.kind != "toy":
            raise ConfigError(f"model '{self.name}' is not a toy model (source {self.source!r})")
        return parse_toy_spec(self.source)


def source_kind(source: str) -> str:
    if source.startswith("toy:"):
        return "toy"
    if source.startswith("variant:"):
        return "variant"
    # A GGUF file (llama.cpp's quantized format) is dequantized once by rule gguf_convert
    # into results/models/{model}/ (rmselect.gguf); the path must exist like a local one.
    if source.lower().endswith(".gguf"):
        return "gguf"
    # Local paths are written absolute or starting with ./ or ../ (documented in README);
    # anything shaped like ``org/name`` is a hub id.
    if source.startswith(("/", "./", "../", "~")):
        return "local"
    if _HUB_ID.match(source):
        return "hub"
    return "local"


def parse_toy_spec(source: str) -> dict[str, str]:
    body = source[len("toy:") :]
    out: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in body.split(","))):
        if "=" not in item:
            raise ConfigError(f"toy spec {source!r}: item {item!r} is not key=value")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _parse_bool(text: str, where: str) -> bool:
    t = text.strip().lower()
    if t in ("", "0", "false", "no", "n"):
        return False
    if t in ("1", "true", "yes", "y"):
        return True
    raise ConfigError(f"{where}: field 'trust_remote_code': {text!r} is not true/false")


def _parse_float(text: str, where: str, col: str, required: bool) -> float | None:
    t = text.strip()
    if not t:
        if required:
            raise ConfigError(f"{where}: field '{col}' is empty; give a number")
        return None
    try:
        val = float(t)
    except ValueError:
        raise ConfigError(f"{where}: field '{col}': {t!r} is not a number") from None
    if not math.isfinite(val) or val <= 0:
        raise ConfigError(f"{where}: field '{col}': {t} must be a positive number")
    return val


def read_model_table(path: str | Path, root: Path = REPO_ROOT) -> list[ModelSpec]:
    """Read and validate a model TSV; cross-row checks happen in :func:`check_models`."""
    path = Path(path)
    full = path if path.is_absolute() else root / path
    if not full.exists():
        raise ConfigError(f"model table {path} does not exist; set 'models' in the config")
    with full.open(newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        header = reader.fieldnames or []
        missing = [c for c in ("name", "source", "params_b", "stage") if c not in header]
        if missing:
            raise ConfigError(f"{path}: missing column(s) {', '.join(missing)}")
        schema = load_schema("models")
        specs: list[ModelSpec] = []
        for i, row in enumerate(reader, start=2):
            where = f"{path} row {i}"
            row = {k: (v or "").strip() for k, v in row.items() if k is not None}
            name = row.get("name", "")
            if name:
                where += f" (model '{name}')"
            known = set(MODEL_COLUMNS) | set(schema.get("properties", {}))
            validate_against({k: v for k, v in row.items() if k in known}, schema, where)
            source = row["source"]
            if source_kind(source) in ("local", "gguf"):
                p = Path(source).expanduser()
                if not (p if p.is_absolute() else root / p).exists():
                    what = "GGUF file" if source_kind(source) == "gguf" else "local path"
                    raise ConfigError(
                        f"{where}: field 'source': {what} {source!r} does not exist"
                    )
            if source.startswith("toy:"):
                parse_toy_spec(source)
            extra = {k: v for k, v in row.items() if k not in MODEL_COLUMNS}
            specs.append(
                ModelSpec(
                    name=name,
                    source=source,
                    publisher=row.get("publisher", ""),
                    family=row.get("family", "") or row.get("publisher", "") or name,
                    lineage=row.get("lineage", ""),
                    params_b=float(_parse_float(row["params_b"], where, "params_b", True) or 0),
                    tokens_t=_parse_float(row.get("tokens_t", ""), where, "tokens_t", False),
                    released=row.get("released", ""),
                    stage=row["stage"],
                    parent=row.get("parent") or None,
                    trust_remote_code=_parse_bool(row.get("trust_remote_code", ""), where),
                    chat_template=row.get("chat_template") or None,
                    attn_implementation=row.get("attn_implementation") or None,
                    extra=extra,
                )
            )
    if not specs:
        raise ConfigError(f"{path}: the model table has no rows")
    return specs


def check_models(specs: Iterable[ModelSpec], source: str) -> None:
    """Cross-row checks: unique names, known parents, no lineage cycle."""
    by_name: dict[str, ModelSpec] = {}
    for s in specs:
        if s.name in by_name:
            raise ConfigError(f"{source}: duplicate model name '{s.name}'; names must be unique")
        by_name[s.name] = s
    for s in by_name.values():
        if s.parent and s.parent not in by_name:
            raise ConfigError(
                f"{source}: model '{s.name}': field 'parent': unknown model '{s.parent}'"
                " (add it to the table or clear the field)"
            )
    for s in by_name.values():
        seen = [s.name]
        cur = s
        while cur.parent:
            if cur.parent in seen:
                cycle = " -> ".join(seen + [cur.parent])
                raise ConfigError(f"{source}: lineage cycle through field 'parent': {cycle}")
            seen.append(cur.parent)
            cur = by_name[cur.parent]


def lineage_root(name: str, models: Mapping[str, ModelSpec]) -> str:
    """The root ancestor of ``name`` (itself when it has no parent)."""
    cur = models[name]
    while cur.parent:
        cur = models[cur.parent]
    return cur.name
