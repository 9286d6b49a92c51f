"""Paper tables as CSV and LaTeX (Tables 1, 3, 4, 5).

* Table 3 (models): ``results/analysis/models.csv`` columns model, publisher, family,
  params_b, tokens_t, stage, size_group.
* Tables 4 and 5 (full per-section results, regression and BT): one row per model with the
  four sections and the overall score (0–100) and the overall score's CI when present.
* Table 1 (post-training): ``posttraining.csv`` of the post-training stage (lineage, model,
  stage, objective, section, score, delta_points, delta_relative_pct) pivoted to one row per
  (objective, lineage, model) with "score (±rel%)" per section.

The LaTeX is a plain ``booktabs`` tabular (no package beyond booktabs), with LaTeX special
characters escaped; numbers are printed with ``digits`` decimals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import polars as pl

from rmselect import cli
from rmselect.analysis.args import usage_error
from rmselect.analysis.data import SECTIONS, load_models, load_rm_scores, read_csv
from rmselect.cli import opt
from rmselect.io import atomic_path, write_table

_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def _cell(v: object, digits: int) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "--"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return latex_escape(str(v))


def to_latex(df: pl.DataFrame, caption: str, label: str, digits: int = 1) -> str:
    """A booktabs table: text columns left-aligned, numeric columns right-aligned."""
    align = "".join("r" if df[c].dtype.is_numeric() else "l" for c in df.columns)
    head = " & ".join(latex_escape(c.replace("_", " ")) for c in df.columns) + r" \\"
    body = [" & ".join(_cell(v, digits) for v in row) + r" \\" for row in df.iter_rows()]
    return "\n".join(
        [
            r"\begin{table}[t]",
            r"\centering",
            r"\small",
            rf"\begin{{tabular}}{{{align}}}",
            r"\toprule",
            head,
            r"\midrule",
            *body,
            r"\bottomrule",
            r"\end{tabular}",
            rf"\caption{{{latex_escape(caption)}}}",
            rf"\label{{{label}}}",
            r"\end{table}",
            "",
        ]
    )


def write_tex(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def model_table(models: pl.DataFrame) -> pl.DataFrame:
    cols = ["model", "publisher", "family", "params_b", "tokens_t", "stage", "size_group"]
    return models.select([c for c in cols if c in models.columns]).with_columns(
        pl.col("tokens_t").cast(pl.Float64, strict=False)
    ).sort("params_b", "model")


def results_table(rm: pl.DataFrame, objective: str) -> pl.DataFrame:
    d = rm.filter(pl.col("objective") == objective)
    cols = ["model"] + [c for c in ("chat", "chat_hard", "safety", "reasoning") if c in d.columns]
    cols += ["overall"] + [c for c in ("score_lo", "score_hi") if c in d.columns]
    return d.select(cols).sort("overall", descending=True)


def posttraining_table(pt: pl.DataFrame, benchmark: str | None = None) -> pl.DataFrame:
    """Table 1: one row per (objective, lineage, model, stage), "score (+x.x%)" per section.

    Rows of other benchmarks are dropped when ``benchmark`` is given and the table has a
    ``benchmark`` column; section ``score`` (the lineage table's name) is shown as overall.
    """
    if benchmark and "benchmark" in pt.columns:
        pt = pt.filter(pl.col("benchmark") == benchmark)
    d = pt.with_columns(
        pl.col("score").cast(pl.Float64, strict=False),
        pl.col("delta_relative_pct").cast(pl.Float64, strict=False),
        pl.col("section").replace({"score": "overall"}),
    ).with_columns(
        pl.when(pl.col("delta_relative_pct").is_null())
        .then(pl.col("score").round(1).cast(pl.String))
        .otherwise(
            pl.format("{} ({}%)", pl.col("score").round(1),
                      pl.col("delta_relative_pct").round(1))
        )
        .alias("cell")
    )
    if "depth" in d.columns:
        d = d.with_columns(pl.col("depth").cast(pl.Int64, strict=False)).sort(
            "objective", "lineage", "depth", "model")
    secs = [s for s in SECTIONS if s in set(d["section"].to_list())]
    w = d.pivot(on="section", index=["objective", "lineage", "model", "stage"], values="cell",
                maintain_order=True)
    return w.select(["objective", "lineage", "model", "stage"] + secs)


# Not a ScoresArgs (rmselect.analysis.args): --rm-scores and --models are optional here, needed
# only without --posttraining.
@dataclass(kw_only=True)
class TablesArgs:
    """Tables 3-5 (models, per-section results) as CSV and LaTeX; Table 1 from
    posttraining.csv with --posttraining."""

    rm_scores: str | None = opt("rm_scores.csv (Tables 4 and 5)", default=None)
    models: str | None = opt("results/analysis/models.csv (Table 3)", default=None)
    benchmark: str = opt("benchmark whose RM scores are tabulated", default="rewardbench")
    csv: list[str] | None = opt("Table 3, 4 (regression), 5 (BT) CSV paths", default=None,
                                nargs=3)
    tex: list[str] | None = opt("Table 3, 4, 5 LaTeX paths", default=None, nargs=3)
    posttraining: str | None = opt("posttraining.csv; writes only Table 1 to --out-tex",
                                   default=None)
    out_tex: str | None = opt("Table 1 LaTeX path (with --posttraining)", default=None)
    digits: int = opt("decimals of the scores", default=1)


PROG = "analysis_tables.py"


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(TablesArgs, write_tables, argv, prog=PROG)


def write_tables(a: TablesArgs) -> int:
    if a.posttraining:
        if not a.out_tex:
            usage_error(TablesArgs, PROG, "--posttraining needs --out-tex")
        pt = read_csv(
            a.posttraining,
            ("lineage", "model", "stage", "objective", "section", "score", "delta_relative_pct"),
            "post-training table",
        )
        write_tex(a.out_tex, to_latex(
            posttraining_table(pt, a.benchmark),
            "RM score per section after each post-training stage (relative change vs the base"
            " model in parentheses).", "tab:posttraining", a.digits))
        return 0
    if not (a.rm_scores and a.models and a.csv and a.tex):
        usage_error(TablesArgs, PROG,
                    "give --rm-scores, --models, --csv and --tex (or --posttraining and --out-tex)")
    models = load_models(a.models)
    rm = load_rm_scores(a.rm_scores, a.benchmark)
    t3 = model_table(models)
    write_table(a.csv[0], t3)
    write_tex(a.tex[0], to_latex(
        t3, "Base models: parameters (billions), pre-training tokens (trillions), stage and"
        " size group.", "tab:models", 2))
    for i, obj in ((1, "regression"), (2, "bt")):
        t = results_table(rm, obj)
        write_table(a.csv[i], t)
        write_tex(a.tex[i], to_latex(
            t, f"{a.benchmark} results per section (0-100), {obj} reward models.",
            f"tab:results-{obj}", a.digits))
    return 0
