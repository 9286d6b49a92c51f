"""Test helpers: a copy of the workflow with a REDUCED embedded config, run and dry-run parsing.

Used by tests/test_rerun_*.py and tests/test_slurm_*.py. The copy holds Snakefile, workflow/,
config/, envs/ and the profiles, so runs never touch the repository's results/.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
COPY = ("Snakefile", "workflow", "config", "envs", "slurm", "local", "bench", "pyproject.toml")
IGNORE = shutil.ignore_patterns("__pycache__", "*.egg-info", ".snakemake", "results", "local.yaml")

#: The toy models of the reduced study: each size group's default plus one more family
#: (the selection model of the analysis needs at least 4 models).
REDUCED_MODELS = ("toyllama-2-s", "toyllama-2-m", "toyqwen-1-l", "toyneox-1-s")
#: An extra model for "adding a model" (not in the reduced table at first).
EXTRA_MODEL = "toyqwen-1-s"
TOY_STEPS = 20


def copy_workflow(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPY:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=IGNORE, dirs_exist_ok=True)
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


def _reduce_lists(node: Any, key_re: re.Pattern[str], hit: bool = False) -> Any:
    """Keep only the first element of every list under a key matching ``key_re``."""
    if isinstance(node, dict):
        return {k: _reduce_lists(v, key_re, hit or bool(key_re.search(str(k))))
                for k, v in node.items()}  # fmt: skip
    if isinstance(node, list) and hit and node:
        return node[:1]
    return node


def reduced_config(base: dict[str, Any], table: str) -> dict[str, Any]:
    """The embedded default made small: 3 toy models, one learning rate, fewer tasks/data."""
    cfg = yaml.safe_load(yaml.safe_dump(base))
    cfg["models"] = table
    toy = cfg.setdefault("toy", {}) or {}
    toy["corpus"] = {"train_docs": 1500, "heldout_docs": 100}
    try:
        sys.path.insert(0, str(REPO / "workflow"))
        from rmselect.toy.data import DATA_DEFAULTS  # the sizes the toy stage knows

        small = {
            "preference_train": 96, "preference_validation": 48, "helpsteer2_train": 96,
            "helpsteer2_validation": 48, "rewardbench_per_subset": 4, "sft": 48, "dpo": 48,
            "domain_docs": 16,
        }  # fmt: skip
        toy["data"] = {k: v for k, v in small.items() if k in DATA_DEFAULTS}
    except ImportError:
        pass
    cfg["toy"] = toy
    # one learning rate per grid, wherever the rm section keeps its grids
    rm = _reduce_lists(cfg.get("rm", {}) or {}, re.compile(r"(^|_)lrs?($|_)|grid"))
    for key, value in (("max_train_examples", 64), ("max_val_pairs", 32)):
        if key in rm:
            rm[key] = value
    if rm.get("seeds"):  # one training seed (results/rm/.../seed{first}/)
        rm["seeds"] = rm["seeds"][:1]
    cfg["rm"] = rm
    ev = cfg.get("eval", {}) or {}
    if isinstance(ev.get("benchmarks"), dict) and "rewardbench" in ev["benchmarks"]:
        ev["benchmarks"] = {"rewardbench": ev["benchmarks"]["rewardbench"]}
    if "n_boot" in ev:
        ev["n_boot"] = 20
    cfg["eval"] = ev
    bm = cfg.get("benchmarks", {}) or {}
    tasks = bm.get("tasks")
    if isinstance(tasks, dict) and tasks:
        keep = [t for t in tasks if t in ("toy_facts", "toy_arith")] or list(tasks)[:2]
        bm["tasks"] = {t: {**tasks[t], **({"n": 10} if "n" in tasks[t] else {})} for t in keep}
        if isinstance(bm.get("aggregates"), dict):
            bm["aggregates"] = {
                name: [t for t in parts if t in keep]
                for name, parts in bm["aggregates"].items()
                if len([t for t in parts if t in keep]) >= 1
            }
        screening = bm.get("screening")
        if isinstance(screening, dict) and screening.get("tasks"):
            screening["tasks"] = [t for t in screening["tasks"] if t in keep] or keep[:1]
    cfg["benchmarks"] = bm
    pr = cfg.get("presence", {}) or {}
    if "n_docs" in pr:
        pr["n_docs"] = 16
    if isinstance(pr.get("domains"), dict) and len(pr["domains"]) > 2:
        pr["domains"] = dict(list(pr["domains"].items())[:2])
    cfg["presence"] = pr
    cfg.setdefault("posttrain", {})["variants"] = []
    cfg.setdefault("recommend", {})["candidates"] = []
    return cfg


def write_model_table(dest: Path, names: tuple[str, ...], steps: int | None = TOY_STEPS) -> None:
    """The rows of config/models_toy.tsv for ``names``, with ``steps`` pre-training steps
    (None: the table's own)."""
    with (REPO / "config" / "models_toy.tsv").open(newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        fields = list(reader.fieldnames or [])
        rows = {r["name"]: r for r in reader}
    with dest.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, delimiter="\t", lineterminator="\n")
        w.writeheader()
        for n in names:
            row = dict(rows[n])
            if steps is not None:
                row["source"] = re.sub(r"steps=\d+", f"steps={steps}", row["source"])
            w.writerow(row)


@dataclass
class Workdir:
    """A copied workflow with config/test.yaml (reduced) and config/models_test.tsv."""

    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config" / "test.yaml"

    @property
    def table(self) -> Path:
        return self.path / "config" / "models_test.tsv"

    def load_config(self) -> dict[str, Any]:
        return yaml.safe_load(self.config.read_text())

    def save_config(self, cfg: dict[str, Any]) -> None:
        self.config.write_text(yaml.safe_dump(cfg, sort_keys=False))

    def snakemake(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 1800,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:  # fmt: skip
        cmd = [SNAKEMAKE, "--configfile", str(self.config), *args]
        run_env = {**os.environ, **(env or {})}
        run_env.setdefault("OMP_NUM_THREADS", "1")
        out = subprocess.run(
            cmd, cwd=self.path, env=run_env, capture_output=True, text=True, timeout=timeout
        )
        if check and out.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout[-4000:]}\n"
                f"{out.stderr[-6000:]}"
            )
        return out

    def dry_run(self, *targets: str, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Jobs `snakemake -n` would run now (default rerun triggers: mtime, params, input,
        software-env, code), parsed into rule / wildcards / reason / resources."""
        out = self.snakemake("-n", "--cores", "1", *targets, env=env)
        return parse_jobs(out.stdout + out.stderr)


def make_workdir(tmp: Path, models: tuple[str, ...] = REDUCED_MODELS) -> Workdir:
    wd = Workdir(copy_workflow(tmp))
    write_model_table(wd.table, models)
    base = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    wd.save_config(reduced_config(base, "config/models_test.tsv"))
    return wd


_BLOCK = re.compile(r"\n(?=\[[^\n]*\]\n(?:localrule|rule) |(?:localrule|rule) \S+:\n)")


def parse_jobs(text: str) -> list[dict[str, Any]]:
    """Parse Snakemake's job blocks (dry run or real run) into dicts."""
    jobs = []
    for block in _BLOCK.split(text):
        m = re.search(r"^(?:localrule|rule) (\S+):$", block, re.M)
        if not m:
            continue
        job: dict[str, Any] = {"rule": m.group(1)}
        for key in ("wildcards", "resources"):
            f = re.search(rf"^\s+{key}: (.*)$", block, re.M)
            job[key] = (
                dict(kv.split("=", 1) for kv in f.group(1).split(", ") if "=" in kv) if f else {}
            )
        r = re.search(r"^\s+reason: (.*)$", block, re.M)
        job["reason"] = r.group(1) if r else ""
        jobs.append(job)
    return jobs


def rules_of(jobs: list[dict[str, Any]]) -> set[str]:
    return {j["rule"] for j in jobs if j["rule"] != "all"}


def list_rules(wd: Workdir) -> set[str]:
    out = wd.snakemake("--list-rules")
    return {line.strip() for line in out.stdout.splitlines() if line.strip()}
