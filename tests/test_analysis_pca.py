"""PCA of the standardised feature matrix on a matrix with known eigenvalues."""

from __future__ import annotations

import numpy as np
import pytest

from rmselect.analysis.data import Aligned
from rmselect.analysis.pca import pca


def test_variance_and_loadings_by_hand():
    # f1 = f2 (perfectly correlated), f3 uncorrelated with both: the correlation matrix
    # [[1,1,0],[1,1,0],[0,0,1]] has eigenvalues 2, 1, 0 → ratios 2/3, 1/3, 0;
    # PC1 loads ±1/sqrt(2) on f1 and f2 and 0 on f3.
    f1 = np.array([1, 1, -1, -1.0])
    f3 = np.array([1, -1, 1, -1.0])
    X = np.column_stack([f1, 2 * f1 + 3, f3])
    al = Aligned("regression", list("abcd"), ["f1", "f2", "f3"], X, {}, list("abcd"),
                 np.ones(4), "drop_feature")
    var, load = pca(al)
    assert var["explained_variance_ratio"].to_list()[:2] == pytest.approx([2 / 3, 1 / 3])
    assert var["cumulative"].to_list()[-1] == pytest.approx(1.0)
    pc1 = {r["feature"]: r["loading"] for r in load.filter(load["component"] == "PC1")
           .iter_rows(named=True)}
    assert abs(pc1["f1"]) == pytest.approx(1 / np.sqrt(2))
    assert pc1["f1"] == pytest.approx(pc1["f2"])
    assert pc1["f3"] == pytest.approx(0.0, abs=1e-9)
    assert set(var["missing_policy"]) == {"drop_feature"}


def test_impute_policy_fills_means_before_pca():
    X = np.array([[1.0, 2.0], [2.0, np.nan], [3.0, 6.0], [4.0, 8.0]])
    al = Aligned("bt", list("abcd"), ["x", "y"], X, {}, list("abcd"), np.ones(4), "impute")
    var, _ = pca(al)
    assert np.isfinite(var["explained_variance_ratio"].to_numpy()).all()
