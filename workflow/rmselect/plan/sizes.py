"""Data sizes and step counts for the projection: rows and mean tokens per rendered text.

Counted from the data where the config names local files, taken from the ``plan``
section's stated sizes otherwise (hub data sets are not available offline); see
:mod:`rmselect.plan.projection` for the counting rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import polars as pl

from rmselect.config import ConfigError, Study


@dataclass(frozen=True)
class TextSize:
    """Rows of a data set and mean tokens per rendered text, with where they came from."""

    rows: int
    tokens: float
    source: str
    val_rows: int = 0


def _capped(tokens: float, cap: int | None) -> float:
    return min(float(tokens), float(cap)) if cap else float(tokens)


def _local(entry: Mapping[str, Any], root: Path) -> Path | None:
    if "path" not in entry:
        return None
    p = Path(entry["path"])
    p = p if p.is_absolute() else root / p
    return p if p.exists() else None


def _read_rows(path: Path) -> pl.DataFrame:
    from rmselect.datasets_io import _read_local

    return _read_local(path)


def _text_tokens(chars: float, cfg: Mapping[str, Any]) -> float:
    return chars / float(cfg["chars_per_token"]) + float(cfg["template_tokens"])


def _mean_len(df: pl.DataFrame, cols: Sequence[str]) -> float:
    """Mean characters of the concatenation of ``cols`` (missing columns count 0)."""
    if df.height == 0:
        return 0.0
    total = sum(df[c].cast(pl.String).str.len_chars().fill_null(0).sum()
                for c in cols if c in df.columns)
    return float(total) / df.height


def _stated(cfg: Mapping[str, Any], section: str, key: str, what: str) -> dict[str, Any]:
    table = cfg.get(section) or {}
    if key not in table:
        raise ConfigError(
            f"config: field 'plan.{section}.{key}' is missing: {what} is not a local file, "
            f"so state its size and mean tokens there"
        )
    return dict(table[key])


def data_size(study: Study, cfg: Mapping[str, Any], key: str, root: Path) -> TextSize:
    """HelpSteer2 (``helpsteer2``, rows) or HelpSteer2-Preference (pairs; train and val)."""
    entry = study.config["data"][key]
    path = _local(entry, root)
    if path is not None:
        df = _read_rows(path)
        if key == "helpsteer2_preference":
            if "preference_strength" in df.columns:
                df = df.filter(pl.col("preference_strength") != 0)
            split = df["split"] if "split" in df.columns else pl.Series(["train"] * df.height)
            tr = df.filter(split == "train")
            va = df.filter(split.is_in(["validation", "val"]))
            chars = _mean_len(tr, ["prompt"]) + (_mean_len(tr, ["response_1"])
                                                 + _mean_len(tr, ["response_2"])) / 2
            return TextSize(tr.height, _text_tokens(chars, cfg), f"counted in {entry['path']}",
                            va.height)
        if "split" in df.columns:
            df = df.filter(pl.col("split") == "train")
        chars = _mean_len(df, ["prompt", "response"])
        return TextSize(df.height, _text_tokens(chars, cfg), f"counted in {entry['path']}")
    s = _stated(cfg, "data", key, f"data.{key}")
    return TextSize(int(s["train"]), float(s["tokens"]), "stated in plan.data",
                    int(s.get("validation", 0)))


def _steps(examples: int, global_batch: int, epochs: float) -> int:
    return int(math.floor(epochs)) * (examples // global_batch) + (
        int((epochs - math.floor(epochs)) * examples) // global_batch
    )


def _eval_points(steps: int, every: int) -> int:
    from rmselect.rm.run_config import eval_points

    return len(eval_points(steps, every)) if steps > 0 else 0
