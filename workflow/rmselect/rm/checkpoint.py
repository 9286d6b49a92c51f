"""The RM trainer's checkpoints: what is written at each evaluation point.

An HF sequence-classification dir (``ckpt/step{N}/``, regression: plus
``val_preds.parquet``) and the DeepSpeed checkpoint (``ds/``) a rerun resumes from.
"""

from __future__ import annotations

import shutil
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


def fp32_head_state(engine: Any) -> dict[str, Any]:
    """The head's parameters in fp32, named as in the HF state dict (``score.weight`` ...).

    Under DeepSpeed's bf16 mode the module holds bf16 copies and the optimizer the fp32
    masters; ``safe_get_full_fp32_param`` gathers a master (collective under ZeRO-3, so every
    rank calls this). Without masters (fp32 or CPU runs) the module's own values, upcast.
    """
    from deepspeed.utils import safe_get_full_fp32_param

    from rmselect.rm.model import head_of

    hf = engine.module.hf
    head = head_of(hf)
    prefix = next(n for n, m in hf.named_modules() if m is head)
    out: dict[str, Any] = {}
    for name, p in head.named_parameters():
        full = None
        try:
            full = safe_get_full_fp32_param(p)
        except Exception:  # no fp32 master for this optimizer (fp32 training): use p itself
            full = None
        if full is None and hasattr(p, "ds_id"):
            continue  # a ZeRO-3 partition: the consolidated 16-bit state holds it
        out[f"{prefix}.{name}"] = (full if full is not None else p.detach()).float().cpu()
    return out


def export_hf(engine: Any, cfg: RunConfig, tok: Any, template: str, out_dir: Path, rank: int) -> None:
    """Write the current weights as an HF sequence-classification dir (rank 0); the head
    in fp32 (:func:`fp32_head_state`), the trunk in its training dtype."""
    from rmselect.rm.model import save_hf

    hf = engine.module.hf
    head = fp32_head_state(engine)
    state = None
    if cfg.zero_stage == 3:
        full = engine._zero3_consolidated_16bit_state_dict()
        if rank == 0:
            state = {k[len("hf."):]: v for k, v in full.items() if k.startswith("hf.")}
    if rank == 0:
        if state is None and any(hf.state_dict()[k].dtype != v.dtype for k, v in head.items()):
            state = dict(hf.state_dict())
        if state is not None:
            state.update(head)
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
    ds_dir = out / "ds"
    engine.save_checkpoint(str(ds_dir), tag=f"step{step}",
                           client_state={"step": step, "evals": evals})
    rt.barrier()
    if rt.rank == 0:
        for d in ds_dir.iterdir():
            if d.is_dir() and d.name != f"step{step}":
                shutil.rmtree(d, ignore_errors=True)
    return ev
