"""Batches of reward-model training: the seeded batch plan, padding and packing.

The batch-order convention (a pure function of ``(seed, epoch)``, independent of the number
of ranks) is stated in :mod:`rmselect.rm.data`'s docstring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np


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


#: Attention kernels that build each row's mask from ``position_ids`` (transformers'
#: ``masking_utils.find_packed_sequence_indices``), so that sequences packed side by side in
#: several rows stay apart. Every other kernel (flash-attention's varlen path, remote code)
#: sees sequence boundaries only in a one-row batch (transformers' ``_is_packed_sequence``).
ROW_MASK_KERNELS = ("eager", "sdpa", "flex_attention")


def one_row_only(kernel: str | None) -> bool:
    """Whether packed batches for ``kernel`` must be one row (see :data:`ROW_MASK_KERNELS`)."""
    return kernel not in ROW_MASK_KERNELS


def choose_layout(lengths: Sequence[int], kappa: float = 1024.0,
                  max_padding: float = 0.05) -> tuple[list[list[int]], int]:
    """Rows for :func:`pack_rows` under a dense-mask kernel: the cheapest layout whose
    padding is <= ``max_padding``.

    Cost of ``R`` rows of width ``W`` ~ ``R W (1 + W / kappa)``: the linear layers scale with
    positions, dense masked attention with ``W`` per position (eager and sdpa compute every
    query-key product of a row, masked or not); ``kappa`` = per-token linear work /
    per-position attention work (~ 2 hidden + 1.5 ffn, see
    :func:`rmselect.rm.model.attention_ratio`). One row is among the candidates and wins
    whenever its ``W x W`` attention costs less than the padding of more rows. When no layout
    reaches ``max_padding`` the least padded one is used.
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
              max_padding: float = 0.05, n_rows: int | None = 1) -> Packed:
    """Pack sequences side by side, positions restarting at 0 for each (no attention across
    sequences).

    ``n_rows=1`` (the default): one row holding every sequence, no padding — the layout of
    transformers' ``DataCollatorWithFlattening``, which every attention kernel reads as
    separate sequences (flash-attention through ``cu_seqlens`` derived from the position
    resets, eager/sdpa/flex through a block-diagonal mask built from them). ``n_rows=None``:
    :func:`choose_layout`'s cheapest rows, for dense-mask kernels only
    (:data:`ROW_MASK_KERNELS`); ``n_rows=k``: ``k`` balanced rows (the packing probe).
    A row's tail is padding whose positions continue its last sequence (causal attention
    never lets a real token see it).
    """
    import torch

    if not seqs:
        raise ValueError("no sequences to pack")
    lengths = [len(s) for s in seqs]
    if min(lengths) == 0:
        raise ValueError("empty token sequence")
    if n_rows is None:
        rows, width = choose_layout(lengths, kappa, max_padding)
    else:
        rows, width = balanced_rows(lengths, max(1, min(int(n_rows), len(seqs))))
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
