"""Score (prompt, response) texts with a reward model, batched by length.

Any ``AutoModelForSequenceClassification`` directory or hub id works:

- a BT RM from the training stage (``num_labels`` 1): the reward is the single output;
- a regression RM (``num_labels`` 5): the reward is the five attribute predictions dotted
  with the merge weights, read from ``rmselect.json`` (``"weights"``) inside the RM folder
  unless given explicitly;
- a plain hub RM (``num_labels`` 1).

How the reward is read
    Text = :func:`rmselect.rm.format.render` and tokens = :func:`rmselect.rm.data.encode_rendered`
    (the same rendering, BOS handling and left truncation as training).
    The forward is the training stage's (:class:`rmselect.rm.model.RewardModel`): the trunk
    (``model.base_model``) runs on right-padded batches with positions from the attention
    mask; its last hidden state is gathered at the last real token of each row, found from
    the attention mask (:func:`rmselect.rm.pooling.pool_last`), and the model's own score
    head (``score`` or ``classifier``) is applied to it. The head is linear, so this equals the model's own
    ``forward().logits`` whenever that finds the same token (it searches for the last token
    that differs from ``pad_token_id``, which goes wrong when pad == eos and the text ends
    with EOS; the attention mask never does). ``tests/test_eval_scorer.py`` checks that the
    two agree. Models without a recognisable head fall back to ``forward().logits`` with a
    pad id that cannot occur in the text.

Batching
    All texts (chosen and rejected together) are tokenized once, sorted by token length
    (longest first, stable, so the order is deterministic), cut into batches holding at most
    ``batch_size`` rows and ``max_tokens`` padded tokens (each filled in turn, or, with
    ``least_padding``, cut where the padding is least with no more batches;
    :func:`length_batches`), scored, and put back in input order.
    Right padding keeps every real token at the position it has unpadded, so a text's reward
    does not depend on its batch (up to kernel rounding). Progress goes to stderr.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from rmselect.hf import default_dtype, load_sequence_classifier, load_tokenizer
from rmselect.rm.data import TruncationStats, encode_rendered, tokenize_responses
from rmselect.rm.format import render
from rmselect.rm.model import RewardModel as TrainingRewardModel
from rmselect.rm.model import head_of, load_head_fp32, trunk_of

#: File inside a trained RM folder holding the regression merge weights.
RM_META = "rmselect.json"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ScorerError(ValueError):
    """A reward model that cannot be scored as configured."""


@dataclass
class RewardModel:
    """A loaded RM plus everything needed to turn texts into scalar rewards."""

    model: Any
    tokenizer: Any
    num_labels: int
    weights: np.ndarray | None
    ref: str
    template_override: str | None = None
    max_length: int | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    #: The training stage's forward around ``model`` (None: fall back to ``model.logits``).
    wrapped: Any = None

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype


def read_merge_weights(ref: str | Path) -> list[float] | None:
    """``weights`` from ``<ref>/rmselect.json`` (None when absent or null)."""
    p = Path(ref) / RM_META
    if not p.is_file():
        return None
    try:
        meta = json.loads(p.read_text())
    except json.JSONDecodeError as err:
        raise ScorerError(f"{p}: not valid JSON ({err})") from None
    w = meta.get("weights")
    if w is None:
        return None
    if not isinstance(w, list) or not all(isinstance(x, (int, float)) for x in w):
        raise ScorerError(f"{p}: field 'weights' must be a list of numbers, got {w!r}")
    return [float(x) for x in w]


def resolve_dtype(name: str | None, device: torch.device) -> torch.dtype:
    """``auto`` = bf16 on a GPU that supports it, fp32 otherwise."""
    if not name or name == "auto":
        return default_dtype() if device.type == "cuda" else torch.float32
    if name not in DTYPES:
        raise ScorerError(f"dtype {name!r}: use auto, {', '.join(DTYPES)}")
    return DTYPES[name]


def load_reward_model(
    ref: str | Path,
    trust_remote_code: bool = False,
    weights: Sequence[float] | None = None,
    template_override: str | None = None,
    max_length: int | None = None,
    dtype: str | None = "auto",
    device: str | None = None,
    attn_implementation: str | None = "auto",
) -> RewardModel:
    """Load an RM folder or hub id; check its outputs against the merge weights."""
    from rmselect.device import pick_device

    dev = pick_device(device)
    tok = load_tokenizer(ref, trust_remote_code=trust_remote_code, padding_side="right")
    model = load_sequence_classifier(
        ref, trust_remote_code=trust_remote_code, dtype=resolve_dtype(dtype, dev),
        attn_implementation=attn_implementation,
    )
    load_head_fp32(model, ref)  # rewards in fp32 whatever the trunk's dtype
    model.eval().to(dev)
    num_labels = int(model.config.num_labels)
    w = list(weights) if weights is not None else read_merge_weights(ref)
    if w is None and num_labels != 1:
        raise ScorerError(
            f"RM {ref} has {num_labels} outputs but no merge weights: write"
            f" {{\"weights\": [{num_labels} numbers]}} to {Path(ref) / RM_META} or pass --weights"
        )
    if w is not None and len(w) != num_labels:
        raise ScorerError(
            f"RM {ref}: {len(w)} merge weights for {num_labels} outputs; they must match"
        )
    limit = _position_limit(model.config)
    if max_length is None or (limit is not None and limit < max_length):
        max_length = limit
    return RewardModel(
        model=model,
        tokenizer=tok,
        num_labels=num_labels,
        weights=None if w is None else np.asarray(w, dtype=np.float64),
        ref=str(ref),
        template_override=template_override,
        max_length=max_length,
        device=dev,
        wrapped=wrap_model(model),
    )


def _position_limit(config: Any) -> int | None:
    cfg = config.get_text_config() if hasattr(config, "get_text_config") else config
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        v = getattr(cfg, key, None)
        if isinstance(v, int) and v > 0:
            return v
    return None


def render_texts(rm: RewardModel, prompts: Sequence[str], responses: Sequence[str]) -> list[str]:
    """Chat-template rendering of every (prompt, response), as in training."""
    return [render(rm.tokenizer, p, r, rm.template_override) for p, r in zip(prompts, responses)]


def encode_items(
    rm: RewardModel, prompts: Sequence[str], responses: Sequence[str]
) -> tuple[list[list[int]], TruncationStats]:
    """Render and tokenize exactly as training does (:func:`rmselect.rm.data.tokenize_responses`).

    The tokenizer's special prefix (BOS) is added only when the template did not write it;
    texts longer than ``max_length`` lose tokens from the left after that prefix, so the end
    of the response, where the reward is read, always survives (RewardBench's pipeline
    truncates on the right instead; we keep the training convention).
    """
    stats = TruncationStats()
    ids = tokenize_responses(
        rm.tokenizer, prompts, responses, rm.template_override, rm.max_length, stats
    )
    return ids, stats


def tokenize(rm: RewardModel, texts: Sequence[str]) -> tuple[list[list[int]], int]:
    """Token ids of already rendered texts and how many were cut at ``max_length``."""
    stats = TruncationStats()
    ids = encode_rendered(rm.tokenizer, texts, None, rm.max_length, stats)
    return ids, stats.truncated


def length_batches(
    lengths: Sequence[int], batch_size: int, max_tokens: int | None, least_padding: bool = False
) -> list[np.ndarray]:
    """Index batches over texts sorted by length (longest first, stable).

    A batch holds at most ``batch_size`` rows and at most ``max_tokens`` padded tokens
    (rows x longest row); a single text longer than ``max_tokens`` gets a batch of its own.
    By default each batch is filled in turn (:func:`fill_cuts`): the fewest forwards, but
    the first (longest) batches span a wide range of lengths and pad a lot (on 256
    heavy-tailed pairs, 31 % of 512 texts' padded tokens are padding with 64-row batches).

    ``least_padding=True`` cuts the same sorted texts where the padded tokens are fewest
    among all cuts into no more batches than filling needs (:func:`fewest_padded_cuts`):
    no more forwards, the same caps, less padding (17 % -> 13 % there). It is opt-in
    because a text's reward depends on its batch's width up to kernel rounding (~1e-6), so
    turning it on changes score tables in their last digits.
    """
    if batch_size < 1:
        raise ScorerError("batch_size must be at least 1")
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    sorted_lengths = np.asarray(lengths, dtype=np.int64)[order]
    cut = fewest_padded_cuts if least_padding else fill_cuts
    cuts = cut(sorted_lengths, batch_size, max_tokens)
    return [order[a:b] for a, b in zip(cuts[:-1], cuts[1:])]


def fill_cuts(sorted_lengths: np.ndarray, batch_size: int, max_tokens: int | None) -> list[int]:
    """Batch boundaries of filling each batch in turn (longest-first ``sorted_lengths``)."""
    cuts = [0]
    width = 0
    for k, n in enumerate(sorted_lengths.tolist()):
        rows = k - cuts[-1]
        w = max(width, n)
        if rows and (rows >= batch_size or (max_tokens and w * (rows + 1) > max_tokens)):
            cuts.append(k)
            w = n
        width = w
    return cuts + [len(sorted_lengths)] if len(sorted_lengths) else [0]


#: Above this many DP cells (batches x texts x rows) the scorer keeps filling's cuts.
DP_CELL_LIMIT = 200_000_000


def fewest_padded_cuts(sorted_lengths: np.ndarray, batch_size: int, max_tokens: int | None) -> list[int]:
    """Boundaries ``[0, ..., n]`` of contiguous batches over longest-first lengths with the
    fewest padded tokens, using at most as many batches as :func:`fill_cuts`.

    Dynamic programme: ``cost[k][i]`` = fewest padded tokens of the first ``i`` texts in at
    most ``k`` batches; a batch ``[j, i)`` costs ``(i - j) * sorted_lengths[j]`` (its first
    text is its longest) and is allowed when it has at most ``batch_size`` rows and at most
    ``max_tokens`` padded tokens, or one row. Ties go to the larger last batch, so the
    result is deterministic. Falls back to filling above :data:`DP_CELL_LIMIT` cells.
    """
    n = len(sorted_lengths)
    fill = fill_cuts(sorted_lengths, batch_size, max_tokens)
    n_batches = len(fill) - 1
    rows_max = min(batch_size, n)
    if n == 0 or n_batches * n * rows_max > DP_CELL_LIMIT:
        return fill
    s = np.asarray(sorted_lengths, dtype=np.int64)
    big = np.iinfo(np.int64).max // 4
    cost = np.full(n + 1, big, dtype=np.int64)
    cost[0] = 0
    choice = np.zeros((n_batches + 1, n + 1), dtype=np.int32)  # rows of the last batch
    for k in range(1, n_batches + 1):
        new = cost.copy()  # "at most k": k - 1 batches may already cover a prefix
        for r in range(rows_max, 0, -1):  # larger last batches first: they win ties
            start = s[: n + 1 - r]
            cand = cost[: n + 1 - r] + r * start
            if r > 1 and max_tokens:
                cand = np.where(r * start <= max_tokens, cand, big)
            better = cand < new[r:]
            new[r:] = np.where(better, cand, new[r:])
            choice[k, r:] = np.where(better, r, choice[k, r:])
        cost = new
    cuts = [n]
    k, i = n_batches, n
    while i > 0:
        while choice[k, i] == 0:  # covered with fewer batches
            k -= 1
        i -= int(choice[k, i])
        k -= 1
        cuts.append(i)
    return cuts[::-1]


@torch.inference_mode()
def forward_outputs(rm: RewardModel, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Raw head outputs ``(batch, num_labels)`` at the last real token (float32).

    Uses the training stage's forward (:class:`rmselect.rm.model.RewardModel`: trunk with
    mask-derived positions, hidden state at the last real token, the model's own head).
    """
    if rm.wrapped is not None:
        return rm.wrapped(input_ids, attention_mask).float()
    # Fallback: the model's own pooling (rightmost token != pad_token_id), with padding
    # filled by an id that occurs in no real token of this batch, so it finds the last one.
    model = rm.model
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    used = set(input_ids[attention_mask.bool()].tolist())
    pad_id = next(i for i in range(len(used) + 1) if i not in used)
    cfg.pad_token_id = pad_id
    ids = input_ids.masked_fill(attention_mask == 0, pad_id)
    return model(input_ids=ids, attention_mask=attention_mask, use_cache=False).logits.float()


def wrap_model(model: Any) -> Any | None:
    """The training-stage RM wrapper, or None when the model has no recognisable head."""
    try:
        head_of(model)
        trunk_of(model)
    except ValueError:
        sys.stderr.write(
            f"rmselect eval: warning: {type(model).__name__} has no score/classifier head;"
            " using its own pooled logits\n"
        )
        return None
    return TrainingRewardModel(model).eval()


def reward_from_outputs(rm: RewardModel, outputs: np.ndarray) -> np.ndarray:
    """Scalar reward per row: the single output, or outputs . merge weights."""
    if rm.weights is not None:
        return outputs @ rm.weights
    return outputs[:, 0]


@dataclass
class ScoreResult:
    rewards: np.ndarray  # (n,)
    outputs: np.ndarray  # (n, num_labels)
    n_tokens: np.ndarray  # (n,)
    n_truncated: int
    n_batches: int
    padded_tokens: int
    wall_s: float


def score_texts(rm: RewardModel, texts: Sequence[str], **batching: Any) -> ScoreResult:
    """Rewards for rendered texts, in input order; ``batching``: the keyword options of
    :func:`score_ids` (``batch_size, max_tokens, progress, least_padding``)."""
    t0 = time.perf_counter()
    ids, truncated = tokenize(rm, texts)
    res = score_ids(rm, ids, **batching)
    res.n_truncated = truncated
    res.wall_s = time.perf_counter() - t0
    return res


def score_ids(
    rm: RewardModel,
    ids: Sequence[Sequence[int]],
    batch_size: int = 64,
    max_tokens: int | None = 32768,
    progress: bool = True,
    least_padding: bool = False,
) -> ScoreResult:
    """Rewards for token-id sequences, in input order (see module doc for the batching)."""
    t0 = time.perf_counter()
    lengths = [len(x) for x in ids]
    if any(n == 0 for n in lengths):
        raise ScorerError("a text tokenized to zero tokens; nothing to score")
    batches = length_batches(lengths, batch_size, max_tokens, least_padding)
    pad = rm.tokenizer.pad_token_id if rm.tokenizer.pad_token_id is not None else 0
    outputs = np.zeros((len(ids), rm.num_labels), dtype=np.float64)
    padded = 0
    done = 0
    next_report = 0.0
    for b, idx in enumerate(batches):
        width = max(lengths[i] for i in idx)
        padded += width * len(idx)
        input_ids = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            input_ids[row, : lengths[i]] = torch.tensor(ids[i], dtype=torch.long)
            mask[row, : lengths[i]] = 1
        out = forward_outputs(rm, input_ids.to(rm.device), mask.to(rm.device))
        outputs[idx] = out.cpu().numpy().astype(np.float64)
        done += len(idx)
        frac = done / len(ids)
        if progress and (frac >= next_report or b == len(batches) - 1):
            rate = done / max(time.perf_counter() - t0, 1e-9)
            sys.stderr.write(
                f"rmselect eval: scored {done}/{len(ids)} texts ({100 * frac:.0f}%),"
                f" batch {b + 1}/{len(batches)}, {rate:.1f} texts/s\n"
            )
            next_report = frac + 0.1
    return ScoreResult(
        rewards=reward_from_outputs(rm, outputs),
        outputs=outputs,
        n_tokens=np.asarray(lengths),
        n_truncated=0,
        n_batches=len(batches),
        padded_tokens=padded,
        wall_s=time.perf_counter() - t0,
    )
