"""Fixtures of the report tests: one store holding every survey family on two scripted fake models (no model is
loaded), a two-stage judging experiment on three fake judges (one with a scripted self-preference), and a
tracked fake model whose version changes (two snapshots, each run twice for the noise floor)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))  # browser.py, importable from the tests of this folder

REPO = Path(__file__).resolve().parents[2]
SURVEYS = REPO / "surveys"
MODELS = ["fake:alpha?prior=3,1", "fake:beta?prior=1,1"]
T0 = datetime(2025, 6, 2, 15, tzinfo=timezone.utc)


@dataclass
class FakeStore:
    path: Path
    families_run: str
    """The run with moral dilemmas, compass, personality, POBs and MMLU (selection bias)."""
    judge_survey: str
    drift_survey: str
    drift_model: str


def families_experiment(folder: Path) -> Path:
    """Every family, small: MoralChoice starter (both ambiguity levels), 3 PCT paraphrases × 2 forcing levels,
    10 IPIP items in 3 styles × 2 anchor orders, 8 MMLU items in their 4 cyclic orders, 12 POBs items."""
    spec = {
        "id": "report_families",
        "surveys": [
            {"path": str(SURVEYS / "moralchoice_starter.yaml")},
            {"path": str(SURVEYS / "pct.yaml"), "templates": ["templ-01", "templ-02", "templ-03"],
             "factors": {"forcing": ["none", "job"]}, "limit": 8},
            {"path": str(SURVEYS / "ipip_bigfive_50.yaml"), "limit": 10},
            {"path": str(SURVEYS / "mmlu.yaml"), "limit": 8},
            {"path": str(SURVEYS / "pobs.yaml"), "templates": ["direct"], "reasoning": ["direct"], "limit": 12},
        ],
    }
    path = folder / "families.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def judging_experiment(folder: Path) -> Path:
    spec = {
        "id": "report_judges",
        "models": ["fake:a", "fake:b?self=3", "fake:c"],
        "answer": {"path": str(SURVEYS / "mtbench.yaml"), "limit": 4, "scoring": {"max_tokens": 16}},
        "judge": {"path": str(SURVEYS / "mtbench_judge.yaml"), "templates": ["pair_v2_verdict"], "scoring": {"mode": "logprob"}},
    }
    path = folder / "judges.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


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
