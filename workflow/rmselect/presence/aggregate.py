"""Aggregation of shard scores: one small CPU job per (model, domain), one per model.

* :func:`aggregate_domain` concatenates ``results/presence/{model}/shards/{domain}/part-*.parquet``
  (in shard order, i.e. ``doc_id`` order) into ``results/presence/{model}/{domain}.parquet``
  and writes ``{domain}.json`` (documents, dropped, mean, tokens, summed shard wall seconds).
* :func:`model_provenance` merges a model's ``{domain}.json`` files into ``presence.json``
  (``model, scored_by, reused_from`` and the shard settings), the file family reuse and the
  distributions read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import polars as pl

from rmselect import cli
from rmselect.cli import opt

SCORE_SCHEMA = {"doc_id": pl.Int64, "n_tokens": pl.Int64, "score": pl.Float64}
SETTINGS = ("source", "max_tokens", "prefix", "prefix_token_id", "device", "logit_chunk")


@dataclass(kw_only=True)
class DomainArgs:
    """Concatenate one model's shard scores of one domain into <out> and <meta>."""

    name: str = opt("model name")
    domain: str = opt("domain name")
    shards: list[str] = opt("shard score parquet files, in shard order")
    out: str = opt("results/presence/<model>/<domain>.parquet")
    meta: str = opt("results/presence/<model>/<domain>.json")


@dataclass(kw_only=True)
class ModelArgs:
    """Merge one model's per-domain provenance into <out> (presence.json)."""

    name: str = opt("model name")
    domains: list[str] = opt("domain names")
    presence_dir: str = opt("results/presence/<model>")
    out: str = opt("results/presence/<model>/presence.json")


def aggregate_domain(args: DomainArgs) -> int:
    from rmselect.io import read_json, write_json, write_table

    frames, metas = [], []
    for path in args.shards:
        frames.append(pl.read_parquet(path).select(
            [pl.col(c).cast(t) for c, t in SCORE_SCHEMA.items()]))
        metas.append(read_json(Path(path).with_suffix(".json")))
    df = pl.concat(frames) if frames else pl.DataFrame(schema=SCORE_SCHEMA)
    if df.height == 0:
        raise SystemExit(f"presence: model '{args.name}' domain '{args.domain}': no document has "
                         "a scorable token; check the corpus")
    if df["doc_id"].n_unique() != df.height:
        raise SystemExit(f"presence: model '{args.name}' domain '{args.domain}': a doc_id occurs "
                         "in two shards; resample the corpus (presence_sample)")
    write_table(Path(args.out), df)
    meta = {k: metas[0].get(k) for k in SETTINGS} if metas else {}
    meta.update(n_docs=df.height, dropped=sum(int(m.get("dropped", 0)) for m in metas),
                mean=float(df["score"].mean()),  # type: ignore[arg-type]
                tokens=int(df["n_tokens"].sum()), shards=len(args.shards),
                wall_s=round(sum(float(m.get("wall_s", 0.0)) for m in metas), 3))
    write_json(Path(args.meta), meta)
    return 0


def model_provenance(args: ModelArgs) -> int:
    from rmselect.io import read_json, write_json

    metas = {d: read_json(Path(args.presence_dir) / f"{d}.json") for d in args.domains}
    first = next(iter(metas.values()), {})
    prov: dict[str, Any] = {"model": args.name, "scored_by": args.name, "reused_from": None}
    prov.update({k: first.get(k) for k in SETTINGS})
    prov["domains"] = {d: {k: m.get(k) for k in ("n_docs", "dropped", "mean", "tokens", "shards",
                                                 "wall_s")} for d, m in metas.items()}
    prov["wall_s"] = round(sum(float(m.get("wall_s") or 0) for m in metas.values()), 3)
    write_json(Path(args.out), prov)
    return 0


def main_domain(argv: Sequence[str] | None = None) -> int:
    return cli.run(DomainArgs, aggregate_domain, argv, prog="presence_aggregate.py")


def main_model(argv: Sequence[str] | None = None) -> int:
    return cli.run(ModelArgs, model_provenance, argv, prog="presence_provenance.py")
