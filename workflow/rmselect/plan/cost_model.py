"""The cost arithmetic of the projection: GPU profiles, ``plan`` settings and work items.

A :class:`Work` item is the tokens one (stage, rule, model) processes; a :class:`GpuProfile`
turns it into GPU-seconds (the counting rules are in :mod:`rmselect.plan.projection`'s
docstring). Kept apart from the per-stage counting (:mod:`rmselect.plan.stages`) so that
the FLOP and time formulas are read in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from rmselect.config import ConfigError, section_settings


@dataclass(frozen=True)
class GpuProfile:
    """One accelerator: dense bf16 peak, memory bandwidth and the assumed utilisation."""

    name: str
    #: Dense (no sparsity) bf16 tensor-core peak, TFLOP/s.
    peak_tflops: float
    #: Memory bandwidth, GB/s (bounds decoding).
    mem_bw_gbs: float
    #: Assumed model-FLOPs utilisation of training jobs and of forward-only jobs.
    mfu_train: float
    mfu_forward: float
    #: Where the peak figure comes from.
    source: str = ""
    #: Memory of one GPU, GB, and the bandwidth one GPU of an 8-GPU node gets in
    #: collectives (NCCL bus bandwidth), GB/s, with where that figure comes from.
    gpu_mem_gb: float = 0.0
    interconnect_gbs: float = 0.0
    interconnect_source: str = ""

    def seconds(self, w: "Work") -> float:
        """GPU-seconds of one work item on this profile (see the module docstring)."""
        peak = self.peak_tflops * 1e12
        n = w.params_b * 1e9
        t = 6 * n * w.train_tokens / (peak * self.mfu_train)
        t += 2 * n * w.forward_tokens / (peak * self.mfu_forward)
        if w.decode_tokens:
            per_token = max(
                2 * n / (peak * self.mfu_forward),
                2 * n / (self.mem_bw_gbs * 1e9 * w.decode_batch),
            )
            t += per_token * w.decode_tokens
        return t


#: Shipped profiles; ``plan.profiles.<name>`` overrides fields or adds profiles.
PROFILES: dict[str, dict[str, Any]] = {
    "A6000": {
        "peak_tflops": 154.8, "mem_bw_gbs": 768.0, "mfu_train": 0.30, "mfu_forward": 0.40,
        "source": "NVIDIA RTX A6000 datasheet: 309.7 TFLOPS tensor with sparsity, so 154.8 "
        "dense bf16/fp16 with fp32 accumulate (GA102 whitepaper; cross-check: the A40, same "
        "GA102 at 1740 vs 1800 MHz boost, lists 149.7 dense bf16 x 1800/1740 = 154.9); "
        "768 GB/s GDDR6",
        "gpu_mem_gb": 48.0, "interconnect_gbs": 20.0,
        "interconnect_source": "no NVLink in 8-GPU servers: PCIe 4.0 x16, 31.5 GB/s per "
        "direction (PCI-SIG); NCCL all-reduce bus bandwidth on 8-GPU PCIe 4.0 servers is "
        "typically 15-25 GB/s (nccl-tests reports), 20 taken",
    },
    "A100": {
        "peak_tflops": 312.0, "mem_bw_gbs": 2039.0, "mfu_train": 0.40, "mfu_forward": 0.45,
        "source": "NVIDIA A100 datasheet, SXM 80GB: 312 TFLOPS bf16 dense (624 sparse); "
        "2,039 GB/s HBM2e",
        "gpu_mem_gb": 80.0, "interconnect_gbs": 230.0,
        "interconnect_source": "NVLink 3 via NVSwitch, 600 GB/s bidirectional per GPU (A100 "
        "datasheet); NCCL all-reduce bus bandwidth on DGX A100 ~230 GB/s (NVIDIA nccl-tests)",
    },
    "H100": {
        "peak_tflops": 989.0, "mem_bw_gbs": 3350.0, "mfu_train": 0.35, "mfu_forward": 0.40,
        "source": "NVIDIA H100 datasheet, SXM: 1,979 TFLOPS bf16 with sparsity, 989 dense; "
        "3.35 TB/s HBM3",
        "gpu_mem_gb": 80.0, "interconnect_gbs": 360.0,
        "interconnect_source": "NVLink 4 via NVSwitch, 900 GB/s bidirectional per GPU (H100 "
        "datasheet); NCCL all-reduce bus bandwidth on DGX H100 ~360-480 GB/s, 360 taken",
    },
    "H200": {
        "peak_tflops": 989.0, "mem_bw_gbs": 4800.0, "mfu_train": 0.35, "mfu_forward": 0.40,
        "source": "NVIDIA H200 datasheet, SXM: 1,979 TFLOPS bf16 with sparsity, 989 dense "
        "(the H100's compute); 4.8 TB/s HBM3e",
        "gpu_mem_gb": 141.0, "interconnect_gbs": 360.0,
        "interconnect_source": "NVLink 4 as the H100 (H200 datasheet: 900 GB/s per GPU); "
        "141 GB HBM3e",
    },
}

BENCH_FIELDS = ("subtasks", "choices", "tokens", "generate", "fewshot", "full_items")


def plan_defaults() -> dict[str, Any]:
    """Every default of the ``plan`` section: the schema's ``default:`` values (the only copy)."""
    return section_settings({}, "plan")


