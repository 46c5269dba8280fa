"""The recording lifecycle (StoreRecorder over a real DuckDB file): a run end to end, upserts by natural
key, typed rows, rolled-back transactions, and waiting for a lock held by another process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from probekit.analysis.pride import load_priors, save_priors
from probekit.store.recorder import Recorder, StoreRecorder
from probekit.store.rows import RESULT_COLUMNS, ResultRow, item_rows, trial_rows
from probekit.store.store import Store, StoreLockedError
from probekit.survey.expand import Trial, expand
from probekit.survey.schema import Item, Option, Survey, Template

PACKAGES = {"probekit": "9.9.9", "duckdb": "x"}


def _survey() -> Survey:
    items = [Item(id=f"q{k}", fields={"question": f"Question {k}?"}, gold=k % 2,
                  options=[Option(text=f"option {k}-{j}") for j in range(2)]) for k in range(3)]
    return Survey(id="recorder_test", kind="mcq", templates=[Template(id="t", user="{question}\n{options}\nAnswer:")],
                  items=items)


def _result(trial: str, *, model: str = "m", sample: int = 0, status: str = "ok", run: str = "r1", **extra: object) -> ResultRow:
    fields: dict[str, object] = {"choice": 1, "distribution": [0.25, 0.75], "valid_mass": 0.9} if status == "ok" else {
        "mode": "none", "error_class": "rate_limit"}
    return ResultRow(run_id=run, trial_id=trial, model=model, sample_index=sample, status=status, **{**fields, **extra})  # type: ignore[arg-type]


def _hold(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process that holds the DuckDB file open for `seconds` (returns once it holds it)."""
    holder = textwrap.dedent(f"""
        import duckdb, time
        con = duckdb.connect({str(path)!r})
        print("locked", flush=True)
        time.sleep({seconds})
        con.close()
    """)
    process = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "locked"
    return process


def test_store_recorder_is_a_recorder(store_path: Path) -> None:
    assert isinstance(StoreRecorder(Store(store_path)), Recorder)
    assert StoreRecorder(store_path).store.path == store_path


def test_lifecycle_end_to_end(store_path: Path) -> None:
    store = Store(store_path)
    recorder = StoreRecorder(store)
    survey = _survey()
    trials: list[Trial] = expand(survey, policy="cyclic")
    assert len(trials) == 6
    config = {"surveys": [{"id": survey.id, "hash": "h1"}], "models": ["m"]}

    assert recorder.find_resumable("cfg") is None  # no file yet
    recorder.begin_run("r1", config, "cfg", PACKAGES)
    assert recorder.find_resumable("cfg") == "r1"
    recorder.record_survey(survey, "h1", "surveys/x.yaml")
    recorder.record_survey(survey, "h1", "surveys/x.yaml")  # once per content hash
    recorder.record_trials("r1", "h1", trials)
    recorder.record_trials("r1", "h1", trials[:2])  # already linked: nothing new
    recorder.record_model("r1", "m", {"backend": "fake", "resolved_name": "m-1", "logprobs_supported": True, "extra": 1})
    recorder.record_model("r1", "m", {"backend": "fake", "resolved_name": "m-2"})  # replaces
    recorder.record_results([_result(t.trial_id) for t in trials[:4]])
    recorder.record_results([_result(trials[4].trial_id, status="error"), _result(trials[5].trial_id, status="error")])
    assert recorder.completed_trials("r1", "m") == {t.trial_id for t in trials[:4]}
    recorder.record_results([_result(t.trial_id) for t in trials[4:]])  # the retries replace the errors
    assert recorder.completed_trials("r1", "m") == {t.trial_id for t in trials}
    recorder.record_priors("r1", [{"model": "m", "survey_id": survey.id, "reasoning": "direct", "n_options": 2,
                                   "prior": [0.6, 0.4], "n_items": 3, "source_run": None}])
    recorder.finish_run("r1", "completed")

    runs = store.runs()
    assert runs.to_dict("records")[0] | {"started_at": None, "ended_at": None} == {
        "run_id": "r1", "started_at": None, "ended_at": None, "status": "completed", "surveys": "recorder_test",
        "models": "m", "trials": 6, "answered": 6, "errors": 0}
    assert runs["ended_at"].notna().all()
    assert recorder.find_resumable("cfg") is None  # completed runs are not resumed
    stored_run = store.query("SELECT probekit_version, packages FROM runs")
    assert stored_run["probekit_version"][0] == "9.9.9"
    assert store.query("SELECT count(*) AS n FROM surveys")["n"][0] == 1
    items = store.items(survey.id).sort_values("item_id")
    assert items["item_id"].tolist() == ["q0", "q1", "q2"] and list(items["option_texts"].iloc[0]) == ["option 0-0", "option 0-1"]
    stored_trials = store.query("SELECT trial_id, option_order FROM trials ORDER BY trial_id")
    assert sorted(stored_trials["trial_id"]) == sorted(t.trial_id for t in trials)
    model = store.query("SELECT resolved_name, details FROM models")
    assert model["resolved_name"].tolist() == ["m-2"]
    results = store.results("r1")
    assert len(results) == 6 and set(results["status"]) == {"ok"}
    assert [list(d) for d in results["distribution"]] == [[0.25, 0.75]] * 6
    assert set(results["item_id"]) == {"q0", "q1", "q2"}
    priors = load_priors(store, "r1")
    assert list(priors["prior"][0]) == [0.6, 0.4] and priors["source_run"].isna().all()
    progress = store.run_progress("r1")
    assert progress.to_dict("records") == [{"model": "m", "status": "ok", "mode": "logprob", "rows": 6}]
    assert store.run_trial_count("r1") == 6

    assert recorder.resume_run("r1") == config
    assert store.runs()["status"][0] == "running" and store.runs()["ended_at"].isna().all()
    with pytest.raises(KeyError, match="no run 'nope'"):
        recorder.resume_run("nope")


