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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

from rmselect.conventions import PREFERENCE_SIGN, ATTRIBUTES
from rmselect.datasets_io import DatasetError, load_frame, require_columns
from rmselect.rm.format import render

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
    return v


def pairs_from_frame(df: pl.DataFrame, what: str = "HelpSteer2-Preference") -> list[Pair]:
    """Chosen/rejected pairs of a HelpSteer2-Preference frame; ties (strength 0) dropped.

    Errors name the 1-based row (of the file, when the frame comes from :func:`numbered`)
    and the field.
    """
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


def load_pairs(entry: Mapping[str, Any], split: str, limit: int | None = None) -> list[Pair]:
    """HelpSteer2-Preference pairs of one split (``train`` / ``validation``)."""
    what = f"data set {describe(entry)}"
    pairs = pairs_from_frame(split_rows(numbered(load_frame(entry)), split, what), what)
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
                scores.append(float(v))
            except (TypeError, ValueError):
                raise DatasetError(f"{where}: field '{a}' = {v!r:.40} is not a score 0-4") from None
        out.append(Rated(_text(row, "prompt", where), _text(row, "response", where),
                         tuple(scores)))  # type: ignore[arg-type]
    if not out:
        raise DatasetError(f"{what}: split {split!r} is empty")
    return out[:limit] if limit else out


# --------------------------------------------------------------------------- tokens


@dataclass
class TruncationStats:
    """How many texts were cut, and how many of those lost part of the response."""

    texts: int = 0
    truncated: int = 0
    response_cut: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"texts": self.texts, "truncated": self.truncated, "response_cut": self.response_cut}


def special_prefix(tokenizer: Any) -> list[int]:
    """Token ids the tokenizer puts before any text (e.g. ``[bos]``), possibly empty."""
    bare = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for k in range(len(full) - len(bare) + 1):
        if full[k : k + len(bare)] == bare:
            return list(full[:k])
    return []


def encode_rendered(
    tokenizer: Any,
    texts: Sequence[str],
    response_starts: Sequence[int] | None = None,
    max_length: int | None = None,
    stats: TruncationStats | None = None,
) -> list[list[int]]:
    """Token ids of rendered chat texts, the way training and evaluation both must do it.

    The special prefix (BOS) is added only when the rendered text does not already start
    with it (chat templates such as Llama-3's write it themselves). Texts longer than
    ``max_length`` are cut from the left after the prefix (see the module docstring);
    ``response_starts`` (character offsets) lets the count of cut responses be exact.
    """
    prefix = special_prefix(tokenizer)
    bos = getattr(tokenizer, "bos_token_id", None)
    want_offsets = response_starts is not None and max_length is not None
    enc = tokenizer(
        list(texts), add_special_tokens=False, return_offsets_mapping=want_offsets
    )
    out: list[list[int]] = []
    for i, ids in enumerate(enc["input_ids"]):
        ids = list(ids)
        head = prefix if prefix and ids[: len(prefix)] != prefix else []
        full = head + ids
        # Kept in front of any cut: the tokenizer's prefix, or a BOS the template wrote.
        n_head = len(prefix) if prefix else int(bool(full) and full[0] == bos)
        if stats is not None:
            stats.texts += 1
        if max_length is not None and len(full) > max_length:
            if max_length <= n_head:
                raise ValueError(f"max_length {max_length} leaves no room after the special prefix")
            cut = len(full) - max_length
            if stats is not None:
                stats.truncated += 1
                if want_offsets:
                    start = response_starts[i]  # type: ignore[index]
                    offs = enc["offset_mapping"][i]
                    n_prompt = len(head) + sum(1 for (_a, b) in offs if b <= start)
                    if cut > n_prompt - n_head:
                        stats.response_cut += 1
            full = full[:n_head] + full[n_head + cut :]
        out.append(full)
    return out


def render_pairs(
    tokenizer: Any, prompts: Sequence[str], responses: Sequence[str], template: str | None
) -> tuple[list[str], list[int]]:
    """Rendered texts and the character offset where each response starts."""
    texts, starts = [], []
    for p, r in zip(prompts, responses):
        t = render(tokenizer, p, r, template)
        pos = t.rfind(r) if r else -1
        texts.append(t)
        starts.append(pos if pos >= 0 else len(t))
    return texts, starts


