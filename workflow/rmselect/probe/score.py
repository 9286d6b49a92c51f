"""Two probe features of a base model, read before any reward model is trained.

* ``zero_shot``: the share of HelpSteer2-Preference validation pairs (ties left out) whose
  preferred response has the higher mean token log-probability under the base model, each
  response rendered with the model's chat template after its prompt. Does the language model
  itself prefer the better answer?
* ``linear_probe``: a logistic regression on the difference of the two responses' frozen
  last-token hidden states (the token where an RM reads its reward), fitted on train pairs
  and scored on the validation pairs, in the spirit of LogME: how much of the preference a
  linear reward head could read without any fine-tuning. Pairs are symmetrised
  (``s(good) - s(bad)`` labelled 1, its negative 0) and the model has no intercept, so a
  pair's two orders always get opposite scores. The regularisation strength is chosen by
  cross-validation on the train pairs only (both orders of a pair in one fold), so the
  validation score is an honest held-out accuracy.

Texts are rendered and encoded exactly as RM training and evaluation do it
(:func:`rmselect.rm.data.render_pairs`, :func:`rmselect.rm.data.encode_rendered`, the same
truncation from the left), and the pairs come from the same loader
(:func:`rmselect.rm.data.load_pairs`), so split names and prompt formats are handled once.
Cost: one forward per response, counted in tokens and in ``2 * N`` FLOPs per token.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rmselect import cli
from rmselect.cli import opt

log = logging.getLogger("rmselect.probe")

#: Inverse regularisation strengths the linear probe chooses from by cross-validation.
PROBE_C = (0.001, 0.01, 0.1, 1.0)


@dataclass(frozen=True)
class ProbeSettings:
    """What the probe reads: pair caps, truncation, batching and which hidden states."""

    max_train_pairs: int | None = 1000
    max_val_pairs: int | None = None
    max_length: int = 2048
    batch_size: int = 8
    layers: str = "last"  # "last": the final hidden state; "all": every layer, concatenated
    cv_folds: int = 5


@dataclass
class ProbeResult:
    """One base model's probe features and what they cost (``results/probe/{model}.json``)."""

    model: str
    zero_shot: float
    linear_probe: float
    linear_probe_train: float
    probe_c: float
    pairs_train: int
    pairs_validation: int
    state_dim: int
    tokens: int
    flops: float
    params: int
    wall_s: float
    layers: str
    max_length: int


