"""How many documents a presence feature needs: its per-document spread and the n it implies.

A presence feature is the mean score of ``n`` documents of a domain. With per-document
standard deviation ``s`` its 95 % confidence half-width is ``z · s / sqrt(n)`` (``z`` = 1.96),
so a half-width of at most ``h`` nats needs

    n = ceil((z · s / h)²)

documents (:func:`n_for_halfwidth`). The spread is measured per domain on documents scored
the stage's way (:func:`rmselect.presence.score.score_frame`):

* from finished presence files (``--presence-dir``, e.g. the toy zoo's results/presence);
* or by scoring a model here on real text that ships with Python itself
  (:func:`stdlib_corpora`): ``code`` = the standard library's own ``.py`` source files,
  ``prose`` = its docstrings (module, class and function docstrings of at least 200
  characters), both read from ``sysconfig.get_paths()["stdlib"]`` (tests and vendored
  ``site-packages`` left out), sampled with a seed.

The paired spread (two models' scores of the same documents, their difference) is reported
too: it is what limits the comparison of two models on one domain.
"""

from __future__ import annotations

import ast
import math
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import polars as pl

from rmselect import cli
from rmselect.cli import opt

Z95 = 1.959963984540054


def n_for_halfwidth(std: float, halfwidth: float, z: float = Z95) -> int:
    """Documents for a ``z``-level half-width of at most ``halfwidth`` on a mean of
    per-document spread ``std`` (at least 1)."""
    if halfwidth <= 0:
        raise ValueError(f"halfwidth must be positive, got {halfwidth}")
    return max(1, math.ceil((z * std / halfwidth) ** 2))


def stdlib_files(root: str | Path | None = None) -> list[Path]:
    """The standard library's ``.py`` files, sorted, without tests and site-packages."""
    root = Path(root or sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "site-packages", "dist-packages", "idlelib", "__pycache__"}
    return sorted(p for p in root.rglob("*.py") if not skip & set(p.relative_to(root).parts))


def stdlib_corpora(n_docs: int, seed: int, root: str | Path | None = None,
                   min_doc_chars: int = 200) -> dict[str, pl.DataFrame]:
    """``{"code": …, "prose": …}`` frames (``doc_id, text``) of ``n_docs`` seeded documents."""
    code, prose = [], []
    for path in stdlib_files(root):
        try:
            text = path.read_text(encoding="utf-8")
            tree = ast.parse(text)
        except (UnicodeDecodeError, SyntaxError, ValueError):
            continue
        if len(text) >= min_doc_chars:
            code.append(text)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) >= min_doc_chars:
                    prose.append(doc)
    out = {}
    for name, docs in (("code", code), ("prose", prose)):
        idx = np.sort(np.random.default_rng(seed).choice(len(docs), min(n_docs, len(docs)),
                                                         replace=False))
        out[name] = pl.DataFrame({"doc_id": idx.astype(np.int64),
                                  "text": [docs[i] for i in idx]})
    return out


def spread(scores: pl.DataFrame, halfwidth: float) -> pl.DataFrame:
    """Per (model, domain): ``n_docs, mean, std, n_needed`` (``std`` with ddof=1)."""
    df = scores.group_by(["model", "domain"], maintain_order=True).agg(
        pl.len().alias("n_docs"), pl.col("score").mean().alias("mean"),
        pl.col("score").std(ddof=1).alias("std"))
    return df.with_columns(pl.col("std").map_elements(
        lambda s: n_for_halfwidth(s, halfwidth), return_dtype=pl.Int64).alias("n_needed"))


def _paired_stds(wide: np.ndarray) -> np.ndarray:
    """Std (ddof=1) of the per-document difference of every model pair, from the covariance
    of the documents × models matrix: var(a − b) = var a + var b − 2 cov(a, b)."""
    c = np.atleast_2d(np.cov(wide, rowvar=False, ddof=1))
    d = np.diag(c)
    var = d[:, None] + d[None, :] - 2 * c
    iu = np.triu_indices(len(d), k=1)
    return np.sqrt(np.maximum(var[iu], 0.0))


def paired_spread(scores: pl.DataFrame, halfwidth: float) -> pl.DataFrame:
    """Per domain: the largest std over model pairs of the per-document score difference
    (same documents), and the n it needs."""
    t = precision_table(scores, halfwidth)
    return t.select("domain", "pairs", pl.col("max_paired_std"),
                    pl.col("n_needed_paired").alias("n_needed"))


