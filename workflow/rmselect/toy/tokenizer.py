"""A byte-level BPE tokenizer for the toy zoo, trained on the toy corpus.

Saved as a ``transformers`` ``PreTrainedTokenizerFast`` directory with distinct
bos / eos / pad / unk tokens and a Jinja chat template, so every stage can load it with
``AutoTokenizer`` and call ``apply_chat_template``. The tokenizer adds no special tokens on
its own (no post-processor): pre-training adds BOS/EOS around each document, and the chat
template starts with BOS and closes every turn with ``<|end|>`` (the EOS).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from rmselect import cli
from rmselect.cli import opt
from rmselect.io import atomic_path
from rmselect.toy.world import ASSISTANT, END, USER

BOS, EOS, PAD, UNK = "<|bos|>", END, "<|pad|>", "<|unk|>"
SYSTEM = "<|system|>"
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK, USER, ASSISTANT, SYSTEM]

#: The toy chat format: ``<|bos|><|user|>\\n...<|end|>\\n<|assistant|>\\n...<|end|>``.
#: A rendered conversation ends with ``<|end|>`` (the EOS), where RMs read their reward.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for m in messages %}"
    "{% if not loop.first %}{{ '\\n' }}{% endif %}"
    "<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '\\n' }}<|assistant|>\n{% endif %}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int):
    """Train a byte-level BPE on ``texts``; returns a ``PreTrainedTokenizerFast``."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    tok = Tokenizer(models.BPE(unk_token=UNK))
    # Qwen2's normalizer and pre-tokenizer (digits split one by one). transformers v5 loads
    # every `model_type: qwen2` checkpoint with Qwen2Tokenizer, which rebuilds exactly this
    # pipeline from the vocab and merges; using it for all toy models makes AutoTokenizer
    # give identical ids whatever the architecture (tests/test_toy_tokenizer_classes.py).
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        additional_special_tokens=[USER, ASSISTANT, SYSTEM],
        model_max_length=512,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def save_tokenizer(tokenizer, out_dir: str | Path) -> None:
    """Save atomically (the directory appears complete or not at all)."""
    with atomic_path(out_dir) as tmp:
        tokenizer.save_pretrained(str(tmp))


def load_toy_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


@dataclass(kw_only=True)
class TokenizerArgs:
    """Train the toy zoo's byte-level BPE tokenizer on the training corpus and save it as a
    transformers tokenizer directory (with a chat template)."""

    train: str = opt("corpus train.txt")
    vocab_size: int = opt("toy.tokenizer.vocab_size", default=768)
    out: str = opt("output directory")


def main(argv: list[str] | None = None) -> int:
    return cli.run(TokenizerArgs, run_tokenizer, argv, prog="toy_tokenizer.py")


def run_tokenizer(a: TokenizerArgs) -> int:
    from rmselect.toy.models import read_corpus

    tok = train_tokenizer(read_corpus(a.train), a.vocab_size)
    save_tokenizer(tok, a.out)
    print(f"tokenizer: {len(tok)} tokens -> {a.out}")
    return 0
