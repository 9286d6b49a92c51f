"""The training runtime shared by every DeepSpeed trainer (reward models, SFT and DPO).

One place owns what a training process needs before and around its loop, so the two
trainers cannot drift apart:

* :func:`start` -- the launcher's environment (or a lone rank), CPU threads, the
  process group (gloo on CPU, nccl on CUDA) and DeepSpeed's communication layer, once per
  process however many runs it then trains;
* :func:`ds_config` -- the DeepSpeed configuration (batch geometry, ZeRO stage and
  offload, bf16, clipping);
* :func:`open_resume`, :func:`save_ds_state`, :func:`load_ds_state` -- the DeepSpeed
  checkpoint a killed run resumes from, guarded by the run's signature;
* :func:`lr_factor` -- the warm-up schedule (linear, then constant);
* :class:`Log`, :func:`truncate_metrics` -- progress on stderr and ``metrics.jsonl``, cut
  back to the resume point;
* :func:`disable_dropout` -- training is deterministic given the seed.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from rmselect.cluster.launch import free_port


@dataclass(frozen=True)
class Runtime:
    """Where this process trains: its rank in the job, and the device."""

    rank: int
    world: int
    local_rank: int
    cuda: bool
    device: Any

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        """Leave the process group (multi-rank jobs; a lone rank just exits)."""
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()
            dist.destroy_process_group()


def dist_env() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from the launcher; single rank when none set them.

    Under ``torchrun`` (or srun setting ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/
    ``MASTER_ADDR``/``MASTER_PORT``) each process is one rank; started plainly it is a
    single rank (the port is only read by DeepSpeed's environment check: a lone rank joins
    through a file store, :mod:`rmselect.distributed`).
    """
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", LOCAL_WORLD_SIZE="1")
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ["MASTER_PORT"] = str(free_port())
    os.environ.setdefault("LOCAL_RANK", os.environ["RANK"])
    return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])


def _prepare_environment(threads: int | None) -> bool:
    """Environment before torch/deepspeed import; returns whether CUDA is used."""
    from rmselect.config import REPO_ROOT

    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(REPO_ROOT / ".torch_extensions"))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    import torch

    from rmselect.device import check_cuda

    cuda = check_cuda()  # a job holding GPUs without CUDA stops here, in one line
    if not cuda:
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
        if threads:
            torch.set_num_threads(max(1, int(threads)))
    return cuda


def _skip_cpu_shm_op() -> None:
    """On CPU, do not build DeepSpeed's shared-memory allreduce extension.

    It only speeds up intra-node CPU allreduce (a ~2 min compile on first use); gloo does
    the job for training. Set ``RMSELECT_DS_SHM=1`` to use it anyway.
    """
    if os.environ.get("RMSELECT_DS_SHM") == "1":
        return
    # (``import deepspeed.comm.torch as m`` would bind the real torch: deepspeed.comm has
    # an attribute named torch.)
    ds_torch = importlib.import_module("deepspeed.comm.torch")
    ds_torch.build_shm_op = lambda: None  # type: ignore[assignment]


def start(threads: int | None = None) -> Runtime:
    """Join the job's process group once (idempotent) and return where this rank trains.

    ``threads``: torch CPU threads per rank (None leaves torch's default)."""
    rank, world, local_rank = dist_env()
    cuda = _prepare_environment(threads)
    import deepspeed
    import torch

    from rmselect.distributed import init_lone_process_group

    if cuda:
        torch.cuda.set_device(local_rank)
    else:
        _skip_cpu_shm_op()
    backend = "nccl" if cuda else "gloo"
    timeout = pg_timeout()
    init_lone_process_group(backend, timeout)
    if timeout is None:
        deepspeed.init_distributed(dist_backend=backend, verbose=False)
    else:
        deepspeed.init_distributed(dist_backend=backend, verbose=False, timeout=timeout)
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    return Runtime(rank, world, local_rank, cuda, device)


def pg_timeout(env: Any = None) -> Any:
    """The process-group timeout from ``resources.nccl.timeout_min`` (the launcher exports it
    as ``RMSELECT_PG_TIMEOUT_S``); None keeps DeepSpeed's default."""
    from datetime import timedelta

    from rmselect.cluster.launch import ENV_PG_TIMEOUT

    raw = (os.environ if env is None else env).get(ENV_PG_TIMEOUT)
    return timedelta(seconds=float(raw)) if raw else None


#: What ``offload`` moves to host memory, and the least ZeRO stage that can do it.
OFFLOAD_STAGE = {"none": 0, "optimizer": 1, "param": 3}


