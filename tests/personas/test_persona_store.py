"""Personas in a real DuckDB store (fake backend): trial columns, the personas table, results.respondent,
`--personas` on run and expand, and a store made before migration 10."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from persona_helpers import SURVEY, write
from typer.testing import CliRunner

import probekit
import probekit.store.store as store_module
from probekit.cli.main import app
from probekit.store.migrations import MIGRATIONS
from probekit.store.store import Store
from probekit.survey.expand import expand
from probekit.survey.loader import load_survey


def _rows(store: Path, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    con = duckdb.connect(str(store), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_a_run_stores_persona_columns_personas_and_respondents(tmp_path: Path, store_path: Path) -> None:
    spec = write(tmp_path)
    summary = probekit.run([spec], models=["fake:a"], store=store_path)
    trials = expand(load_survey(spec))
    assert summary.trials == len(trials) == 2 * 10 * 2 and summary.errors == 0
    stored = dict((r[0], r[1:]) for r in _rows(store_path, "SELECT trial_id, persona_id, persona_style FROM trials"))
    assert stored == {t.trial_id: (t.persona_id, t.persona_style) for t in trials}
    # Every result row of a persona trial names the persona as its respondent; default-context rows name nobody.
    mismatched = _rows(store_path, "SELECT count(*) FROM results r JOIN trials t USING (trial_id) "
                                   "WHERE r.respondent <> t.persona_id")
    assert mismatched == [(0,)]
    by_respondent = dict(_rows(store_path, "SELECT respondent, count(*) FROM results GROUP BY respondent"))
    assert by_respondent == {"": 4, "japan": 12, "nurse": 12, "elder": 12}
    personas = _rows(store_path, "SELECT survey_id, persona_id, attributes, bio FROM personas ORDER BY persona_id")
    assert [(s, p, json.loads(a), b) for s, p, a, b in personas] == [
        ("steer", "elder", {"country": "Brazil", "age": "70", "religion": "Catholic"}, None),
        ("steer", "japan", {"country": "Japan"}, None),
        ("steer", "nurse", {}, "I am a retired nurse from Ohio.")]
    view = _rows(store_path, "SELECT DISTINCT persona_id, persona_style, respondent FROM trial_results ORDER BY ALL")
    assert ("japan", "portray", "japan") in view and ("", "", "") in view and len(view) == 10
    # The same command again: the configuration is complete, nothing is asked again.
    assert probekit.run([spec], models=["fake:a"], store=store_path).already_complete


def test_run_personas_subset(tmp_path: Path, store_path: Path) -> None:
    spec = write(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(spec), "--models", "fake:a", "--store", str(store_path), "--personas", "japan",
                                 "--personas", "nurse", "-q"])
    assert result.exit_code == 0, result.output
    assert set(_rows(store_path, "SELECT DISTINCT respondent FROM results")) == {("",), ("japan",), ("nurse",)}
    assert _rows(store_path, "SELECT count(*) FROM results") == [(2 * (1 + 2 * 3) * 2,)]
    config = json.loads(_rows(store_path, "SELECT config FROM runs")[0][0])
    assert config["personas"] == ["japan", "nurse"]
    # A plain run's configuration has no personas key: runs made before personas existed resume as before.
    plain = probekit.run([spec], models=["fake:a"], store=store_path)
    assert "personas" not in Store(store_path).run_config(plain.run_id)
    bad = runner.invoke(app, ["run", str(spec), "--models", "fake:a", "--store", str(store_path), "--personas", "mars"])
    assert bad.exit_code == 2 and "no persona(s) ['mars']" in bad.output and "japan, nurse" in bad.output


def test_expand_cli_personas_subset(tmp_path: Path) -> None:
    spec = write(tmp_path)
    result = CliRunner().invoke(app, ["expand", str(spec), "--personas", "japan,elder", "--show", "40"])
    assert result.exit_code == 0, result.output
    assert "        personas: 2" in result.output and "persona_contexts: 7" in result.output
    assert "          trials: 28" in result.output
    assert "persona=japan (qa)" in result.output and "persona=nurse" not in result.output


def test_a_store_from_before_migration_10(tmp_path: Path, store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store last written before personas existed gains the columns (existing trials: the default context) and
    the same plain command finds its run complete (trial ids and configuration unchanged)."""
    plain = write(tmp_path, SURVEY.split("personas:")[0] + "items:" + SURVEY.split("items:")[1], "plain.yaml")
    with monkeypatch.context() as patch:
        patch.setattr(store_module, "MIGRATIONS", [m for m in MIGRATIONS if m.version < 10])
        patch.setattr(store_module, "_TRIAL_COLUMNS", store_module._TRIAL_COLUMNS.replace(", persona_id, persona_style", ""))
        first = probekit.run([plain], models=["fake:a"], store=store_path)
    assert _rows(store_path, "SELECT max(version) FROM schema_migrations") == [(max(m.version for m in MIGRATIONS if m.version < 10),)]
    again = probekit.run([plain], models=["fake:a"], store=store_path)
    assert again.already_complete and again.run_id == first.run_id
    assert _rows(store_path, "SELECT max(version) FROM schema_migrations") == [(10,)]
    assert _rows(store_path, "SELECT DISTINCT persona_id, persona_style FROM trials") == [("", "")]
    assert _rows(store_path, "SELECT count(*) FROM personas") == [(0,)]
    personas_run = probekit.run([write(tmp_path)], models=["fake:a"], store=store_path)
    assert personas_run.errors == 0
    assert _rows(store_path, "SELECT count(DISTINCT respondent) FROM results") == [(4,)]
