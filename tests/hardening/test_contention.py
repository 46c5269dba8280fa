"""Issue 10, contention: a run does not die because another process holds the store (a long query). Its results
stay buffered (in memory, then in a side file next to the store), the user is told it is waiting, and everything
is committed once the file is free; a side file left by a killed run is committed when the run resumes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import ENV, STARTER, cli

from probekit.pipeline import run_async
from probekit.runner import RunOptions
from probekit.store.recorder import StoreRecorder
from probekit.store.rows import ResultRow
from probekit.store.store import Store
from probekit.store.writer import ResultWriter

pytestmark = pytest.mark.slow  # drives the CLI or other processes: the full suite, not the quick loop

HOLD = ("import duckdb, sys, time\n"
        "for attempt in range(500):\n"
        "    try:\n"
        "        con = duckdb.connect(sys.argv[1], read_only=True)\n"
        "        break\n"
        "    except duckdb.IOException:\n"
        "        time.sleep(0.01)  # the run is committing: take the file right after\n"
        "con.execute('SELECT count(*) FROM results').fetchall()\n"
        "print('held', flush=True)\n"
        "time.sleep(float(sys.argv[2]))\n")


def _hold(store: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process with the store open (as a long `probekit query` has it) for `seconds`."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(store), str(seconds)], stdout=subprocess.PIPE, text=True, env=ENV)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


async def _run_while_held(store: Path, hold_seconds: float, notices: list[str]) -> tuple[object, float]:
    options = RunOptions(models=["fake:slow?delay=0.06&concurrency=1&batch=2"], store=store, flush_seconds=0.2,
                         flush_rows=8, notice=notices.append)
    recorder = StoreRecorder(Store(store, lock_wait=0.5))  # give up on one commit quickly: the writer must not
    task = asyncio.ensure_future(run_async([STARTER], options, recorder))
    await asyncio.sleep(1.0)  # some results are committed, the run goes on
    started = time.monotonic()
    holder = await asyncio.to_thread(_hold, store, hold_seconds)
    summary = await task
    await asyncio.to_thread(holder.wait, 30)
    return summary, time.monotonic() - started


def _prepared(tmp_path: Path) -> Path:
    store = tmp_path / "s.duckdb"
    Store(store).migrate()
    return store


def test_a_run_outlives_a_long_reader(tmp_path: Path) -> None:
    store = _prepared(tmp_path)
    notices: list[str] = []
    summary, _elapsed = asyncio.run(_run_while_held(store, 2.5, notices))
    said = "\n".join(notices)
    assert "another process holds the store" in said and "free again" in said, said
    runs = Store(store).runs()
    assert runs["status"].tolist() == ["completed"]
    counts = Store(store).query("SELECT count(*) AS n, count(DISTINCT trial_id) AS d FROM results")
    assert counts["n"][0] == counts["d"][0] == 120  # every trial once: nothing lost, nothing doubled
    assert not list(tmp_path.glob("*.pending-*"))


def test_results_beyond_memory_go_to_a_side_file_and_are_committed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ResultWriter, "SPILL_ROWS", 10)
    spilled: list[int] = []
    original = ResultWriter._spill

    def spy(self: ResultWriter, rows: list[ResultRow]) -> None:
        original(self, rows)
        spilled.append(len(rows))
        assert self.spill_path is not None and self.spill_path.exists()

    monkeypatch.setattr(ResultWriter, "_spill", spy)
    store = _prepared(tmp_path)
    notices: list[str] = []
    asyncio.run(_run_while_held(store, 2.5, notices))
    assert spilled, "nothing went to the side file"
    counts = Store(store).query("SELECT count(*) AS n, count(DISTINCT trial_id) AS d FROM results")
    assert counts["n"][0] == counts["d"][0] == 120
    assert not list(tmp_path.glob("*.pending-*")), "the side file stayed after its rows were committed"


def test_a_side_file_left_by_a_killed_run_is_committed_when_it_resumes(tmp_path: Path) -> None:
    store = _prepared(tmp_path)
    recorder = StoreRecorder(Store(store))
    rows = [ResultRow(run_id="R1", trial_id=f"t{k}", model="fake:x", status="ok", mode="sample", choice=0,
                      distribution=[1.0, 0.0]) for k in range(5)]
    killed = ResultWriter(recorder, "R1")
    killed._spill(rows)  # what a killed process left behind
    assert killed.spill_path is not None and killed.spill_path.exists()

    async def resume() -> None:
        writer = ResultWriter(recorder, "R1", flush_seconds=0.05)
        writer.start()
        await writer.close()

    asyncio.run(resume())
    stored = Store(store).query("SELECT trial_id FROM results WHERE run_id = 'R1' ORDER BY 1")
    assert stored["trial_id"].tolist() == [f"t{k}" for k in range(5)]
    assert not killed.spill_path.exists()


def test_the_cli_run_waits_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ResultWriter, "NOTICE_AFTER_SECONDS", 0.5)  # told after 5 s by default
    store = _prepared(tmp_path)
    holder = _hold(store, 2.0)
    try:
        result = cli("run", str(STARTER), "--models", "fake:slow?delay=0.01&concurrency=2", "--limit", "3", "--store",
                     str(store), "-q")
    finally:
        holder.wait(30)
    assert result.returncode == 0, result.stderr
    assert "another process holds the store" in result.stderr and "Traceback" not in result.stderr
    assert Store(store).runs()["status"].tolist() == ["completed"]
