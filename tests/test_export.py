"""`probekit export` / `probekit.export()` and `probekit import` of an export (issue 15), on real DuckDB files with
the scriptable fake backend: round trips in every format (every table equal row for row, a second import a
no-op, other runs of the target kept), the manifest (versions, configurations without keys, licenses), the
files read by pandas and DuckDB in a process without probekit, and an export while a run writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

import duckdb
import pytest
from typer.testing import CliRunner

import probekit
from probekit.exporting import STORE_TABLES, ExportError, ExportSummary, export
from probekit.importers.probekit_export import ExportImportRefused, import_export
from probekit.store.recorder import StoreRecorder
from probekit.store.rows import ResultRow
from probekit.store.store import Store

REPO = Path(__file__).resolve().parents[1]
STARTER = str(REPO / "surveys" / "moralchoice_starter.yaml")
PCT = str(REPO / "surveys" / "pct.yaml")
POBS = str(REPO / "surveys" / "pobs.yaml")
KEY_ENV = "PROBEKIT_TEST_EXPORT_API_KEY"
KEY_VALUE = "sk-test-export-0123456789abcdef"
TRICKY_TEXT = 'He said "no",\nthen — left; ünïcode ✓ \\ end'


def _tricky_rows(run_id: str, trial_id: str) -> list[ResultRow]:
    """Values that a lossy encoding would change: doubles needing 17 digits, -0.0, non-finite and NULL list
    entries, empty lists, empty string vs NULL, quotes/commas/newlines, microsecond timestamps."""
    stamp = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    return [
        ResultRow(run_id=run_id, trial_id=trial_id, model="fake:a", sample_index=7, status="ok", mode="sample", choice=1,
                  distribution=[0.1 + 0.2, 1 - (0.1 + 0.2)], valid_mass=1 / 3, missing_labels=0,
                  label_logprobs=[float("-inf"), None], seq_logprob_sum=[], seq_logprob_mean=[-0.0, 5e-324],
                  top_logprobs={"tokens": ["A", '"B"', "é,\n"], "lp": [-0.1, float("nan")]}, raw_text=TRICKY_TEXT,
                  prompt_tokens=12, completion_tokens=0, latency_ms=1e-9, cost_usd=0.0, resolved_model="fake/a",
                  system_fingerprint="", error_class=None, error_message="", attempts=3, created_at=stamp),
        ResultRow(run_id=run_id, trial_id=trial_id, model="fake:a", sample_index=8, status="invalid", mode="sample",
                  raw_text="", label_logprobs=[float("nan"), float("inf")], created_at=stamp),
    ]


def _api_like_run(store: Path) -> str:
    """A run recorded like an API model's: its configuration names the key's environment variable."""
    from probekit.provenance import package_versions, survey_hash
    from probekit.survey.expand import expand

    survey = probekit.load_survey(STARTER)
    digest = survey_hash(survey)
    trials = expand(survey, limit=2)
    run_id = "01JAPIRUN0000000000000000A"
    config = {"surveys": [{"id": survey.id, "hash": digest}], "models": ["openai/gpt-x"], "seed": 0,
              "endpoints": {"openai/gpt-x": {"api_base": "http://127.0.0.1:9/v1", "api_key_env": KEY_ENV}}}
    recorder = StoreRecorder(store)
    recorder.begin_run(run_id, config, "api-config-hash", package_versions())
    recorder.record_survey(survey, digest, STARTER)
    recorder.record_trials(run_id, digest, trials)
    recorder.record_model(run_id, "openai/gpt-x", {"backend": "litellm", "resolved_name": "gpt-x-2025", "logprobs_supported": True})
    recorder.record_results([ResultRow(run_id=run_id, trial_id=t.trial_id, model="openai/gpt-x", status="ok", mode="logprob",
                                       choice=0, distribution=[0.75, 0.25], resolved_model="gpt-x-2025",
                                       system_fingerprint="fp_1") for t in trials])
    recorder.finish_run(run_id, "completed")
    return run_id


class Source(NamedTuple):
    path: Path
    runs: list[str]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Source:
    """A store with three runs: two surveys × two models (logprob), POBs in sample mode with fatal faults
    (error rows, raw text, NULL polarities), and an API-like run whose configuration names a key variable."""
    path = tmp_path_factory.mktemp("source") / "source.duckdb"
    a = probekit.run([STARTER, PCT], models=["fake:a?prior=3,1", "fake:b"], store=path, limit=3).run_id
    b = probekit.run([POBS], models=["fake:c?nologprobs=1&fatal=0.2"], store=path, limit=2, mode="sample", samples=2).run_id
    trial = str(Store(path).query("SELECT trial_id FROM run_trials WHERE run_id = ? ORDER BY trial_id LIMIT 1", [a])["trial_id"][0])
    StoreRecorder(path).record_results(_tricky_rows(a, trial))
    c = _api_like_run(path)
    with Store(path).transaction() as con:  # NaN in a list (the row writer itself stores NaN as NULL)
        con.execute("UPDATE results SET label_logprobs = ['nan'::DOUBLE, 'inf'::DOUBLE, NULL] WHERE sample_index = 8")
    return Source(path, [a, b, c])


def _scope_sql(table: str, runs: list[str]) -> str:
    """The rows of `table` that belong to `runs` (what an export of those runs holds)."""
    ids = ", ".join(f"'{r}'" for r in runs)
    in_runs = f"run_id IN ({ids})"
    trials = f"SELECT trial_id FROM {{db}}.run_trials WHERE {in_runs}"
    hashes = f"SELECT survey_hash FROM {{db}}.trials WHERE trial_id IN ({trials})"
    surveys = f"SELECT survey_id FROM {{db}}.trials WHERE trial_id IN ({trials})"
    return {
        "trials": f"SELECT * FROM {{db}}.trials WHERE trial_id IN ({trials})",
        "surveys": f"SELECT * FROM {{db}}.surveys WHERE survey_hash IN ({hashes})",
        "items": f"SELECT * FROM {{db}}.items WHERE survey_hash IN ({hashes})",
        "human_distributions": f"SELECT * FROM {{db}}.human_distributions WHERE survey_hash IN ({hashes})",
        "personas": f"SELECT * FROM {{db}}.personas WHERE survey_hash IN ({hashes})",
        "judge_gold_sources": f"SELECT * FROM {{db}}.judge_gold_sources WHERE survey_id IN ({surveys})",
        "judge_gold": f"SELECT * FROM {{db}}.judge_gold WHERE survey_id IN ({surveys})",
    }.get(table, f"SELECT * FROM {{db}}.{table} WHERE {in_runs}")


def assert_tables_equal(source: Path, target: Path, runs: list[str], *, registered: bool = False) -> dict[str, int]:
    """Every store table of `runs` equal row for row (multiset equality, NULLs and NaN included). `registered`:
    the target registered some of the surveys itself (same spec hash), so their path and time are its own."""
    con = duckdb.connect()
    con.execute(f"ATTACH '{source}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{target}' AS b (READ_ONLY)")
    counts = {}
    for table in STORE_TABLES:
        left, right = _scope_sql(table, runs).format(db="a"), _scope_sql(table, runs).format(db="b")
        if registered and table == "surveys":
            left, right = (sql.replace("SELECT *", "SELECT * EXCLUDE (path, created_at)", 1) for sql in (left, right))
        n = con.execute(f"SELECT count(*) FROM ({left})").fetchall()[0][0]
        assert n == con.execute(f"SELECT count(*) FROM ({right})").fetchall()[0][0], table
        for first, second in ((left, right), (right, left)):
            missing = con.execute(f"SELECT * FROM ({first} EXCEPT ALL {second})").fetchall()
            assert not missing, (table, missing[:2])
        counts[table] = n
    con.close()
    return counts


def all_counts(path: Path) -> dict[str, int]:
    store = Store(path)
    return {t: int(store.query(f"SELECT count(*) AS n FROM {t}")["n"][0]) for t in STORE_TABLES}


# -- round trips ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("fmt", "partition"), [("parquet", False), ("csv", False), ("jsonl", False),
                                                ("parquet", True), ("csv", True)])
def test_round_trip_every_table_equal_and_second_import_is_a_no_op(source: Source, tmp_path: Path, fmt: str, partition: bool) -> None:
    runs = list(source.runs)
    out = tmp_path / "export"
    summary = export(out, store=source.path, format=fmt, partition=partition)
    assert set(summary.runs) == set(runs)
    target = tmp_path / "target.duckdb"
    first = import_export(out, store_path=target)
    counts = assert_tables_equal(source.path, target, runs)
    assert first.inserted == counts == summary.tables and not first.already
    assert counts["results"] > 366 and counts["position_priors"] > 0
    second = import_export(out, store_path=target)
    assert second.already and not any(second.inserted.values()) and not second.differing
    assert all_counts(target) == counts
    # The tricky values came back exactly (NaN, -inf, 5e-324, empty string vs NULL, quotes and newlines).
    row = Store(target).query("SELECT * FROM results WHERE sample_index = 7").iloc[0]
    assert list(row["distribution"]) == [0.1 + 0.2, 1 - (0.1 + 0.2)] and row["raw_text"] == TRICKY_TEXT
    assert list(row["seq_logprob_mean"]) == [0.0, 5e-324]  # (the store itself keeps -0.0 as 0.0)
    assert row["error_message"] == "" and row["error_class"] is None and list(row["seq_logprob_sum"]) == []
    assert row["created_at"] == datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    invalid = Store(target).query("SELECT raw_text, CAST(label_logprobs AS VARCHAR) AS lp FROM results WHERE sample_index = 8").iloc[0]
    assert invalid["raw_text"] == "" and invalid["lp"] == "[nan, inf, NULL]"


def test_import_keeps_the_target_runs_and_merges_stores(source: Source, tmp_path: Path) -> None:
    a, b, _c = source.runs
    target = tmp_path / "other.duckdb"
    own = probekit.run([STARTER], models=["fake:z"], store=target, limit=2).run_id
    before = Store(target).query("SELECT * FROM results ORDER BY trial_id")
    export(tmp_path / "a", store=source.path, run=a)
    export(tmp_path / "b", store=source.path, run=b, format="csv")
    restored = import_export(tmp_path / "a", store_path=target)
    assert not restored.already and restored.inserted["surveys"] == 1 and not restored.differing  # starter: registered
    assert_tables_equal(source.path, target, [a], registered=True)
    assert import_export(tmp_path / "a", store_path=target).already
    import_export(tmp_path / "b", store_path=target)
    assert_tables_equal(source.path, target, [a, b], registered=True)
    after = Store(target).query("SELECT * FROM results WHERE run_id = ? ORDER BY trial_id", [own])
    assert after.to_json(date_format="iso") == before.to_json(date_format="iso")  # the target's own run is untouched
    assert set(Store(target).runs()["run_id"]) == {own, a, b}
    # The merged store analyses like the original: same marginals for the restored run.
    sql = "SELECT * FROM item_marginals WHERE run_id = ? ORDER BY model, item_id, option_index"
    assert Store(target).query(sql, [a]).to_json() == Store(source.path).query(sql, [a]).to_json()


def test_scope_by_run_survey_and_models(source: Source, tmp_path: Path) -> None:
    a = source.runs[0]
    summary = export(tmp_path / "pct", store=source.path, survey="pct", models="fake:a", format="jsonl")
    assert summary.runs == [a]
    store = Store(source.path)
    expected = store.query("SELECT count(*) AS n FROM results r JOIN trials t USING (trial_id) "
                           "WHERE r.run_id = ? AND t.survey_id = 'pct' AND r.model = 'fake:a'", [a])["n"][0]
    assert summary.tables["results"] == expected > 0
    assert summary.tables["models"] == 1 and summary.tables["surveys"] == 1
    assert summary.tables["items"] == store.query("SELECT count(*) AS n FROM items WHERE survey_id = 'pct'")["n"][0]
    assert [s["survey_id"] for s in summary.manifest["surveys"]] == ["pct"]
    assert summary.manifest["scope"] == {"runs": None, "survey": "pct", "models": ["fake:a"]}
    # A scoped export restores as a partial run; importing the rest later completes it.
    target = tmp_path / "t.duckdb"
    import_export(tmp_path / "pct", store_path=target)
    export(tmp_path / "all_a", store=source.path, run=a)
    import_export(tmp_path / "all_a", store_path=target)
    assert_tables_equal(source.path, target, [a])
    only = export(tmp_path / "two", store=source.path, run=a, tables="results,runs")
    assert list(only.tables) == ["results", "runs"]
    with pytest.raises(ExportImportRefused, match="export with --tables all"):
        import_export(tmp_path / "two", store_path=tmp_path / "u.duckdb")
    with pytest.raises(ExportError, match="no run 'nope'"):
        export(tmp_path / "x", store=source.path, run="nope")
    with pytest.raises(ExportError, match="nothing to export"):
        export(tmp_path / "y", store=source.path, survey="mmlu")
    with pytest.raises(ExportError, match="unknown table"):
        export(tmp_path / "z", store=source.path, tables="results,schema_migrations")


# -- the manifest ---------------------------------------------------------------------------------
def test_manifest_versions_configurations_licenses_and_no_key(source: Source, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY_VALUE)
    out = tmp_path / "e"
    summary = probekit.export(out, store=source.path, format="csv")
    manifest = json.loads((out / "manifest.json").read_text())
    store = Store(source.path)
    assert manifest["format"] == "probekit-export" and manifest["probekit_version"] == probekit.__version__
    assert manifest["schema_version"] == int(store.query("SELECT max(version) AS v FROM schema_migrations")["v"][0])
    for table, info in manifest["tables"].items():
        assert info["rows"] == summary.tables[table]
        assert [c["name"] for c in info["columns"]] == list(store.query(f"SELECT * FROM {table} LIMIT 0").columns)
        for entry in info["files"]:
            assert (out / entry["path"]).stat().st_size == entry["bytes"]
    configs = {r["run_id"]: r["config"] for r in manifest["runs"]}
    for run_id, config in store.query("SELECT run_id, config FROM runs").itertuples(index=False):
        assert configs[run_id] == json.loads(config)
    api = configs["01JAPIRUN0000000000000000A"]
    assert api["endpoints"]["openai/gpt-x"]["api_key_env"] == KEY_ENV  # the variable's name ...
    for path in out.rglob("*"):
        if path.is_file():
            assert KEY_VALUE.encode() not in path.read_bytes(), path  # ... never its value
    statuses = {r["run_id"]: r["status"] for r in manifest["runs"]}
    assert set(statuses.values()) <= {"completed", "completed_with_errors"} and summary.unfinished == []
    licenses = {s["survey_id"]: s for s in manifest["surveys"]}
    assert set(licenses) == {"moralchoice_starter", "pct", "pobs"}
    for survey_id, spec_file in (("moralchoice_starter", STARTER), ("pct", PCT), ("pobs", POBS)):
        spec = probekit.load_survey(spec_file).source
        assert (licenses[survey_id]["license"], licenses[survey_id]["attribution"], licenses[survey_id]["citation"]) == \
            (spec.license, spec.attribution, spec.citation)
        assert spec.license and spec.license in (out / "README.md").read_text()
    assert "JSON arrays" in manifest["encoding"] and manifest["file_format"] == "csv"


def test_a_key_value_in_a_configuration_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY_VALUE)
    store = tmp_path / "leaky.duckdb"
    StoreRecorder(store).begin_run("01JLEAKY000000000000000000", {"models": ["m"], "headers": {"Authorization": KEY_VALUE}},
                                   "h", {"probekit": "0"})
    with pytest.raises(ExportError, match=f"value of \\${KEY_ENV}"):
        export(tmp_path / "out", store=store)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial-*"))


# -- reading without probekit -----------------------------------------------------------------------
READER = r"""
import importlib.abc, json, sys

