"""Training and validation data for reward models: pairs, attribute rows, tokens, batches.

Conventions (all tested in tests/test_rm_data.py):

* **Preference sign.** HelpSteer2-Preference's ``preference_strength`` runs from -3 to 3;
  the data card reads "-3: Response 1 is much better than Response 2 ... 3: Response 2 is
  much better than Response 1", and 0 means no preference. :data:`PREFERENCE_SIGN` is the
  one place that encodes this: a pair whose strength has this sign prefers ``response_1``.
  Ties (strength 0) are dropped.
* **Truncation.** A rendered text longer than ``max_length`` tokens loses tokens from the
  *left*, after the tokenizer's special prefix (e.g. BOS): the prompt goes first, and only
  when the response alone is too long is the response cut, again from its start. The end
  of the text, where the reward is read, always survives. :class:`TruncationStats` counts
  both cases and the trainer logs them.
* **Batches.** The order of examples is a pure function of ``(seed, epoch)``: each epoch is
  a seeded permutation; ``mega_batch`` consecutive global batches are sorted by length and
  cut into global batches of similar length, whose order is shuffled again (seeded). The
  trailing ``n % global_batch`` examples of an epoch are dropped. Inside a global batch the
  sorted examples are cut into ``world_size x accumulation`` micro-batches; micro-batch
  ``c`` goes to rank ``c % world_size`` at accumulation index ``c // world_size``. The set
  of examples in step ``k`` therefore does not depend on the number of ranks.

Layout: this module loads the pairs and attribute rows; tokens (rendering, truncation) are
in :mod:`rmselect.rm.tokens`, batches (plan, padding, packing) in :mod:`rmselect.rm.batches`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import polars as pl

from rmselect.conventions import PREFERENCE_SIGN, ATTRIBUTES
from rmselect.datasets_io import DatasetError, load_frame, require_columns

# Tokens and batches have their own modules; their names stay importable from here (the
# trainer, the scorers, tests and bench/ use ``data.<name>``).
from rmselect.rm.batches import (  # noqa: F401
    Packed,
    Step,
    accumulation_steps,
    balanced_rows,
    batch_plan,
    choose_layout,
    one_row_only,
    pack_rows,
    pad_batch,
    padding_fraction,
)
from rmselect.rm.tokens import (  # noqa: F401
    TruncationStats,
    encode_rendered,
    render_pairs,
    special_prefix,
    tokenize_responses,
)

PAIR_COLUMNS = ["prompt", "response_1", "response_2", "preference_strength"]


@dataclass(frozen=True)
class Pair:
    """One preference pair after applying :data:`PREFERENCE_SIGN`."""

    prompt: str
    chosen: str
    rejected: str
    strength: int


#: Column holding each row's 1-based row number in the file (or hub split) it came from.
ROW = "_row"
#: Names of the validation split: public loaders (and the HelpSteer2-Preference file's
#: ``split`` column) call it ``val``; the pipeline calls it ``validation``.
SPLIT_ALIASES: dict[str, tuple[str, ...]] = {"validation": ("validation", "val")}


def _row_no(row: Mapping[str, Any], i: int) -> int:
    return int(row[ROW]) if row.get(ROW) is not None else i + 1


def _text(row: Mapping[str, Any], col: str, where: str) -> str:
    v = row[col]
    if not isinstance(v, str):
        raise DatasetError(f"{where}: field '{col}' must be text, got {v!r:.60}")
    if not v.strip():
        raise DatasetError(f"{where}: field '{col}' is empty; fix or remove the row")
    return v


#: What to do with a pair whose two responses are identical but whose strength is not 0
#: (config ``rm.identical_pairs``): drop it (counted in the training log) or refuse the file.
IDENTICAL = ("drop", "error")
#: The HelpSteer2 attribute scale.
ATTRIBUTE_RANGE = (0.0, 4.0)


def pairs_from_frame(df: pl.DataFrame, what: str = "HelpSteer2-Preference",
                     identical: str = "drop", counts: dict[str, int] | None = None) -> list[Pair]:
    """Chosen/rejected pairs of a HelpSteer2-Preference frame; ties (strength 0) dropped.

    A pair with identical responses and a non-zero strength is dropped (and counted in
    ``counts['identical']``) or, with ``identical='error'``, refused. Errors name the
    1-based row (of the file, when the frame comes from :func:`numbered`) and the field.
    """
    if identical not in IDENTICAL:
        raise ValueError(f"identical={identical!r}; use one of {', '.join(IDENTICAL)}")
    require_columns(df, PAIR_COLUMNS, what)
    cols = PAIR_COLUMNS + ([ROW] if ROW in df.columns else [])
    out: list[Pair] = []
    for i, row in enumerate(df.select(cols).iter_rows(named=True)):
        where = f"{what}: row {_row_no(row, i)}"
        s = row["preference_strength"]
        if s is None:
            raise DatasetError(f"{where}: field 'preference_strength' is empty")
        try:
            s_int = int(s)
            ok = s_int == float(s)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise DatasetError(
                f"{where}: field 'preference_strength' = {s!r:.40} is not an integer -3..3"
            )
        if not -3 <= s_int <= 3:
            raise DatasetError(f"{where}: field 'preference_strength' = {s_int} is outside -3..3")
        if s_int == 0:
            continue
        prompt = _text(row, "prompt", where)
        r1, r2 = _text(row, "response_1", where), _text(row, "response_2", where)
        if r1.strip() == r2.strip():
            if identical == "error":
                raise DatasetError(
                    f"{where}: fields 'response_1' and 'response_2' are identical but"
                    f" preference_strength is {s_int}; fix the row, or set"
                    " rm.identical_pairs: drop to skip such pairs"
                )
            if counts is not None:
                counts["identical"] = counts.get("identical", 0) + 1
            continue
        first_wins = (s_int > 0) == (PREFERENCE_SIGN > 0)
        chosen, rejected = (r1, r2) if first_wins else (r2, r1)
        out.append(Pair(prompt, chosen, rejected, abs(s_int)))
    return out


def numbered(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` with :data:`ROW`, the 1-based row number, so messages survive split filtering."""
    return df.with_row_index(ROW, offset=1)


