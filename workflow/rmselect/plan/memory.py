"""Memory, communication and disk model of one job: what `snakemake plan` checks before launch.

Everything here is arithmetic on a model's size and the job's settings, in bytes and seconds,
so that each figure can be checked by hand (tests/test_plan_memory.py does). The formulas:

* **Training states per rank** (mixed precision with Adam, Rajbhandari et al. 2020, "ZeRO",
  section 3): bf16 parameters ``2N``, bf16 gradients ``2N``, fp32 master weights + Adam
  moments ``12N`` bytes: 16 bytes per parameter. ZeRO-1 partitions the ``12N`` over the R
  ranks, ZeRO-2 the gradients too, ZeRO-3 all three: an 8 B model on 8 ranks keeps
  ``16 × 8e9 / 8 = 16 GB`` per GPU. Optimizer offload (DeepSpeedCPUAdam) moves the ``12N``
  states and an fp32 gradient copy (``4N``) to host memory; parameter offload (ZeRO-3)
  moves the parameter partitions too. ZeRO-3 keeps a working set of gathered parameters:
  two layers plus the embedding (prefetch).
* **Activations** per rank at ``T`` tokens per micro-step (micro batch × sequences per
  example × max length): Korthikanti et al. 2022 ("Reducing Activation Recomputation in
  Large Transformer Models", section 4.1): ``34·h`` bytes per token per layer in 16-bit,
  without the ``5·a·s`` attention-score term (SDPA / flash attention keep no score matrix).
  With gradient checkpointing each layer keeps only its bf16 input (``2·h`` bytes per
  token) and one layer is recomputed at a time: ``L·2·h·T + 34·h·T``; without:
  ``L·34·h·T``. Forward-only jobs hold one layer's activations (``34·h·T``) and no more.
* **Logits** where a stage computes them (language-model scoring, DPO/SFT; not a reward
  model's scalar head): training ``12·V·T`` bytes (bf16 logits, fp32 log-softmax, their
  gradients); forward-only ``2·V·T`` (the batch's bf16 logits) plus ``4·V·s`` for the fp32
  log-softmax of one sequence of ``s`` tokens (the scorers loop over rows).
* **Communication** per optimizer step, bytes per rank over a ring (``f = (R-1)/R``): ZeRO-0/1
  all-reduce (or reduce-scatter + all-gather) of the bf16 gradients once per step (``4N·f``);
  ZeRO-2 reduce-scatters the gradients at every micro-step and all-gathers the parameters
  once per step (``2N·f·A + 2N·f``); ZeRO-3 all-gathers the parameters for the forward and
  again for the backward and reduce-scatters the gradients at every micro-step
  (``6N·f·A``), with A the accumulation steps. Time = bytes ÷ the profile's interconnect
  bandwidth, not overlapped with compute (an upper bound).
* **Model shape** (layers L, hidden h, vocabulary V): the model table's ``layers``,
  ``hidden``, ``vocab`` columns where present, else from ``params_b``:
  ``L = clamp(16 + 2·params_b, 16, 64)``, ``V`` = :data:`DEFAULT_VOCAB` (Gemma's 256 k, the
  largest in the zoo), ``h`` from ``12·L·h² + V·h = N``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

GB = 1e9
#: The largest vocabulary of the paper's zoo (Gemma: 256,000); a model row may state its own.
DEFAULT_VOCAB = 256_000
#: bf16 bytes per value of activations (Korthikanti et al. 2022: 34·s·b·h per layer).
ACT_BYTES_PER_H = 34
OFFLOADS = ("none", "optimizer", "param")


@dataclass(frozen=True)
class Shape:
    """Parameters (count), layers, hidden size and vocabulary of a decoder."""

    params: float
    layers: int
    hidden: int
    vocab: int


def shape_of(params_b: float, extra: Mapping[str, Any] | None = None) -> Shape:
    """The model's shape: model-table columns where given, else the heuristic above."""
    extra = extra or {}
    n = float(params_b) * 1e9

    def col(key: str) -> int | None:
        v = extra.get(key)
        return int(v) if v not in (None, "") else None

    layers = col("layers") or int(min(64, max(16, round(16 + 2 * float(params_b)))))
    vocab = col("vocab") or DEFAULT_VOCAB
    hidden = col("hidden")
    if hidden is None:  # 12·L·h² + V·h = N, positive root; at least 256
        a, b = 12.0 * layers, float(vocab)
        hidden = int(max(256, (-b + math.sqrt(b * b + 4 * a * n)) / (2 * a)))
    return Shape(n, layers, hidden, vocab)


