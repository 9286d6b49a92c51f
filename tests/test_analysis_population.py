"""The analysed population of the paper study: its 40 main-study models, every analysis.

Imported RM scores (``eval.import``) for all 42 models of config/models_paper.tsv, both
objectives, go through the same table builder the workflow uses; every cross-model analysis
must then see the 40 models marked ``in_main_study = yes`` (12 / 7 / 21 per size group), not
the instruct-stage models (which would drop the three Tulu-3 models and add Hermes-3).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from rmselect.analysis.correlations import correlations
from rmselect.analysis.coverage import coverage_table
from rmselect.analysis.data import align, load_features, load_models, load_rm_scores
from rmselect.analysis.gains import gains
from rmselect.analysis.models import models_table, study_rows
from rmselect.config import ConfigError, load_study, load_study_file
from rmselect.eval.table import build_tables, read_import
from rmselect.io import write_table

PAPER_GROUPS = {"<3B": 12, "3-6B": 7, ">=6B": 21}


@pytest.fixture(scope="module")
def paper(tmp_path_factory):
    tmp: Path = tmp_path_factory.mktemp("paper")
    study = load_study_file("config/paper.yaml")
    assert len(study.models) == 42
    models_csv = tmp / "models.csv"
    write_table(models_csv, models_table(study_rows(study)))
    rng = np.random.default_rng(0)
    names = list(study.models)
    imp = tmp / "rm_scores_imported.csv"
    rows = ["model,objective,chat,chat_hard,safety,reasoning"]
    for m in names:
        for o in ("bt", "regression"):
            rows.append(f"{m},{o}," + ",".join(f"{v:.2f}" for v in rng.uniform(40, 90, 4)))
    imp.write_text("\n".join(rows) + "\n")
    table, _ = build_tables([], read_import(imp, names))
    rm_csv = tmp / "rm_scores.csv"
    write_table(rm_csv, table)
    feats = pl.DataFrame({"model": names, "bench_a": rng.normal(size=42),
                          "bench_b": rng.normal(size=42)})
    feats_csv = tmp / "features.csv"
    write_table(feats_csv, feats)
    return (load_rm_scores(rm_csv, "rewardbench"), load_features(feats_csv),
            load_models(models_csv))


def test_paper_population_is_the_40_main_study_models(paper):
    rm, feats, models = paper
    pop = models.filter(pl.col("in_population"))
    assert pop.height == 40
    assert set(pop["model"]) >= {"Llama-3.1-Tulu-3-8B-SFT", "Llama-3.1-Tulu-3-8B-DPO",
                                 "Llama-3.1-Tulu-3-8B"}
    assert not set(pop["model"]) & {"Hermes-3-Llama-3.1-8B", "Llama-3.1-8B"}


def test_every_cross_model_analysis_sees_12_7_21(paper):
    rm, feats, models = paper
    group = dict(zip(models["model"], models["size_group"]))
    g = gains(rm, models)
    for obj in ("bt", "regression"):
        counts = g.filter(pl.col("objective") == obj).group_by("size_group").len()
        assert dict(zip(counts["size_group"], counts["len"])) == PAPER_GROUPS, obj
        al = align(rm, feats, models, obj, "drop_feature")
        per: dict[str, int] = {}
        for m in al.models:
            per[group[m]] = per.get(group[m], 0) + 1
        assert per == PAPER_GROUPS, obj
    als = {o: align(rm, feats, models, o, "drop_feature") for o in ("bt", "regression")}
    c = correlations(als, n_boot=0)
    assert set(c["n"]) == {40}
    cov = coverage_table(als, [5, 10], {})
    assert cov.height == 2 * 2 * 2  # objectives x features x k: all k fit n = 40


def test_population_selection_errors_name_the_field():
    import yaml

    cfg = yaml.safe_load(Path("config/paper.yaml").read_text())
    cfg["analysis"]["population"] = {"column": "no_such_column", "values": ["yes"]}
    with pytest.raises(ConfigError, match="analysis.population.column.*no_such_column"):
        load_study(cfg, "paper.yaml")
    cfg["analysis"]["population"] = {"models": ["gemma-2b-it", "nobody"]}
    with pytest.raises(ConfigError, match="unknown model\\(s\\) nobody"):
        load_study(cfg, "paper.yaml")
    cfg["analysis"]["population"] = {"models": ["gemma-2b-it", "gemma-7b-it"]}
    assert load_study(cfg, "paper.yaml").population() == ["gemma-7b-it", "gemma-2b-it"]
    cfg["analysis"]["population"] = {"column": "in_main_study", "values": [True]}  # YAML yes
    assert len(load_study(cfg, "paper.yaml").population()) == 40
    cfg["analysis"]["stages"] = ["instruct"]
    with pytest.raises(ConfigError, match="analysis.stages.*analysis.population"):
        load_study(cfg, "paper.yaml")


def test_lineages_of_the_paper_and_toy_tables():
    paper = load_study_file("config/paper.yaml").models
    lin = {n: m.lineage for n, m in paper.items()}
    assert lin["gemma-2-9b-it"] == lin["gemma-1.1-7b-it"] == lin["gemma-7b-it"] == "gemma"
    assert {lin[n] for n in paper if n.startswith("Qwen")} == {"qwen"}
    for n in ("Meta-Llama-3-8B-Instruct", "Llama-3.1-8B-Instruct", "Llama-3.2-1B-Instruct",
              "Hermes-3-Llama-3.1-8B", "Llama-3.1-Tulu-3-8B-SFT", "Llama-3.1-Tulu-3-8B"):
        assert lin[n] == "llama-3", n
    assert lin["Phi-3.5-mini-instruct"] == lin["Phi-3-mini-4k-instruct"]
    assert lin["Yi-1.5-9B-Chat"] == lin["Yi-6B-Chat"]
    assert lin["Mistral-NeMo-Minitron-8B-Instruct"] == lin["Mistral-7B-Instruct-v0.3"]
    assert len({m.family for m in paper.values()}) > len(set(lin.values()))
    toy = load_study_file("config/config.yaml").models
    assert toy["toyllama-1-s"].lineage == toy["toyllama-2-m"].lineage
    assert toy["toyqwen-1-s"].lineage == toy["toyqwen-2-m"].lineage
    # variants inherit their parent's lineage; an empty lineage cell falls back to the family
    assert toy["toyllama-2-m-sft"].lineage == toy["toyllama-2-m"].lineage
    fixture = load_study_file("tests/config_analysis_import.yaml").models
    assert all(m.lineage == m.family for m in fixture.values())