def tokenize_responses(
    tokenizer: Any,
    prompts: Sequence[str],
    responses: Sequence[str],
    template: str | None,
    max_length: int | None,
    stats: TruncationStats | None = None,
) -> list[list[int]]:
    """Render and encode (prompt, response) texts with the training truncation policy."""
    texts, starts = render_pairs(tokenizer, prompts, responses, template)
    return encode_rendered(tokenizer, texts, starts, max_length, stats)


# --------------------------------------------------------------------------- batches


@dataclass
class Step:
    """One optimizer step: ``micro[a][r]`` = example indices of rank r at accumulation a."""

    index: int
    epoch: int
    micro: list[list[list[int]]] = field(default_factory=list)

    def for_rank(self, rank: int) -> list[list[int]]:
        return [acc[rank] for acc in self.micro]


def batch_plan(
    lengths: Sequence[int],
    global_batch: int,
    micro_batch: int,
    world_size: int,
    epochs: int,
    seed: int,
    mega_batch: int = 8,
) -> list[Step]:
    """The whole run's steps; a pure function of its arguments (see module docstring).

    ``lengths`` is the padded length cost of each example (for a pair, the longer side).
    """
    accum = accumulation_steps(global_batch, micro_batch, world_size)
    n = len(lengths)
    if n < global_batch:
        raise ValueError(
            f"only {n} training examples but a global batch of {global_batch}; lower rm.global_batch"
        )
    lens = np.asarray(lengths)
    steps: list[Step] = []
    per_epoch = n // global_batch
    for epoch in range(epochs):
        rng = np.random.default_rng([seed, epoch])
        perm = rng.permutation(n)[: per_epoch * global_batch]
        group = max(1, mega_batch) * global_batch
        batches: list[np.ndarray] = []
        for g0 in range(0, len(perm), group):
            chunk = perm[g0 : g0 + group]
            chunk = chunk[np.lexsort((chunk, lens[chunk]))]  # by length, ties by index
            sub = [chunk[i : i + global_batch] for i in range(0, len(chunk), global_batch)]
            order = rng.permutation(len(sub))
            batches.extend(sub[j] for j in order)
        for b in batches:
            b = b[np.lexsort((b, lens[b]))]
            micro = [b[i : i + micro_batch].tolist() for i in range(0, global_batch, micro_batch)]
            grid = [
                [micro[a * world_size + r] for r in range(world_size)] for a in range(accum)
            ]
            steps.append(Step(index=len(steps), epoch=epoch, micro=grid))
    return steps


def accumulation_steps(global_batch: int, micro_batch: int, world_size: int) -> int:
    """``global / (micro x world)``; an error naming the fields when it does not divide."""
    if global_batch <= 0 or micro_batch <= 0 or world_size <= 0:
        raise ValueError("global batch, micro batch and world size must be positive")
    denom = micro_batch * world_size
    if global_batch % denom:
        raise ValueError(
            f"rm.global_batch {global_batch} is not divisible by micro batch {micro_batch} x "
            f"{world_size} rank(s) = {denom}; change rm.global_batch, the micro batch or the "
            "number of ranks"
        )
    return global_batch // denom


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int, side: str = "right"):
    """``(input_ids, attention_mask)`` long tensors padded to the longest sequence."""
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if not len(s):
            raise ValueError("empty token sequence")
        t = torch.as_tensor(list(s), dtype=torch.long)
        if side == "right":
            ids[i, : len(s)] = t
            mask[i, : len(s)] = 1
        else:
            ids[i, width - len(s) :] = t
            mask[i, width - len(s) :] = 1
    return ids, mask


@dataclass
class Packed:
    """Sequences packed into rows: ``input_ids``/``position_ids`` (rows x width) and, per
    sequence in input order, the (row, column) of its last token."""

    input_ids: Any
    position_ids: Any
    last_row: Any
    last_col: Any
    widths: list[int]

    @property
    def padding_fraction(self) -> float:
        total = self.input_ids.numel()
        return 0.0 if total == 0 else 1.0 - sum(self.widths) / total