def split_rows(df: pl.DataFrame, split: str, what: str) -> pl.DataFrame:
    """Rows of ``split`` when a ``split`` column exists; all rows for ``train`` otherwise.

    ``validation`` also matches ``val`` (:data:`SPLIT_ALIASES`), the value the published
    HelpSteer2-Preference file uses.
    """
    if "split" in df.columns:
        names = list(SPLIT_ALIASES.get(split, (split,)))
        sub = df.filter(pl.col("split").cast(pl.Utf8).is_in(names))
        if sub.height == 0:
            found = sorted(set(df["split"].cast(pl.Utf8).to_list()))
            raise DatasetError(f"{what}: no rows with split == {split!r} (found {found})")
        return sub
    if split == "train":
        return df
    raise DatasetError(f"{what}: no 'split' column, so no {split!r} rows; add a split column")


def load_pairs(entry: Mapping[str, Any], split: str, limit: int | None = None,
               identical: str = "drop", counts: dict[str, int] | None = None) -> list[Pair]:
    """HelpSteer2-Preference pairs of one split (``train`` / ``validation``)."""
    what = f"data set {describe(entry)}"
    pairs = pairs_from_frame(split_rows(numbered(load_frame(entry)), split, what), what,
                             identical, counts)
    if not pairs:
        raise DatasetError(f"{what}: split {split!r} has no pairs with a preference")
    return pairs[:limit] if limit else pairs


def describe(entry: Mapping[str, Any]) -> str:
    """A data-set entry in messages: its file, or its hub id with the options given."""
    if "path" in entry:
        return str(entry["path"])
    return " ".join([str(entry.get("hub"))] + [f"{k}={entry[k]}" for k in
                    ("name", "split", "data_files", "revision") if entry.get(k) is not None])


@dataclass(frozen=True)
class Rated:
    """One HelpSteer2 row: a response and its five attribute scores (0-4)."""

    prompt: str
    response: str
    scores: tuple[float, float, float, float, float]


def load_rated(entry: Mapping[str, Any], split: str = "train", limit: int | None = None) -> list[Rated]:
    """HelpSteer2 rows (prompt, response, five attributes) of one split."""
    what = f"data set {describe(entry)}"
    df = split_rows(numbered(load_frame(entry)), split, what)
    require_columns(df, ["prompt", "response", *ATTRIBUTES], what)
    out = []
    for i, row in enumerate(df.select(["prompt", "response", *ATTRIBUTES, ROW]).iter_rows(named=True)):
        where = f"{what}: row {_row_no(row, i)}"
        scores = []
        for a in ATTRIBUTES:
            v = row[a]
            try:
                x = float(v)
            except (TypeError, ValueError):
                raise DatasetError(f"{where}: field '{a}' = {v!r:.40} is not a score 0-4") from None
            lo, hi = ATTRIBUTE_RANGE
            if not lo <= x <= hi:
                raise DatasetError(
                    f"{where}: field '{a}' = {v!r:.40} is outside the HelpSteer2 scale"
                    f" {lo:g}-{hi:g}; fix the row or rescale the column"
                )
            scores.append(x)
        out.append(Rated(_text(row, "prompt", where), _text(row, "response", where),
                         tuple(scores)))  # type: ignore[arg-type]
    if not out:
        raise DatasetError(f"{what}: split {split!r} is empty")
    return out[:limit] if limit else out
