"""Configuration and model-table loading, validated before any job runs.

Every stage reads the study through :class:`Study` so that the embedded default
(`config/config.yaml`) and the paper study (`config/paper.yaml`) go through the same code.
Validation happens at DAG-build time: a bad config must fail with one line that names the
file, the row and the field, before anything is written under ``results/``.
"""


from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from rmselect.model_table import (  # noqa: F401  (re-exported: the config API)
    MODEL_COLUMNS,
    STAGES,
    ModelSpec,
    check_models,
    lineage_root,
    parse_toy_spec,
    read_model_table,
    source_kind,
)
from rmselect.schema import (  # noqa: F401  (re-exported: the config API)
    REPO_ROOT,
    SCHEMA_DIR,
    ConfigError,
    _schema,
    fill_defaults,
    load_schema,
    schema_node,
    section_settings,
    validate_against,
)

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
    from rmselect import validate

    validate.check_variant_order(cfg, models, source)
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
    validate.check_names_case(models, source)
    validate.check_size_groups(cfg, models, source, cfg.get("recommend", {}).get("candidates") or [])
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
