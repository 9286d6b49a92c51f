"""The benchmark run's settings and model: :class:`Settings` (the non-task fields of
``benchmarks:``) and :class:`ModelHandle`, which loads the model once, on first use, for the
lm-eval and code tasks of :mod:`rmselect.bench.run`. ``torch`` and ``lm_eval`` are imported
inside the functions, never at module import.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass
class Settings:
    """Global run settings (the non-task fields of ``benchmarks:``)."""

    mode: str = "small"
    seed: int = 0
    backend: str = "hf"
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int | str = 8
    max_length: int | None = None
    apply_chat_template: bool = False
    bootstrap_iters: int = 0
    #: CPU threads for torch (tiny models on a shared CPU run fastest single-threaded).
    threads: int = 1
    sandbox: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Settings":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def resolve_device(device: str) -> str:
    """``auto``: CUDA when available (a job holding GPUs without CUDA stops), else CPU."""
    from rmselect.device import pick_device

    return str(pick_device(device))


def _dtype(name: str) -> Any:
    import torch

    from rmselect.hf import default_dtype

    if name == "auto":
        return default_dtype()
    try:
        return getattr(torch, name)
    except AttributeError:
        raise ValueError(f"benchmarks.dtype: unknown torch dtype {name!r}") from None


class ModelHandle:
    """Loads the model once, on first use, for HF lm-eval and code tasks."""

    def __init__(self, ref: str, trust_remote_code: bool, settings: Settings, name: str):
        self.ref = ref
        self.name = name
        self.trust_remote_code = trust_remote_code
        self.settings = settings
        self.device = resolve_device(settings.device)
        if self.device == "cpu":
            import torch

            torch.set_num_threads(max(1, int(settings.threads)))
        self._hf: tuple[Any, Any] | None = None
        self._lm: Any = None
        self.load_s = 0.0

    def hf(self) -> tuple[Any, Any]:
        if self._hf is None:
            from rmselect.hf import load_causal_lm, load_tokenizer

            t0 = time.monotonic()
            try:
                tok = load_tokenizer(self.ref, trust_remote_code=self.trust_remote_code)
                model = load_causal_lm(
                    self.ref, trust_remote_code=self.trust_remote_code,
                    dtype=_dtype(self.settings.dtype),
                )
            except OSError as err:
                raise RuntimeError(
                    f"model '{self.name}': cannot load {self.ref} ({err}); build it first or "
                    "make it available in the local Hugging Face cache"
                ) from err
            model.to(self.device).eval()
            self._hf = (model, tok)
            self.load_s += time.monotonic() - t0
        return self._hf

    def lm(self) -> Any:
        """The lm-eval LM object (HFLM around our safely loaded model, or vLLM)."""
        if self._lm is None:
            t0 = time.monotonic()
            if self.settings.backend == "vllm":
                import lm_eval.api.registry

                args = {
                    "pretrained": self.ref,
                    "trust_remote_code": self.trust_remote_code,
                    "dtype": self.settings.dtype,
                }
                if self.settings.max_length:
                    args["max_model_len"] = self.settings.max_length
                self._lm = lm_eval.api.registry.get_model("vllm").create_from_arg_obj(
                    args, {"batch_size": self.settings.batch_size}
                )
            else:
                from lm_eval.models.huggingface import HFLM

                model, tok = self.hf()
                self._lm = HFLM(
                    pretrained=model,
                    tokenizer=tok,
                    batch_size=self.settings.batch_size,
                    max_length=capped_length(self.settings.max_length, model),
                )
            self.load_s += time.monotonic() - t0
        return self._lm

    @property
    def n_gpus(self) -> int:
        if self.device.startswith("cuda"):
            return 1
        return 0


def capped_length(max_length: int | None, model: Any) -> int | None:
    """``benchmarks.max_length`` capped at the model's own context (``max_position_embeddings``)
    so a short-context model is never asked for more positions than it has."""
    ctx = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if max_length and isinstance(ctx, int) and ctx > 0:
        return min(int(max_length), ctx)
    return max_length
