"""The reward model: a Hugging Face sequence classifier read at the last real token.

Training wraps ``AutoModelForSequenceClassification`` in :class:`RewardModel`, which runs the
transformer trunk, pools the last hidden state at the last position whose attention mask is
1 (:func:`rmselect.rm.pooling.pool_last`) and applies the model's own ``score`` head. The
saved checkpoint is a plain HF sequence-classification directory.

**Agreement with plain transformers.** HF's sequence classifiers find the last token as the
last position whose id differs from ``config.pad_token_id``. That is only right when the pad
id never occurs in real text — it breaks when pad == eos (the EOS closing a response counts
as padding). :func:`prepare_tokenizer` therefore always gives the tokenizer a dedicated pad
token (:data:`PAD_TOKEN`, added as a special token, embedding grown only when the matrix has
no spare row) and the saved config's ``pad_token_id`` is that id. Plain-transformers scores
then equal ours for left and right padding alike (tests/test_rm_model.py).

**Positions.** ``position_ids`` are computed from the attention mask (``cumsum - 1``), so a
left-padded sequence gets the same positions, and the same reward, as a right-padded one.

**fp32 rewards.** The head runs in float32 under every precision (:func:`head_fp32`): the
hidden state at the pooled token is cast to fp32 and multiplied by the head's weights in
fp32. In bf16 a reward has 8 significant bits (steps of 0.016 for |r| in [2, 4)), so chosen and
rejected texts often tie, and a tie counts as wrong in validation and RewardBench. The head's
parameters are kept in fp32 where the engine allows it (:func:`keep_head_fp32`: CPU runs,
scoring); DeepSpeed's bf16 mode casts every parameter to bf16 but keeps fp32 masters, which
the export writes (:mod:`rmselect.rm.checkpoint`). The saved names are the model's own
(``score.weight``), so plain ``AutoModelForSequenceClassification`` still loads the directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from rmselect.rm.pooling import pool_last

#: The pad token every trained RM's tokenizer carries (never produced by normal text).
PAD_TOKEN = "<|rmselect_pad|>"


#: Names of existing special tokens that ordinary text never produces, best first: a
#: tokenizer that refuses new tokens (Phi-3-small's tiktoken tokenizer) pads with one of
#: them (:func:`unused_special_token`).
RESERVED_PATTERNS = (r"pad", r"reserved", r"unused", r"dummy", r"placeholder", r"extra_id")


def unused_special_token(tokenizer: Any) -> str | None:
    """An existing special or reserved token that is not bos/eos/unk/sep/cls/mask and not
    in the chat template; the first by :data:`RESERVED_PATTERNS`, then by id. None if none."""
    import re

    used = {getattr(tokenizer, n, None) for n in
            ("bos_token", "eos_token", "unk_token", "sep_token", "cls_token", "mask_token")}
    template = str(getattr(tokenizer, "chat_template", None) or "")
    names: dict[str, int] = {}
    try:
        added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
        names.update({str(t): int(i) for i, t in added.items()})
    except Exception:  # remote tokenizers implement only part of the API
        pass
    try:
        vocab = tokenizer.get_vocab()
        names.update({t: int(i) for t, i in vocab.items()
                      if any(re.search(p, t, re.I) for p in RESERVED_PATTERNS)
                      and re.fullmatch(r"[<\[].*[>\]]", t)})
    except Exception:
        pass
    best = None
    for text, tid in names.items():
        if text in used or not text or text in template:
            continue
        rank = next((k for k, p in enumerate(RESERVED_PATTERNS) if re.search(p, text, re.I)),
                    None)
        if rank is None:
            continue
        key = (rank, tid)
        if best is None or key < best[0]:
            best = (key, text)
    return None if best is None else best[1]


def prepare_tokenizer(tokenizer: Any, padding_side: str = "right", name: str = "model") -> Any:
    """Give ``tokenizer`` the dedicated pad token (idempotent); returns it.

    A tokenizer that refuses new special tokens (remote-code tokenizers such as
    Phi-3-small's, built on tiktoken, raise) pads with an existing unused special or
    reserved token instead (:func:`unused_special_token`); any token that never occurs in
    text keeps plain transformers' pooling (last token != pad id) equal to ours.
    """
    if tokenizer.pad_token != PAD_TOKEN:
        try:
            tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
            refused = tokenizer.pad_token != PAD_TOKEN or tokenizer.pad_token_id is None
        except Exception:  # NotImplementedError, ValueError ... from remote code
            refused = True
        if refused:
            _pad_with_reserved(tokenizer, name)
    tokenizer.padding_side = padding_side
    return tokenizer


def _pad_with_reserved(tokenizer: Any, name: str) -> None:
    current = getattr(tokenizer, "pad_token", None)
    if current and current == unused_special_token(tokenizer):
        return  # already padding with an unused reserved token (idempotent)
    from rmselect.hf import ModelLoadError

    token = unused_special_token(tokenizer)
    if token is None:
        raise ModelLoadError(
            f"model {name}: its tokenizer refuses new special tokens and has no unused "
            "reserved or special token to pad with; give the model-table row a tokenizer "
            "with a pad token that never occurs in text")
    tokenizer.pad_token = token


def fit_embeddings(model: Any, tokenizer: Any) -> bool:
    """Grow the input embedding when the pad id has no row; True when it was resized."""
    emb = model.get_input_embeddings()
    if tokenizer.pad_token_id >= emb.num_embeddings:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        return True
    return False


def _set_pad_id(config: Any, pad_id: int) -> None:
    config.pad_token_id = pad_id
    text = config.get_text_config() if hasattr(config, "get_text_config") else None
    if text is not None and text is not config:
        text.pad_token_id = pad_id


def disable_dropout(model: nn.Module) -> None:
    """Set every dropout probability to 0 (RM training is deterministic given the data)."""
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    cfg = getattr(model, "config", None)
    for key in ("attention_dropout", "hidden_dropout", "resid_pdrop", "embd_pdrop", "attn_pdrop"):
        if cfg is not None and hasattr(cfg, key) and isinstance(getattr(cfg, key), float):
            setattr(cfg, key, 0.0)


class Fp32Linear(nn.Linear):
    """An ``nn.Linear`` that computes in float32 whatever the dtype of its weights or input.

    The head's class is swapped to this one in place (:func:`as_fp32_linear`): the
    state-dict names stay the model's own, the model's own ``forward`` (plain transformers
    pooling) gives fp32 logits too, and the head is still called as a module, so DeepSpeed's
    ZeRO-3 hooks gather its parameters.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            bias = None if self.bias is None else self.bias.float()
            return nn.functional.linear(x.float(), self.weight.float(), bias)


def as_fp32_linear(head: nn.Module) -> nn.Module:
    """Swap a linear head's class to :class:`Fp32Linear` (in place; idempotent)."""
    if isinstance(head, nn.Linear) and not isinstance(head, Fp32Linear):
        head.__class__ = Fp32Linear
    return head


def head_fp32(head: nn.Module, pooled: torch.Tensor) -> torch.Tensor:
    """``head(pooled)`` computed in float32 whatever the dtype of the trunk or the head.

    A linear head becomes :class:`Fp32Linear`; any other head gets an fp32 copy of its input
    (in its parameters' dtype) and its output in fp32.
    """
    head = as_fp32_linear(head)
    if isinstance(head, Fp32Linear):
        return head(pooled)
    with torch.autocast(device_type=pooled.device.type, enabled=False):
        return head(pooled.float().to(next(head.parameters()).dtype)).float()


def keep_head_fp32(model: Any) -> nn.Module:
    """Make the head's parameters fp32 and its matmul fp32 (:class:`Fp32Linear`), in place;
    the trunk keeps its dtype. Returns the head."""
    return as_fp32_linear(head_of(model)).float()


def load_head_fp32(model: Any, ref: str | Path) -> bool:
    """Scoring: make the head fp32 and, when ``ref`` is a local dir whose safetensors hold the
    head in fp32 (as training saves it), load those exact values (``from_pretrained`` in bf16
    rounded them). Returns whether values were read back; False for a model without a head.
    """
    try:
        head = keep_head_fp32(model)
    except ValueError:
        return False
    folder = Path(ref)
    if not folder.is_dir():
        return False
    from safetensors import safe_open

    prefix = next(n for n, m in model.named_modules() if m is head)
    wanted = {f"{prefix}.{n}": p for n, p in head.named_parameters()}
    found = 0
    for f in sorted(folder.glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as fh:
            for key in set(fh.keys()) & set(wanted):
                t = fh.get_tensor(key)
                if t.dtype == torch.float32 and t.shape == wanted[key].shape:
                    with torch.no_grad():
                        wanted[key].copy_(t)
                    found += 1
    return found == len(wanted)


def head_of(model: Any) -> nn.Module:
    """The linear head of an HF sequence classifier (``score`` for decoder LMs)."""
    for name in ("score", "classifier"):
        head = getattr(model, name, None)
        if isinstance(head, nn.Module):
            return head
    raise ValueError(
        f"{type(model).__name__} has no 'score' or 'classifier' head; this architecture is "
        "not supported for reward-model training"
    )


def trunk_of(model: Any) -> nn.Module:
    """The transformer body of an HF sequence classifier (``model.model`` and friends)."""
    trunk = getattr(model, model.base_model_prefix, None)
    if not isinstance(trunk, nn.Module):
        raise ValueError(f"{type(model).__name__}: cannot find its base model")
    return trunk


def attention_ratio(config: Any) -> float:
    """Per-token linear work / per-position attention work of a transformer (for packing).

    ~ (4 h^2 + 3 h ffn) / (2 h) = 2 h + 1.5 ffn; 1024 when the config does not say.
    """
    cfg = config.get_text_config() if hasattr(config, "get_text_config") else config
    h = getattr(cfg, "hidden_size", None)
    ffn = getattr(cfg, "intermediate_size", None) or (4 * h if h else None)
    if not h:
        return 1024.0
    return 2.0 * h + 1.5 * ffn


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids that count only real tokens (left padding gets the same positions)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


class RewardModel(nn.Module):
    """``hf`` trunk -> hidden state at the last real token -> ``hf``'s linear head."""

    def __init__(self, hf: Any):
        super().__init__()
        self.hf = hf
        as_fp32_linear(head_of(hf))  # the reward in fp32 whatever the head's dtype

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        last_row: torch.Tensor | None = None,
        last_col: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Rewards ``(sequences, num_labels)``.

        Padded input: ``input_ids`` + ``attention_mask`` (either side), one sequence per row.
        Packed input (:func:`rmselect.rm.batches.pack_rows`): ``position_ids`` restarting at
        0 per sequence, no attention mask, and the (row, column) of every sequence's last
        token; transformers derives the sequence boundaries from the position resets.
        """
        trunk = trunk_of(self.hf)
        if attention_mask is not None:
            out = trunk(input_ids=input_ids, attention_mask=attention_mask,
                        position_ids=positions_from_mask(attention_mask), use_cache=False)
        else:
            if position_ids is None or last_row is None or last_col is None:
                raise ValueError("packed input needs position_ids, last_row and last_col")
            out = trunk(input_ids=input_ids, position_ids=position_ids, use_cache=False)
        hidden = out[0] if isinstance(out, (tuple, list)) else out.last_hidden_state
        if attention_mask is not None:
            pooled = pool_last(hidden, attention_mask)
        else:
            pooled = hidden[last_row, last_col]
        return self.forward_head(pooled)

    def forward_head(self, pooled: torch.Tensor) -> torch.Tensor:
        """The head on the pooled hidden states, in fp32 (:func:`head_fp32`)."""
        return head_fp32(head_of(self.hf), pooled)


#: Token sequences of different lengths (ids offset past the special tokens) whose rewards,
#: packed side by side and padded one per row, must agree before packing is used.
PACKING_PROBE = ([7, 9, 11, 8, 10, 12, 9], [13, 8, 14, 7, 11], [9, 9, 12, 7],
                 [10, 14, 8, 13, 7, 12])


def kernel_of(model: Any) -> str | None:
    """The attention implementation a loaded HF model runs (``sdpa``, ``eager`` ...)."""
    cfg = getattr(model, "config", None)
    return getattr(cfg, "_attn_implementation", None)


def packed_layouts(kernel: str | None) -> list[int | None]:
    """Row counts the packing probe must check for ``kernel``: training packs one row for
    kernels that see boundaries only there, else the cost model's rows (one or several)."""
    from rmselect.rm.batches import one_row_only

    return [1] if one_row_only(kernel) else [1, 2]


def packing_agrees(forward: Any, vocab_size: int, dtype: torch.dtype = torch.float32,
                   layouts: Sequence[int | None] = (1,)) -> tuple[bool, float]:
    """Whether packed rewards equal padded ones for :data:`PACKING_PROBE` in every layout
    training may use; (agrees, max diff).

    Packing relies on the model turning restarting ``position_ids`` (and no attention mask)
    into separate sequences, as transformers' own decoders do (a block-diagonal mask, or
    flash-attention's varlen path in a one-row batch). A model that does not (remote code, an
    architecture with its own masking, flash-attention over several rows) lets a sequence
    attend to its neighbour: its reward then differs by far more than rounding.
    ``forward(rows, n_rows)`` returns the rewards of ``rows``, padded when ``n_rows`` is 0,
    else packed into ``n_rows`` rows (:func:`rmselect.rm.batches.pack_rows`). ``layouts``:
    :func:`packed_layouts`. Tolerance: 1e-4 relative in fp32, 5 % in bf16/fp16.
    """
    rows = [[t % vocab_size for t in seq] for seq in PACKING_PROBE]
    diff = 0.0
    with torch.no_grad():
        padded = forward(rows, 0).float()
        for n_rows in layouts:
            packed = forward(rows, n_rows).float()
            diff = max(diff, float((packed - padded).abs().max()))
    rtol = 1e-4 if dtype == torch.float32 else 5e-2
    return diff <= 1e-6 + rtol * float(padded.abs().max()), diff


def load_for_training(
    ref: str | Path,
    num_labels: int,
    tokenizer: Any,
    trust_remote_code: bool = False,
    dtype: torch.dtype = torch.float32,
    label_names: Sequence[str] | None = None,
    attn_implementation: str | None = "auto",
) -> Any:
    """HF sequence classifier for ``ref`` with ``num_labels`` outputs, ready to train.

    The pad id is written into the config and the embedding grown if needed; dropout off;
    the head in fp32; the attention kernel from :func:`rmselect.hf.resolve_attn_implementation`.
    """
    from rmselect.hf import load_sequence_classifier

    model = load_sequence_classifier(
        ref, num_labels=num_labels, trust_remote_code=trust_remote_code, dtype=dtype,
        attn_implementation=attn_implementation,
    )
    fit_embeddings(model, tokenizer)
    _set_pad_id(model.config, tokenizer.pad_token_id)
    if label_names:
        model.config.id2label = {i: n for i, n in enumerate(label_names)}
        model.config.label2id = {n: i for i, n in enumerate(label_names)}
    if num_labels > 1:
        model.config.problem_type = "regression"
    disable_dropout(model)
    model.config.use_cache = False
    keep_head_fp32(model)
    return model


def save_hf(
    model: Any,
    tokenizer: Any,
    out_dir: str | Path,
    state_dict: dict[str, torch.Tensor] | None = None,
    chat_template: str | None = None,
) -> None:
    """Write an HF sequence-classification dir atomically (model, config, tokenizer).

    ``chat_template`` (the resolved template the RM was trained with) is baked into the
    saved tokenizer so that scoring from the directory renders exactly like training did.
    """
    from rmselect.io import atomic_path

    with atomic_path(out_dir) as tmp:
        model.save_pretrained(tmp, state_dict=state_dict, safe_serialization=True)
        if chat_template is not None:
            tokenizer.chat_template = chat_template
        tokenizer.save_pretrained(tmp)
