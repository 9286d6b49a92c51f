"""How many documents a presence feature needs: its per-document spread and the n it implies.

A presence feature is the mean score of ``n`` documents of a domain. With per-document
standard deviation ``s`` its 95 % confidence half-width is ``z · s / sqrt(n)`` (``z`` = 1.96),
so a half-width of at most ``h`` nats needs

    n = ceil((z · s / h)²)

documents (:func:`n_for_halfwidth`). The spread is measured per domain on documents scored
the stage's way (:func:`rmselect.presence.score.score_frame`):

* from finished presence files (``--presence-dir``, e.g. the toy zoo's results/presence);
* or by scoring a model here on real text that ships with Python and its packages
  (:func:`stdlib_corpora`, :func:`readme_corpus`): ``code`` = the standard library's own
  ``.py`` source files, ``prose`` = its docstrings (module, class and function docstrings
  of at least 200 characters), both read from ``sysconfig.get_paths()["stdlib"]`` (tests
  and vendored ``site-packages`` left out); ``readme`` = the long descriptions (README
  bodies of the ``METADATA`` files) of the installed distributions, read through
  ``importlib.metadata``. Each is sampled with a seed.

The spread depends on how many tokens a document contributes: a document's score is a mean
over its tokens, so its variance is the spread *between* documents plus token noise that
falls with length. Docstrings are short (median ~90 tokens), the paper's SlimPajama parts
long (600–2,048 tokens after the cap), so the spread is measured at several prefix lengths
of the same documents (``--prefix-tokens``: one forward at the longest, prefix means for the
rest, :func:`prefix_scores`) and read at the length of the domain it stands for.

The paired spread (two models' scores of the same documents, their difference) is reported
too: it is what limits the comparison of two models on one domain.
"""

from __future__ import annotations

import ast
import importlib.metadata
import math
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

from rmselect import cli
from rmselect.cli import opt
from rmselect.presence.covariate import Z95



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


def readme_corpus(n_docs: int, seed: int, min_doc_chars: int = 200,
                  bodies: Sequence[str] | None = None) -> pl.DataFrame:
    """``doc_id, text`` of ``n_docs`` seeded README bodies (the ``METADATA`` long
    description) of the installed distributions, duplicates removed, sorted before sampling
    so that the same environment gives the same documents."""
    if bodies is None:
        bodies = []
        for dist in importlib.metadata.distributions():
            body = dist.metadata.get_payload()  # type: ignore[attr-defined]
            bodies.append(body if isinstance(body, str) else "")
    docs = sorted({b.strip() for b in bodies if len(b.strip()) >= min_doc_chars})
    idx = np.sort(np.random.default_rng(seed).choice(len(docs), min(n_docs, len(docs)),
                                                     replace=False))
    return pl.DataFrame({"doc_id": idx.astype(np.int64), "text": [docs[i] for i in idx]})


def prefix_scores(model: object, tokenizer: object, docs: pl.DataFrame,
                  prefix_tokens: Sequence[int], batch_tokens: int = 4096) -> pl.DataFrame:
    """``doc_id, prefix, n_tokens, score``: each document's presence score over its first
    ``prefix`` tokens (fewer where the document is shorter), for every ``prefix`` of
    ``prefix_tokens``, from one forward at the longest (the stage's encoding and context
    token, :mod:`rmselect.presence.score`)."""
    from rmselect.presence.score import encode_document, prefix_token_id, sequence_logprobs

    top = max(prefix_tokens)
    pid = prefix_token_id(tokenizer)
    seqs = [encode_document(tokenizer, t, top, pid) for t in docs["text"].to_list()]
    pad = getattr(tokenizer, "pad_token_id", None)
    per_doc = {i: lp.double().numpy() for i, lp in enumerate(
        sequence_logprobs(model, seqs, batch_tokens, int(pad or 0))) if lp is not None}
    rows = []
    for i, doc_id in enumerate(docs["doc_id"].to_list()):
        if i not in per_doc:
            continue
        lp = per_doc[i]
        for n in sorted(set(prefix_tokens)):
            k = min(n, len(lp))
            rows.append((int(doc_id), int(n), k, float(lp[:k].mean())))
    return pl.DataFrame(rows, schema={"doc_id": pl.Int64, "prefix": pl.Int64,
                                      "n_tokens": pl.Int64, "score": pl.Float64}, orient="row")