def test_moved_row_builders() -> None:
    survey = _survey()
    trials = expand(survey)
    items = item_rows(survey, "h")
    assert [r["item_id"] for r in items] == ["q0", "q1", "q2"] and items[0]["survey_hash"] == "h"
    assert items[0]["n_options"] == 2 and items[1]["gold"] == 1
    rows = trial_rows(trials)
    assert [r["trial_id"] for r in rows] == [t.trial_id for t in trials]
    assert rows[0]["option_order"] == list(trials[0].order) and isinstance(rows[0]["messages"], str)


def test_rows_with_the_same_natural_key_replace_and_never_duplicate(store_path: Path) -> None:
    recorder = StoreRecorder(Store(store_path))
    recorder.record_results([_result("t1", status="error"), _result("t2", status="error"), _result("t2", sample=1)])
    # the same keys again, one of them twice in the batch: the last one wins
    recorder.record_results([_result("t1"), _result("t2", status="error", error_message="first"),
                             _result("t2", choice=0, distribution=[0.9, 0.1])])
    # other runs and models with the same trial are other keys
    recorder.record_results([_result("t1", run="r2"), _result("t1", model="m2")])
    frame = recorder.store.query(
        "SELECT run_id, trial_id, model, sample_index, status, choice FROM results ORDER BY ALL")
    assert [tuple(r) for r in frame.itertuples(index=False)] == [
        ("r1", "t1", "m", 0, "ok", 1), ("r1", "t1", "m2", 0, "ok", 1), ("r1", "t2", "m", 0, "ok", 0),
        ("r1", "t2", "m", 1, "ok", 1), ("r2", "t1", "m", 0, "ok", 1)]
    keys = recorder.store.query(
        "SELECT count(*) AS n, count(DISTINCT (run_id, trial_id, model, sample_index)) AS k FROM results")
    assert keys["n"][0] == keys["k"][0] == 5


def test_mappings_are_typed_rows_and_a_misspelt_column_writes_nothing(store_path: Path) -> None:
    store = Store(store_path)
    recorder = StoreRecorder(store)
    recorder.record_results([{"run_id": "r1", "trial_id": "t0", "model": "m", "distribution": [0.5, 0.5],
                              "top_logprobs": [{"token": "A", "logprob": -0.7}]}])
    stored = store.query("SELECT status, mode, sample_index, top_logprobs, created_at FROM results")
    assert stored[["status", "mode", "sample_index"]].iloc[0].tolist() == ["ok", "logprob", 0]
    assert '"token"' in stored["top_logprobs"][0] and stored["created_at"].notna().all()
    good = {"run_id": "r1", "trial_id": "t1", "model": "m", "distribution": [0.5, 0.5]}
    with pytest.raises(TypeError, match="distrbution"):
        recorder.record_results([good, {"run_id": "r1", "trial_id": "t2", "model": "m", "distrbution": [1.0, 0.0]}])
    with pytest.raises(TypeError):
        store.write_results([{**good, "not_a_column": 1}])
    assert store.query("SELECT trial_id FROM results")["trial_id"].tolist() == ["t0"]
    with pytest.raises(TypeError):
        ResultRow(run_id="r1").with_(trail_id="t")
    assert RESULT_COLUMNS == store.query("SELECT * FROM results LIMIT 0").columns.tolist()


