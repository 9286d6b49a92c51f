"""The two reward-model objectives of the paper (§3): Bradley-Terry and attribute regression.

Kept apart from the training loop so that each is one small, tested function: the loop
decides which rows a micro-batch holds, these decide what is minimised.
"""

from __future__ import annotations

from typing import Any, Sequence


def bt_loss(rewards: Any, n_pairs: int) -> Any:
    """Bradley-Terry: ``-log sigmoid(r_chosen - r_rejected)``, averaged over the pairs.

    ``rewards`` is ``(2 n, 1)``: the micro-batch's chosen responses, then its rejected ones
    (:meth:`rmselect.rm.prepare.Prepared.rows`).
    """
    import torch

    r = rewards[:, 0].float()
    return -torch.nn.functional.logsigmoid(r[:n_pairs] - r[n_pairs:]).mean()


def regression_loss(predictions: Any, targets: Sequence[Sequence[float]]) -> Any:
    """Mean squared error against the five HelpSteer2 attribute ratings (0-4 each)."""
    import torch

    y = torch.tensor([list(t) for t in targets], dtype=torch.float32,
                     device=predictions.device)
    return torch.nn.functional.mse_loss(predictions.float(), y)


def rm_loss(objective: str, out: Any, batch: Sequence[int], targets: Any) -> Any:
    """The loss of ``objective`` for one micro-batch (``batch``: example indices)."""
    if objective == "bt":
        return bt_loss(out, len(batch))
    return regression_loss(out, [targets[i] for i in batch])
