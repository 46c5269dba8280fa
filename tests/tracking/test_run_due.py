"""`run-due`: exactly once per job × slot (twice in a row, late, concurrently, after a crash), retries,
the noise-floor repeat, and version identity recorded with each run. Fake models, real DuckDB files and
real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from probekit.processes import pid_alive
from probekit.store.store import Store
from probekit.tracking import JobOptions, add_job, new_job, run_due
from probekit.tracking.jobs import get_job, slot_history
from probekit.tracking.rundue import SlotRun

REPO = Path(__file__).resolve().parents[2]
STARTER = REPO / "surveys" / "moralchoice_starter.yaml"
UTC = timezone.utc
T0 = datetime(2025, 6, 2, 15, 0, tzinfo=UTC)  # the daily slot due at T0 is 2025-06-02T00:00Z
SLOT0 = datetime(2025, 6, 2, tzinfo=UTC)
ENV = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "TOKENIZERS_PARALLELISM": "false"}


def _add(store: Path, name: str = "mc", model: str = "fake:x", *, repeat: bool = False, label: str | None = "v1",
         replace: bool = False, max_attempts: int = 3, limit: int = 2) -> None:
    job = new_job(name, [STARTER], [model], "1d", options=JobOptions(limit=limit, mode="sample", samples=2), model_label=label,
                  noise_repeat=repeat, max_attempts=max_attempts, now=T0)
    add_job(Store(store), job, replace=replace)


def _runs(store: Path) -> int:
    return int(Store(store).query("SELECT count(*) AS n FROM runs")["n"][0])


def _slots(store: Path) -> list[dict]:
    return slot_history(Store(store)).sort_values(["slot_at", "kind"]).to_dict("records")


@dataclass
class _Summary:
    run_id: str
    errors: int = 0


class _Stub:
    """A runner that records its calls; fails the first `fail` of them; sleeps `delay` seconds."""

    def __init__(self, fail: int = 0, delay: float = 0.0):
        self.fail, self.delay, self.calls = fail, delay, []
        self.lock = threading.Lock()

    def __call__(self, job, slot: SlotRun) -> _Summary:
        with self.lock:
            self.calls.append(slot)
            number = len(self.calls)
        time.sleep(self.delay)
        if number <= self.fail:
            raise RuntimeError(f"provider down (call {number})")
        return _Summary(run_id=f"run-{number}")


# -- once per slot ---------------------------------------------------------------------------------------
def test_run_due_twice_for_one_slot_runs_once_and_records_the_version(store_path: Path) -> None:
    _add(store_path)
    first = run_due(store_path, now=T0)
    second = run_due(store_path, now=T0 + timedelta(hours=3))  # same slot (2025-06-02), later in the day
    assert [o.action for o in first] == ["ran"] and [o.action for o in second] == ["done-already"]
    assert second[0].run_id == first[0].run_id
    assert _runs(store_path) == 1
    [slot] = _slots(store_path)
    assert (slot["status"], slot["attempts"], slot["run_id"], slot["missed"]) == ("done", 1, first[0].run_id, 0)
    # Version identity with the run: requested and resolved name, revision, the label; tracking in the config.
    version = Store(store_path).query("SELECT * FROM model_versions").to_dict("records")[0]
    assert (version["model"], version["resolved_name"], version["model_label"], version["job"], version["slot_kind"]) == (
        "fake:x", "fake/x", "v1", "mc", "scheduled")
    config = json.loads(Store(store_path).query("SELECT config FROM runs")["config"][0])
    assert config["tracking"] == {"job": "mc", "slot": SLOT0.isoformat(), "kind": "scheduled", "model_label": "v1"}


def test_a_missed_slot_runs_once_not_once_per_missed_period(store_path: Path) -> None:
    _add(store_path)
    run_due(store_path, now=T0)
    late = run_due(store_path, now=T0 + timedelta(days=4))  # the 3rd, 4th and 5th were never run
    assert [(o.action, o.slot_at, o.missed) for o in late] == [("ran", SLOT0 + timedelta(days=4), 3)]
    assert [o.action for o in run_due(store_path, now=T0 + timedelta(days=4, hours=1))] == ["done-already"]
    assert _runs(store_path) == 2
    assert [s["slot_at"].to_pydatetime() for s in _slots(store_path)] == [SLOT0, SLOT0 + timedelta(days=4)]


def test_a_new_job_counts_slots_missed_since_it_was_created(store_path: Path) -> None:
    _add(store_path)
    [outcome] = run_due(store_path, now=T0 + timedelta(days=2), runner=_Stub())
    assert (outcome.slot_at, outcome.missed) == (SLOT0 + timedelta(days=2), 2)


# -- failures --------------------------------------------------------------------------------------------
def test_a_failed_slot_is_retried_on_the_next_call_then_done(store_path: Path) -> None:
    _add(store_path)
    runner = _Stub(fail=1)
    assert [(o.action, o.attempt) for o in run_due(store_path, now=T0, runner=runner)] == [("failed", 1)]
    assert _slots(store_path)[0]["error"] == "RuntimeError: provider down (call 1)"
    assert [(o.action, o.attempt) for o in run_due(store_path, now=T0, runner=runner)] == [("ran", 2)]
    assert [o.action for o in run_due(store_path, now=T0, runner=runner)] == ["done-already"]
    assert len(runner.calls) == 2 and runner.calls[1].resume_run is None  # the stub made no run to resume


def test_a_slot_failing_every_time_is_given_up_after_max_attempts(store_path: Path) -> None:
    _add(store_path, max_attempts=2)
    runner = _Stub(fail=99)
    assert [o.action for o in run_due(store_path, now=T0, runner=runner)] == ["failed"]
    assert [o.action for o in run_due(store_path, now=T0, runner=runner)] == ["abandoned"]
    assert [o.action for o in run_due(store_path, now=T0, runner=runner)] == ["gave-up-already"]
    assert len(runner.calls) == 2
    # The next slot is a fresh start.
    assert [o.action for o in run_due(store_path, now=T0 + timedelta(days=1), runner=runner)] == ["failed"]


def test_a_newer_slot_supersedes_a_failed_one(store_path: Path) -> None:
    _add(store_path)
    runner = _Stub(fail=1)
    run_due(store_path, now=T0, runner=runner)
    [outcome] = run_due(store_path, now=T0 + timedelta(days=1), runner=runner)
    assert (outcome.action, outcome.slot_at, outcome.missed) == ("ran", SLOT0 + timedelta(days=1), 0)
    assert [s["status"] for s in _slots(store_path)] == ["failed", "done"]


def test_a_run_with_errors_fails_its_slot_and_the_retry_resumes_the_same_run(store_path: Path) -> None:
    _add(store_path, model="fake:x?fatal=1", max_attempts=2)  # every call is a non-retryable fault
    first = run_due(store_path, now=T0)
    assert first[0].action == "failed" and "trial(s) failed" in (first[0].error or "")
    second = run_due(store_path, now=T0)
    assert (second[0].action, second[0].attempt, second[0].run_id) == ("abandoned", 2, first[0].run_id)
    assert _runs(store_path) == 1  # resumed, not a second run
    errors = Store(store_path).query("SELECT count(*) AS n, count(DISTINCT trial_id) AS t FROM results WHERE status = 'error'")
    assert int(errors["n"][0]) == int(errors["t"][0])  # no duplicated rows after the retry


# -- concurrency and crashes -----------------------------------------------------------------------------
def test_two_threads_at_once_run_the_slot_once(store_path: Path) -> None:
    _add(store_path)
    runner = _Stub(delay=0.5)
    results: list[list] = []
    threads = [threading.Thread(target=lambda: results.append(run_due(store_path, now=T0, runner=runner))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    actions = sorted(o.action for r in results for o in r)
    assert len(runner.calls) == 1
    assert actions == ["ran", "running-elsewhere"]


def _cli(store: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "probekit.cli.main", *args, "--store", str(store)]


@pytest.mark.slow  # several processes
def test_two_processes_at_once_run_the_slot_once(store_path: Path) -> None:
    # Each call takes seconds (18 one-trial calls of 0.2 s), so the two invocations overlap.
    _add(store_path, model="fake:x?delay=0.2&batch=1&concurrency=1", limit=3)
    command = _cli(store_path, "track", "run-due", "--now", T0.isoformat())
    procs = [subprocess.Popen(command, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    text = "\n".join(outputs)
    assert text.count("] ran run ") == 1, text
    assert "running-elsewhere" in text or "done-already" in text, text
    assert _runs(store_path) == 1
    assert len(_slots(store_path)) == 1


@pytest.mark.slow  # several processes
def test_jobs_survive_restarts_and_a_killed_run_due_is_taken_over(store_path: Path) -> None:
    # Process 1 adds the job, process 2 lists it, process 3 runs it and is killed (-9) mid-run.
    added = subprocess.run(_cli(store_path, "track", "add", "slow", "--survey", str(STARTER), "--models",
                                "fake:x?delay=0.3&batch=1&concurrency=1", "--every", "1d", "--limit", "3", "--no-repeat",
                                "--model-label", "v1"), cwd=REPO, env=ENV, capture_output=True, text=True)
    assert added.returncode == 0, added.stderr
    listed = subprocess.run(_cli(store_path, "track", "list", "--format", "json"), cwd=REPO, env=ENV, capture_output=True, text=True)
    assert [row["name"] for row in json.loads(listed.stdout)] == ["slow"]
    proc = subprocess.Popen(_cli(store_path, "track", "run-due"), cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = Store(store_path)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # wait until the run exists and has committed some answers
        slots = slot_history(store)
        if len(slots) and slots["run_id"].notna().all():
            done = int(store.query("SELECT count(*) AS n FROM results")["n"][0])
            if done >= 2:
                break
        time.sleep(0.1)
    else:
        pytest.fail("run-due never started its run")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    [slot] = slot_history(store).to_dict("records")
    assert slot["status"] == "running" and not pid_alive(int(slot["pid"]))
    assert get_job(store, "slow").model_label == "v1"  # the job is still there after the crash
    [outcome] = run_due(store_path)  # a new invocation: the holder is dead, so the slot is taken over
    assert (outcome.action, outcome.attempt, outcome.run_id) == ("ran", 2, slot["run_id"])
    assert _runs(store_path) == 1
    rows = store.query("SELECT count(*) AS n, count(DISTINCT (trial_id, sample_index)) AS k FROM results")
    assert int(rows["n"][0]) == int(rows["k"][0]) == 18  # 3 items × 6 forms, one sample each (logprob), no duplicates


def test_a_live_holder_is_respected_and_a_stale_one_is_taken_over(store_path: Path) -> None:
    _add(store_path)
    store = Store(store_path)
    old = datetime.now(UTC) - timedelta(hours=1)
    with store.transaction() as con:
        con.execute("INSERT INTO track_slots VALUES "
                    "('mc', ?, 'scheduled', 'running', 1, 'other', 'elsewhere', 1, ?, ?, NULL, NULL, 0, NULL)",
                    [SLOT0, datetime.now(UTC), datetime.now(UTC)])
    assert [o.action for o in run_due(store_path, now=T0, runner=_Stub())] == ["running-elsewhere"]  # another host, fresh heartbeat
    with store.transaction() as con:
        con.execute("UPDATE track_slots SET heartbeat_at = ?", [old])
    assert [(o.action, o.attempt) for o in run_due(store_path, now=T0, runner=_Stub())] == [("ran", 2)]


def test_the_heartbeat_is_refreshed_while_the_run_goes_on(store_path: Path) -> None:
    _add(store_path)
    run_due(store_path, now=T0, runner=_Stub(delay=0.6), heartbeat_seconds=0.05)
    [slot] = _slots(store_path)
    assert slot["heartbeat_at"] > slot["claimed_at"]


# -- the noise-floor repeat ------------------------------------------------------------------------------
def test_a_new_version_is_run_twice_once(store_path: Path) -> None:
    _add(store_path, repeat=True)
    assert [(o.kind, o.action) for o in run_due(store_path, now=T0)] == [("scheduled", "ran"), ("repeat", "ran")]
    assert [(o.kind, o.action) for o in run_due(store_path, now=T0)] == [("scheduled", "done-already")]
    assert [(o.kind, o.action) for o in run_due(store_path, now=T0 + timedelta(days=1))] == [("scheduled", "ran")]
    _add(store_path, repeat=True, label="v2", replace=True)  # the user knows the provider changed the model
    assert [(o.kind, o.action) for o in run_due(store_path, now=T0 + timedelta(days=2))] == [("scheduled", "ran"), ("repeat", "ran")]
    kinds = Store(store_path).query("SELECT model_label, slot_kind, count(*) AS n FROM model_versions GROUP BY ALL ORDER BY ALL")
    assert kinds.values.tolist() == [["v1", "repeat", 1], ["v1", "scheduled", 2], ["v2", "repeat", 1], ["v2", "scheduled", 1]]
