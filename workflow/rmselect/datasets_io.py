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
    if path.is_file() and path.stat().st_size == 0:
        raise DatasetError(f"data set file {path} is empty (0 bytes); rebuild or replace it")
    if name.endswith(".parquet"):
        try:
            return pl.read_parquet(path)
        except Exception as err:  # polars raises several types for a damaged file
            raise DatasetError(f"data set file {path}: not a readable Parquet file ({err})") from None
    if name.endswith((".csv", ".tsv")):
        _check_utf8(path)
        try:
            return pl.read_csv(path, separator="\t" if name.endswith(".tsv") else ",")
        except pl.exceptions.PolarsError as err:
            raise DatasetError(f"data set file {path}: not a readable table ({err})") from None
    if name.endswith((".jsonl", ".jsonl.gz", ".json")):
        rows = read_jsonl(path)
        if not rows:
            raise DatasetError(f"data set file {path} holds no rows (only blank lines)")
        return pl.DataFrame(rows, infer_schema_length=None)
    raise DatasetError(f"data set file {path}: unknown format (use .jsonl, .parquet, .csv)")


def _check_utf8(path: Path) -> None:
    """A text file that is not UTF-8: one line naming the file and the 1-based line."""
    with path.open("rb") as fh:
        for i, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DatasetError(
                    f"data set file {path} line {i}: not UTF-8 (byte 0x{raw[err.start]:02x} at"
                    f" column {err.start + 1}); re-encode the file as UTF-8"
                ) from None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The objects of a JSONL (or gzipped JSONL) file; a bad line raises one
    :class:`DatasetError` naming the file, the 1-based line and the problem (not UTF-8, not
    JSON, not an object). Blank lines are skipped."""
    import gzip

    opener = gzip.open if path.name.endswith(".gz") else open
    rows: list[dict[str, Any]] = []
    with opener(path, "rb") as fh:  # type: ignore[operator]
        for i, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DatasetError(
                    f"data set file {path} line {i}: not UTF-8 (byte 0x{raw[err.start]:02x} at"
                    f" column {err.start + 1}); re-encode the file as UTF-8"
                ) from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise DatasetError(
                    f"data set file {path} line {i}: not JSON ({err.msg} at column"
                    f" {err.colno}); fix or remove the line"
                ) from None
            if not isinstance(obj, dict):
                raise DatasetError(
                    f"data set file {path} line {i}: a JSON {type(obj).__name__}, not an"
                    " object; each line must be one {...} record"
                )
            rows.append(obj)
    return rows


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
        found = [c for c in df.columns if not c.startswith("_")]  # not the loaders' own
        raise DatasetError(
            f"{what}: missing column(s) {', '.join(missing)}; found {', '.join(found) or 'none'}"
        )
