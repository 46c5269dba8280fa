"""The library entry point: `probekit.run` takes experiment files as the CLI does (the CLI is a thin layer)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import probekit
from probekit.store.store import Store
from probekit.survey.errors import SpecError

REPO = Path(__file__).resolve().parents[1]


def write_experiment(path: Path) -> Path:
    path.write_text(
        "id: mini_pct\n"
        "models: [fake:exp]\n"
        "surveys:\n"
        f"  - path: {REPO / 'surveys' / 'pct.yaml'}\n"
        "    templates: [templ-01]\n"
        "    factors: {forcing: [none]}\n"
        "    limit: 4\n"
        "analyses: [pct]\n", encoding="utf-8")
    return path


def test_probekit_run_takes_an_experiment_file_with_its_default_models(tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    summary = probekit.run(write_experiment(tmp_path / "exp.yaml"), store=store)
    assert [m.model for m in summary.models] == ["fake:exp"] and summary.trials == 4 and summary.errors == 0
    config = json.loads(Store(store).query("SELECT config FROM runs")["config"][0])
    assert config["experiment"]["id"] == "mini_pct" and config["experiment"]["analyses"] == ["pct"]
    # the same call again resumes nothing new (the run completed), and models= overrides the default list
    other = probekit.run(write_experiment(tmp_path / "exp.yaml"), store=store, models=["fake:other"])
    assert [m.model for m in other.models] == ["fake:other"] and other.run_id != summary.run_id


def test_a_model_named_twice_is_asked_once(tmp_path: Path) -> None:
    summary = probekit.run([REPO / "surveys" / "moralchoice_starter.yaml"], store=tmp_path / "s.duckdb",
                           models=["fake:x", "fake:x"], limit=1)
    assert [m.model for m in summary.models] == ["fake:x"]


def test_bad_inputs_fail_before_a_run_exists(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"id: bad\nsurveys:\n  - path: {REPO / 'surveys' / 'pct.yaml'}\n    templates: [nope]\n", encoding="utf-8")
    with pytest.raises(SpecError, match="has no template"):
        probekit.run(bad, store=store)
    with pytest.raises(ValueError, match="no option"):
        probekit.run([REPO / "surveys" / "moralchoice_starter.yaml"], store=store, models=["fake:x"],
                     backend_options={"fake:x": {"device": "cuda"}})
    with pytest.raises(ValueError, match="unknown scoring mode"):
        probekit.run([REPO / "surveys" / "moralchoice_starter.yaml"], store=store, models=["fake:x"], mode="bogus")
    assert not store.exists()
