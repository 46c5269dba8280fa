"""Respondents as an axis: 20 people of a (simulated) human sample answering one survey stay distinct rows, so
Cronbach's α is computed across them and equals an independent computation; given as `sample` they are pooled into
one administration (the old behaviour: α empty). The store migration keeps rows written before it."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import numpy as np
import pytest
from import_helpers import MINI_ITEMS, mini_spec, write_lines

from probekit.analysis import analyze
from probekit.importers import import_responses
from probekit.store.migrations import MIGRATIONS
from probekit.store.store import Store

# Hand-made answers of 20 respondents (rows) to the 8 items e1 e2 e3 e4 n1 n2 n3 n4 on the 1..5 scale, as marked
# (before reverse keying; e2, e4, n2, n4 are reverse-keyed).
SAMPLE = """
5 1 4 2 2 4 1 5
4 2 4 2 3 3 2 4
2 4 1 5 4 2 5 1
3 3 3 3 3 3 3 3
5 2 5 1 1 5 2 4
1 5 2 4 5 1 4 2
4 1 5 2 2 4 2 5
2 5 2 4 4 2 4 1
3 2 4 3 2 3 3 3
5 1 5 1 1 5 1 5
1 4 1 5 5 2 5 2
4 3 3 2 3 4 2 4
2 4 3 4 4 1 4 2
3 2 3 2 2 4 3 4
5 2 4 1 3 3 2 5
1 5 1 4 4 2 5 1
4 2 5 2 1 4 1 4
3 4 2 3 5 1 4 2
2 3 2 4 3 3 3 3
4 1 4 1 2 5 1 4
"""
ANSWERS = np.array([[int(x) for x in line.split()] for line in SAMPLE.strip().splitlines()])
KEYED = np.array([keyed for _i, _s, _d, keyed in MINI_ITEMS])


def alpha_by_hand(marks: np.ndarray) -> float:
    """Cronbach's α written out: k/(k-1) · (1 − Σ item variances / variance of the totals), sample variances."""
    k = marks.shape[1]
    item_variances = marks.var(axis=0, ddof=1).sum()
    total_variance = marks.sum(axis=1).var(ddof=1)
    return k / (k - 1) * (1 - item_variances / total_variance)


def sample_rows(as_respondents: bool) -> list[object]:
    rows: list[object] = [{"defaults": {"survey": "mini_traits", "model": "human-sample", "form": {"template": "agree"}}}]
    for person, marks in enumerate(ANSWERS, start=1):
        for (item, _s, _d, _k), mark in zip(MINI_ITEMS, marks):
            who = {"respondent": f"p{person:02d}"} if as_respondents else {"sample": person - 1}
            rows.append({"item": item, "choice": int(mark) - 1, **who})
    return rows


def test_alpha_over_20_respondents_equals_the_hand_computation(tmp_path: Path) -> None:
    spec = mini_spec(tmp_path / "mini.yaml")
    store = tmp_path / "store.duckdb"
    summary = import_responses(write_lines(tmp_path / "people.jsonl", sample_rows(True)), survey_file=spec,
                               store_path=store)
    assert summary.imported == 160 and summary.respondents == 20
    assert Store(store).query("SELECT count(DISTINCT respondent) AS n FROM results")["n"][0] == 20
    tables = analyze(store, survey="mini_traits", tables=["likert_alpha", "likert_traits", "likert_respondents"],
                     n_boot=50)
    alpha = tables["likert_alpha"].set_index("trait")
    keyed = np.where(KEYED < 0, 6 - ANSWERS, ANSWERS)
    expected = {"E": alpha_by_hand(keyed[:, :4]), "N": alpha_by_hand(keyed[:, 4:])}
    for trait, value in expected.items():
        assert alpha.loc[trait, "alpha"] == pytest.approx(value, abs=1e-12)
        assert alpha.loc[trait, "n_respondents"] == 20 and alpha.loc[trait, "n_items"] == 4
    # Pinned from a third computation (Python's statistics.variance over the keyed marks): E 0.96093, N 0.95407.
    assert expected["E"] == pytest.approx(0.9609306834706738) and expected["N"] == pytest.approx(0.9540686424279459)
    # The sample's trait score is the mean over people of their mean keyed score; per person in likert_respondents.
    traits = tables["likert_traits"].set_index("trait")
    assert traits.loc["E", "score"] == pytest.approx(keyed[:, :4].mean())
    people = tables["likert_respondents"].set_index(["respondent", "trait"])
    assert people.loc[("p03", "N"), "score"] == pytest.approx(keyed[2, 4:].mean())
    assert len(people) == 40


def test_respondents_given_as_samples_pool_into_one_administration(tmp_path: Path) -> None:
    """What the issue's researcher hit: `sample` is a repetition of one administration, so α has one respondent."""
    spec = mini_spec(tmp_path / "mini.yaml")
    store = tmp_path / "store.duckdb"
    import_responses(write_lines(tmp_path / "samples.jsonl", sample_rows(False)), survey_file=spec, store_path=store)
    alpha = analyze(store, survey="mini_traits", tables=["likert_alpha"], n_boot=10)["likert_alpha"]
    assert set(alpha["n_respondents"]) == {1} and all(math.isnan(a) for a in alpha["alpha"])


def test_respondents_reimport_is_a_no_op_and_a_changed_answer_is_a_bad_row(tmp_path: Path) -> None:
    spec = mini_spec(tmp_path / "mini.yaml")
    store = tmp_path / "store.duckdb"
    rows = sample_rows(True)
    source = write_lines(tmp_path / "people.jsonl", rows)
    first = import_responses(source, survey_file=spec, store_path=store)
    again = import_responses(source, survey_file=spec, store_path=store)
    assert again.already and again.run_id == first.run_id and again.already_stored == 160
    changed = [*rows[:-1], {**rows[-1], "choice": (rows[-1]["choice"] + 1) % 5}]  # type: ignore[index,operator]
    from probekit.importers import BadRows

    with pytest.raises(BadRows) as caught:
        import_responses(write_lines(tmp_path / "changed.jsonl", changed), survey_file=spec, store_path=store)
    assert caught.value.problems[0].line == 161 and "respondent" in caught.value.problems[0].message
    assert Store(store).query("SELECT count(*) AS n FROM results")["n"][0] == 160  # nothing stored was lost


def test_migration_8_keeps_the_rows_of_an_older_store(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMPTZ)")
    for migration in [m for m in MIGRATIONS if m.version < 8]:
        con.execute(migration.sql)
        con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [migration.version, migration.name])
    con.execute("INSERT INTO results (run_id, trial_id, model, sample_index, status, mode, choice, created_at) "
                "VALUES ('r1', 't1', 'm', 0, 'ok', 'sample', 2, now()), ('r1', 't1', 'm', 1, 'ok', 'sample', 3, now())")
    con.close()
    store = Store(path)
    store.migrate()
    rows = store.query("SELECT model, respondent, sample_index, choice FROM results ORDER BY sample_index")
    assert rows.values.tolist() == [["m", "", 0, 2], ["m", "", 1, 3]]
    key = store.query("SELECT constraint_column_names AS k FROM duckdb_constraints() WHERE table_name = 'results' "
                      "AND constraint_type = 'PRIMARY KEY'")["k"][0]
    assert list(key) == ["run_id", "trial_id", "model", "respondent", "sample_index"]
    assert "respondent" in store.query("SELECT * FROM trial_results LIMIT 0").columns
