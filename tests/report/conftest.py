"""Fixtures of the report tests: one store holding every survey family on two scripted fake models (no model is
loaded), a two-stage judging experiment on three fake judges (one with a scripted self-preference), and a
tracked fake model whose version changes (two snapshots, each run twice for the noise floor)."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # report_helpers, report_browser, report_outline

from report_helpers import MODELS, SURVEYS, T0, FakeStore, families_experiment, judging_experiment  # noqa: E402


@pytest.fixture(scope="session")
def fake_store(tmp_path_factory: pytest.TempPathFactory) -> FakeStore:
    import probekit
    from probekit.judging import run_judging
    from probekit.store.store import Store
    from probekit.tracking import JobOptions, add_job, new_job, run_due

    folder = tmp_path_factory.mktemp("report")
    store = folder / "store.duckdb"
    families = probekit.run(str(families_experiment(folder)), models=MODELS, store=store)
    judged = run_judging(judging_experiment(folder), store=store)
    options = JobOptions(limit=6, mode="sample", samples=6, temperature=1.0, orders="identity")
    starter = SURVEYS / "moralchoice_starter.yaml"
    for day, (model, label) in enumerate((("fake:drifty?prior=1,1", "v1"), ("fake:drifty?prior=9,1", "v2"))):
        add_job(Store(store), new_job("drifty", [starter], [model], "1d", options=options, model_label=label, now=T0), replace=True)
        assert all(o.action == "ran" for o in run_due(store, now=T0 + timedelta(days=day)))
    return FakeStore(path=store, families_run=families.run_id, judge_survey=judged.judge_survey,
                     drift_survey="moralchoice_starter", drift_model="fake:drifty")