def balanced_rows(lengths: Sequence[int], n_rows: int) -> tuple[list[list[int]], int]:
    """Longest-processing-time split of sequences into ``n_rows`` rows; (rows, width)."""
    import heapq

    heap = [(0, r) for r in range(n_rows)]
    rows: list[list[int]] = [[] for _ in range(n_rows)]
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        load, r = heapq.heappop(heap)
        rows[r].append(i)
        heapq.heappush(heap, (load + lengths[i], r))
    rows = [row for row in rows if row]
    return rows, max(sum(lengths[i] for i in row) for row in rows)


def choose_layout(lengths: Sequence[int], kappa: float = 1024.0,
                  max_padding: float = 0.05) -> tuple[list[list[int]], int]:
    """Rows for :func:`pack_rows`: the cheapest layout whose padding is <= ``max_padding``.

    Cost of ``R`` rows of width ``W`` ~ ``R W (1 + W / kappa)``: the linear layers scale with
    positions, dense masked attention with ``W`` per position; ``kappa`` = per-token
    linear work / per-position attention work (~ 2 hidden + 1.5 ffn, see
    :func:`rmselect.rm.model.attention_ratio`). When no layout reaches ``max_padding`` the
    least padded one is used.
    """
    total = sum(lengths)
    best_ok = best_any = None
    n = len(lengths)
    # Row counts ceil(n / k): every distinct "k sequences per row" layout, ~2 sqrt(n) tries.
    for n_rows in sorted({-(-n // k) for k in range(1, n + 1)}):
        rows, width = balanced_rows(lengths, n_rows)
        pad = 1.0 - total / (len(rows) * width)
        cost = len(rows) * width * (1.0 + width / kappa)
        if pad <= max_padding and (best_ok is None or cost < best_ok[0]):
            best_ok = (cost, rows, width)
        if best_any is None or pad < best_any[0]:
            best_any = (pad, rows, width)
    chosen = best_ok if best_ok is not None else best_any
    assert chosen is not None
    return chosen[1], chosen[2]


def pack_rows(seqs: Sequence[Sequence[int]], pad_id: int, kappa: float = 1024.0,
              max_padding: float = 0.05) -> Packed:
    """Pack sequences into rows (no attention across sequences), padding <= ``max_padding``
    where possible (:func:`choose_layout`).

    Inside a row every sequence's positions restart at 0, which transformers turns into a
    block-diagonal causal mask when no attention mask is given; the row's tail is padding
    whose positions continue the last sequence (causal attention never lets a real token
    see it).
    """
    import torch

    if not seqs:
        raise ValueError("no sequences to pack")
    lengths = [len(s) for s in seqs]
    if min(lengths) == 0:
        raise ValueError("empty token sequence")
    rows, width = choose_layout(lengths, kappa, max_padding)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    pos = torch.zeros((len(rows), width), dtype=torch.long)
    last_row = torch.zeros(len(seqs), dtype=torch.long)
    last_col = torch.zeros(len(seqs), dtype=torch.long)
    for r, members in enumerate(rows):
        col = 0
        for i in members:
            n = len(seqs[i])
            ids[r, col : col + n] = torch.as_tensor(list(seqs[i]), dtype=torch.long)
            pos[r, col : col + n] = torch.arange(n)
            last_row[i], last_col[i] = r, col + n - 1
            col += n
        if col < width:  # tail: continue the last sequence's positions
            pos[r, col:] = torch.arange(col, width) - col + pos[r, col - 1] + 1
    return Packed(ids, pos, last_row, last_col, [len(s) for s in seqs])


def padding_fraction(seqs_per_batch: Sequence[Sequence[Sequence[int]]]) -> float:
    """Share of padded positions when each inner list is padded to its longest member."""
    total = real = 0
    for seqs in seqs_per_batch:
        if not seqs:
            continue
        width = max(len(s) for s in seqs)
        total += width * len(seqs)
        real += sum(len(s) for s in seqs)
    return 0.0 if total == 0 else 1.0 - real / total
