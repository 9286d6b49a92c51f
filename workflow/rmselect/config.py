"""Configuration and model-table loading, validated before any job runs.

Every stage reads the study through :class:`Study` so that the embedded default
(`config/config.yaml`) and the paper study (`config/paper.yaml`) go through the same code.
Validation happens at DAG-build time: a bad config must fail with one line that names the
file, the row and the field, before anything is written under ``results/``.
"""

from __future__ import annotations

import copy
import csv
import functools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import jsonschema
import yaml

#: Repository root (the folder holding the Snakefile); paths in configs are relative to it.
REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO_ROOT / "config" / "schemas"

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
)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")


class ConfigError(ValueError):
    """A configuration problem, phrased as one line a user can act on."""


# --------------------------------------------------------------------------- schemas


def load_schema(name: str) -> dict[str, Any]:
    """Load ``config/schemas/<name>.schema.yaml`` (a fresh copy the caller may change)."""
    return copy.deepcopy(_schema(name))


@functools.lru_cache(maxsize=None)
def _schema(name: str) -> dict[str, Any]:
    # Parsed once per process: the DAG of a large study reads defaults per job, and a YAML
    # parse of the schema each time made a 40-model dry run take minutes.
    with (SCHEMA_DIR / f"{name}.schema.yaml").open() as fh:
        return yaml.safe_load(fh)


def fill_defaults(value: Any, schema: Mapping[str, Any]) -> Any:
    """``value`` with every field it leaves out filled from ``schema``'s ``default:`` values.

    Recursive, so that a partly given nested object (``analysis.correlations: {ci: 0.9}``)
    gets its other fields too. It follows ``properties`` and an object-shaped
    ``additionalProperties`` (a table of same-shaped entries such as ``benchmarks.tasks``);
    not ``$ref``, ``oneOf`` or array items, whose defaults a stage applies itself. An
    omitted field takes its own ``default:`` (itself filled); an omitted object without one
    is added only when something inside it has a default. Given values win and are copied,
    so the result never aliases the config. Fields keep the schema's order, then the
    given ones the schema does not name.
    """
    if not isinstance(value, Mapping):
        return copy.deepcopy(value)
    props: Mapping[str, Any] = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    out: dict[str, Any] = {}
    for key, sub in props.items():
        if "default" in sub:
            out[key] = fill_defaults(copy.deepcopy(sub["default"]), sub)
        elif key not in value and sub.get("properties"):
            filled = fill_defaults({}, sub)
            if filled:
                out[key] = filled
    for key, val in value.items():
        sub = props.get(key, extra if isinstance(extra, Mapping) else {})
        out[key] = fill_defaults(val, sub)
    return out


def section_settings(config: Mapping[str, Any], section: str) -> dict[str, Any]:
    """A config section with every field the user left out filled from its schema ``default:``.

    The schema is the one place a default is written; a stage reads its settings through
    this (:func:`fill_defaults`, nested objects included), never from a second copy in
    Python. tests/test_config.py fails when a module-level ``*DEFAULTS`` table reappears.
    """
    return fill_defaults(config.get(section) or {}, _schema("config")["properties"][section])


def schema_node(*path: str) -> Mapping[str, Any]:
    """The config schema's node at ``path`` (e.g. ``"properties", "benchmarks"``), for
    :func:`fill_defaults`; shared and cached, so the caller must not change it."""
    node: Mapping[str, Any] = _schema("config")
    for key in path:
        node = node[key]
    return node


def _where(err: jsonschema.ValidationError) -> str:
    parts = [str(p) if not isinstance(p, int) else f"[{p}]" for p in err.absolute_path]
    out = ""
    for p in parts:
        out += p if p.startswith("[") or not out else "." + p
    return out or "<top level>"


def validate_against(obj: Any, schema: Mapping[str, Any], source: str) -> None:
    """Validate ``obj``; raise :class:`ConfigError` naming ``source`` and the field."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        err = errors[0]
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ConfigError(f"{source}: field '{_where(err)}': {err.message}{more}")


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


# --------------------------------------------------------------------------- study


def _canon(value: Any) -> str:
    """A population value as comparable text: yes/true and no/false match (YAML reads an
    unquoted ``yes`` as a boolean), otherwise stripped lower-case text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    t = str(value).strip().lower()
    return {"yes": "true", "no": "false"}.get(t, t)


