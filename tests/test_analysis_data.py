"""Input validation and the missing-value policies."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from rmselect.analysis.data import (
    AnalysisError,
    align,
    load_features,
    load_rm_scores,
)
from analysis_helpers import models_frame, rm_frame


def _features():
    return pl.DataFrame({
        "model": ["a", "b", "c", "d"],
        "x": [1.0, 2.0, 3.0, 4.0],
        "gappy": [1.0, None, 2.0, 5.0],
        "const": [7.0, 7.0, 7.0, 7.0],
    })


def _models():
    return models_frame([(m, m, 1.0, "s", "a") for m in "abcd"])


def _rm():
    return rm_frame([(m, "bt", 50.0 + i) for i, m in enumerate("abcd")])


def test_drop_feature():
    al = align(_rm(), _features(), _models(), "bt", "drop_feature")
    assert al.features == ["x"] and al.models == list("abcd")
    assert al.dropped["features"] == ["gappy"] and al.dropped["constant_features"] == ["const"]


def test_drop_model():
    al = align(_rm(), _features(), _models(), "bt", "drop_model")
    assert al.models == ["a", "c", "d"] and al.features == ["x", "gappy"]
    assert al.y["overall"].tolist() == [50.0, 52.0, 53.0]
    assert al.dropped["models"] == ["b"]


def test_impute_keeps_nan_for_the_pipeline():
    al = align(_rm(), _features(), _models(), "bt", "impute")
    assert al.features == ["x", "gappy"] and np.isnan(al.X[1, 1])


def test_unknown_policy_and_missing_feature_row():
    with pytest.raises(AnalysisError, match="analysis.missing"):
        align(_rm(), _features(), _models(), "bt", "guess")
    f = _features().filter(pl.col("model") != "c")
    with pytest.raises(AnalysisError, match="no row for model\\(s\\) c"):
        align(_rm(), f, _models(), "bt", "drop_feature")


def test_population_column_decides_who_is_analysed():
    m = _models().with_columns((pl.col("model") != "d").alias("in_population"))
    al = align(_rm(), _features(), m, "bt", "drop_feature")
    assert al.models == ["a", "b", "c"]


def test_bad_cells_are_named(tmp_path):
    p = tmp_path / "features.csv"
    p.write_text("model,mmlu\nm1,55.0\nm2,n/a\n")
    with pytest.raises(AnalysisError, match="column 'mmlu' of model 'm2'"):
        load_features(p)
    r = tmp_path / "rm.csv"
    r.write_text("model,objective,benchmark\nm1,bt,rewardbench\n")
    with pytest.raises(AnalysisError, match="lacks column\\(s\\) score"):
        load_rm_scores(r, "rewardbench")
    r.write_text("model,objective,benchmark,score\nm1,bt,rewardbench,50\nm1,bt,rewardbench,51\n")
    with pytest.raises(AnalysisError, match="model 'm1' has 2 rows"):
        load_rm_scores(r, "rewardbench")
    with pytest.raises(AnalysisError, match="no rows with benchmark 'rmbench'"):
        load_rm_scores(r, "rmbench")
    with pytest.raises(AnalysisError, match="not found"):
        load_features(tmp_path / "absent.csv")
