"""Parameter counts from checkpoints, without loading weights.

A ``.safetensors`` file starts with an 8-byte little-endian header length and a JSON header
that lists every tensor's dtype and shape; summing the shape products counts the parameters
exactly (tensors saved once, so tied embeddings count once - as the model table does).

* local model folders (toy zoo, variants, local paths): every ``*.safetensors`` file listed by
  ``model.safetensors.index.json`` or found in the folder -> source ``safetensors``;
* hub models: the same, when the index/shards are in the local Hugging Face cache (never the
  network) -> source ``hub-cache``; otherwise the table's ``params_b`` -> source ``table``.

The count is compared with the table's ``params_b``; a relative difference above the
tolerance (``benchmarks.params_tolerance``, default 5%) is a warning in the log and in
``params.json`` (the table may round, or count differently), not an error.
"""

from __future__ import annotations

import json
import logging
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from rmselect import cli
from rmselect.cli import opt
from rmselect.io import write_json

log = logging.getLogger("rmselect.bench.params")


def safetensors_param_count(path: str | Path) -> int:
    """Number of parameters in one ``.safetensors`` file, read from its header only."""
    path = Path(path)
    with path.open("rb") as fh:
        raw = fh.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path}: not a safetensors file (shorter than 8 bytes)")
        (n,) = struct.unpack("<Q", raw)
        if n > 100_000_000:
            raise ValueError(f"{path}: implausible safetensors header length {n}")
        header = json.loads(fh.read(n))
    total = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        count = 1
        for d in info["shape"]:
            count *= int(d)
        total += count
    return total


def shard_files(folder: str | Path) -> list[Path]:
    """The safetensors files of a model folder (from the index when there is one)."""
    folder = Path(folder)
    index = folder / "model.safetensors.index.json"
    if index.exists():
        names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [folder / n for n in names]
    return sorted(folder.glob("*.safetensors"))


def count_folder(folder: str | Path) -> int | None:
    files = shard_files(folder)
    if not files or not all(f.exists() for f in files):
        return None
    return sum(safetensors_param_count(f) for f in files)


def count_hub_cache(repo_id: str) -> int | None:
    """Count from the local HF cache only (``try_to_load_from_cache`` never downloads)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover
        return None
    index = try_to_load_from_cache(repo_id, "model.safetensors.index.json")
    names: list[str]
    if isinstance(index, str):
        names = sorted(set(json.loads(Path(index).read_text())["weight_map"].values()))
    else:
        names = ["model.safetensors"]
    total = 0
    for n in names:
        p = try_to_load_from_cache(repo_id, n)
        if not isinstance(p, str):
            return None
        total += safetensors_param_count(p)
    return total


def count_params(
    model: str,
    ref: str,
    kind: str,
    params_b_table: float,
    tokens_t_table: float | None,
    tolerance: float = 0.05,
) -> dict[str, Any]:
    """The ``params.json`` record of one model."""
    counted: int | None = None
    source = "table"
    if kind == "hub":
        counted = count_hub_cache(ref)
        if counted is not None:
            source = "hub-cache"
    else:
        if not Path(ref).is_dir():
            raise FileNotFoundError(
                f"model '{model}': model folder {ref} does not exist; build the model first"
            )
        counted = count_folder(ref)
        if counted is None:
            raise FileNotFoundError(
                f"model '{model}': no safetensors weights in {ref} (only safetensors are loaded)"
            )
        source = "safetensors"
    params_b = counted / 1e9 if counted is not None else params_b_table
    rel = abs(params_b - params_b_table) / params_b_table if counted is not None else None
    warning = None
    if rel is not None and rel > tolerance:
        warning = (
            f"model '{model}': counted {params_b:.6g} B parameters from the checkpoint but the "
            f"table says params_b = {params_b_table:.6g} ({rel:.1%} apart, tolerance "
            f"{tolerance:.0%}); check the table"
        )
        log.warning(warning)
    return {
        "model": model,
        "model_ref": ref,
        "params": counted,
        "params_b": params_b,
        "params_b_table": params_b_table,
        "relative_difference": rel,
        "tolerance": tolerance,
        "warning": warning,
        "source": source,
        "tokens_t": tokens_t_table,
        "tokens_source": "table" if tokens_t_table is not None else None,
    }


@dataclass(kw_only=True)
class ParamsArgs:
    """Count a model's parameters from its safetensors headers (no weights loaded) and compare
    with the model table; writes results/benchmarks/{model}/params.json."""

    model: str = opt("model name")
    model_ref: str = opt("model folder or hub id")
    kind: str = opt("where the model comes from", choices=["toy", "variant", "gguf", "local", "hub"])
    params_b: float = opt("params_b from the table")
    tokens_t: float | None = opt("tokens_t from the table", default=None)
    tolerance: float = opt("relative warning threshold", default=0.05)
    out: Path = opt("output params.json")


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(ParamsArgs, write_params, argv, prog="bench_params.py")


def write_params(args: ParamsArgs) -> int:
    rec = count_params(args.model, args.model_ref, args.kind, args.params_b, args.tokens_t,
                       args.tolerance)
    write_json(args.out, rec)
    log.info("model %s: %s params (%s)", args.model, rec["params"], rec["source"])
    return 0
