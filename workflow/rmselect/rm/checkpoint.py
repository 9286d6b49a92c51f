"""The RM trainer's checkpoints: what is written at each evaluation point, and what stays.

Every evaluation point writes its validation predictions (``val_preds/step{N}.parquet``,
a few hundred kB): the selection (:mod:`rmselect.rm.select`) ranks every point from them and
from run.json, so it never needs the weights of a point it does not pick. The weights (an
HF sequence-classification dir, ``ckpt/step{N}/``) are kept only for the run's best points
so far (:func:`kept_steps`: by the logged validation accuracy, ties to the earlier step,
the order the selection uses): one dir when the logged accuracy is the selection's own
(BT; regression when ``rm.train_merge_grid_step == rm.merge_grid_step``), the best
``rm.keep_checkpoints`` otherwise. A point that is not among them is not even exported.

The DeepSpeed state (``ds/``) a rerun resumes from is saved on a time interval
(``--ds-save-minutes``), at a successive-halving rung's stop (the next rung continues from
it), and at the last step only with ``--keep-ds-checkpoint``: a finished run writes no
state it would delete at once. A dir the saved state still counts among the best is not
deleted until the next save (:class:`Retention`), so a resumed run always finds the dirs
its evaluations name.

:func:`run_disk_bytes` gives the disk figures of one run for the plan.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from rmselect import runtime
from rmselect.rm.prepare import Shared
from rmselect.rm.run_config import RunConfig


# --------------------------------------------------------------------------- retention


def rank_key(ev: Mapping[str, Any]) -> tuple[float, int]:
    """Order of evaluation points, best first: higher validation accuracy, then earlier step
    (as ``run.json``'s ``best`` and the selection's tie-break within one learning rate)."""
    return (-float(ev["val_accuracy"]), int(ev["step"]))


def kept_steps(evals: Iterable[Mapping[str, Any]], keep: int) -> set[int]:
    """Steps whose HF checkpoint a run keeps: the ``keep`` best points (0: every point)."""
    ranked = sorted(evals, key=rank_key)
    return {int(e["step"]) for e in (ranked if keep <= 0 else ranked[:keep])}


@dataclass
class Retention:
    """Which ``ckpt/step{N}/`` dirs of a run must stay on disk.

    ``saved``: the kept steps as of the DeepSpeed state on disk (a resume returns to its
    evaluations, so their best dirs must survive until the next save); the kept steps of
    the current evaluations are the other protected set.
    """

    keep: int
    saved: set[int] = field(default_factory=set)

    def exports(self, evals: Sequence[Mapping[str, Any]]) -> bool:
        """Whether the newest evaluation (the last of ``evals``) is exported."""
        return int(evals[-1]["step"]) in kept_steps(evals, self.keep)

    def protected(self, evals: Sequence[Mapping[str, Any]]) -> set[int]:
        return self.saved | kept_steps(evals, self.keep)

    def state_saved(self, evals: Sequence[Mapping[str, Any]]) -> None:
        """The DeepSpeed state now on disk holds ``evals``."""
        self.saved = kept_steps(evals, self.keep)

    def state_dropped(self) -> None:
        """No DeepSpeed state on disk any more (a finished run removed it)."""
        self.saved = set()

    def prune(self, ckpt_root: Path, evals: Sequence[Mapping[str, Any]]) -> list[int]:
        """Delete the dirs under ``ckpt_root`` no protected set names; the steps deleted."""
        keep = self.protected(evals)
        gone = [s for s in on_disk(ckpt_root) if s not in keep]
        for s in gone:
            shutil.rmtree(ckpt_root / f"step{s}", ignore_errors=True)
        return gone


def on_disk(ckpt_root: Path) -> list[int]:
    """Steps of the ``step{N}`` dirs under ``ckpt_root`` (atomic writes' temporaries start
    with a dot and are not listed)."""
    if not ckpt_root.is_dir():
        return []
    return sorted(int(d.name[4:]) for d in ckpt_root.iterdir()
                  if d.is_dir() and d.name.startswith("step") and d.name[4:].isdigit())


class SaveClock:
    """When the DeepSpeed state is due: ``minutes`` after the last save (or the start).

    Every rank must reach the same answer (the save is collective): rank 0's clock decides
    and the answer is shared with an all-reduce.
    """

    def __init__(self, minutes: float):
        self.interval_s = max(0.0, float(minutes)) * 60.0
        self.last = time.time()

    def due(self, rt: runtime.Runtime) -> bool:
        mine = rt.rank == 0 and time.time() - self.last >= self.interval_s
        if rt.world == 1:
            return mine
        import torch
        import torch.distributed as dist

        flag = torch.tensor([1.0 if mine else 0.0], device=rt.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item() > 0)

    def reset(self) -> None:
        self.last = time.time()


# --------------------------------------------------------------------------- writers


def write_val_preds(path: Path, scores: Any, n_pairs: int) -> None:
    """Validation predictions of one evaluation point: ``pair_id, side, a0..a{k-1}``
    (k = 1 for BT, 5 for regression)."""
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
                    evals: list[dict[str, Any]], t_eval: float,
                    retention: Retention) -> dict[str, Any]:
    """One evaluation point: its validation predictions, and the HF checkpoint when the
    point is among the run's best so far (older dirs no protected set names are removed
    first, so the new one never adds to the peak)."""
    ck = out / "ckpt" / f"step{step}"
    preds = out / "val_preds" / f"step{step}.parquet"
    if rt.rank == 0:
        write_val_preds(preds, scores, len(shared.prep.val_chosen))
    ev = {"step": step, "epoch": epoch, **vm, "checkpoint": str(ck), "val_preds": str(preds)}
    evals.append(ev)
    if retention.exports(evals):  # same answer on every rank: the evals are all-gathered
        if rt.rank == 0:
            retention.prune(out / "ckpt", evals)
        export_hf(engine, cfg, shared.tok, shared.template, ck, rt.rank)
    ev["eval_s"] = time.time() - t_eval
    return ev


def save_state(engine: Any, rt: runtime.Runtime, out: Path, step: int,
               evals: list[dict[str, Any]], retention: Retention) -> None:
    """The DeepSpeed state a rerun resumes from (model, optimizer, schedule, step, evals);
    the previous one is removed once the new one is complete, then the HF dirs only the
    previous state protected."""
    runtime.save_ds_state(engine, out / "ds", step, {"step": step, "evals": evals}, rt)
    retention.state_saved(evals)
    if rt.rank == 0:
        retention.prune(out / "ckpt", evals)


# --------------------------------------------------------------------------- disk figures

#: Bytes per parameter of the DeepSpeed state: bf16 weights (2) + fp32 master weights (4)
#: + Adam's two moments (8) in DeepSpeed's bf16 mode; fp32 weights (4) + moments (8) else.
DS_BYTES_PER_PARAM = {True: 14, False: 12}


def hf_checkpoint_bytes(params: float, bf16: bool = True) -> int:
    """One exported HF dir: the weights in the training dtype (bf16 on GPUs; the tokenizer
    files, a few MB, are left out)."""
    return int(params * (2 if bf16 else 4))


def ds_state_bytes(params: float, bf16: bool = True) -> int:
    """One DeepSpeed checkpoint of a run (all ranks' shards together)."""
    return int(params * DS_BYTES_PER_PARAM[bool(bf16)])


def val_preds_bytes(n_val_pairs: int, n_labels: int) -> int:
    """One evaluation point's predictions (float64 per label and sequence, plus ids; an
    upper bound of the parquet file)."""
    return int(2 * n_val_pairs * (8 * n_labels + 16) + 4096)


def run_disk_bytes(params: float, keep: int, *, n_evals: int, n_val_pairs: int,
                   n_labels: int, bf16: bool = True, keep_ds: bool = False) -> dict[str, int]:
    """Disk of one training run (one model, objective, learning rate, seed), in bytes.

    ``params``: parameters of the model (not billions); ``keep``: HF dirs kept (the
    trainer's ``--keep-checkpoints``; 0 = every evaluation point); ``n_evals``: evaluation
    points of the run. Returns

    * ``hf_checkpoint``, ``ds_state``, ``val_preds``: one of each;
    * ``kept``: what the finished run leaves (its kept HF dirs, every point's predictions,
      the DeepSpeed state only with ``keep_ds``);
    * ``peak``: the most on disk at once while it trains: the kept dirs of the current
      evaluations plus those the saved state still protects (2 x kept), two DeepSpeed
      states while a save rotates, and the predictions.
    """
    hf, ds = hf_checkpoint_bytes(params, bf16), ds_state_bytes(params, bf16)
    vp = val_preds_bytes(n_val_pairs, n_labels)
    n_hf = n_evals if keep <= 0 else min(keep, n_evals)
    n_peak_hf = n_evals if keep <= 0 else min(2 * keep, n_evals)
    return {
        "hf_checkpoint": hf,
        "ds_state": ds,
        "val_preds": vp,
        "kept": n_hf * hf + n_evals * vp + (ds if keep_ds else 0),
        "peak": n_peak_hf * hf + 2 * ds + n_evals * vp,
    }
