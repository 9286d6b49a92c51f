"""Domain corpora for presence scores: load, filter and sample documents with a seed.

A domain is a config data-set entry (``rmselect.datasets_io``) with optional extra keys:

``text_column``
    column holding the document text (default ``text``).
``filter``
    ``{column: value}`` or ``{column: [values]}``; a dotted column reads a struct field,
    e.g. ``{meta.redpajama_set_name: RedPajamaGithub}`` selects one SlimPajama part.
``streaming``
    hub data sets only: read the data set as a stream (nothing but the sampled documents
    is kept; needed for SlimPajama-627B). Sampling is hash-based (a bottom-k sample): every
    matching document gets the key ``blake2b(seed, doc_id)`` and the ``n_docs`` smallest keys
    are kept, so the same seed gives the same documents whatever the stream's chunking, and
    the sample is uniform over the documents read.
``pool_docs``
    streams only: stop reading at the end of the first block of files (:data:`BLOCK_FILES`
    source files, in the data set's file order) at which at least this many *matching*
    documents have been read (default: read the whole stream). The sample is then uniform over
    the matching documents of those files, which is what bounds the sampling rule's network
    bytes (SlimPajama's files are shuffled). Blocks, not worker processes, decide where
    reading stops, so the sample does not depend on the number of workers.

``doc_id`` is the document's row number in the source (before filtering), so a document
can be found again; for streams it is ``file << 32 | row``: the file's index in the data
set's file order and the row inside it.

A stream is read by ``--workers`` processes, one source file at a time each
(``IterableDataset.shard``), and its state (blocks done, counts, the best candidates) is
kept in ``<out>/.sample_state`` after a block every 15 minutes: a killed job resumes there.
Texts keep at most ``max_chars`` characters (the scorer's own cut, max_tokens ×
``rmselect.presence.score.CHARS_PER_TOKEN``), which bounds the job's memory on books.

Sampling happens once per domain, on CPU, in the ``presence_sample`` rule (:func:`main`): it
writes ``results/presence/corpus/{domain}/part-{k:05d}.parquet`` (``doc_id, text``, shard
``k`` = documents ``k·shard_docs …`` in ``doc_id`` order; trailing shards may be empty when the
source has fewer documents) and ``manifest.json`` (source, filter, seed, counts). Every
scoring job reads these files and nothing else. With ``--covariate-chars`` each shard also
has the documents' covariate (``zlib_ratio``) and the manifest its mean over the whole pool,
for the regression estimator of the domain mean (:mod:`rmselect.presence.covariate`).
"""

from __future__ import annotations

import hashlib
import heapq
import math
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import polars as pl

from rmselect import cli
from rmselect.cli import opt
from rmselect.datasets_io import DatasetError, load_frame

DEFAULT_TEXT_COLUMN = "text"


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


def hash_key(seed: int, doc_id: int) -> int:
    """The sampling key of a streamed document: 64 bits of ``blake2b(f"{seed}:{doc_id}")``."""
    return int.from_bytes(hashlib.blake2b(f"{seed}:{doc_id}".encode(), digest_size=8).digest(), "big")


def bottom_k(rows: Iterable[tuple[int, str]], n_docs: int, seed: int) -> tuple[list[tuple[int, str]], int]:
    """The ``n_docs`` rows with the smallest :func:`hash_key` (sorted by ``doc_id``) and the
    number of rows read: a uniform sample without replacement that depends only on the seed
    and the set of rows, not on their order (what the streamed sample keeps, file by file)."""
    heap: list[tuple[int, int, str]] = []
    rows = list(rows)
    _merge(heap, ((hash_key(seed, d), d, t) for d, t in rows), n_docs)
    return sorted((d, t) for _, d, t in _rows(heap)), len(rows)


@dataclass
class StreamCounts:
    read: int = 0  # rows read from the stream
    matched: int = 0  # rows passing the filter with a non-empty text
    text_bytes: int = 0  # UTF-8 bytes of every text read (a lower bound on network bytes)
    files: int = 0  # source files read
    truncated: int = 0  # sampled texts cut at max_chars
    # the covariate (rmselect.presence.covariate) over every matching document read: the
    # pool's count, sum and sum of squares
    x_n: int = 0
    x_sum: float = 0.0
    x_sq: float = 0.0

    def add_x(self, x: float) -> None:
        self.x_n += 1
        self.x_sum += x
        self.x_sq += x * x


