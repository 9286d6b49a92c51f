"""The family reuse rule (PAPER.md §6), an explicit option: ``presence.family_reuse``.

The paper scores only the largest member of a family and reuses its distribution for the
smaller members trained on the same number of tokens. Here a reuse group is the set of models
with the same ``family``, the same ``tokens_t`` (known, not empty) and the same ``stage`` (a
post-trained variant never stands for a base model or vice versa). In each group the member
with the largest ``params_b`` (first in table order on a tie) is scored; members with
strictly fewer parameters reuse its files, copied with the provenance noted in
``presence.json`` (``reused_from``). Members as large as the largest are scored themselves.
Off (the default), every model is scored.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from rmselect import cli
from rmselect.cli import opt
from rmselect.config import ModelSpec


def reuse_plan(
    models: Mapping[str, ModelSpec], names: Iterable[str], enabled: bool
) -> dict[str, str]:
    """``{model: model whose scores it gets}`` for ``names`` (itself when scored)."""
    names = list(names)
    plan = {n: n for n in names}
    if not enabled:
        return plan
    groups: dict[tuple[str, float, str], list[str]] = defaultdict(list)
    for n in names:
        m = models[n]
        if m.tokens_t is None:
            continue
        groups[(m.family, float(m.tokens_t), m.stage)].append(n)
    for members in groups.values():
        largest = max(members, key=lambda n: (models[n].params_b, -members.index(n)))
        for n in members:
            if models[n].params_b < models[largest].params_b:
                plan[n] = largest
    return plan


@dataclass
class ReuseArgs:
    """Family reuse: copy a larger family member's presence files to a smaller member
    (presence.family_reuse), noting the provenance in presence.json."""

    name: str = opt("the model that reuses")
    from_dir: str = opt("results/presence/<largest member>")
    out_dir: str = opt("results/presence/<model>")
    domains: list[str] = opt("domain names to copy")


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(ReuseArgs, copy_reused, argv, prog="presence_reuse.py")


def copy_reused(args: ReuseArgs) -> int:
    from rmselect.io import atomic_path, read_json, write_json

    src, dst = Path(args.from_dir), Path(args.out_dir)
    prov: dict[str, Any] = dict(read_json(src / "presence.json"))
    for d in args.domains:
        f = src / f"{d}.parquet"
        if not f.exists():
            raise SystemExit(f"presence reuse: {f} is missing; score '{prov.get('model')}' first")
    for d in args.domains:
        with atomic_path(dst / f"{d}.parquet") as tmp:
            shutil.copyfile(src / f"{d}.parquet", tmp)
    prov.update(model=args.name, reused_from=prov.get("scored_by"),
                note="family reuse: scores of the largest family member trained on the same "
                     "number of tokens (presence.family_reuse)")
    write_json(dst / "presence.json", prov)
    return 0