def spread(scores: pl.DataFrame, halfwidth: float) -> pl.DataFrame:
    """Per (model, domain[, prefix]): ``n_docs, mean_tokens, mean, std, n_needed`` (``std``
    with ddof=1)."""
    keys = ["model", "domain"] + (["prefix"] if "prefix" in scores.columns else [])
    df = scores.group_by(keys, maintain_order=True).agg(
        pl.len().alias("n_docs"), pl.col("n_tokens").mean().alias("mean_tokens"),
        pl.col("score").mean().alias("mean"), pl.col("score").std(ddof=1).alias("std"))
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


def precision_table(scores: pl.DataFrame, halfwidth: float = 0.01, z: float = Z95,
                    covariates: Mapping[str, Any] | None = None) -> pl.DataFrame:
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
    * with ``covariates`` (``{domain: (doc_id/x frame, manifest covariate) or None}``,
      :func:`rmselect.presence.distributions.corpus_covariates`): ``min_r2``, the smallest
      share of a model's per-document variance the covariate explains, ``pool_docs``, and
      ``n_needed_regression``, the n for ``halfwidth`` with the regression estimator at
      ``max_std`` and ``min_r2`` (:func:`rmselect.presence.covariate.n_for_halfwidth`).
    """
    from rmselect.presence import covariate as cv

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

        cov = (covariates or {}).get(str(domain))
        min_r2 = pool = n_reg = None
        if cov is not None and n > 2:
            x = wide.select("doc_id").join(cov[0], on="doc_id", how="left")["x"].to_numpy()
            ok = np.isfinite(x.astype(float))
            r2s = [r2_of(mat[ok, j], x[ok].astype(float)) for j in range(mat.shape[1])]
            min_r2, pool = float(min(r2s)), int(cov[1]["pool_docs"])
            n_reg = cv.n_for_halfwidth(max_std, min_r2, halfwidth, pool, z)
        rows.append({"domain": domain, "models": len(models), "pairs": int(paired.size),
                     "n_docs": n, "max_std": max_std, "halfwidth_mean": hw(max_std),
                     "n_needed_mean": need(max_std), "max_paired_std": max_paired,
                     "halfwidth_paired": hw(max_paired), "n_needed_paired": need(max_paired),
                     "min_r2": min_r2, "pool_docs": pool, "n_needed_regression": n_reg,
                     "target_halfwidth": halfwidth})
    return pl.DataFrame(rows, schema={
        "domain": pl.String, "models": pl.Int64, "pairs": pl.Int64, "n_docs": pl.Int64,
        "max_std": pl.Float64, "halfwidth_mean": pl.Float64, "n_needed_mean": pl.Int64,
        "max_paired_std": pl.Float64, "halfwidth_paired": pl.Float64,
        "n_needed_paired": pl.Int64, "min_r2": pl.Float64, "pool_docs": pl.Int64,
        "n_needed_regression": pl.Int64, "target_halfwidth": pl.Float64})


def r2_of(y: np.ndarray, x: np.ndarray) -> float:
    """Share of ``y``'s variance a least-squares line in ``x`` explains (0 for a constant)."""
    if len(y) < 3 or float(np.var(x)) <= 0.0 or float(np.var(y)) <= 0.0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1] ** 2)


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
    prefix_tokens: list[int] = opt("also report the spread over each document's first N "
                                   "tokens for these N (one forward at the longest)", default=[])
    corpora: list[str] = opt("corpora to score with --model", default=["code", "prose", "readme"],
                             choices=["code", "prose", "readme"])
    pool_docs: int = opt("pool size for the regression estimator's n (the paper's "
                         "presence.domains.<d>.pool_docs)", default=100_000)
    seed: int = opt("document sampling seed", default=0)
    halfwidth: float = opt("target 95 % half-width in nats", default=0.01)
    out: str | None = opt("CSV of the per-(model, domain) spread", default=None)
    scores_out: str | None = opt("parquet of the per-document scores (with --model)",
                                 default=None)
    scores_in: str | None = opt("with --model: read these per-document scores (a --scores-out "
                                "of the same --n-docs and --seed) instead of scoring",
                                default=None)


