"""The RM trainer's checkpoints: what is written at each evaluation point.

An HF sequence-classification dir (``ckpt/step{N}/``, regression: plus
``val_preds.parquet``) and the DeepSpeed checkpoint (``ds/``) a rerun resumes from.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rmselect import runtime
from rmselect.rm.prepare import Shared
from rmselect.rm.run_config import RunConfig


def write_val_preds(path: Path, scores: Any, n_pairs: int) -> None:
    """Regression validation predictions: ``pair_id, side, a0..a4``."""
    import polars as pl

    from rmselect.io import write_table

    n_lab = scores.shape[1]
    df = pl.DataFrame(
        {
            "pair_id": list(range(n_pairs)) * 2,
            "side": ["chosen"] * n_pairs + ["rejected"] * n_pairs,
            **{f"a{j}": scores[:, j].tolist() for j in range(n_lab)},
        }
    )
    write_table(path, df)


def export_hf(engine: Any, cfg: RunConfig, tok: Any, template: str, out_dir: Path, rank: int) -> None:
    """Write the current weights as an HF sequence-classification dir (rank 0)."""
    from rmselect.rm.model import save_hf

    hf = engine.module.hf
    state = None
    if cfg.zero_stage == 3:
        full = engine._zero3_consolidated_16bit_state_dict()
        if rank == 0:
            state = {k[len("hf."):]: v for k, v in full.items() if k.startswith("hf.")}
    if rank == 0:
        save_hf(hf, tok, out_dir, state_dict=state, chat_template=template)


def save_checkpoint(engine: Any, cfg: RunConfig, shared: Shared, rt: runtime.Runtime,
                    out: Path, step: int, epoch: int, scores: Any, vm: dict[str, Any],
                    evals: list[dict[str, Any]], t_eval: float) -> dict[str, Any]:
    """One evaluation point: the HF checkpoint (regression: plus validation predictions)
    and the DeepSpeed checkpoint a rerun resumes from (older ones removed)."""
    ck = out / "ckpt" / f"step{step}"
    export_hf(engine, cfg, shared.tok, shared.template, ck, rt.rank)
    if rt.rank == 0 and cfg.objective == "regression":
        write_val_preds(ck / "val_preds.parquet", scores, len(shared.prep.val_chosen))
    ev = {"step": step, "epoch": epoch, **vm, "checkpoint": str(ck),
          "eval_s": time.time() - t_eval}
    evals.append(ev)
    runtime.save_ds_state(engine, out / "ds", step, {"step": step, "evals": evals}, rt)
    return ev