def precision_table(scores: pl.DataFrame, halfwidth: float = 0.01, z: float = Z95
                    ) -> pl.DataFrame:
    """Per domain, from finished scores (``model, domain, doc_id, score``): how precise the
    presence means are and what n a ``halfwidth`` needs (``results/presence/precision.csv``).

    * ``max_std``: the largest per-document std of one model; ``halfwidth_mean`` the 95 %
      half-width of that model's mean at the documents scored; ``n_needed_mean`` the n for
      ``halfwidth`` on a model's absolute mean (how ``presence.n_docs`` is sized).
    * ``max_paired_std``: the largest std of the per-document difference of two models on the
      same documents; ``halfwidth_paired``, ``n_needed_paired`` the same for the difference of
      two models' means, which is what the cross-model analyses compare (the documents'
      shared difficulty cancels). Models whose scores are identical copies (family reuse)
      count as one.
    """
    rows = []
    for (domain,), g in scores.group_by(["domain"], maintain_order=True):
        wide = g.pivot(on="model", index="doc_id", values="score").drop_nulls()
        models = [c for c in wide.columns if c != "doc_id"]
        mat = wide.select(models).to_numpy().astype(float)
        mat = np.unique(mat, axis=1) if mat.size else mat  # a reused copy is one model
        n = int(mat.shape[0])
        stds = mat.std(axis=0, ddof=1) if n > 1 else np.array([np.nan])
        max_std = float(np.nanmax(stds)) if stds.size else float("nan")
        paired = _paired_stds(mat) if n > 1 and mat.shape[1] > 1 else np.array([])
        max_paired = float(paired.max()) if paired.size else float("nan")

        def hw(sd: float) -> float | None:
            return z * sd / math.sqrt(n) if n and sd == sd else None

        def need(sd: float) -> int | None:
            return n_for_halfwidth(sd, halfwidth, z) if sd == sd else None

        rows.append({"domain": domain, "models": len(models), "pairs": int(paired.size),
                     "n_docs": n, "max_std": max_std, "halfwidth_mean": hw(max_std),
                     "n_needed_mean": need(max_std), "max_paired_std": max_paired,
                     "halfwidth_paired": hw(max_paired), "n_needed_paired": need(max_paired),
                     "target_halfwidth": halfwidth})
    return pl.DataFrame(rows, schema={
        "domain": pl.String, "models": pl.Int64, "pairs": pl.Int64, "n_docs": pl.Int64,
        "max_std": pl.Float64, "halfwidth_mean": pl.Float64, "n_needed_mean": pl.Int64,
        "max_paired_std": pl.Float64, "halfwidth_paired": pl.Float64,
        "n_needed_paired": pl.Int64, "target_halfwidth": pl.Float64})


@dataclass(kw_only=True)
class PrecisionArgs:
    """Per-document spread of presence scores per domain and the n_docs it implies for a
    95 % half-width (rmselect.presence.precision). Either --presence-dir (finished files) or
    --model (score the standard library's code and docstrings here)."""

    presence_dir: str | None = opt("results/presence of a finished study", default=None)
    models: list[str] = opt("models under --presence-dir", default=[])
    domains: list[str] = opt("domains under --presence-dir", default=[])
    model: str | None = opt("model dir to score the stdlib corpora with", default=None)
    n_docs: int = opt("stdlib documents per domain", default=200)
    max_tokens: int = opt("tokens scored per document", default=256)
    seed: int = opt("document sampling seed", default=0)
    halfwidth: float = opt("target 95 % half-width in nats", default=0.01)
    out: str | None = opt("CSV of the per-(model, domain) spread", default=None)


def measure(a: PrecisionArgs) -> int:
    from rmselect.presence.distributions import load_scores

    if a.presence_dir:
        scores = load_scores(a.presence_dir, a.models, a.domains)
    elif a.model:
        import torch

        from rmselect.hf import load_causal_lm, load_tokenizer
        from rmselect.presence.score import score_frame

        torch.set_num_threads(2)
        tok = load_tokenizer(a.model)
        model = load_causal_lm(a.model, dtype=torch.float32).eval()
        frames = []
        for dom, docs in stdlib_corpora(a.n_docs, a.seed).items():
            df, _ = score_frame(model, tok, docs, max_tokens=a.max_tokens, batch_tokens=4096)
            print(f"{dom}: {df.height} docs scored, std {df['score'].std():.4f}", flush=True)
            frames.append(df.select(pl.lit(Path(a.model).name).alias("model"),
                                    pl.lit(dom).alias("domain"), "doc_id", "n_tokens", "score"))
        scores = pl.concat(frames)
    else:
        raise SystemExit("precision: give --presence-dir (with --models, --domains) or --model")
    table = spread(scores, a.halfwidth)
    pl.Config.set_tbl_rows(200)
    print(table)
    if scores["model"].n_unique() > 1:
        print(paired_spread(scores, a.halfwidth))
    if a.out:
        from rmselect.io import write_table

        write_table(a.out, table)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(PrecisionArgs, measure, argv, prog="presence_precision.py")