def measure(a: PrecisionArgs) -> int:
    from rmselect.presence.distributions import load_scores

    if a.presence_dir:
        scores = load_scores(a.presence_dir, a.models, a.domains)
    elif a.model:
        import torch

        from rmselect.hf import load_causal_lm, load_tokenizer

        corpora = stdlib_corpora(a.n_docs, a.seed)
        corpora["readme"] = readme_corpus(a.n_docs, a.seed)
        prefixes = sorted(set(a.prefix_tokens) | {a.max_tokens})
        frames = []
        if a.scores_in:
            frames.append(pl.read_parquet(a.scores_in))
        else:
            torch.set_num_threads(2)
            tok = load_tokenizer(a.model)
            model = load_causal_lm(a.model, dtype=torch.float32).eval()
        for dom in [] if a.scores_in else a.corpora:
            df = prefix_scores(model, tok, corpora[dom], prefixes)
            top = df.filter(pl.col("prefix") == max(prefixes))
            print(f"{dom}: {top.height} docs scored, std {top['score'].std():.4f}", flush=True)
            frames.append(df.select(pl.lit(Path(a.model).name).alias("model"),
                                    pl.lit(dom).alias("domain"), "prefix", "doc_id",
                                    "n_tokens", "score"))
        scores = pl.concat(frames)
        if a.scores_out:
            scores.write_parquet(a.scores_out)
    else:
        raise SystemExit("precision: give --presence-dir (with --models, --domains) or --model")
    table = spread(scores, a.halfwidth)
    if a.model and not a.presence_dir:
        table = table.join(covariate_fit(scores, corpora, a.halfwidth, a.pool_docs),
                           on=["domain", "prefix"], how="left")
    pl.Config.set_tbl_rows(200)
    pl.Config.set_tbl_cols(20)
    print(table)
    if scores["model"].n_unique() > 1 and "prefix" not in scores.columns:
        print(paired_spread(scores, a.halfwidth))
    if a.out:
        from rmselect.io import write_table

        write_table(a.out, table)
    return 0


def covariate_fit(scores: pl.DataFrame, corpora: Mapping[str, pl.DataFrame], halfwidth: float,
                  pool_docs: int) -> pl.DataFrame:
    """Per (domain, prefix) of ``--model`` scores: ``rho`` of the score with the covariate
    (zlib ratio of the first prefix × 4 characters, rmselect.presence.covariate), ``r2`` and
    ``n_needed_regression`` at ``pool_docs``."""
    from rmselect.presence import covariate as cv

    rows = []
    for (dom, prefix), g in scores.group_by(["domain", "prefix"], maintain_order=True):
        text = dict(zip(corpora[str(dom)]["doc_id"].to_list(), corpora[str(dom)]["text"].to_list()))
        chars = int(prefix) * cv.CHARS_PER_TOKEN
        x = np.array([cv.zlib_ratio(text[d], chars) for d in g["doc_id"].to_list()])
        y = g["score"].to_numpy()
        r2 = r2_of(y, x)
        rows.append({"domain": dom, "prefix": prefix, "rho": float(np.corrcoef(x, y)[0, 1]),
                     "r2": r2, "n_needed_regression": cv.n_for_halfwidth(
                         float(np.std(y, ddof=1)), r2, halfwidth, pool_docs)})
    return pl.DataFrame(rows, schema={"domain": pl.String, "prefix": pl.Int64,
                                      "rho": pl.Float64, "r2": pl.Float64,
                                      "n_needed_regression": pl.Int64})


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(PrecisionArgs, measure, argv, prog="presence_precision.py")
