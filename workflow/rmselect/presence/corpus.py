"""Domain corpora for presence scores: load, filter and sample documents with a seed.

A domain is a config data-set entry (``rmselect.datasets_io``) with optional extra keys:

``text_column``
    column holding the document text (default ``text``).
``filter``
    ``{column: value}`` or ``{column: [values]}``; a dotted column reads a struct field,
    e.g. ``{meta.redpajama_set_name: RedPajamaGithub}`` selects one SlimPajama part.
``streaming``
    hub data sets only: read the data set as a stream (nothing but the sampled documents
    is materialised; needed for SlimPajama-627B). Sampling then uses
    ``IterableDataset.shuffle(seed, buffer_size=shuffle_buffer)`` and takes the first
    ``n_docs`` documents of the shuffled, filtered stream.

``doc_id`` is the document's row number in the source (before filtering), so a document
can be found again; for streams it is the position in the unshuffled stream.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import polars as pl

from rmselect.datasets_io import DatasetError, load_frame

DEFAULT_TEXT_COLUMN = "text"
DEFAULT_SHUFFLE_BUFFER = 10_000


def _filter_values(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _column_expr(column: str, df: pl.DataFrame, what: str) -> pl.Expr:
    head, *rest = column.split(".")
    if head not in df.columns:
        raise DatasetError(
            f"{what}: filter column '{column}' not found; columns are {', '.join(df.columns)}"
        )
    expr = pl.col(head)
    for part in rest:
        expr = expr.struct.field(part)
    return expr


def _get_nested(row: Mapping[str, Any], column: str) -> Any:
    cur: Any = row
    for part in column.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def filter_frame(df: pl.DataFrame, filters: Mapping[str, Any], what: str) -> pl.DataFrame:
    """Keep rows whose (possibly nested) column equals one of the given values."""
    for column, value in (filters or {}).items():
        df = df.filter(_column_expr(column, df, what).is_in(_filter_values(value)))
    return df


def sample_frame(
    df: pl.DataFrame, n_docs: int, seed: int, text_column: str, what: str
) -> pl.DataFrame:
    """``doc_id, text`` for ``n_docs`` documents drawn without replacement (all if fewer).

    Empty or missing texts are dropped before sampling. The draw is
    ``numpy.random.default_rng(seed).choice(n, n_docs, replace=False)``, returned sorted by
    ``doc_id``; the same file, seed and ``n_docs`` always give the same documents.
    """
    if text_column not in df.columns:
        raise DatasetError(
            f"{what}: text column '{text_column}' not found (set 'text_column' for this domain);"
            f" columns are {', '.join(df.columns)}"
        )
    if "__doc_id" not in df.columns:
        df = df.with_row_index("__doc_id")
    df = df.filter(pl.col(text_column).is_not_null() & (pl.col(text_column).str.len_chars() > 0))
    if df.height == 0:
        raise DatasetError(f"{what}: no non-empty documents (after filtering)")
    if n_docs < df.height:
        idx = np.sort(np.random.default_rng(seed).choice(df.height, n_docs, replace=False))
        df = df[idx.tolist()]
    return df.select(
        pl.col("__doc_id").cast(pl.Int64).alias("doc_id"), pl.col(text_column).alias("text")
    )


def _stream_sample(entry: Mapping[str, Any], n_docs: int, seed: int, what: str) -> pl.DataFrame:
    import datasets

    text_column = entry.get("text_column", DEFAULT_TEXT_COLUMN)
    kwargs: dict[str, Any] = {}
    for key in ("name", "data_files", "revision"):
        if entry.get(key) is not None:
            kwargs[key] = entry[key]
    ds = datasets.load_dataset(
        entry["hub"], split=entry.get("split", "train"), streaming=True, **kwargs
    )
    ds = ds.map(lambda row, i: {"__doc_id": i}, with_indices=True)
    filters = dict(entry.get("filter") or {})

    def keep(row: Mapping[str, Any]) -> bool:
        text = row.get(text_column)
        if not text:
            return False
        return all(_get_nested(row, c) in _filter_values(v) for c, v in filters.items())

    ds = ds.filter(keep)
    ds = ds.shuffle(seed=seed, buffer_size=int(entry.get("shuffle_buffer", DEFAULT_SHUFFLE_BUFFER)))
    rows = [(int(r["__doc_id"]), str(r[text_column])) for r in ds.take(n_docs)]
    if not rows:
        raise DatasetError(f"{what}: the stream has no documents matching {filters or 'anything'}")
    rows.sort()
    return pl.DataFrame(
        {"doc_id": [r[0] for r in rows], "text": [r[1] for r in rows]},
        schema={"doc_id": pl.Int64, "text": pl.String},
    )


def sample_documents(
    entry: Mapping[str, Any], n_docs: int, seed: int, root: str = ".", what: str = "corpus"
) -> pl.DataFrame:
    """Sample ``n_docs`` documents (``doc_id, text``) of one domain entry."""
    if n_docs < 1:
        raise DatasetError(f"{what}: n_docs must be at least 1, got {n_docs}")
    if entry.get("streaming"):
        if "hub" not in entry:
            raise DatasetError(f"{what}: 'streaming' needs a hub data set, not a local path")
        return _stream_sample(entry, n_docs, seed, what)
    df = load_frame(entry, root).with_row_index("__doc_id")
    df = filter_frame(df, entry.get("filter") or {}, what)
    return sample_frame(df, n_docs, seed, entry.get("text_column", DEFAULT_TEXT_COLUMN), what)