def test_a_failing_write_inside_a_transaction_rolls_back(store_path: Path) -> None:
    store = Store(store_path)
    recorder = StoreRecorder(store)
    recorder.begin_run("r1", {}, "cfg", PACKAGES)
    with pytest.raises(RuntimeError, match="boom"):
        with store.transaction() as con:
            con.execute("UPDATE runs SET status = 'interrupted'")
            con.execute("INSERT INTO run_trials VALUES ('r1', 't1')")
            raise RuntimeError("boom")
    with pytest.raises(Exception, match="(?i)constraint|duplicate"):
        with store.transaction() as con:
            con.execute("INSERT INTO run_trials VALUES ('r1', 't2')")
            con.execute("INSERT INTO runs SELECT * FROM runs")  # primary key violation
    assert store.runs()["status"].tolist() == ["running"]
    assert store.run_trial_count("r1") == 0
    # a batch that fails in SQL (not a list where a list belongs) writes none of its rows
    with pytest.raises(duckdb.ConversionException):
        recorder.record_results([_result("t1"), _result("t2", distribution="not a list")])
    assert store.query("SELECT count(*) AS n FROM results")["n"][0] == 0


def test_record_priors_replaces_by_key_and_pride_writes_through_it(store_path: Path) -> None:
    store = Store(store_path)
    row = {"model": "m", "survey_id": "s", "reasoning": "direct", "n_options": 2, "prior": [0.5, 0.5], "n_items": 1}
    StoreRecorder(store).record_priors("r1", [row, {**row, "n_options": 3, "prior": [0.2, 0.3, 0.5]}])
    save_priors(store, "r1", [{**row, "prior": [0.7, 0.3], "n_items": 4, "source_run": "r0"}])
    save_priors(store, "r1", [])
    priors = load_priors(store, "r1")
    assert priors["n_options"].tolist() == [2, 3]
    assert list(priors["prior"][0]) == [0.7, 0.3] and priors["n_items"].tolist() == [4, 1]
    assert priors["source_run"].tolist()[0] == "r0"


def test_record_results_waits_for_another_process_holding_the_file(store_path: Path) -> None:
    store = Store(store_path, lock_wait=20)
    recorder = StoreRecorder(store)
    recorder.record_results([_result("t1")])
    process = _hold(store_path, 1.0)
    started = time.monotonic()
    recorder.record_results([_result("t2")])
    waited = time.monotonic() - started
    process.wait(timeout=10)
    assert waited > 0.3
    assert store.query("SELECT count(*) AS n FROM results")["n"][0] == 2


def test_lock_wait_ends_in_store_locked_error_and_other_errors_are_not_retried(store_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    Store(store_path).migrate()
    process = _hold(store_path, 60.0)
    # Raised while the holder still holds the file (for a minute, then killed): the wait ended at lock_wait, not
    # when the lock was released (then the write would have succeeded). No wall-clock bound needed.
    with pytest.raises(StoreLockedError, match="stayed locked"):
        StoreRecorder(Store(store_path, lock_wait=0.5)).record_results([_result("t1")])
    assert process.poll() is None, "the holder had already let go: the test proves nothing"
    process.kill()
    process.wait(timeout=10)
    not_a_store = store_path.with_name("garbage.duckdb")
    not_a_store.write_bytes(b"this is not a duckdb file" * 1000)
    opened: list[str] = []
    real_connect = duckdb.connect

    def counting_connect(*args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(str(args[0]) if args else "")
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(duckdb, "connect", counting_connect)
    with pytest.raises(Exception) as raised:
        Store(not_a_store, lock_wait=30).query("SELECT 1")
    assert not isinstance(raised.value, StoreLockedError)
    assert opened.count(str(not_a_store)) <= 1, opened  # not retried (only lock errors are)
