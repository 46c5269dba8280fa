"""The quality layer (issue 22, METRICS.md §10): every table's rows carry the preconditions they fail in `flags`,
`strict` drops them, JSON carries them; label mass is a column where validity is; the default scope skips a run
that failed. A real DuckDB store filled by real (fake-model) runs: a 10-item slice of the IPIP inventory (2 items
per trait, the case that printed α = −5498 with no caveat), 10 of the 62 PCT propositions, and low-ambiguity
MoralChoice scenarios only."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

import probekit
from probekit.analysis import analyze, tables_to_json
from probekit.analysis.quality import FLAGS, Thresholds, codes, describe, drop_flagged

REPO = Path(__file__).resolve().parents[2]
SURVEYS = REPO / "surveys"
MODELS = ["fake:alpha?prior=3,1", "fake:beta?prior=1,1"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("quality")
    spec = {"id": "quality_partial", "surveys": [
        {"path": str(SURVEYS / "ipip_bigfive_50.yaml"), "limit": 10},
        {"path": str(SURVEYS / "pct.yaml"), "templates": ["templ-01", "templ-02"], "limit": 10},
        {"path": str(SURVEYS / "moralchoice_starter.yaml"), "limit": 4},
    ]}
    experiment = folder / "partial.yaml"
    experiment.write_text(yaml.safe_dump(spec), encoding="utf-8")
    path = folder / "s.duckdb"
    run = probekit.run(str(experiment), models=MODELS, store=path)
    # fake:beta puts 0.05 % of its probability on the labels (what gemma3-270m does on the IPIP labels)
    with duckdb.connect(str(path)) as con:
        con.execute("UPDATE results SET valid_mass = 0.0005 WHERE model = 'fake:beta'")
    return path, run.run_id


def _flags(frame: pd.DataFrame) -> list[set[str]]:
    return [set(codes(cell)) for cell in frame["flags"]]


def test_alpha_from_two_items_is_flagged_and_strict_drops_it(store: tuple[Path, str]) -> None:
    path, run = store
    tables = analyze(path, run=run, survey="ipip_bigfive_50", tables=["likert_alpha", "likert_traits"], n_boot=50)
    alpha = tables["likert_alpha"]
    assert (alpha["n_items"] == 2).all()
    assert all("few_items" in f and "partial_survey" in f for f in _flags(alpha))
    traits = tables["likert_traits"]
    assert all("partial_survey" in f for f in _flags(traits))  # 2 of the 10 items of each trait
    strict = analyze(path, run=run, survey="ipip_bigfive_50", tables=["likert_alpha"], n_boot=50, strict=True)
    assert strict["likert_alpha"].empty and "flags" in strict["likert_alpha"].columns


def test_partial_compass_is_flagged_with_the_share_asked(store: tuple[Path, str]) -> None:
    path, run = store
    pct = analyze(path, run=run, survey="pct", tables=["pct"], n_boot=50)["pct"]
    assert (pct["n_items"] == 10).all()
    assert all("partial_survey" in f for f in _flags(pct))
    whole = Thresholds(min_share_asked=10 / 62)  # a threshold that accepts the slice: no partial flag
    relaxed = analyze(path, run=run, survey="pct", tables=["pct"], n_boot=50, thresholds=whole)["pct"]
    assert not any("partial_survey" in f for f in _flags(relaxed))


def test_low_label_mass_is_a_column_and_a_flag(store: tuple[Path, str]) -> None:
    path, run = store
    tables = analyze(path, run=run, survey="moralchoice_starter", n_boot=50, all_tables=True)
    rates = tables["response_rates"].groupby("model")["mean_valid_mass"].agg(["min", "max"])
    assert rates.loc["fake:beta"].tolist() == pytest.approx([0.0005, 0.0005])
    assert rates.loc["fake:alpha"].tolist() == pytest.approx([0.9, 0.9])
    for name in ("response_rates", "uncertainty_summary", "moralchoice"):
        frame = tables[name]
        assert "mean_valid_mass" in frame.columns, name
        flagged = {m for m, f in zip(frame["model"], _flags(frame)) if "low_label_mass" in f}
        assert flagged == {"fake:beta"}, name
    # the other surveys' tables get it through the per-model lookup (no mass column of their own)
    traits = analyze(path, run=run, survey="ipip_bigfive_50", tables=["likert_traits"], n_boot=50)["likert_traits"]
    assert {m for m, f in zip(traits["model"], _flags(traits)) if "low_label_mass" in f} == {"fake:beta"}


def test_one_ambiguity_level_only_is_flagged_partial(store: tuple[Path, str]) -> None:
    path, run = store
    moral = analyze(path, run=run, survey="moralchoice_starter", tables=["moralchoice"], n_boot=50)["moralchoice"]
    assert set(moral["ambiguity"]) == {"low"}
    assert all("partial_survey" in f for f in _flags(moral))


def test_json_carries_flags_and_every_code_is_described(store: tuple[Path, str]) -> None:
    path, run = store
    tables = analyze(path, run=run, n_boot=50, all_tables=True)
    rows = json.loads(tables_to_json(tables))
    assert rows and all("flags" in row for table in rows.values() for row in table)
    for code in FLAGS:
        assert "{" not in describe(code)
    kept = drop_flagged(tables)
    assert all((frame["flags"] == "").all() for frame in kept.values())


def test_default_scope_skips_a_run_that_failed(store: tuple[Path, str], tmp_path: Path) -> None:
    import shutil

    from probekit.analysis.loader import default_run
    from probekit.store.store import Store

    path, finished = store
    copy = tmp_path / "copy.duckdb"
    shutil.copy(path, copy)
    with duckdb.connect(str(copy)) as con:  # a newer run that was interrupted before any answer
        con.execute("INSERT INTO runs SELECT * REPLACE ('broken' AS run_id, 'interrupted' AS status, "
                    "started_at + INTERVAL 1 HOUR AS started_at) FROM runs WHERE run_id = ?", [finished])
    run, why = default_run(Store(copy))
    assert run == finished and "broken (interrupted, 0 valid answers)" in why
    assert set(analyze(copy, n_boot=20)) == set(analyze(copy, run=finished, n_boot=20))


def test_cronbach_alpha_of_two_items_is_the_nonsense_the_flag_is_for() -> None:
    from probekit.analysis.likert import cronbach_alpha

    # two nearly independent items with one negative covariance: α far below 0, as in the report of issue 22
    m = np.array([[1.0, 5.0], [5.0, 1.02], [3.0, 3.0], [2.0, 4.0]])
    assert cronbach_alpha(m) < -10
