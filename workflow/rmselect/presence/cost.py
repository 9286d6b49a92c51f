"""Presence's own cost terms, for the plan (``rmselect.plan.stages.presence_work``) and the DAG.

* **Sampling** (rule ``presence_sample``, CPU, once per domain): a local file costs its
  reading only (counted as nothing); a stream reads ``pool_docs / match_share`` source documents (the whole
  stream, ``plan.presence.stream.total_docs``, without ``pool_docs``), each
  ``bytes_per_doc`` compressed bytes over the network, parsed at ``docs_per_cpu_s``
  documents per CPU-second (``plan.presence.stream``, stated: hub data are not available
  offline).
* **Shards** (rule ``presence_score``, one GPU job per (model, domain, shard)): a shard is
  ``shard_docs`` documents; its GPU seconds on the plan's profile are
  ``shard_docs × tokens per document × 2N / (peak × mfu_forward)``. ``presence.shard_docs:
  null`` (auto) picks the largest shard whose slowest (model, domain) job takes at most
  :data:`SHARD_SHARE` of that model's presence runtime limit
  (``rmselect.cluster.resources``), so a job fits its limit with room for loading the model.

Everything here reads the configuration only (no data, no network).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

#: Share of a presence job's runtime limit one shard's projected GPU time may take.
SHARD_SHARE = 0.5


@dataclass(frozen=True)
class SampleCost:
    """One domain's sampling job."""

    domain: str
    docs_read: float
    network_bytes: float
    cpu_s: float
    note: str


@dataclass(frozen=True)
class ShardFit:
    """The slowest shard job of one scored model against its runtime limit."""

    model: str
    params_b: float
    domain: str
    shard_docs: int
    tokens: float
    gpu_s: float
    limit_s: float

    @property
    def fits(self) -> bool:
        return self.gpu_s <= self.limit_s


def stream_settings(plan_cfg: Mapping[str, Any]) -> dict[str, Any]:
    return dict((plan_cfg.get("presence") or {}).get("stream") or {})


def sample_cost(domain: str, entry: Mapping[str, Any], n_docs: int,
                plan_cfg: Mapping[str, Any]) -> SampleCost:
    """CPU seconds and network bytes of sampling one domain (module docstring)."""
    if not entry.get("streaming"):
        where = "local file" if "path" in entry else "hub data set (downloaded whole; size not stated)"
        return SampleCost(domain, 0.0, 0.0, 0.0, f"{where}: read once")
    st = stream_settings(plan_cfg)
    total, per_doc = st.get("total_docs"), st.get("bytes_per_doc")
    rate = float(st.get("docs_per_cpu_s") or float("nan"))
    share = float((st.get("match_share") or {}).get(domain, 1.0))
    pool = entry.get("pool_docs")
    if pool:
        read = max(float(pool), float(n_docs)) / share
        if total:
            read = min(float(total), read)
        how = f"pool_docs {int(pool):,} / match share {share:g}"
    else:
        read = float(total) if total else float("nan")
        how = "the whole stream (no pool_docs)"
    net = read * float(per_doc) if per_doc else float("nan")
    return SampleCost(domain, read, net, read / rate,
                      f"stream: {read:,.0f} docs read ({how}), {net / 1e9:,.1f} GB, "
                      f"{read / rate / 3600:,.1f} CPU-h")


def shard_seconds(params_b: float, tokens: float, profile: Any) -> float:
    """Forward GPU seconds of ``tokens`` on ``profile`` (a plan GpuProfile)."""
    return 2 * params_b * 1e9 * tokens / (profile.peak_tflops * 1e12 * profile.mfu_forward)


def auto_shard_docs(models: Mapping[str, tuple[float, float]], tok_per_doc: float,
                    n_docs: int, profile: Any) -> int:
    """Largest shard (≤ ``n_docs``) whose projected GPU time is at most :data:`SHARD_SHARE`
    of every model's limit; ``models``: ``{name: (params_b, limit_s)}``."""
    best = n_docs
    for pb, limit in models.values():
        per_doc = shard_seconds(pb, tok_per_doc, profile)
        if per_doc > 0:
            best = min(best, math.floor(SHARD_SHARE * limit / per_doc + 1e-9))
    return max(1, best)


def shard_fits(models: Mapping[str, tuple[float, float]], tok_per_doc: Mapping[str, float],
               shard_docs: int | Mapping[str, int], profile: Any) -> list[ShardFit]:
    """The slowest domain's shard of every model against its limit; ``shard_docs`` is one
    size for every domain or a size per domain."""
    size = {d: shard_docs if isinstance(shard_docs, int) else int(shard_docs[d])
            for d in tok_per_doc}
    dom = max(tok_per_doc, key=lambda d: size[d] * tok_per_doc[d])
    out = []
    for name, (pb, limit) in models.items():
        tokens = size[dom] * tok_per_doc[dom]
        out.append(ShardFit(name, pb, dom, size[dom], tokens, shard_seconds(pb, tokens, profile),
                            limit))
    return out


def n_shard_jobs(n_docs: int, shard_docs: int, domains: int) -> int:
    return domains * max(1, math.ceil(n_docs / shard_docs))
