"""The run's writer (probekit.store.writer) and the lifecycle pieces that live in the store: batched commits,
commits held back until the run's trials are recorded, rows kept (in memory, then in the side file) while
the store is held, a run discarded whole, and tracking's slot claims as store methods. A real DuckDB file
throughout; "held by another process" is the store's own StoreLockedError, raised by the recorder on cue
(tests/hardening/test_contention.py holds the file from a real second process)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from probekit.store.recorder import StoreRecorder, recorded_run
from probekit.store.rows import ResultRow
from probekit.store.store import Store, StoreLockedError
from probekit.store.writer import ResultWriter, patiently
from probekit.survey.expand import expand
from probekit.survey.schema import Item, Option, Survey, Template

PACKAGES = {"probekit": "9.9.9"}


def _rows(n: int, run: str = "R1", start: int = 0) -> list[ResultRow]:
    return [ResultRow(run_id=run, trial_id=f"t{k}", model="m", status="ok", mode="logprob", choice=0, distribution=[1.0, 0.0])
            for k in range(start, start + n)]


def _stored(store: Store, run: str = "R1") -> list[str]:
    if not store.path.exists():
        return []
    return store.query("SELECT trial_id FROM results WHERE run_id = ? ORDER BY trial_id", [run])["trial_id"].tolist()


class HeldRecorder(StoreRecorder):
    """A StoreRecorder whose commits find the store held by another process while `held` is set."""

    def __init__(self, store: Store, *, side_file: bool = True):
        super().__init__(store)
        self.held = False
        self.side_file = side_file
        self.commits: list[int] = []

    def record_results(self, rows: Sequence[ResultRow]) -> None:  # type: ignore[override]
        if self.held:
            raise StoreLockedError(f"{self.store.path} stayed locked by another process")
        super().record_results(rows)
        self.commits.append(len(rows))

    def pending_path(self, run_id: str) -> Path | None:
        return super().pending_path(run_id) if self.side_file else None


def test_rows_are_committed_in_batches_and_the_rest_on_close(store_path: Path) -> None:
    recorder = HeldRecorder(Store(store_path))

    async def scenario() -> None:
        writer = ResultWriter(recorder, "R1", flush_seconds=60.0, flush_rows=4)  # only the row count triggers
        writer.start()
        await writer.add(_rows(4))
        # The batch of 4 is committed while scoring goes on: wait for the committing task (bounded, not timed: a
        # loaded machine only makes it take longer).
        for _ in range(3000):
            if _stored(recorder.store):
                break
            await asyncio.sleep(0.01)
        assert _stored(recorder.store) == [f"t{k}" for k in range(4)]
        await writer.add(_rows(2, start=4))  # below the batch size: committed on close
        await writer.close()

    asyncio.run(scenario())
    assert _stored(recorder.store) == sorted(f"t{k}" for k in range(6))
    assert recorder.commits == [4, 2]


def test_nothing_is_committed_when_the_run_could_not_record_its_trials(store_path: Path) -> None:
    recorder = HeldRecorder(Store(store_path))

    async def failing_ready() -> None:
        raise RuntimeError("the trials could not be recorded")

    async def scenario() -> None:
        writer = ResultWriter(recorder, "R1", flush_seconds=0.01, flush_rows=1)
        writer.start(failing_ready())
        await asyncio.sleep(0.05)
        with pytest.raises(RuntimeError, match="trials could not be recorded"):
            await writer.add(_rows(3))  # scoring stops: its rows could not be recorded
        await writer.close()

    asyncio.run(scenario())
    assert _stored(recorder.store) == [] and recorder.commits == []


def test_a_held_store_keeps_rows_spills_beyond_the_limit_and_commits_once_free(store_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ResultWriter, "SPILL_ROWS", 5)
    recorder = HeldRecorder(Store(store_path))
    notices: list[str] = []
    side_file = recorder.pending_path("R1")
    assert side_file == Path(f"{store_path}.pending-R1.jsonl")

    async def scenario() -> None:
        writer = ResultWriter(recorder, "R1", flush_seconds=0.02, flush_rows=2, notice=notices.append)
        writer.start()
        await writer.add(_rows(2))
        await asyncio.sleep(0.2)
        assert len(_stored(recorder.store)) == 2
        recorder.held = True
        for start in range(2, 14, 3):
            await writer.add(_rows(3, start=start))  # no back-pressure while waiting: scoring goes on
            await asyncio.sleep(0.05)
        assert writer.waiting_since is not None and writer.spilled > 0 and side_file is not None and side_file.exists()
        recorder.held = False
        await writer.close()

    asyncio.run(scenario())
    assert _stored(recorder.store) == sorted(f"t{k}" for k in range(14))  # nothing lost, nothing doubled
    said = "\n".join(notices)
    assert "another process holds the store" in said and str(side_file) in said and "free again" in said
    assert side_file is not None and not side_file.exists()


def test_without_a_side_file_rows_wait_in_memory(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ResultWriter, "SPILL_ROWS", 2)
    recorder = HeldRecorder(Store(store_path), side_file=False)

    async def scenario() -> None:
        writer = ResultWriter(recorder, "R1", flush_seconds=0.02, flush_rows=1)
        assert writer.spill_path is None
        writer.start()
        recorder.held = True
        await writer.add(_rows(6))
        await asyncio.sleep(0.1)
        assert len(writer.buffer) == 6 and writer.spilled == 0
        recorder.held = False
        await writer.close()

    asyncio.run(scenario())
    assert len(_stored(recorder.store)) == 6
    assert not list(store_path.parent.glob("*.pending-*"))


def test_patiently_waits_out_a_held_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ResultWriter, "RETRY_SECONDS", 0.01)
    calls: list[int] = []
    notices: list[str] = []

    def bookkeeping(value: int) -> int:
        calls.append(value)
        if len(calls) < 3:
            raise StoreLockedError("held")
        return value * 2

    async def scenario() -> int:
        return int(await patiently(bookkeeping, 21, notice=notices.append))

    assert asyncio.run(scenario()) == 42
    assert calls == [21, 21, 21] and len(notices) == 1 and "waiting for it to record the run" in notices[0]


def _survey() -> Survey:
    items = [Item(id=f"q{k}", fields={"question": f"Question {k}?"}, options=[Option(text=f"o{k}-{j}") for j in range(2)])
             for k in range(2)]
    return Survey(id="writer_test", kind="mcq", templates=[Template(id="t", user="{question}\n{options}\nAnswer:")], items=items)


def _record_import(recorder: StoreRecorder, run_id: str, *, fail: bool) -> None:
    survey = _survey()
    trials = expand(survey)
    with recorded_run(recorder, run_id, {"import": run_id}, f"hash-{run_id}", PACKAGES):
        recorder.record_survey(survey, "h1", None)
        recorder.record_trials(run_id, "h1", trials)
        recorder.record_model(run_id, "m", {"backend": "import"})
        recorder.record_results([r.with_(trial_id=t.trial_id) for r, t in zip(_rows(len(trials), run=run_id), trials)])
        recorder.record_priors(run_id, [{"model": "m", "survey_id": survey.id, "reasoning": "direct", "n_options": 2,
                                         "prior": [0.5, 0.5], "n_items": 1}])
        if fail:
            raise ValueError("the source file ended early")


def test_a_failed_import_is_discarded_whole_and_a_good_one_completes(store_path: Path) -> None:
    store = Store(store_path)
    recorder = StoreRecorder(store)
    _record_import(recorder, "GOOD", fail=False)
    with pytest.raises(ValueError, match="ended early"):
        _record_import(recorder, "BAD", fail=True)
    for table in Store.RUN_TABLES:
        runs = store.query(f"SELECT DISTINCT run_id FROM {table} ORDER BY 1")["run_id"].tolist()
        assert runs == ["GOOD"], (table, runs)
    assert store.query("SELECT status FROM runs")["status"].tolist() == ["completed"]
    assert store.query("SELECT count(*) AS n FROM trials")["n"][0] == len(expand(_survey()))  # content-keyed: kept


def test_slot_claims_are_store_methods(store_path: Path) -> None:
    store = Store(store_path)
    store.migrate()
    slot = ("job", datetime(2025, 6, 2, tzinfo=timezone.utc), "scheduled")
    me = {"host": os.uname().nodename, "pid": os.getpid(), "max_attempts": 2, "stale_seconds": 900.0}
    first = store.claim_slot(*slot, claim_id="C1", missed=3, **me)  # type: ignore[arg-type]
    assert (first.granted, first.action, first.attempt, first.missed) == (True, "claimed", 1, 3)
    busy = store.claim_slot(*slot, claim_id="C2", **me)  # type: ignore[arg-type]
    assert (busy.granted, busy.action) == (False, "running-elsewhere")  # its holder (this process) is alive
    assert store.update_slot(*slot, "C2", run_id="R9") is False  # only the holder may write it
    assert store.update_slot(*slot, "C1", run_id="R1") and store.slot_run_id(*slot) == "R1"
    assert store.update_slot(*slot, "C1", status="failed", finished_at=datetime.now(timezone.utc), run_id=None, error="boom")
    assert store.slot_run_id(*slot) == "R1"  # run_id=None keeps the stored run
    retry = store.claim_slot(*slot, claim_id="C3", **me)  # type: ignore[arg-type]
    assert (retry.granted, retry.attempt, retry.run_id, retry.missed) == (True, 2, "R1", 3)
    store.update_slot(*slot, "C3", status="failed")
    gave_up = store.claim_slot(*slot, claim_id="C4", **me)  # type: ignore[arg-type]
    assert (gave_up.granted, gave_up.action) == (False, "abandoned")
    assert store.claim_slot(*slot, claim_id="C5", **me).action == "gave-up-already"  # type: ignore[arg-type]
    later = (slot[0], slot[1] + timedelta(days=1), "scheduled")
    store.claim_slot(*later, claim_id="C6", **{**me, "host": "elsewhere"})  # type: ignore[arg-type]
    store.update_slot(*later, "C6", heartbeat_at=datetime.now(timezone.utc) - timedelta(hours=1))
    taken = store.claim_slot(*later, claim_id="C7", **me)  # type: ignore[arg-type]
    assert (taken.granted, taken.attempt) == (True, 2)  # a stale holder elsewhere is taken over
    assert store.last_slot_at("job") == later[1] and store.last_slot_at("other") is None
    with pytest.raises(ValueError, match="no settable field"):
        store.update_slot(*later, "C7", attempts=9)
