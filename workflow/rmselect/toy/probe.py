"""Probe what a toy base model offers a reward model, before any RM is trained on it.

The toy zoo only shows a real base-model -> RM signal if a base model both *knows* the
world and carries a *judgment* of an answer where an RM reads its reward (the last token of
the rendered conversation). Training RMs to find out costs minutes per model; these probes
cost seconds and say which of the two fails. Three numbers per base model:

* ``recall``: the model's ``toy_facts`` accuracy, read from the benchmark stage's lm-eval
  result (``results/benchmarks/{model}/toy_facts.json``, ``raw_score``). Does the model
  know the facts?
* ``zero_shot``: share of RM validation pairs (HelpSteer2-Preference ``validation`` split,
  ties left out) whose preferred response has the higher mean token log-probability under
  the base model. Does the language model itself prefer the right answer?
* ``linear_probe``: a logistic regression on the difference of the two responses'
  last-token hidden states (every layer, concatenated), fitted on the ``train`` split and
  scored on the ``validation`` split: what a linear reward head could read without any
  fine-tuning. Validation pairs use entities the fit never saw, as RM validation does.

``recall`` high but ``linear_probe`` near 0.5 means the model knows facts but does not
represent whether an answer is right at the reward token: RM training then has to learn the
comparison itself from a few hundred pairs, which the toy zoo's RMs do not manage.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rmselect import cli
from rmselect.cli import opt

#: Inverse regularisation strengths tried by the linear probe (best validation score kept,
#: an optimistic but standard probe read-out; each is fitted on train pairs only).
PROBE_C = (0.01, 0.1, 1.0)


@dataclass
class ProbeResult:
    """One base model's probe numbers (see the module docstring)."""

    model: str
    recall: float
    recall_n: int
    zero_shot: float
    linear_probe: float
    linear_probe_train: float
    pairs_train: int
    pairs_validation: int


def preference_pairs(rows: Sequence[dict[str, Any]], split: str) -> list[tuple[str, str, str]]:
    """``(prompt, preferred, other)`` of one split; ties (strength 0) are dropped."""
    from rmselect.conventions import PREFERENCE_SIGN

    out = []
    for row in rows:
        strength = int(row["preference_strength"])
        if row.get("split") != split or strength == 0:
            continue
        r1, r2 = row["response_1"], row["response_2"]
        out.append((row["prompt"], r1, r2) if strength * PREFERENCE_SIGN > 0 else (row["prompt"], r2, r1))
    return out


class LM:
    """A causal LM and its tokenizer with the few scoring calls the probes need."""

    def __init__(self, model_dir: str | Path):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.tok = AutoTokenizer.from_pretrained(str(model_dir))
        self.model = AutoModelForCausalLM.from_pretrained(str(model_dir)).eval()

    def read(self, prompt: str, response: str) -> tuple[float, np.ndarray]:
        """One forward of the rendered conversation: the response's mean token
        log-probability and the last token's hidden states (every layer after the
        embeddings, concatenated), where an RM reads its reward."""
        torch = self.torch
        ids, start = self.conversation(prompt, response)
        x = torch.tensor([ids])
        with torch.no_grad():
            out = self.model(input_ids=x, output_hidden_states=True)
        logp = out.logits[0, :-1].log_softmax(-1).gather(-1, x[0, 1:, None])[:, 0]
        state = torch.cat([h[0, -1] for h in out.hidden_states[1:]])
        return float(logp[max(0, start - 1):].mean()), state.numpy()

    def conversation(self, prompt: str, response: str) -> tuple[list[int], int]:
        """Token ids of the rendered conversation, encoded exactly as RM training and
        evaluation encode it, and the index of the response's first token."""
        from rmselect.rm.data import encode_rendered, render_pairs

        (text,), (start,) = render_pairs(self.tok, [prompt], [response], None)
        ids, head = encode_rendered(self.tok, [text, text[:start]])
        return ids, len(head)


def read_recall(path: str | Path) -> tuple[float, int]:
    """(accuracy, items) of a benchmark-stage result JSON (CONTRACTS.md, benchmarks)."""
    rec = json.loads(Path(path).read_text())
    return float(rec["raw_score"]), int(rec["items_used"])