#: Source files per block of a streamed sample: the pool ends at a block boundary, so the
#: documents read (and the sample) do not depend on the number of worker processes.
BLOCK_FILES = 64
#: Bits of a streamed document's row number inside its file (``doc_id = file << 32 | row``).
ROW_BITS = 32
#: State of an unfinished streamed sample, kept in the output folder between attempts.
STATE_DIR = ".sample_state"
#: Seconds between two saves of that state (the candidates of Books are ~2.6 GB).
SAVE_EVERY_S = 900.0

#: Per worker process: the streamed data set and what a file scan needs (set by _init_worker).
_WORKER: dict[str, Any] = {}


def _load_stream(entry: Mapping[str, Any]) -> Any:
    import datasets

    kwargs: dict[str, Any] = {}
    for key in ("name", "data_files", "revision"):
        if entry.get(key) is not None:
            kwargs[key] = entry[key]
    return datasets.load_dataset(
        entry["hub"], split=entry.get("split", "train"), streaming=True, **kwargs
    )


def _init_worker(entry: Mapping[str, Any], n_docs: int, seed: int, max_chars: int | None,
                 ds: Any = None, covariate_chars: int = 0) -> None:
    _WORKER.update(ds=ds if ds is not None else _load_stream(entry), entry=dict(entry),
                   n_docs=n_docs, seed=seed, max_chars=max_chars,
                   covariate_chars=covariate_chars)


def scan_file(index: int) -> tuple[list[tuple[int, int, str]], StreamCounts]:
    """One source file of the stream (``IterableDataset.shard`` = one file): its matching
    documents' ``n_docs`` smallest :func:`hash_key` ``(key, doc_id, text)`` and its counts
    (with the covariate's moments over every matching document when ``covariate_chars``)."""
    from rmselect.presence.covariate import zlib_ratio

    ds, entry = _WORKER["ds"], _WORKER["entry"]
    n_docs, seed, max_chars = _WORKER["n_docs"], _WORKER["seed"], _WORKER["max_chars"]
    cov_chars = int(_WORKER.get("covariate_chars") or 0)
    text_column = entry.get("text_column", DEFAULT_TEXT_COLUMN)
    filters = dict(entry.get("filter") or {})
    part = ds.shard(num_shards=ds.num_shards, index=index, contiguous=True)
    counts = StreamCounts(files=1)
    heap: list[tuple[int, int, str]] = []  # as in _merge
    for row_no, row in enumerate(part):
        counts.read += 1
        text = row.get(text_column)
        counts.text_bytes += len(str(text or "").encode())
        if not text or not all(_get_nested(row, c) in _filter_values(v)
                               for c, v in filters.items()):
            continue
        counts.matched += 1
        if cov_chars:
            counts.add_x(zlib_ratio(str(text), cov_chars))
        doc_id = (index << ROW_BITS) | row_no
        key = hash_key(seed, doc_id)
        if _enters(heap, key, doc_id, n_docs):  # cut the text only if it is kept
            text = str(text)
            if max_chars and len(text) > max_chars:
                text = text[:max_chars]
                counts.truncated += 1
            _merge(heap, [(key, doc_id, text)], n_docs)
    return _rows(heap), counts


def _enters(heap: list[tuple[int, int, str]], key: int, doc_id: int, n_docs: int) -> bool:
    """Whether a candidate belongs among the ``n_docs`` smallest keys of ``heap`` (ties: the
    smaller doc_id)."""
    return len(heap) < n_docs or (-key, -doc_id) > heap[0][:2]


def _merge(heap: list[tuple[int, int, str]], new: Iterable[tuple[int, int, str]], n_docs: int
           ) -> None:
    """Add ``(key, doc_id, text)`` candidates to ``heap`` (``(-key, -doc_id, text)``, the
    largest key on top), keeping the ``n_docs`` smallest keys: O(log n) per candidate."""
    for key, doc_id, text in new:
        if _enters(heap, key, doc_id, n_docs):
            push = heapq.heappush if len(heap) < n_docs else heapq.heapreplace
            push(heap, (-key, -doc_id, text))


