"""The RM trainer's forwards outside the fit step: validation and the packing probe.

:func:`evaluate` scores every validation sequence across ranks, :func:`val_metrics` turns
the scores into the logged accuracy, and :func:`decide_packing` decides once per run whether
packed batches can be trusted. :func:`_forward_rows` is the one forward all of them (and the
fit loop) use.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from rmselect.rm.prepare import Prepared
from rmselect.rm.run_config import RunConfig
from rmselect.runtime import Log


def _forward_rows(engine: Any, rows: list[list[int]], pad_id: int, device: Any,
                  pack: bool = False, kappa: float = 1024.0,
                  n_rows: int | None = 1) -> tuple[Any, int]:
    """Rewards of ``rows`` (one forward) and the number of positions computed.

    Packed: ``n_rows`` rows (1: one row, the layout every kernel reads as separate
    sequences; None: the cost model's rows, for dense-mask kernels), see
    :func:`rmselect.rm.batches.pack_rows`."""
    from rmselect.rm.batches import pack_rows, pad_batch

    if pack:
        pk = pack_rows(rows, pad_id, kappa, n_rows=n_rows)
        out = engine(pk.input_ids.to(device), position_ids=pk.position_ids.to(device),
                     last_row=pk.last_row.to(device), last_col=pk.last_col.to(device))
        return out, int(pk.input_ids.numel())
    ids, mask = pad_batch(rows, pad_id, "right")
    return engine(ids.to(device), mask.to(device)), int(ids.numel())


def decide_packing(engine: Any, cfg: RunConfig, args: argparse.Namespace, pad_id: int,
                   device: Any, kappa: float, dtype: Any, log: "Log") -> dict[str, Any]:
    """Packing only where it is proven: off for remote-code models (their masks are their
    own), else on only when packed and padded rewards of two probe sequences agree
    (:func:`rmselect.rm.model.packing_agrees`); otherwise padding, with a warning.

    The probe packs the layouts training will use for the model's attention kernel: one row
    for kernels that see sequence boundaries only there (flash-attention), else one row and
    several rows (dense-mask kernels, whose rows the cost model picks).

    Returns ``{"requested", "used", "reason", "kernel", "n_rows"}`` (written into run.json;
    ``n_rows`` 1 = one row, None = the cost model's rows). Every rank runs the same probe
    and reaches the same decision.
    """
    from rmselect.rm.batches import one_row_only
    from rmselect.rm.model import kernel_of, packed_layouts, packing_agrees

    out: dict[str, Any] = {"requested": cfg.packing, "used": False,
                           "reason": "not requested (--no-packing)", "kernel": None, "n_rows": 1}
    if not cfg.packing:
        return out
    if args.trust_remote_code:
        out["reason"] = "trust_remote_code model: its attention mask is its own code"
        log.info(f"warning: packing off, padded batches instead ({out['reason']})")
        return out
    kernel = kernel_of(engine.module.hf)
    out.update(kernel=kernel, n_rows=1 if one_row_only(kernel) else None)

    def forward(rows: list[list[int]], n_rows: int) -> Any:
        return _forward_rows(engine, rows, pad_id, device, n_rows > 0, kappa, n_rows)[0]

    engine.eval()
    layouts = packed_layouts(kernel)
    ok, diff = packing_agrees(forward, int(engine.module.hf.config.vocab_size), dtype, layouts)
    engine.train()
    if ok:
        out.update(used=True, reason=f"packed ({' and '.join(f'{k} row(s)' for k in layouts)}) "
                   f"and padded rewards agree under {kernel} (max diff {diff:.2g})")
    else:
        out["reason"] = (f"packed and padded rewards differ by {diff:.3g}: the model does not"
                         " keep packed sequences apart")
        log.info(f"warning: packing off, padded batches instead ({out['reason']})")
    return out


def evaluate(engine: Any, prep: Prepared, pad_id: int, batch: int, rank: int, world: int,
             device: Any) -> Any:
    """Rewards of every validation sequence, ``(2 x pairs, labels)``: chosen then rejected.

    Sequences are sorted by length and cut into batches dealt round-robin to ranks; every
    rank runs the same number of forwards (ZeRO-3 gathers parameters collectively), the
    last ones repeating a batch when a rank has none left.
    """
    import numpy as np
    import torch
    import torch.distributed as dist

    seqs = prep.val_chosen + prep.val_rejected
    order = sorted(range(len(seqs)), key=lambda i: (len(seqs[i]), i))
    batches = [order[i : i + batch] for i in range(0, len(order), batch)]
    n_rounds = math.ceil(len(batches) / world)
    mine: list[tuple[list[int], np.ndarray]] = []
    engine.eval()
    with torch.no_grad():
        for r in range(n_rounds):
            j = r * world + rank
            real = j < len(batches)
            idx = batches[j] if real else batches[0]
            out, _ = _forward_rows(engine, [seqs[i] for i in idx], pad_id, device)
            if real:
                mine.append((idx, out.float().cpu().numpy()))
    engine.train()
    gathered: list[Any] = [None] * world
    if world > 1:
        dist.all_gather_object(gathered, mine)
    else:
        gathered = [mine]
    n_labels = next(o for part in gathered for _, o in part).shape[1]
    scores = np.zeros((len(seqs), n_labels), dtype=np.float64)
    for part in gathered:
        for idx, out in part:
            scores[idx] = out
    return scores


def val_metrics(scores: Any, n_pairs: int, objective: str, grid_step: float) -> dict[str, Any]:
    """Validation accuracy (bt: r_chosen > r_rejected; regression: best merge weights)."""
    import numpy as np

    from rmselect.rm.merge import search

    ch, rj = scores[:n_pairs], scores[n_pairs:]
    if objective == "bt":
        return {"val_accuracy": float(np.mean(ch[:, 0] > rj[:, 0])), "weights": None}
    res = search(ch - rj, grid_step)
    return {"val_accuracy": res.accuracy, "weights": list(res.weights)}
