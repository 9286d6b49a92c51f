"""Loading, validating and aligning the analysis inputs; the missing-value policy.

Terms used throughout the analysis package:

* *section*: one of :data:`SECTIONS`; ``overall`` is the ``score`` column of
  ``rm_scores.csv`` (the plain mean of the four RewardBench sections).
* *feature*: every column of ``features.csv`` except ``model`` (upstream benchmark scores,
  ``params_b``, ``tokens_t``, ``presence_<domain>``).
* *population*: the models that enter the cross-model analyses: models marked
  ``in_population`` in ``models.csv`` (chosen once from ``analysis.population``, see
  :meth:`rmselect.config.Study.population`) that have an RM score for the objective and
  benchmark and a feature row. Post-training lineages are analysed separately (Table 1).
* *family* / *lineage*: the version-level family (gemma-2, qwen2.5) and the model line it
  belongs to (gemma, qwen); leave-one-out evaluations group by either (``selection``).

Missing values (``analysis.missing``):

* ``drop_feature``: a feature with any missing value among the population is dropped.
* ``drop_model``: a model with any missing feature value is dropped.
* ``impute``: nothing is dropped; correlations and coverage use the complete pairs of each
  feature (``n`` says how many), the selection model and the recommender impute the feature
  mean *inside* each CV training fold (sklearn ``SimpleImputer`` in the pipeline) and PCA
  imputes the mean before standardising.

The chosen policy is written into every output it affects (a ``missing_policy`` column or
JSON field).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import polars as pl

#: RewardBench sections plus the overall score, in report order.
SECTIONS: tuple[str, ...] = ("chat", "chat_hard", "safety", "reasoning", "overall")
#: Column of rm_scores.csv holding each section (overall is ``score``).
SECTION_COLUMN: dict[str, str] = {s: ("score" if s == "overall" else s) for s in SECTIONS}
OBJECTIVES: tuple[str, ...] = ("bt", "regression")
MISSING_POLICIES: tuple[str, ...] = ("drop_feature", "drop_model", "impute")
RM_REQUIRED = ("model", "objective", "benchmark", "score")
MODELS_REQUIRED = (
    "model", "family", "lineage", "publisher", "params_b", "stage", "size_group", "in_population"
)


class AnalysisError(ValueError):
    """An input problem, phrased as one line naming the file, column or model."""


def read_csv(path: str | Path, required: Sequence[str], what: str) -> pl.DataFrame:
    """Read a CSV with every column as text first, then check ``required`` columns exist."""
    path = Path(path)
    if not path.exists():
        raise AnalysisError(f"{path}: {what} not found; run the stage that writes it")
    try:
        df = pl.read_csv(path, infer_schema_length=0, null_values=["", "NA", "nan", "NaN"])
    except Exception as err:  # polars raises several error types for malformed CSV
        raise AnalysisError(f"{path}: cannot parse {what} as CSV: {err}") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise AnalysisError(
            f"{path}: {what} lacks column(s) {', '.join(missing)}; see workflow/CONTRACTS.md"
        )
    return df


def to_float(df: pl.DataFrame, cols: Sequence[str], path: str | Path) -> pl.DataFrame:
    """Cast ``cols`` to Float64; an unparsable cell is an error naming column and model."""
    out = []
    for c in cols:
        cast = df[c].cast(pl.Float64, strict=False)
        bad = df.filter(cast.is_null() & df[c].is_not_null())
        if bad.height:
            row = bad.row(0, named=True)
            raise AnalysisError(
                f"{path}: column '{c}' of model '{row.get('model')}' is {row[c]!r},"
                " not a number; fix the cell or leave it empty for missing"
            )
        out.append(cast.alias(c))
    return df.with_columns(out)


def load_rm_scores(path: str | Path, benchmark: str) -> pl.DataFrame:
    """``rm_scores.csv`` rows of ``benchmark``, numeric, with an ``overall`` column."""
    df = read_csv(path, RM_REQUIRED, "RM score table")
    df = df.filter(pl.col("benchmark") == benchmark)
    if df.height == 0:
        raise AnalysisError(
            f"{path}: no rows with benchmark '{benchmark}'; set analysis.benchmark to one of"
            " the benchmarks evaluated"
        )
    bad = df.filter(~pl.col("objective").is_in(list(OBJECTIVES)))
    if bad.height:
        raise AnalysisError(
            f"{path}: model '{bad['model'][0]}' has objective '{bad['objective'][0]}';"
            " expected bt or regression"
        )
    dup = df.group_by("model", "objective").len().filter(pl.col("len") > 1)
    if dup.height:
        raise AnalysisError(
            f"{path}: model '{dup['model'][0]}' has {dup['len'][0]} rows for objective"
            f" '{dup['objective'][0]}' on {benchmark}; keep one"
        )
    text = ("model", "objective", "benchmark", "source", "incomplete")
    num = [c for c in df.columns if c not in text]
    df = to_float(df, num, path)
    return df.with_columns(pl.col("score").alias("overall"))


def load_features(path: str | Path) -> pl.DataFrame:
    """``features.csv``: one row per model, every other column numeric (empty = missing)."""
    df = read_csv(path, ("model",), "feature table")
    dup = df.group_by("model").len().filter(pl.col("len") > 1)
    if dup.height:
        raise AnalysisError(f"{path}: model '{dup['model'][0]}' appears more than once")
    return to_float(df, [c for c in df.columns if c != "model"], path)


def load_models(path: str | Path) -> pl.DataFrame:
    """``results/analysis/models.csv`` as written by :mod:`rmselect.analysis.models`."""
    df = read_csv(path, MODELS_REQUIRED, "model table")
    bad = df.filter(~pl.col("in_population").str.to_lowercase().is_in(["true", "false"]))
    if bad.height:
        raise AnalysisError(
            f"{path}: column 'in_population' of model '{bad['model'][0]}' is"
            f" {bad['in_population'][0]!r}; expected true or false (rerun analysis_models)"
        )
    df = df.with_columns(pl.col("in_population").str.to_lowercase() == "true")
    return to_float(df, ["params_b"], path)


def feature_names(features: pl.DataFrame) -> list[str]:
    return [c for c in features.columns if c != "model"]


@dataclass
class Aligned:
    """The population of one objective, aligned row by row (models in a fixed order)."""

    objective: str
    models: list[str]
    features: list[str]
    #: feature matrix (models × features), NaN = missing
    X: np.ndarray
    #: section name → RM scores of ``models``
    y: dict[str, np.ndarray]
    family: list[str]
    params_b: np.ndarray
    missing_policy: str
    #: what the policy removed (written into JSON outputs)
    dropped: dict[str, list[str]] = field(default_factory=dict)
    #: lineage of each model (empty → ``family``)
    lineage: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.lineage:
            self.lineage = list(self.family)

    def note(self) -> dict[str, Any]:
        return {"missing_policy": self.missing_policy, "dropped": self.dropped}


def population(models: pl.DataFrame) -> list[str]:
    """Names of the models marked ``in_population`` (every cross-model analysis uses this)."""
    return models.filter(pl.col("in_population"))["model"].to_list()


def align(
    rm: pl.DataFrame,
    features: pl.DataFrame,
    models: pl.DataFrame,
    objective: str,
    missing: str,
    exclude_features: Sequence[str] = (),
) -> Aligned:
    """Join RM scores, features and the model table for ``objective``; apply ``missing``."""
    if missing not in MISSING_POLICIES:
        raise AnalysisError(
            f"analysis.missing is '{missing}'; use one of {', '.join(MISSING_POLICIES)}"
        )
    pop = set(population(models))
    r = rm.filter(pl.col("objective") == objective)
    unknown = sorted(set(r["model"].to_list()) - set(models["model"].to_list()))
    if unknown:
        import logging

        logging.getLogger(__name__).warning(
            "RM scores of model(s) %s ignored: not in the model table (add them to the"
            " config's model TSV to analyse them)", ", ".join(unknown))
    # An incomplete evaluation (empty score, reason in 'incomplete') is no RM score.
    empty = r.filter(pl.col("score").is_null())
    if empty.height:
        import logging

        why = empty["incomplete"].to_list() if "incomplete" in empty.columns else [None] * empty.height
        logging.getLogger(__name__).warning(
            "%s RM score(s) left out, no overall score: %s", objective,
            "; ".join(f"{m} ({w or 'empty score'})" for m, w in zip(empty["model"].to_list(), why)))
        r = r.filter(pl.col("score").is_not_null())
    names = [m for m in r["model"].to_list() if m in pop]
    feat_models = set(features["model"].to_list())
    no_feat = sorted(set(names) - feat_models)
    if no_feat:
        raise AnalysisError(
            f"features table has no row for model(s) {', '.join(no_feat)} that have RM scores;"
            " run the benchmarks stage for them or import their features"
        )
    names = sorted(names)
    fcols = [c for c in feature_names(features) if c not in set(exclude_features)]
    fm = features.filter(pl.col("model").is_in(names)).sort("model")
    rr = r.filter(pl.col("model").is_in(names)).sort("model")
    mm = models.filter(pl.col("model").is_in(names)).sort("model")
    X = fm.select(fcols).to_numpy().astype(float) if fcols else np.empty((len(names), 0))
    y = {s: rr[SECTION_COLUMN[s]].cast(pl.Float64).to_numpy() if SECTION_COLUMN[s] in rr.columns
         else np.full(len(names), np.nan) for s in SECTIONS}
    fam = dict(zip(mm["model"].to_list(), mm["family"].to_list()))
    lin = dict(zip(mm["model"].to_list(), mm["lineage"].to_list()))
    par = dict(zip(mm["model"].to_list(), mm["params_b"].to_list()))
    al = Aligned(
        objective=objective,
        models=names,
        features=fcols,
        X=X,
        y=y,
        family=[fam.get(n) or n for n in names],
        params_b=np.array([par.get(n, np.nan) for n in names], dtype=float),
        missing_policy=missing,
        lineage=[lin.get(n) or fam.get(n) or n for n in names],
    )
    return apply_missing(al)


def apply_missing(al: Aligned) -> Aligned:
    """Apply ``al.missing_policy`` (see module docstring); drops constant features too."""
    X = al.X
    dropped: dict[str, list[str]] = {"features": [], "models": [], "constant_features": []}
    if al.missing_policy == "drop_feature":
        keep = ~np.isnan(X).any(axis=0)
        dropped["features"] = [f for f, k in zip(al.features, keep) if not k]
        al.features = [f for f, k in zip(al.features, keep) if k]
        X = X[:, keep]
    elif al.missing_policy == "drop_model":
        keep = ~np.isnan(X).any(axis=1)
        dropped["models"] = [m for m, k in zip(al.models, keep) if not k]
        al.models = [m for m, k in zip(al.models, keep) if k]
        al.family = [f for f, k in zip(al.family, keep) if k]
        al.lineage = [f for f, k in zip(al.lineage, keep) if k]
        al.params_b = al.params_b[keep]
        al.y = {s: v[keep] for s, v in al.y.items()}
        X = X[keep]
    # A feature that does not vary (or has < 2 values) carries no information.
    with np.errstate(all="ignore"):
        sd = np.nanstd(X, axis=0) if X.size else np.zeros(X.shape[1])
        nobs = (~np.isnan(X)).sum(axis=0)
    keep = (np.nan_to_num(sd) > 0) & (nobs >= 2)
    dropped["constant_features"] = [f for f, k in zip(al.features, keep) if not k]
    al.features = [f for f, k in zip(al.features, keep) if k]
    al.X = X[:, keep]
    al.dropped = dropped
    return al


def objectives_present(rm: pl.DataFrame, wanted: Sequence[str] | None = None) -> list[str]:
    have = set(rm["objective"].to_list())
    return [o for o in (wanted or OBJECTIVES) if o in have]


def cli(main: Any) -> int:
    """Run an entry point; an :class:`AnalysisError` becomes one line on stderr, exit 2."""
    import sys

    try:
        return int(main() or 0)
    except AnalysisError as err:
        sys.stderr.write(f"rmselect analysis: error: {err}\n")
        return 2
