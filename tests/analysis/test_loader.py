"""The loader's DuckDB aggregation against a row-by-row computation on a real store (fake backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from probekit.analysis.loader import contexts
from probekit.pipeline import run
from probekit.store.store import Store

REPO = Path(__file__).resolve().parents[2]


def test_forms_match_rows_in_sample_mode(tmp_path: Path) -> None:
    store_path = tmp_path / "s.duckdb"
    summary = run([REPO / "surveys" / "moralchoice_starter.yaml"], models=["fake:a?prior=2,1"], store=store_path,
                  limit=2, mode="sample", samples=5)
    rows = Store(store_path).results(summary.run_id)
    (ctx,) = contexts(store_path, run=summary.run_id)
    forms = ctx.forms().set_index("trial_id")
    assert len(forms) == rows["trial_id"].nunique() == 2 * 6
    for trial_id, group in rows.groupby("trial_id"):
        ok = group[(group["status"] == "ok") & group["distribution"].notna()]
        expected = np.mean(np.vstack(ok["distribution"].to_list()), axis=0)  # p̂ = share of samples per option
        form = forms.loc[trial_id]
        assert form["n_rows"] == len(group) == 5 and form["n_ok"] == len(ok)
        assert form["dist"] == pytest.approx(expected)
        assert form["option_order"] == tuple(group["option_order"].iloc[0])
    items = ctx.items()
    assert set(rows["item_id"]) <= set(items["item_id"])  # every asked item is known
    assert all(isinstance(m, dict) and "ambiguity" in m for m in items["meta"])
    responses = ctx.responses()
    assert len(responses) == len(rows) and set(responses["status"]) <= {"ok", "refusal", "invalid"}


def test_model_filter_and_survey_scope(tmp_path: Path) -> None:
    store_path = tmp_path / "s.duckdb"
    first = run([REPO / "surveys" / "moralchoice_starter.yaml"], models=["fake:a", "fake:b"], store=store_path, limit=1)
    run([REPO / "surveys" / "moralchoice_starter.yaml"], models=["fake:a"], store=store_path, limit=1, new_run=True, seed=1)
    (only_b,) = contexts(store_path, run=first.run_id, models=["fake:b"])
    assert set(only_b.forms()["model"]) == {"fake:b"}
    (pooled,) = contexts(store_path, survey="moralchoice_starter")
    assert pooled.forms()["run_id"].nunique() == 2
    with pytest.raises(KeyError):
        contexts(store_path, survey="no_such_survey")