@dataclass(frozen=True)
class TrainSetup:
    """How one training job runs on its ranks."""

    zero: int
    ranks: int
    micro_batch: int
    seqs: int  # sequences per example (BT pair: 2; regression row: 1)
    max_length: int
    grad_ckpt: bool = True
    offload: str = "none"  # none | optimizer | param
    logits: bool = False  # the loss needs the LM head's logits (SFT/DPO), not an RM head
    global_batch: int = 64

    @property
    def tokens(self) -> int:
        """Tokens one rank processes per micro-step (worst case: every text at max length)."""
        return self.micro_batch * self.seqs * self.max_length

    @property
    def accumulation(self) -> int:
        return max(1, self.global_batch // (self.micro_batch * self.ranks))


@dataclass(frozen=True)
class Memory:
    """Peak bytes of one rank on its GPU, by part, and host bytes of the node."""

    states: float
    activations: float
    logits: float
    overhead: float
    host_offload: float = 0.0

    @property
    def gpu(self) -> float:
        return self.states + self.activations + self.logits + self.overhead


def train_states(shape: Shape, zero: int, ranks: int, offload: str = "none") -> tuple[float, float]:
    """(GPU bytes, host bytes) per rank of parameters, gradients and optimizer states."""
    if offload not in OFFLOADS:
        raise ValueError(f"offload {offload!r}: one of {', '.join(OFFLOADS)}")
    if offload == "param" and zero != 3:
        raise ValueError("parameter offload needs ZeRO-3")
    if offload != "none" and zero < 1:
        raise ValueError("optimizer offload needs ZeRO >= 1")
    n, r = shape.params, max(1, int(ranks))
    p, g, o = 2 * n, 2 * n, 12 * n
    if zero == 0:
        gpu = p + g + o
    elif zero == 1:
        gpu = p + g + o / r
    elif zero == 2:
        gpu = p + (g + o) / r
    elif zero == 3:
        gpu = (p + g + o) / r + zero3_live(shape)
    else:
        raise ValueError(f"ZeRO stage {zero}: one of 0, 1, 2, 3")
    host = 0.0
    if offload in ("optimizer", "param"):
        gpu -= o / (r if zero >= 1 else 1)
        host += (o + 4 * n) / r  # Adam states + fp32 gradient copy for DeepSpeedCPUAdam
    if offload == "param":
        gpu -= p / r
        host += p / r
    return gpu, host


def zero3_live(shape: Shape) -> float:
    """Gathered bf16 parameters ZeRO-3 holds at once: two layers and the embedding."""
    per_layer = max(0.0, shape.params - shape.vocab * shape.hidden) / shape.layers
    return 2.0 * (2 * per_layer + shape.vocab * shape.hidden)


def train_activations(shape: Shape, tokens: int, grad_ckpt: bool) -> float:
    """Activation bytes of one rank for ``tokens`` tokens per micro-step (module docstring)."""
    one = ACT_BYTES_PER_H * shape.hidden * tokens
    if grad_ckpt:
        return shape.layers * 2 * shape.hidden * tokens + one
    return shape.layers * one


def logits_bytes(shape: Shape, tokens: int, train: bool, seq: int | None = None) -> float:
    """Training: bf16 logits + fp32 log-softmax and their gradients (12 B per value).
    Forward-only: the batch's bf16 logits (2 B) + the fp32 log-softmax of one sequence of
    ``seq`` tokens (4 B), the scorers' per-row loop (presence, probe)."""
    if train:
        return shape.vocab * tokens * 12.0
    return shape.vocab * (2.0 * tokens + 4.0 * (seq if seq is not None else tokens))


def train_memory(shape: Shape, s: TrainSetup, overhead_gb: float) -> Memory:
    states, host = train_states(shape, s.zero, s.ranks, s.offload)
    return Memory(states=states,
                  activations=train_activations(shape, s.tokens, s.grad_ckpt),
                  logits=logits_bytes(shape, s.tokens, True) if s.logits else 0.0,
                  overhead=overhead_gb * GB, host_offload=host)


def infer_memory(shape: Shape, ranks: int, tokens: int, logits: bool, kv_tokens: int,
                 overhead_gb: float, seq: int | None = None) -> Memory:
    """Forward-only: bf16 weights split over ``ranks`` (device map), one layer's activations
    at ``tokens`` per batch, a KV cache of ``kv_tokens`` (4·L·h bytes per token, no
    grouped-query saving assumed) and the logits where the stage needs them."""
    r = max(1, int(ranks))
    return Memory(states=2 * shape.params / r,
                  activations=ACT_BYTES_PER_H * shape.hidden * tokens
                  + 4 * shape.layers * shape.hidden * kv_tokens / r,
                  logits=logits_bytes(shape, tokens, False, seq) if logits else 0.0,
                  overhead=overhead_gb * GB)


def comm_bytes_per_step(shape: Shape, zero: int, ranks: int, accumulation: int) -> float:
    """Bytes one rank sends per optimizer step (module docstring)."""
    r = max(1, int(ranks))
    if r == 1:
        return 0.0
    n, f, a = shape.params, (r - 1) / r, max(1, int(accumulation))
    if zero in (0, 1):
        return 4 * n * f
    if zero == 2:
        return 2 * n * f * a + 2 * n * f
    return 6 * n * f * a


def host_train(shape: Shape, ranks_per_node: int, offload_per_rank: float, rows: int,
               tokens: float, process_gb: float) -> float:
    """Host bytes of a training node: per rank the process (torch, CUDA), the checkpoint
    loaded in bf16 (``2N``: every rank reads the full weights) and the tokenized data
    (int64 ids and mask: 16 bytes per token), plus the offloaded states."""
    per_rank = process_gb * GB + 2 * shape.params + 16 * rows * tokens
    return ranks_per_node * (per_rank + offload_per_rank)


def host_infer(shape: Shape, rows: int, tokens: float, process_gb: float) -> float:
    """Host bytes of a forward-only job: the process, the bf16 checkpoint, the data."""
    return process_gb * GB + 2 * shape.params + 16 * rows * tokens


def checkpoint_bytes(shape: Shape) -> tuple[float, float]:
    """(HF safetensors checkpoint in bf16, DeepSpeed state: bf16 weights + fp32 master and
    Adam moments = 14 bytes per parameter)."""
    return 2 * shape.params, 14 * shape.params