def read_pairs(
    lm: LM, pairs: Sequence[tuple[str, str, str]]
) -> tuple[np.ndarray, np.ndarray, float]:
    """Probe data and zero-shot accuracy of ``pairs``, one forward per response.

    Probe data are symmetrised: ``x = s(good) - s(bad)`` labelled 1 and ``-x`` labelled 0.
    Zero-shot accuracy is the share of pairs whose preferred response has the higher mean
    token log-probability.
    """
    xs, ys, hits = [], [], []
    for prompt, good, bad in pairs:
        (lp_good, s_good), (lp_bad, s_bad) = lm.read(prompt, good), lm.read(prompt, bad)
        xs += [s_good - s_bad, s_bad - s_good]
        ys += [1, 0]
        hits.append(lp_good > lp_bad)
    return np.asarray(xs), np.asarray(ys), float(np.mean(hits)) if hits else float("nan")


def linear_probe(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray
) -> tuple[float, float]:
    """(validation, train) accuracy of the best of :data:`PROBE_C` (no intercept: a pair's
    two orders must get opposite scores)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scale = StandardScaler(with_mean=False).fit(x_train)
    xt, xv = scale.transform(x_train), scale.transform(x_val)
    best = (-1.0, -1.0)
    for c in PROBE_C:
        clf = LogisticRegression(C=c, fit_intercept=False, max_iter=5000).fit(xt, y_train)
        best = max(best, (float(clf.score(xv, y_val)), float(clf.score(xt, y_train))))
    return best


def probe_model(
    name: str,
    model_dir: str | Path,
    preference_jsonl: str | Path,
    recall_json: str | Path,
    max_pairs: int | None = None,
) -> ProbeResult:
    """All three probes for one base model (recall read from ``recall_json``)."""
    from rmselect.datasets_io import load_frame

    lm = LM(model_dir)
    rows = load_frame({"path": str(preference_jsonl)}).to_dicts()
    train = preference_pairs(rows, "train")[:max_pairs]
    val = preference_pairs(rows, "validation")[:max_pairs]
    if not train or not val:
        raise ValueError(f"{preference_jsonl}: needs non-tie pairs in both the train and the "
                         "validation split")
    recall, recall_n = read_recall(recall_json)
    xt, yt, _ = read_pairs(lm, train)
    xv, yv, zero_shot = read_pairs(lm, val)
    probe_val, probe_train = linear_probe(xt, yt, xv, yv)
    return ProbeResult(
        model=name,
        recall=recall,
        recall_n=recall_n,
        zero_shot=zero_shot,
        linear_probe=probe_val,
        linear_probe_train=probe_train,
        pairs_train=len(train),
        pairs_validation=len(val),
    )


@dataclass(kw_only=True)
class ToyProbeArgs:
    """Probe toy base models before RM training: fact recall (from the benchmark stage),
    zero-shot preference by log-probability, and a linear probe of last-token states on the RM
    validation pairs (see rmselect.toy.probe). Writes one CSV row per model."""

    models: list[str] = opt("base models as name=model_dir", metavar="NAME=DIR")
    preference: str = opt("helpsteer2_preference.jsonl (toy)")
    recall_dir: str = opt("benchmark results folder: reads DIR/NAME/TASK.json per model")
    recall_task: str = opt("benchmark giving recall", default="toy_facts")
    max_pairs: int | None = opt("cap pairs per split", default=None)
    out: str = opt("output CSV")


def main(argv: Sequence[str] | None = None) -> int:
    a = cli.parse(ToyProbeArgs, argv, prog="toy_probe.py")
    ap = cli.build_parser(ToyProbeArgs, prog="toy_probe.py")  # for its error messages
    import polars as pl

    from rmselect.io import write_table

    results = []
    for spec in a.models:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            ap.error(f"--models: {spec!r} is not NAME=DIR")
        if not Path(path, "config.json").exists():
            ap.error(f"--models: {path} (model {name!r}) has no config.json")
        recall = Path(a.recall_dir, name, f"{a.recall_task}.json")
        if not recall.exists():
            ap.error(f"--recall-dir: {recall} (model {name!r}) is missing; run the "
                     f"benchmark stage with {a.recall_task} first")
        res = probe_model(name, path, a.preference, recall, a.max_pairs)
        print(json.dumps(asdict(res)), file=sys.stderr, flush=True)
        results.append(asdict(res))
    write_table(a.out, pl.DataFrame(results))
    return 0