class ResponseReader:
    """A frozen causal LM that reads (prompt, response) texts the way an RM would see them."""

    def __init__(self, model: Any, tokenizer: Any, template: str | None, settings: ProbeSettings):
        self.model = model.eval()
        self.tok = tokenizer
        self.template = template
        self.settings = settings
        self.tokens = 0

    def encode(self, prompts: Sequence[str], responses: Sequence[str]) -> list[tuple[list[int], int]]:
        """Token ids of each rendered text (training's truncation) and its response's first
        token index (after any cut of the prompt)."""
        from rmselect.rm.data import encode_rendered, render_pairs

        texts, starts = render_pairs(self.tok, prompts, responses, self.template)
        full = encode_rendered(self.tok, texts)
        cut = encode_rendered(self.tok, texts, max_length=self.settings.max_length)
        heads = encode_rendered(self.tok, [t[:s] for t, s in zip(texts, starts)])
        out = []
        for ids_full, ids, head in zip(full, cut, heads):
            start = len(head) - (len(ids_full) - len(ids))
            out.append((ids, min(max(start, 1), len(ids) - 1)))
        return out

    def read(self, prompts: Sequence[str], responses: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Mean response-token log-probability and last-token state of every text.

        Batches are length-sorted and right-padded with an attention mask; a text's last
        real token is found from its own length, never from the pad id (pad may be EOS).
        Log-probabilities come from :func:`rmselect.logprobs.batch_logprobs` (head over slices
        of positions, the model's own softcapping; never the full-vocabulary logits).
        """
        import torch

        from rmselect.logprobs import batch_logprobs

        encoded = self.encode(prompts, responses)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
        logp = np.zeros(len(encoded))
        states: list[np.ndarray | None] = [None] * len(encoded)
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else 0
        device = next(self.model.parameters()).device
        bs = max(1, self.settings.batch_size)
        for b in range(0, len(order), bs):
            idx = order[b : b + bs]
            width = max(len(encoded[i][0]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for r, i in enumerate(idx):
                seq = encoded[i][0]
                ids[r, : len(seq)] = torch.tensor(seq)
                mask[r, : len(seq)] = 1
            spans = [(encoded[i][1] - 1, len(encoded[i][0]) - 1) for i in idx]
            out = batch_logprobs(self.model, ids.to(device), mask.to(device), spans,
                                 output_hidden_states=True)
            assert out.hidden_states is not None
            hidden = out.hidden_states[1:] if self.settings.layers == "all" else out.hidden_states[-1:]
            for r, i in enumerate(idx):
                n = len(encoded[i][0])
                self.tokens += n
                logp[i] = float(out.logprobs[r].mean())
                states[i] = torch.cat([h[r, n - 1].float() for h in hidden]).cpu().numpy()
        return logp, np.stack(states) if states else np.zeros((0, 0))  # type: ignore[arg-type]


def pair_features(reader: ResponseReader, pairs: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symmetrised probe inputs ``x``, labels ``y`` and the per-pair zero-shot hits."""
    prompts = [p.prompt for p in pairs]
    lp_good, s_good = reader.read(prompts, [p.chosen for p in pairs])
    lp_bad, s_bad = reader.read(prompts, [p.rejected for p in pairs])
    diff = s_good - s_bad
    x = np.concatenate([diff, -diff])
    y = np.concatenate([np.ones(len(pairs), int), np.zeros(len(pairs), int)])
    return x, y, lp_good > lp_bad


def linear_probe(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
    folds: int = 5, cs: Sequence[float] = PROBE_C,
) -> tuple[float, float, float]:
    """(validation accuracy, train accuracy, chosen C) of a cross-validated logistic probe.

    Rows ``i`` and ``i + n/2`` are the two orders of one pair and share a CV group, so no
    pair is on both sides of a fold.
    """
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n = len(y_train) // 2
    groups = np.concatenate([np.arange(n), np.arange(n)])
    splits = list(GroupKFold(n_splits=max(2, min(folds, n))).split(x_train, y_train, groups))
    clf = make_pipeline(
        StandardScaler(with_mean=False),
        LogisticRegressionCV(Cs=list(cs), cv=splits, fit_intercept=False, max_iter=5000,
                             scoring="accuracy", l1_ratios=(0.0,),
                             use_legacy_attributes=False),
    ).fit(x_train, y_train)
    c = float(np.ravel(clf[-1].C_)[0])
    return float(clf.score(x_val, y_val)), float(clf.score(x_train, y_train)), c


def probe_model(
    name: str, reader: ResponseReader, train_pairs: Sequence[Any], val_pairs: Sequence[Any],
) -> ProbeResult:
    """Both probe features of one base model (see the module docstring)."""
    t0 = time.time()
    xt, yt, _ = pair_features(reader, train_pairs)
    xv, yv, hits = pair_features(reader, val_pairs)
    val, train, c = linear_probe(xt, yt, xv, yv, reader.settings.cv_folds)
    n_params = sum(p.numel() for p in reader.model.parameters())
    return ProbeResult(
        model=name, zero_shot=float(np.mean(hits)), linear_probe=val, linear_probe_train=train,
        probe_c=c, pairs_train=len(train_pairs), pairs_validation=len(val_pairs),
        state_dim=int(xt.shape[1]), tokens=reader.tokens, flops=2.0 * n_params * reader.tokens,
        params=int(n_params), wall_s=round(time.time() - t0, 3), layers=reader.settings.layers,
        max_length=reader.settings.max_length,
    )


@dataclass(kw_only=True)
class ProbeArgs:
    """Probe features of one base model before any RM is trained: zero-shot preference
    accuracy by mean log-probability and a cross-validated linear probe of frozen last-token
    states on HelpSteer2-Preference pairs (rmselect.probe.score). Writes one JSON file."""

    model: str = opt("model dir or hub id")
    name: str = opt("the model's name in the model table")
    data: str = opt("HelpSteer2-Preference data-set entry (JSON)")
    chat_template: str | None = opt("template override (file or Jinja)", default=None)
    trust_remote_code: bool = opt("run the model's own code", default=False)
    max_train_pairs: int = opt(
        f"train pairs the probe is fitted on (default {ProbeSettings.max_train_pairs}; 0: all)",
        default=ProbeSettings.max_train_pairs)
    max_val_pairs: int | None = opt("validation pairs scored (default: all)",
                                    default=ProbeSettings.max_val_pairs)
    max_length: int = opt(
        f"tokens per rendered text, cut from the left (default {ProbeSettings.max_length})",
        default=ProbeSettings.max_length)
    batch_size: int = opt(f"texts per forward (default {ProbeSettings.batch_size})",
                          default=ProbeSettings.batch_size)
    layers: str = opt("hidden states the linear probe reads (default last)",
                      default=ProbeSettings.layers, choices=("last", "all"))
    device: str | None = opt("cpu / cuda (default: cuda when available)", default=None)
    out: str = opt("output JSON")


def build_parser() -> argparse.ArgumentParser:
    return cli.build_parser(ProbeArgs, prog="probe_model.py")


def main(argv: Sequence[str] | None = None) -> int:
    from rmselect.datasets_io import DatasetError
    from rmselect.device import pick_device
    from rmselect.hf import load_causal_lm, load_tokenizer
    from rmselect.io import write_json
    from rmselect.rm.data import load_pairs
    from rmselect.rm.format import resolve_template

    a = cli.parse(ProbeArgs, argv, prog="probe_model.py")
    device = str(pick_device(a.device))  # a job holding GPUs without CUDA stops here
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = ProbeSettings(a.max_train_pairs or None, a.max_val_pairs or None, a.max_length,
                             a.batch_size, a.layers)
    try:
        entry = json.loads(a.data)
        train = load_pairs(entry, "train", settings.max_train_pairs)
        val = load_pairs(entry, "validation", settings.max_val_pairs)
    except (DatasetError, json.JSONDecodeError) as err:
        raise SystemExit(f"probe: model '{a.name}': {err}") from None
    if len(train) < 4:
        raise SystemExit(f"probe: model '{a.name}': {len(train)} train pairs; the linear probe "
                         "needs at least 4 (raise probe.max_train_pairs)")
    tok = load_tokenizer(a.model, trust_remote_code=a.trust_remote_code)
    model = load_causal_lm(a.model, trust_remote_code=a.trust_remote_code).to(device)
    reader = ResponseReader(model, tok, resolve_template(tok, a.chat_template), settings)
    res = probe_model(a.name, reader, train, val)
    log.info("%s: zero-shot %.3f, linear probe %.3f (train %.3f, C %g), %d tokens",
             a.name, res.zero_shot, res.linear_probe, res.linear_probe_train, res.probe_c, res.tokens)
    write_json(Path(a.out), asdict(res))
    return 0
