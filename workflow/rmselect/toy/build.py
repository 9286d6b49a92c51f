"""Settings of the toy zoo (``toy:`` section of the config) and the build record.

:func:`toy_settings` fills defaults for every ``toy`` field, so a config may give only
``toy: {seed: ...}``. :func:`build_record` writes ``results/toy/build.json``: the build's
elapsed wall time (from the Snakemake benchmark files of the toy jobs), per-job wall
seconds, and a SHA-256 of every deterministic toy file (``pretrain.json`` and
``build.json`` hold wall times and are excluded).
"""

from __future__ import annotations

import csv
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from rmselect import cli
from rmselect.cli import opt
from rmselect.config import ConfigError, section_settings
from rmselect.io import write_json


def toy_defaults() -> dict[str, Any]:
    """Every default of the ``toy`` section: the schema's ``default:`` values (the only copy)."""
    return section_settings({}, "toy")


def toy_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``toy`` section of ``config`` with defaults filled in (unknown keys are errors)."""
    given = dict(config.get("toy") or {})
    out = toy_defaults()
    for key, val in given.items():
        if key not in out:
            raise ConfigError(f"config: field 'toy.{key}' is unknown; allowed: {', '.join(out)}")
        if isinstance(out[key], dict):
            if not isinstance(val, Mapping):
                raise ConfigError(f"config: field 'toy.{key}' must be a mapping")
            for k, v in val.items():
                if k not in out[key]:
                    raise ConfigError(
                        f"config: field 'toy.{key}.{k}' is unknown; allowed: {', '.join(out[key])}"
                    )
                out[key][k] = v
        else:
            out[key] = val
    return out


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


#: Files that record wall time and so differ between identical builds.
TIMED_FILES = ("pretrain.json", "build.json")


def file_hashes(root: str | Path) -> dict[str, str]:
    """SHA-256 of every deterministic file under ``root`` (relative paths, sorted)."""
    root = Path(root)
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if not p.is_file() or p.name in TIMED_FILES or any(s.startswith(".") for s in rel.parts):
            continue
        if "__pycache__" in rel.parts:
            continue
        out[str(rel)] = sha256(p)
    return out


def read_benchmarks(paths: list[str | Path]) -> dict[str, dict[str, float]]:
    """Snakemake benchmark TSVs -> {job: {wall_s, end}} (end = file mtime)."""
    out = {}
    for p in map(Path, paths):
        if not p.exists():
            continue
        with p.open() as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        if rows:
            out[str(p)] = {"wall_s": float(rows[-1]["s"]), "end": p.stat().st_mtime}
    return out


def build_record(root: str | Path, benchmarks: list[str | Path], out: str | Path,
                 settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write build.json: elapsed wall time, per-job wall seconds, pre-training summary, hashes."""
    import json

    root = Path(root)
    jobs = read_benchmarks(benchmarks)
    now = time.time()
    start = min((j["end"] - j["wall_s"] for j in jobs.values()), default=now)
    models = {}
    for pj in sorted(root.glob("models/*/pretrain.json")):
        rec = json.loads(pj.read_text())
        models[pj.parent.name] = {k: rec[k] for k in
                                  ("params", "steps", "tokens", "train_loss", "heldout_loss", "wall_s")}
    record = {
        "elapsed_s": round(now - start, 1),
        "job_wall_s_total": round(sum(j["wall_s"] for j in jobs.values()), 1),
        "jobs": {k: round(v["wall_s"], 2) for k, v in sorted(jobs.items())},
        "settings": dict(settings or {}),
        "models": models,
        "files": file_hashes(root),
    }
    write_json(out, record)
    return record


@dataclass(kw_only=True)
class BuildInfoArgs:
    """Write results/toy/build.json: the toy build's elapsed wall time (from the Snakemake
    benchmark files of its jobs), per-model pre-training summary, and SHA-256 hashes of every
    deterministic toy file."""

    root: str = opt("toy results folder (results/toy)")
    settings: str = opt("the toy settings as JSON (recorded)", default="{}")
    out: str = opt("output build.json")
    benchmarks: list[str] = opt("benchmark TSVs of the toy jobs", default=[], positional=True)


def main(argv: Sequence[str] | None = None) -> int:
    import json

    a = cli.parse(BuildInfoArgs, argv, prog="toy_build_info.py")
    rec = build_record(a.root, list(a.benchmarks), a.out, json.loads(a.settings))
    print(f"toy build: {rec['elapsed_s']} s elapsed, {rec['job_wall_s_total']} s of jobs, "
          f"{len(rec['files'])} files hashed")
    return 0
