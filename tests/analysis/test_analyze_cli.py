"""`probekit analyze` end to end: real subprocesses, a real DuckDB store filled by real runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow  # drives the CLI or other processes: the full suite, not the quick loop

REPO = Path(__file__).resolve().parents[2]
STARTER = REPO / "surveys" / "moralchoice_starter.yaml"
PROBEKIT = [sys.executable, "-m", "probekit.cli.main"]


def _run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([*PROBEKIT, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)


def _json_tables(store: Path, *extra: str) -> dict[str, list[dict[str, object]]]:
    done = _run("analyze", "--store", str(store), "--format", "json", "--n-boot", "200", *extra)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_analyze_fake_moralchoice_json_csv_and_out(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    done = _run("run", str(STARTER), "-m", "fake:a", "-m", "fake:b?prior=3,1", "--limit", "4", "--store", str(store), "-q")
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip().splitlines()[-1]
    tables = _json_tables(store, "--run", run_id)
    # by default the tables the survey lists under `analyses:`; --all adds the other applicable ones
    listed = {"moralchoice", "moralchoice_agreement", "uncertainty", "uncertainty_summary", "position_bias", "response_rates"}
    assert set(tables) == listed
    everything = _json_tables(store, "--run", run_id, "--all", "--tables", "uncertainty")
    assert set(everything) == {"uncertainty"}  # named tables win over --all
    everything = _json_tables(store, "--run", run_id, "--all")
    assert set(everything) == listed | {"position_prior"}
    uncertainty = pd.DataFrame(tables["uncertainty"])
    models = sorted(set(uncertainty["model"]))  # fake:a, then fake:b (stored with or without its query)
    assert len(models) == 2 and models[0] == "fake:a" and models[1].startswith("fake:b")
    assert len(uncertainty) == 2 * 4 and (uncertainty["n_forms"] == 6).all()
    # H = QF-E + GJSD survives the JSON round trip; the position prior of fake:b makes it form-sensitive
    assert (uncertainty["entropy"] - uncertainty["qf_e"] - uncertainty["gjsd"]).abs().max() < 1e-9
    by_model = uncertainty.groupby("model")["qf_c"].mean()
    assert by_model[models[0]] == pytest.approx(1.0) and by_model[models[1]] < 0.95
    summary = pd.DataFrame(tables["moralchoice"])
    assert {"share_action1", "share_action1_ci_low", "share_action1_ci_high", "n_items"} <= set(summary.columns)
    # model filter, detail table by name, survey scope
    only_a = _json_tables(store, "--survey", "moralchoice_starter", "--models", "fake:a", "--tables", "trials,uncertainty")
    assert set(only_a) == {"trials", "uncertainty"}
    assert {r["model"] for r in only_a["trials"]} == {"fake:a"} and len(only_a["trials"]) == 24
    out = tmp_path / "tables"
    done = _run("analyze", "--store", str(store), "--format", "csv", "--out", str(out), "--n-boot", "100")
    assert done.returncode == 0, done.stderr
    assert "# uncertainty" in done.stdout
    assert (out / "uncertainty.csv").exists() and (out / "moralchoice.parquet").exists()
    assert len(pd.read_parquet(out / "uncertainty.parquet")) == 8
    assert sorted(p.name for p in out.glob("uncertainty.*")) == ["uncertainty.csv", "uncertainty.json", "uncertainty.parquet"]
    rows = json.loads((out / "uncertainty.json").read_text())  # the table's rows, as in --format json
    assert len(rows) == 8 and list(rows[0]) == list(tables["uncertainty"][0])
    table_out = _run("analyze", "--store", str(store), "--n-boot", "100")
    assert table_out.returncode == 0 and "== moralchoice" in table_out.stdout


def test_analyze_json_interface_for_pct_and_pobs(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    for survey in ("pct.yaml", "pobs.yaml"):
        done = _run("run", str(REPO / "surveys" / survey), "-m", "fake:a", "--limit", "2", "--store", str(store), "-q")
        assert done.returncode == 0, done.stderr
    pct = _json_tables(store, "--survey", "pct")
    row = pct["pct"][0]
    assert {"model", "template", "forcing", "economic", "social", "n_unanswered"} <= set(row)
    assert all(-10 <= r["economic"] <= 10 and r["n_unanswered"] == 0 for r in pct["pct"])
    pobs = _json_tables(store, "--survey", "pobs")
    assert {"model", "setup", "nni", "tci", "reliability"} <= set(pobs["pobs"][0])
    assert {r["setup"] for r in pobs["pobs"]} >= {"direct", "reflection"}


def test_analyze_reports_missing_run(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    done = _run("run", str(STARTER), "-m", "fake:a", "--limit", "1", "--store", str(store), "-q")
    assert done.returncode == 0, done.stderr
    missing = _run("analyze", "--store", str(store), "--run", "NOPE")
    assert missing.returncode == 1 and "NOPE" in missing.stderr


@pytest.mark.slow
def test_analyze_smollm2_moralchoice(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    done = _run("run", str(STARTER), "-m", "smollm2", "--limit", "3", "--store", str(store), "-q", timeout=900)
    assert done.returncode == 0, done.stderr
    tables = _json_tables(store)
    uncertainty = pd.DataFrame(tables["uncertainty"])
    assert len(uncertainty) == 3 and (uncertainty["n_forms"] == 6).all()
    assert ((uncertainty["qf_c"] >= 0) & (uncertainty["qf_c"] <= 1)).all()
    assert (uncertainty["entropy"] - uncertainty["qf_e"] - uncertainty["gjsd"]).abs().max() < 1e-9
    assert tables["moralchoice"][0]["model"] == "smollm2"


def test_analyze_run_with_two_surveys_prefixes_tables(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    done = _run("run", str(STARTER), str(REPO / "surveys" / "pct.yaml"), "-m", "fake:a", "--limit", "1",
                "--store", str(store), "-q")
    assert done.returncode == 0, done.stderr
    tables = _json_tables(store)
    assert "moralchoice_starter.moralchoice" in tables and "pct.pct" in tables
    assert "pct.moralchoice" not in tables and "moralchoice_starter.pct" not in tables


def test_experiment_analyses_choose_the_default_tables(tmp_path: Path) -> None:
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(f"id: mini\nmodels: [fake:a]\nsurveys:\n  - path: {STARTER}\n    limit: 2\n"
                          "analyses: [uncertainty_summary, response_rates, pct]\n", encoding="utf-8")
    store = tmp_path / "s.duckdb"
    done = _run("run", str(experiment), "--store", str(store), "-q")
    assert done.returncode == 0, done.stderr
    assert set(_json_tables(store)) == {"uncertainty_summary", "response_rates"}  # pct does not apply to a choice survey
    # pooled by survey id there is no experiment: the survey's own list
    assert "moralchoice" in _json_tables(store, "--survey", "moralchoice_starter")


def test_write_tables_and_json_contract(tmp_path: Path) -> None:
    import numpy as np

    from probekit.analysis import tables_to_json, write_tables

    frame = pd.DataFrame({"model": ["a", "b"], "x": [0.5, float("nan")], "n": np.array([3, 4], dtype=np.int64),
                          "dist": [np.array([0.25, 0.75]), [np.float32(1.0), None]], "meta": [{"k": np.int64(1)}, {}]})
    tables = {"t": frame, "pct.pct": frame.iloc[:1]}
    parsed = json.loads(tables_to_json(tables))
    assert parsed["t"] == [{"model": "a", "x": 0.5, "n": 3, "dist": [0.25, 0.75], "meta": {"k": 1}},
                           {"model": "b", "x": None, "n": 4, "dist": [1.0, None], "meta": {}}]
    written = write_tables(tables, tmp_path / "out")
    assert [p.name for p in written] == ["t.csv", "t.parquet", "t.json", "pct.pct.csv", "pct.pct.parquet", "pct.pct.json"]
    assert json.loads((tmp_path / "out" / "t.json").read_text()) == parsed["t"]
    back = pd.read_parquet(tmp_path / "out" / "t.parquet")
    assert json.loads(back["dist"][0]) == [0.25, 0.75] and back["n"].tolist() == [3, 4]
    assert pd.read_csv(tmp_path / "out" / "pct.pct.csv")["model"].tolist() == ["a"]
    json_only = tmp_path / "json_only"
    assert write_tables(tables, json_only, formats=["json"]) == [json_only / "t.json", json_only / "pct.pct.json"]
    with pytest.raises(ValueError, match="xlsx"):
        write_tables(tables, tmp_path / "x", formats=["xlsx"])
