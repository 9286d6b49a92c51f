"""Code tasks of a benchmark run: generated programs checked by :mod:`rmselect.bench.code`
in the sandbox of :mod:`rmselect.bench.sandbox`."""

from __future__ import annotations

import time
from typing import Any

from rmselect.bench.handle import ModelHandle, Settings
from rmselect.bench.normalise import resolve_baseline, summarise
from rmselect.bench.sampling import subsample_indices
from rmselect.bench.spec import TaskSpec


def run_code(spec: TaskSpec, handle: ModelHandle, settings: Settings) -> dict[str, Any]:
    """Greedy completion + sandboxed tests of a local HumanEval-schema file (pass@1)."""
    from rmselect.bench import code
    from rmselect.bench.sandbox import Limits, isolation, selfcheck

    limits = Limits.from_config(dict(settings.sandbox))
    python = dict(settings.sandbox).get("python")
    problems = code.load_problems(spec.data)
    total = len(problems)
    idx = subsample_indices(total, spec.n, settings.seed, spec.name) if settings.mode == "small" else None
    chosen = [problems[i] for i in idx] if idx is not None else problems
    if spec.heal_prompt:
        chosen = [code.heal(p) for p in chosen]
    model, tok = handle.hf()
    t0 = time.monotonic()
    selfcheck(limits, python)
    comps = code.greedy_completions(
        model, tok, [p["prompt"] for p in chosen], spec.max_new_tokens, spec.stop, handle.device
    )
    records = code.score(chosen, comps, limits, python)
    wall = time.monotonic() - t0
    value = code.pass_at_1(records)
    base, source = resolve_baseline(spec.name, spec.baseline, "code")
    summ = summarise({spec.name: value}, {spec.name: base}, spec.scale)
    statuses: dict[str, int] = {}
    for r in records:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    return {
        "lm_eval_task": None,
        "num_fewshot": {spec.name: 0},
        "leaves": {
            spec.name: {
                "metric": "pass@1",
                "raw": value,
                "n_items": len(chosen),
                "n_total": total,
                "output_type": "code",
                "baseline": base,
                "baseline_source": source,
                "normalised": summ.normalised,
            }
        },
        "raw_metrics": {spec.name: {"pass@1": value, "statuses": statuses}},
        "samples": records,
        "isolation": isolation(),
        "raw_score": summ.raw_score,
        "normalised": summ.normalised,
        "score": summ.score,
        "score_kind": summ.score_kind,
        "items_used": len(chosen),
        "items_total": total,
        "wall_s": round(wall, 3),
    }
