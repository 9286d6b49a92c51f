"""Metric and filter hooks of the ``rms_*`` code tasks (loaded by lm-eval from this folder).

The task YAMLs beside this file mirror lm-eval 0.4.13's ``humaneval``, ``humaneval_plus``,
``mbpp`` and ``mbpp_plus`` (same data, prompts, stop strings, few-shot examples), but score
with :func:`rmselect.bench.code.lm_eval_pass_at_1`, which runs every program in the
rmselect sandbox instead of lm-eval's in-process ``code_eval`` (and needs no network to
fetch that metric). The metric is reported as ``pass_at_1``.
"""

from __future__ import annotations

import re
from typing import Any

from rmselect.bench.code import lm_eval_pass_at_1


def pass_at_1(references: Any, predictions: Any, **kwargs: Any) -> float:
    return lm_eval_pass_at_1(references, predictions, **kwargs)


def build_predictions(resps: list[list[str]], docs: list[dict]) -> list[list[str]]:
    """HumanEval: the program is the prompt plus the completion."""
    return [[doc["prompt"] + r for r in resp] for resp, doc in zip(resps, docs)]


def list_fewshot_samples() -> list[dict[str, Any]]:
    """MBPP's three standard prompt examples (task ids 2-4), as in lm-eval."""
    return [
        {
            "task_id": 2,
            "text": "Write a function to find the similar elements from the given two tuple lists.",
            "code": "def similar_elements(test_tup1, test_tup2):\r\n  res = tuple(set(test_tup1) & set(test_tup2))\r\n  return (res) ",
            "test_list": [
                "assert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5)",
                "assert similar_elements((1, 2, 3, 4),(5, 4, 3, 7)) == (3, 4)",
                "assert similar_elements((11, 12, 14, 13),(17, 15, 14, 13)) == (13, 14)",
            ],
            "is_fewshot": True,
        },
        {
            "task_id": 3,
            "text": "Write a python function to identify non-prime numbers.",
            "code": "import math\r\ndef is_not_prime(n):\r\n    result = False\r\n    for i in range(2,int(math.sqrt(n)) + 1):\r\n        if n % i == 0:\r\n            result = True\r\n    return result",
            "test_list": [
                "assert is_not_prime(2) == False",
                "assert is_not_prime(10) == True",
                "assert is_not_prime(35) == True",
            ],
            "is_fewshot": True,
        },
        {
            "task_id": 4,
            "text": "Write a function to find the largest integers from a given list of numbers using heap queue algorithm.",
            "code": "import heapq as hq\r\ndef heap_queue_largest(nums,n):\r\n  largest_nums = hq.nlargest(n, nums)\r\n  return largest_nums",
            "test_list": [
                "assert heap_queue_largest( [25, 35, 22, 85, 14, 65, 75, 22, 58],3)==[85, 75, 65] ",
                "assert heap_queue_largest( [25, 35, 22, 85, 14, 65, 75, 22, 58],2)==[85, 75] ",
                "assert heap_queue_largest( [25, 35, 22, 85, 14, 65, 75, 22, 58],5)==[85, 75, 65, 58, 35]",
            ],
            "is_fewshot": True,
        },
    ]


def extract_code_blocks(text: str) -> str:
    """First fenced code block, or the text itself when there is none."""
    m = re.search(r"```(?:\w+)?\n?(.*?)\n?```", text, re.DOTALL)
    return m.group(1) if m else text
