"""The configuration's JSON schemas: loading, validation with one-line errors, and defaults.

The schemas under ``config/schemas/`` are the one place the study's defaults live
(:func:`fill_defaults`); every stage reads its section through :func:`section_settings`.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import yaml

#: Repository root (the folder holding the Snakefile); paths in configs are relative to it.
REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO_ROOT / "config" / "schemas"


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