@dataclass
class Study:
    """A validated configuration plus its effective model table."""

    config: dict[str, Any]
    source: str
    models: dict[str, ModelSpec]

    @property
    def model_names(self) -> list[str]:
        return list(self.models)

    def model(self, name: str) -> ModelSpec:
        try:
            return self.models[name]
        except KeyError:
            raise ConfigError(f"unknown model '{name}'") from None

    def toy_models(self) -> list[str]:
        return [n for n, m in self.models.items() if m.kind == "toy"]

    def variants(self) -> list[str]:
        return [n for n, m in self.models.items() if m.kind == "variant"]

    def gguf_models(self) -> list[str]:
        """Models whose source is a .gguf file (converted by rule gguf_convert)."""
        return [n for n, m in self.models.items() if m.kind == "gguf"]

    def model_path(self, name: str) -> str:
        """Where a model's weights live: a results/ folder, a local path, or a hub id."""
        m = self.model(name)
        if m.kind == "toy":
            return f"results/toy/models/{name}"
        if m.kind == "variant":
            return f"results/variants/{name}/model"
        if m.kind == "gguf":
            return f"results/models/{name}"
        return m.source

    def size_group(self, name: str) -> str:
        return size_group(self.model(name).params_b, self.config["size_groups"])

    def candidates(self) -> list[str]:
        """Models listed for recommendation only (no RM training)."""
        return list(self.config.get("recommend", {}).get("candidates", []) or [])

    def trained_models(self) -> list[str]:
        cand = set(self.candidates())
        return [n for n in self.models if n not in cand]

    def population(self) -> list[str]:
        """The models every cross-model analysis uses (``analysis.population``), in table order.

        ``{column, values, models}``: a non-empty ``models`` list names them outright;
        otherwise a model is in when its value in model-table column ``column`` (built-in,
        such as ``stage``, or an extra one, such as ``in_main_study``; compared as text,
        case-insensitively, yes = true and no = false) is one of ``values``; no ``column`` = every model. Produced
        post-training variants have no extra columns, so an extra-column selection leaves
        them out. Raises :class:`ConfigError` on an unknown column or model, or when nothing
        is selected.
        """
        spec = dict((self.config.get("analysis") or {}).get("population") or {})
        where = f"{self.source}: field 'analysis.population"
        listed = [str(m) for m in spec.get("models") or []]
        if listed:
            unknown = [m for m in listed if m not in self.models]
            if unknown:
                raise ConfigError(
                    f"{where}.models': unknown model(s) {', '.join(unknown)}; name rows of the"
                    " model table"
                )
            return [n for n in self.models if n in set(listed)]
        col = spec.get("column")
        if not col:
            return list(self.models)
        values = {_canon(v) for v in spec.get("values") or []}
        got = {n: m.column(col) for n, m in self.models.items()}
        if all(v is None for v in got.values()):
            raise ConfigError(
                f"{where}.column': the model table has no column '{col}'; use one of its"
                " columns (e.g. stage, in_main_study) or list analysis.population.models"
            )
        sel = [n for n, v in got.items() if v is not None and _canon(v) in values]
        if not sel:
            raise ConfigError(
                f"{where}': no model has {col} in {sorted(values)}; check"
                " analysis.population.values"
            )
        return sel


def size_group(params_b: float, groups: list[Mapping[str, Any]]) -> str:
    """Name of the first group with ``min_b <= params_b < max_b``."""
    for g in groups:
        lo = float(g.get("min_b", 0.0))
        hi = float(g.get("max_b", math.inf))
        if lo <= params_b < hi:
            return str(g["name"])
    raise ConfigError(f"no size group covers {params_b} B parameters; extend 'size_groups'")


def _variant_specs(
    config: Mapping[str, Any], base: dict[str, ModelSpec], source: str = "config"
) -> list[ModelSpec]:
    """Models produced by the post-training stage, entered as children of their parent."""
    out: list[ModelSpec] = []
    known = dict(base)
    for i, v in enumerate(config.get("posttrain", {}).get("variants", []) or []):
        parent = v["parent"]
        if parent not in known:
            raise ConfigError(
                f"{source}: field 'posttrain.variants[{i}].parent': unknown model '{parent}'"
            )
        p = known[parent]
        name = v.get("name") or f"{parent}-{v['stage']}"
        if name in known:
            raise ConfigError(
                f"{source}: field 'posttrain.variants[{i}]': duplicate model name '{name}';"
                " give the variant another `name`"
            )
        spec = ModelSpec(
            name=name,
            source=f"variant:{v['stage']}",
            publisher=p.publisher,
            family=p.family,
            lineage=p.lineage,
            params_b=p.params_b,
            tokens_t=p.tokens_t,
            released=p.released,
            stage=v["stage"],
            parent=parent,
            trust_remote_code=p.trust_remote_code,
            chat_template=p.chat_template,
            produce=v.get("recipe", v["stage"]),
        )
        known[name] = spec
        out.append(spec)
    return out


def load_study(config: Mapping[str, Any], source: str = "config", root: Path = REPO_ROOT) -> Study:
    """Validate ``config`` (as Snakemake loaded it) and build the effective model table."""
    cfg = dict(config)
    validate_against(cfg, load_schema("config"), source)
    table = cfg["models"]
    specs = read_model_table(table, root)
    check_models(specs, table)
    models = {s.name: s for s in specs}
    for s in _variant_specs(cfg, models, source):
        models[s.name] = s
    check_models(models.values(), f"{source} (model table plus posttrain.variants)")
    for i, g in enumerate(cfg["size_groups"]):
        d = g.get("default")
        if d and d not in models:
            raise ConfigError(
                f"{source}: field 'size_groups[{i}].default': unknown model '{d}'"
            )
    for c in cfg.get("recommend", {}).get("candidates", []) or []:
        if c not in models:
            raise ConfigError(f"{source}: field 'recommend.candidates': unknown model '{c}'")
    for m in models.values():
        size_group(m.params_b, cfg["size_groups"])
    if "stages" in (cfg.get("analysis") or {}):
        raise ConfigError(
            f"{source}: field 'analysis.stages' no longer selects the analysed models; use"
            " analysis.population (e.g. {column: stage, values: [base]} or {column:"
            " in_main_study, values: [yes]}); see docs/analysis.md"
        )
    study = Study(config=cfg, source=source, models=models)
    study.population()  # fails here, at DAG-build time, on a bad selection
    return study


def load_study_file(path: str | Path, root: Path = REPO_ROOT) -> Study:
    """Load a YAML config file and validate it (used by tests and command-line tools)."""
    path = Path(path)
    full = path if path.is_absolute() else root / path
    with full.open() as fh:
        cfg = yaml.safe_load(fh) or {}
    return load_study(cfg, str(path), root)