def plan_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``plan`` section merged over :func:`plan_defaults` (nested tables merged per key)."""
    raw = dict(config.get("plan") or {})
    out = plan_defaults()
    for key, val in raw.items():
        if isinstance(out.get(key), dict) and isinstance(val, Mapping):
            merged = dict(out[key])
            for k, v in val.items():
                if isinstance(merged.get(k), dict) and isinstance(v, Mapping):
                    merged[k] = {**merged[k], **v}
                else:
                    merged[k] = v
            out[key] = merged
        else:
            out[key] = val
    return out


def profiles(cfg: Mapping[str, Any]) -> dict[str, GpuProfile]:
    """Shipped profiles with ``plan.profiles`` overrides and additions."""
    table = {k: dict(v) for k, v in PROFILES.items()}
    for name, over in (cfg.get("profiles") or {}).items():
        table[name] = {**table.get(name, {}), **dict(over)}
    out = {}
    for name, p in table.items():
        missing = [k for k in ("peak_tflops", "mem_bw_gbs", "mfu_train", "mfu_forward")
                   if k not in p]
        if missing:
            raise ConfigError(f"config: field 'plan.profiles.{name}': missing {', '.join(missing)}")
        out[name] = GpuProfile(name=name, peak_tflops=float(p["peak_tflops"]),
                               mem_bw_gbs=float(p["mem_bw_gbs"]),
                               mfu_train=float(p["mfu_train"]),
                               mfu_forward=float(p["mfu_forward"]),
                               source=str(p.get("source", "")),
                               gpu_mem_gb=float(p.get("gpu_mem_gb", 0.0)),
                               interconnect_gbs=float(p.get("interconnect_gbs", 0.0)),
                               interconnect_source=str(p.get("interconnect_source", "")))
    if cfg["profile"] not in out:
        raise ConfigError(f"config: field 'plan.profile': unknown profile {cfg['profile']!r}"
                          f" (known: {', '.join(out)})")
    return out


@dataclass
class Work:
    """The tokens one (stage, rule, model) processes, by kind of work."""

    stage: str
    rule: str
    model: str
    params_b: float
    runs: int = 0
    train_tokens: float = 0.0
    forward_tokens: float = 0.0
    decode_tokens: float = 0.0
    decode_batch: int = 16
    #: Optimizer steps and sequences per example of one training run (feasibility).
    steps: int = 0
    seqs: int = 1
    objective: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def flops(self) -> float:
        n = self.params_b * 1e9
        return 6 * n * self.train_tokens + 2 * n * (self.forward_tokens + self.decode_tokens)