class NoProbekit(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "probekit" or name.startswith("probekit."):
            raise ImportError("probekit is not installed here")
        return None

sys.meta_path.insert(0, NoProbekit())
import duckdb, pandas as pd, pyarrow.parquet as pq

flat, parts = sys.argv[1], sys.argv[2]
out = {"pandas": {}, "duckdb": {}, "partitioned": {}}
for table in ("runs", "models", "surveys", "items", "trials", "run_trials", "results", "position_priors",
              "human_distributions", "personas", "judge_gold_sources", "judge_gold"):
    out["pandas"][table] = len(pd.read_parquet(f"{flat}/{table}.parquet"))
    out["duckdb"][table] = duckdb.sql(f"SELECT count(*) FROM read_parquet('{flat}/{table}.parquet')").fetchall()[0][0]
frame = pd.read_parquet(f"{flat}/results.parquet")
ok = frame[frame["status"] == "ok"].sort_values(["run_id", "model", "trial_id", "sample_index"])
out["pandas_distribution"] = [list(map(float, d)) for d in ok["distribution"].head(5)]
out["duckdb_distribution"] = [list(r[0]) for r in duckdb.sql(
    f"SELECT distribution FROM read_parquet('{flat}/results.parquet') WHERE status = 'ok' "
    "ORDER BY run_id, model, trial_id, sample_index LIMIT 5").fetchall()]
out["config"] = json.loads(pd.read_parquet(f"{flat}/runs.parquet")["config"].iloc[0])
out["types"] = {f.name: str(f.type) for f in pq.read_schema(f"{flat}/results.parquet")}
hive = pd.read_parquet(f"{parts}/results")
out["partitioned"]["pandas"] = {f"{s}|{m}": int(n) for (s, m), n in hive.groupby(["survey_id", "model"], observed=True).size().items()}
out["partitioned"]["duckdb"] = {f"{s}|{m}": n for s, m, n in duckdb.sql(
    f"SELECT survey_id, model, count(*) FROM read_parquet('{parts}/results/**/*.parquet', hive_partitioning = true) "
    "GROUP BY ALL").fetchall()}
out["modules"] = sorted(m for m in sys.modules if m.split(".")[0] == "probekit")
print(json.dumps(out))
"""


def test_parquet_reads_in_pandas_and_duckdb_without_probekit(source: Source, tmp_path: Path) -> None:
    flat, parts = tmp_path / "flat", tmp_path / "parts"
    summary = export(flat, store=source.path)
    export(parts, store=source.path, partition=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", READER, str(flat), str(parts)], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["modules"] == []
    assert seen["pandas"] == seen["duckdb"] == summary.tables
    store = Store(source.path)
    expected = [list(d) for d in store.query(
        "SELECT distribution FROM results WHERE status = 'ok' ORDER BY run_id, model, trial_id, sample_index LIMIT 5")["distribution"]]
    assert seen["pandas_distribution"] == seen["duckdb_distribution"] == expected
    assert seen["config"] == json.loads(store.query("SELECT config FROM runs ORDER BY started_at LIMIT 1")["config"][0])
    assert seen["types"]["distribution"].startswith("list<") and seen["types"]["created_at"].startswith("timestamp[us, tz=")
    by_part = {f"{s}|{m}": int(n) for s, m, n in store.query(
        "SELECT t.survey_id, r.model, count(*) FROM results r JOIN trials t USING (trial_id) GROUP BY ALL").itertuples(index=False)}
    assert seen["partitioned"]["pandas"] == seen["partitioned"]["duckdb"] == by_part


# -- while a run writes ---------------------------------------------------------------------------
@pytest.mark.slow  # several processes
def test_export_while_a_run_writes(tmp_path: Path) -> None:
    store = tmp_path / "live.duckdb"
    code = ("import probekit, sys; s = probekit.run([sys.argv[1]], models=['fake:a?delay=0.05&batch=1&concurrency=1'], "
            "store=sys.argv[2], limit=10); print(s.run_id, s.trials, sum(m.ok for m in s.models))")
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    writer = subprocess.Popen([sys.executable, "-c", code, STARTER, str(store)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    exports: list[ExportSummary] = []
    failures: list[str] = []
    deadline = time.monotonic() + 120
    while writer.poll() is None and time.monotonic() < deadline:
        try:
            exports.append(export(tmp_path / f"e{len(exports)}", store=store))
        except ExportError as error:  # the run has not created its run row yet
            failures.append(str(error))
        time.sleep(0.05)
    out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    run_id, trials, ok = out.split()
    assert int(trials) == 60 and int(ok) == 60
    final = Store(store)
    assert final.query("SELECT status FROM runs")["status"].tolist() == ["completed"]
    assert int(final.query("SELECT count(*) AS n FROM results")["n"][0]) == 60
    rows = [e.tables["results"] for e in exports]
    assert rows == sorted(rows) and all(r <= 60 for r in rows)
    partial = [e for e in exports if e.unfinished and 0 < e.tables["results"] < 60]
    assert len(partial) >= 2, (rows, failures)
    assert max(e.held_seconds for e in exports) < 5
    assert all(any(m in f for m in ("no store at", "no probekit runs yet", "nothing to export")) for f in failures)
    # A mid-run export restores as an unfinished run; the export after the end then adds the rest, and the
    # changed run row is reported (kept as stored, or replaced with replace=True).
    target = tmp_path / "copy.duckdb"
    import_export(partial[-1].out_dir, store_path=target)
    last = export(tmp_path / "final", store=store)
    merged = import_export(last.out_dir, store_path=target)
    assert merged.inserted["results"] == 60 - partial[-1].tables["results"] and merged.differing.get("runs") == 1
    assert Store(target).query("SELECT status FROM runs")["status"].tolist() == ["running"]
    replaced = import_export(last.out_dir, store_path=target, replace=True)
    assert replaced.differing.get("runs") == 1 and set(replaced.differing) <= {"runs", "models"}  # (model details grow)
    assert not any(replaced.inserted.values())
    assert_tables_equal(store, target, [run_id])
    assert import_export(last.out_dir, store_path=target).already


# -- the CLI --------------------------------------------------------------------------------------
def test_cli_export_import_and_analysis(source: Source, tmp_path: Path) -> None:
    from probekit.analysis import analyze
    from probekit.analysis.export import tables_to_json
    from probekit.cli.main import app

    runner = CliRunner()
    store, a = str(source.path), source.runs[0]
    out = tmp_path / "cli"
    done = runner.invoke(app, ["export", "--store", store, "--run", a, "--format", "csv", "-o", str(out)])
    assert done.exit_code == 0, done.output
    assert f"exported 1 run(s) to {out} (csv" in done.output and "MIT" in done.output
    assert (out / "results.csv").exists() and (out / "manifest.json").exists()
    again = runner.invoke(app, ["export", "--store", store, "-o", str(out)])
    assert again.exit_code == 1 and "is not empty" in again.output
    assert runner.invoke(app, ["export", "--store", store, "-o", str(out), "--overwrite", "--format", "jsonl"]).exit_code == 0
    assert (out / "results.jsonl").exists() and not (out / "results.csv").exists()
    target = str(tmp_path / "t.duckdb")
    first = runner.invoke(app, ["import", str(out), "--store", target])
    assert first.exit_code == 0 and "restored run(s)" in first.output, first.output
    second = runner.invoke(app, ["import", str(out / "manifest.json"), "--store", target])
    assert second.exit_code == 0 and "nothing new to import" in second.output
    assert runner.invoke(app, ["import", str(out), "--store", target, "--skip-bad"]).exit_code == 2
    assert_tables_equal(source.path, Path(target), list(source.runs))
    bad = runner.invoke(app, ["export", "--store", store, "-o", str(tmp_path / "bad"), "--tables", "nope"])
    assert bad.exit_code == 1 and "unknown table" in bad.output
    # --analysis: the `probekit analyze` tables; JSON lines hold the rows of the JSON contract.
    tables_dir = tmp_path / "analysis"
    done = runner.invoke(app, ["export", "--store", store, "--run", a, "--analysis", "--format", "jsonl", "--n-boot", "50",
                               "-o", str(tables_dir)])
    assert done.exit_code == 0, done.output
    contract = json.loads(tables_to_json(analyze(store, run=a, n_boot=50)))
    manifest = json.loads((tables_dir / "manifest.json").read_text())
    assert set(manifest["analysis"]["tables"]) == set(contract) and manifest["tables"] == {}
    for name, rows in contract.items():
        lines = (tables_dir / "analysis" / f"{name}.jsonl").read_text().splitlines()
        assert [json.loads(line) for line in lines] == rows
    assert [r["run_id"] for r in manifest["runs"]] == [a]
    parquet = probekit.export(tmp_path / "ap", store=store, run=a, analysis=True, tables=["pct"], n_boot=50)
    assert list(parquet.tables) == ["pct.pct"] and (tmp_path / "ap" / "analysis" / "pct.pct.parquet").exists()
    refused = runner.invoke(app, ["import", str(tables_dir), "--store", target])
    assert refused.exit_code == 2 and "analysis export" in refused.output


def test_import_refuses_a_changed_export(source: Source, tmp_path: Path) -> None:
    out = tmp_path / "e"
    export(out, store=source.path, format="csv", run=source.runs[1])
    results = out / "results.csv"
    results.write_text(results.read_text().replace("fake:c", "fake:X", 1))
    target = tmp_path / "t.duckdb"
    with pytest.raises(ExportImportRefused, match="sha256 differs"):
        import_export(out, store_path=target)
    assert not target.exists()
    with pytest.raises(ExportImportRefused, match="no probekit export"):
        import_export(tmp_path, store_path=target)