def _rows(heap: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    return [(-k, -d, t) for k, d, t in heap]


def _add(total: StreamCounts, c: StreamCounts) -> None:
    for f in fields(StreamCounts):
        setattr(total, f.name, getattr(total, f.name) + getattr(c, f.name))


class _State:
    """An unfinished streamed sample in ``<out>/.sample_state``: the blocks done, the counts
    and the best candidates so far, so a killed job resumes after its last save. The
    candidates go to a file named by the block, then ``state.json`` (written atomically)
    points to it: a kill between the two writes leaves the previous, consistent state. The
    signature (entry, n_docs, seed, block size, max_chars) must match."""

    def __init__(self, folder: Path | None, signature: str) -> None:
        self.folder, self.signature = folder, signature

    def load(self) -> tuple[int, StreamCounts, list[tuple[int, int, str]]] | None:
        import json

        if self.folder is None or not (self.folder / "state.json").is_file():
            return None
        st = json.loads((self.folder / "state.json").read_text())
        if st.get("signature") != self.signature:
            return None
        cand = pl.read_parquet(self.folder / st["candidates"])
        rows = list(zip([int(k) for k in cand["key"].to_list()], cand["doc_id"].to_list(),
                        cand["text"].to_list()))
        return int(st["next_block"]), StreamCounts(**st["counts"]), rows

    def save(self, next_block: int, counts: StreamCounts, rows: list[tuple[int, int, str]]) -> None:
        from dataclasses import asdict

        from rmselect.io import write_json, write_table

        if self.folder is None:
            return
        name = f"candidates-{next_block:06d}.parquet"
        write_table(self.folder / name, pl.DataFrame(
            {"key": [r[0] for r in rows], "doc_id": [r[1] for r in rows],
             "text": [r[2] for r in rows]},
            schema={"key": pl.UInt64, "doc_id": pl.Int64, "text": pl.String}))
        write_json(self.folder / "state.json", {"signature": self.signature,
                                                "next_block": next_block, "candidates": name,
                                                "counts": asdict(counts)})
        for old in self.folder.glob("candidates-*.parquet"):
            if old.name != name:
                old.unlink()


def clear_state(out_dir: str | Path) -> None:
    """Remove a finished sample's state folder."""
    import shutil

    shutil.rmtree(Path(out_dir) / STATE_DIR, ignore_errors=True)


def _stream_sample(entry: Mapping[str, Any], n_docs: int, seed: int, what: str,
                   counts: StreamCounts | None = None, workers: int = 1,
                   max_chars: int | None = None, state_dir: str | Path | None = None,
                   block_files: int = BLOCK_FILES, save_every_s: float = SAVE_EVERY_S,
                   covariate_chars: int = 0) -> pl.DataFrame:
    """The hash bottom-k sample of a stream, read file by file in blocks of ``block_files``
    source files, each block's files scanned by ``workers`` processes.

    ``pool_docs`` ends the reading after the first block at which at least that many
    matching documents have been read; blocks, not workers, decide where, so any number of
    workers gives the same documents. With ``state_dir`` the state is kept after a block
    once ``save_every_s`` seconds have passed since the last save, and a rerun resumes at
    the block after the last save.
    """
    import hashlib
    import json
    from concurrent.futures import ProcessPoolExecutor

    counts = counts if counts is not None else StreamCounts()
    pool = entry.get("pool_docs")
    signature = hashlib.sha256(json.dumps(
        [dict(entry), n_docs, seed, block_files, max_chars, covariate_chars], sort_keys=True
    ).encode()).hexdigest()
    state = _State(Path(state_dir) if state_dir else None, signature)
    resumed = state.load()
    block, heap = 0, []
    if resumed:
        block, done, rows = resumed
        _merge(heap, rows, n_docs)
        _add(counts, done)
    ds = _load_stream(entry)
    n_files = ds.num_shards
    executor = (ProcessPoolExecutor(workers, initializer=_init_worker,
                                    initargs=(dict(entry), n_docs, seed, max_chars, None,
                                              covariate_chars))
                if workers > 1 else None)
    if executor is None:
        _init_worker(entry, n_docs, seed, max_chars, ds, covariate_chars)
    saved = time.monotonic()
    try:
        while block * block_files < n_files and not (pool and counts.matched >= int(pool)):
            files = range(block * block_files, min(n_files, (block + 1) * block_files))
            results = executor.map(scan_file, files) if executor else map(scan_file, files)
            for rows, c in results:
                _merge(heap, rows, n_docs)
                _add(counts, c)
            block += 1
            if time.monotonic() - saved >= save_every_s:  # the candidates may be GBs
                state.save(block, counts, _rows(heap))
                saved = time.monotonic()
    finally:
        if executor is not None:
            executor.shutdown()
    best = _rows(heap)
    if not best:
        raise DatasetError(f"{what}: the stream has no documents matching "
                           f"{dict(entry.get('filter') or {}) or 'anything'}")
    rows = sorted((d, t) for _, d, t in best)
    return pl.DataFrame(
        {"doc_id": [r[0] for r in rows], "text": [r[1] for r in rows]},
        schema={"doc_id": pl.Int64, "text": pl.String},
    )


def sample_documents(
    entry: Mapping[str, Any], n_docs: int, seed: int, root: str = ".", what: str = "corpus",
    counts: StreamCounts | None = None, workers: int = 1, max_chars: int | None = None,
    state_dir: str | Path | None = None, block_files: int = BLOCK_FILES,
    save_every_s: float = SAVE_EVERY_S, covariate_chars: int = 0,
) -> pl.DataFrame:
    """Sample ``n_docs`` documents (``doc_id, text``) of one domain entry.

    Local files and non-streamed hub sets: ``numpy.random.default_rng(seed).choice`` over the
    filtered rows (:func:`sample_frame`); streams: the hash-based bottom-k sample, read in
    blocks of files by ``workers`` processes (:func:`_stream_sample`). Texts longer than
    ``max_chars`` keep their first ``max_chars`` characters (the scorer reads no more: see
    ``rmselect.presence.score.CHARS_PER_TOKEN``); a SlimPajama book is ~0.5 MB. With
    ``covariate_chars``, ``counts`` gets the covariate's moments over the pool (every
    matching non-empty document of the file, or of the stream's blocks read).
    """
    if n_docs < 1:
        raise DatasetError(f"{what}: n_docs must be at least 1, got {n_docs}")
    counts = counts if counts is not None else StreamCounts()
    if entry.get("streaming"):
        if "hub" not in entry:
            raise DatasetError(f"{what}: 'streaming' needs a hub data set, not a local path")
        return _stream_sample(entry, n_docs, seed, what, counts, workers, max_chars, state_dir,
                              block_files, save_every_s, covariate_chars)
    df = load_frame(entry, root).with_row_index("__doc_id")
    df = filter_frame(df, entry.get("filter") or {}, what)
    text_column = entry.get("text_column", DEFAULT_TEXT_COLUMN)
    out = sample_frame(df, n_docs, seed, text_column, what)
    if covariate_chars:
        from rmselect.presence.covariate import zlib_ratio

        for text in df[text_column].to_list():
            if text:
                counts.add_x(zlib_ratio(str(text), covariate_chars))
    if max_chars:
        counts.truncated = int((out["text"].str.len_chars() > max_chars).sum())
        out = out.with_columns(pl.col("text").str.slice(0, max_chars))
    return out


# --------------------------------------------------------------------------- shards


def n_shards(n_docs: int, shard_docs: int) -> int:
    """Shards of a domain: ``ceil(n_docs / shard_docs)``, at least 1."""
    if shard_docs < 1:
        raise ValueError(f"shard_docs must be at least 1, got {shard_docs}")
    return max(1, math.ceil(n_docs / shard_docs))


def shard_name(k: int) -> str:
    return f"part-{k:05d}.parquet"


def split_shards(docs: pl.DataFrame, shards: int, shard_docs: int) -> list[pl.DataFrame]:
    """Shard ``k``: rows ``k·shard_docs … (k+1)·shard_docs - 1`` in ``doc_id`` order."""
    docs = docs.sort("doc_id")
    return [docs.slice(k * shard_docs, shard_docs) for k in range(shards)]


@dataclass(kw_only=True)
class SampleArgs:
    """Sample one presence domain once, on CPU: writes <out-dir>/part-NNNNN.parquet
    (doc_id, text) and <out-dir>/manifest.json (source, filter, seed, counts)."""

    domain: str = opt("domain name (for messages and the manifest)")
    entry: str = opt("JSON data-set entry of the domain (path|hub, text_column, filter, "
                     "streaming, pool_docs)")
    n_docs: int = opt("documents to sample")
    seed: int = opt("sampling seed")
    shard_docs: int = opt("documents per shard (one scoring job each)")
    shards: int = opt("shard files to write (0: ceil(n_docs / shard_docs)); the DAG gives "
                      "every domain the same count", default=0)
    out_dir: str = opt("results/presence/corpus/<domain>")
    workers: int = opt("processes reading a stream's files (the rule's threads)", default=1)
    max_chars: int = opt("characters kept per document (0: all; the DAG passes max_tokens x "
                         "rmselect.presence.score.CHARS_PER_TOKEN)", default=0)
    block_files: int = opt("source files per block of a stream (the sample depends on it)",
                           default=BLOCK_FILES)
    covariate_chars: int = opt("characters of each document the covariate (zlib ratio, "
                               "rmselect.presence.covariate) reads; 0: no covariate",
                               default=0)


def write_corpus(args: SampleArgs) -> dict[str, Any]:
    """Sample, split into shards, write them and then the manifest (last, atomically)."""
    import json

    from rmselect.io import write_json, write_table

    t0 = time.time()
    entry = json.loads(args.entry)
    counts = StreamCounts()
    out = Path(args.out_dir)
    k = args.shards or n_shards(args.n_docs, args.shard_docs)
    if k * args.shard_docs < args.n_docs:
        raise DatasetError(f"presence domain '{args.domain}': {k} shards of {args.shard_docs} "
                           f"cannot hold n_docs {args.n_docs}; raise --shards or --shard-docs")
    docs = sample_documents(entry, args.n_docs, args.seed, what=f"presence domain '{args.domain}'",
                            counts=counts, workers=max(1, args.workers),
                            max_chars=args.max_chars or None, state_dir=out / STATE_DIR,
                            block_files=args.block_files, covariate_chars=args.covariate_chars)
    if args.covariate_chars:
        from rmselect.presence.covariate import NAME, zlib_ratio

        docs = docs.with_columns(pl.Series(NAME, [zlib_ratio(t, args.covariate_chars)
                                                  for t in docs["text"].to_list()],
                                           dtype=pl.Float64))
    parts = split_shards(docs, k, args.shard_docs)
    for i, part in enumerate(parts):
        write_table(out / shard_name(i), part)
    manifest = {
        "domain": args.domain,
        "source": {key: entry[key] for key in ("path", "hub", "name", "split", "data_files",
                                               "revision", "text_column") if key in entry},
        "filter": entry.get("filter") or {},
        "streaming": bool(entry.get("streaming")),
        "pool_docs": entry.get("pool_docs"),
        "sampling": "hash bottom-k (blake2b(seed:doc_id))" if entry.get("streaming")
        else "numpy default_rng(seed).choice over the filtered rows",
        "seed": args.seed, "n_docs_requested": args.n_docs, "n_docs": docs.height,
        "shard_docs": args.shard_docs, "shards": [
            {"file": shard_name(i), "n_docs": p.height} for i, p in enumerate(parts)],
        "rows_read": counts.read or None, "rows_matched": counts.matched or None,
        "files_read": counts.files or None,
        "block_files": args.block_files if entry.get("streaming") else None,
        "workers": args.workers, "max_chars": args.max_chars or None,
        "texts_truncated": counts.truncated,
        "text_bytes_read": counts.text_bytes or None,
        "text_bytes_sampled": int(docs["text"].str.len_bytes().sum()),
        "covariate": _covariate_manifest(counts, args.covariate_chars),
        "wall_s": round(time.time() - t0, 3),
    }
    write_json(out / "manifest.json", manifest)
    clear_state(out)
    return manifest


def _covariate_manifest(counts: StreamCounts, chars: int) -> dict[str, Any] | None:
    """The pool's covariate moments for the regression estimator (None without one)."""
    from rmselect.presence.covariate import LEVEL, NAME, Moments

    if not chars or not counts.x_n:
        return None
    m = Moments(counts.x_n, counts.x_sum, counts.x_sq)
    return {"name": NAME, "chars": chars, "zlib_level": LEVEL, "pool_docs": m.n,
            "mean": m.mean, "sd": m.sd}


def main(argv: Sequence[str] | None = None) -> int:
    args = cli.parse(SampleArgs, argv, prog="presence_sample.py")
    try:
        write_corpus(args)
    except DatasetError as err:
        raise SystemExit(f"presence_sample: {err}") from None
    return 0