def ds_config(*, global_batch: int, micro_batch: int, accumulation: int, zero_stage: int,
              grad_clip: float, bf16: bool, offload: str = "none",
              pin_memory: bool = False) -> dict[str, Any]:
    """DeepSpeed's configuration for one run (the client optimizer is passed separately).

    ZeRO-3 gathers 16-bit weights on save, so an HF directory can be exported from any
    rank layout. ``offload``: ``none``; ``optimizer`` (ZeRO >= 1: optimizer states and the
    step on the CPU, DeepSpeedCPUAdam); ``param`` (ZeRO-3: the parameters too, fetched to
    the GPU layer by layer). A stage too low for the offload is an error, not a silent
    no-offload.
    """
    if offload not in OFFLOAD_STAGE:
        raise ValueError(f"offload {offload!r} is not one of {', '.join(OFFLOAD_STAGE)}")
    if zero_stage < OFFLOAD_STAGE[offload]:
        raise ValueError(f"offload {offload!r} needs ZeRO stage >= {OFFLOAD_STAGE[offload]}, "
                         f"got {zero_stage}")
    zero: dict[str, Any] = {"stage": zero_stage}
    if zero_stage == 3:
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    if offload != "none":
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": pin_memory}
    if offload == "param":
        zero["offload_param"] = {"device": "cpu", "pin_memory": pin_memory}
    conf: dict[str, Any] = {
        "train_batch_size": global_batch,
        "train_micro_batch_size_per_gpu": micro_batch,
        "gradient_accumulation_steps": accumulation,
        "zero_optimization": zero,
        "zero_allow_untested_optimizer": True,
        "zero_force_ds_cpu_optimizer": False,
        "bf16": {"enabled": bool(bf16)},
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    if grad_clip > 0:
        conf["gradient_clipping"] = grad_clip
    return conf


def open_resume(run_dir: Path, signature: str, state: dict[str, Any], rt: Runtime,
                clear: Sequence[Path], info: Callable[[str], None]) -> bool:
    """Whether a run resumes: ``run_dir/resume.json`` holds the same ``signature`` and
    ``run_dir/ds`` a complete DeepSpeed checkpoint. Otherwise the paths in ``clear`` (an
    older run's files, ``ds/`` included) are removed and ``resume.json`` is written anew.
    Rank 0 decides; every rank gets the answer."""
    from rmselect.io import write_json

    ds_dir, state_file = run_dir / "ds", run_dir / "resume.json"
    resume = False
    if rt.rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        old = json.loads(state_file.read_text()) if state_file.exists() else None
        if old and old.get("signature") == signature and (ds_dir / "latest").exists():
            resume = True
        else:
            if old or any(p.exists() for p in (ds_dir, *clear)):
                info("no matching checkpoint: starting fresh (old run files removed)")
            for p in (ds_dir, *clear):
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            write_json(state_file, {"signature": signature, **state})
    if rt.world > 1:
        import torch.distributed as dist

        flag = [resume]
        dist.broadcast_object_list(flag, src=0)
        resume = bool(flag[0])
    return resume


def save_ds_state(engine: Any, ds_dir: Path, step: int, client_state: dict[str, Any],
                  rt: Runtime) -> None:
    """DeepSpeed checkpoint ``ds_dir/step{N}`` (model, optimizer, LR schedule and
    ``client_state``) on every rank, then the older tags removed (rank 0)."""
    engine.save_checkpoint(str(ds_dir), tag=f"step{step}", client_state=client_state)
    rt.barrier()
    if rt.rank == 0:
        for d in ds_dir.iterdir():
            if d.is_dir() and d.name != f"step{step}":
                shutil.rmtree(d, ignore_errors=True)


def load_ds_state(engine: Any, ds_dir: Path) -> dict[str, Any]:
    """Load the latest DeepSpeed checkpoint of ``ds_dir``; its client state."""
    _, client = engine.load_checkpoint(str(ds_dir), load_optimizer_states=True,
                                       load_lr_scheduler_states=True)
    if client is None:
        raise RuntimeError(f"{ds_dir}: DeepSpeed checkpoint could not be loaded; delete it")
    return dict(client)


def cpus_per_rank() -> int:
    """CPU cores this process may use, shared evenly by the node's ranks.

    The affinity mask is the job's allocation (SLURM's cgroup, taskset); every rank a
    launcher starts on the node inherits it, so each gets ``cores // LOCAL_WORLD_SIZE``.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(1, cores // max(1, local))


def set_cpu_threads(n: int) -> None:
    """torch's and OpenMP's thread count (DeepSpeedCPUAdam's loops are OpenMP; its extension
    reads ``OMP_NUM_THREADS`` when it loads, so set this before building the optimizer)."""
    import torch

    n = max(1, int(n))
    os.environ["OMP_NUM_THREADS"] = str(n)
    torch.set_num_threads(n)


def lr_factor(step: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` optimizer steps, then constant (step is 0-based).

    Constant after warm-up (no decay) so that the schedule does not depend on the run's
    length: a successive-halving rung continued later equals a full run.
    """
    return 1.0 if warmup <= 0 else min(1.0, (step + 1) / warmup)


def disable_dropout(model: Any) -> None:
    """Set every dropout probability to 0 (reward and policy training are deterministic)."""
    import torch

    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0


def max_mem_mb(cuda: bool) -> float:
    """Peak memory of this rank: CUDA allocations, or the process's max RSS on CPU."""
    import torch

    if cuda:
        return torch.cuda.max_memory_allocated() / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Log:
    """Progress on stderr (rank 0) and ``metrics.jsonl`` lines (optionally TensorBoard)."""

    def __init__(self, rank: int, metrics_path: Path, tb_dir: Path | None = None,
                 prefix: str = "train"):
        self.rank = rank
        self.t0 = time.time()
        self.path = metrics_path
        self.prefix = prefix
        self.tb = None
        if rank == 0 and tb_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(tb_dir))
            except Exception as err:  # tensorboard not installed
                self.info(f"tensorboard disabled: {err}")

    def info(self, msg: str) -> None:
        if self.rank == 0:
            sys.stderr.write(f"[{self.prefix} {time.time() - self.t0:6.1f}s] {msg}\n")
            sys.stderr.flush()

    def metric(self, row: dict[str, Any]) -> None:
        if self.rank != 0:
            return
        with self.path.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        if self.tb is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)):
                    self.tb.add_scalar(k, v, row["step"])

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def truncate_metrics(path: Path, last_step: int) -> None:
    """Keep only metric lines with ``step <= last_step`` (the resume point)."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip()
            and json.loads(ln).get("step", 0) <= last_step]
    path.write_text("".join(ln + "\n" for ln in keep))
