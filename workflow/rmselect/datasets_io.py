"""Load a data set named by a config entry: a local file or a hub data set.

Config entries look like ``{path: results/toy/data/x.jsonl}`` or
``{hub: nvidia/HelpSteer2, data_files: preference/preference.jsonl.gz, split: train}``.
The hub path goes through ``datasets.load_dataset`` so that its local cache serves offline
runs (``HF_DATASETS_OFFLINE=1``); the toy zoo and the tests use local files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import polars as pl


def entry_arg(entry: Mapping[str, Any]) -> str:
    """A config data-set entry as one shell-quoted command-line argument (JSON, sorted keys),
    as every rule passes it and every stage's ``--data``-style option parses it."""
    import shlex

    return shlex.quote(json.dumps(entry, sort_keys=True))


class DatasetError(ValueError):
    """A data set that cannot be read or lacks what a stage needs."""


def _read_local(path: Path) -> pl.DataFrame:
    name = path.name
    if not path.exists():
        raise DatasetError(f"data set file {path} does not exist")
    if name.endswith(".parquet"):
        return pl.read_parquet(path)
    if name.endswith(".csv"):
        return pl.read_csv(path)
    if name.endswith(".tsv"):
        return pl.read_csv(path, separator="\t")
    if name.endswith((".jsonl", ".jsonl.gz", ".json")):
        import gzip

        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rt") as fh:  # type: ignore[operator]
            rows = [json.loads(line) for line in fh if line.strip()]
        return pl.DataFrame(rows, infer_schema_length=None)
    raise DatasetError(f"data set file {path}: unknown format (use .jsonl, .parquet, .csv)")


def load_frame(entry: Mapping[str, Any], root: str | Path = ".") -> pl.DataFrame:
    """Return the rows of a config data-set entry as a polars frame."""
    if "path" in entry:
        p = Path(entry["path"])
        return _read_local(p if p.is_absolute() else Path(root) / p)
    if "hub" in entry:
        import datasets  # imported lazily: slow, and only the hub path needs it

        kwargs: dict[str, Any] = {}
        for key in ("name", "data_files", "revision"):
            if entry.get(key) is not None:
                kwargs[key] = entry[key]
        split = entry.get("split", "train")
        ds = datasets.load_dataset(entry["hub"], split=split, **kwargs)
        return pl.from_arrow(ds.data.table)  # type: ignore[return-value]
    raise DatasetError(f"data set entry {dict(entry)!r} needs 'path' or 'hub'")


def require_columns(df: pl.DataFrame, columns: list[str], what: str) -> None:
    """Fail with a message naming the data set and the missing columns."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DatasetError(
            f"{what}: missing column(s) {', '.join(missing)}; found {', '.join(df.columns)}"
        )
