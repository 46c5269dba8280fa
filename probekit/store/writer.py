"""The run's result writer: scoring hands it rows, it commits them through the recorder in small
transactions from one background task, and it waits out another process holding the store.

Scoring never waits for a commit (except for back-pressure, below), so the store's speed does not slow the
models; a killed run loses at most the rows of the last second, and resume sends those trials again.

    writer = ResultWriter(recorder, run_id, flush_seconds=1.0, flush_rows=512, notice=print)
    writer.start(ready)          # commits begin once `ready` (the recording of the run's trials) is done
    await writer.add(rows)       # from any scoring task
    await writer.close()         # the rest, waiting for the store as long as another process holds it

`patiently(call, ...)` is the same patience for the run's bookkeeping (model records, the final status).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from probekit.store.recorder import Recorder
from probekit.store.rows import ResultRow
from probekit.store.store import StoreLockedError

NOTICE_AFTER_SECONDS = 5.0
"""A commit still waiting for the file after this long is reported to the user."""
RETRY_SECONDS = 1.0
"""Pause between two tries of a commit that found the store held by another process."""
WAITING = "another process holds the store (a long query?)"


class ResultWriter:
    """Buffers result rows and hands them to the recorder from one background task, in small transactions
    (every `flush_seconds`, or sooner once `flush_rows` are waiting). Scoring tasks only append: they never
    wait for a commit, unless `4 × flush_rows` rows are waiting (back-pressure while the store is slow).

    A run never dies because another process holds the store (a long `probekit query`): when a commit finds the
    file locked (after the store's own `lock_wait` of retries) the rows stay buffered, the user is told the run
    is waiting, scoring goes on (no back-pressure while waiting), rows beyond `SPILL_ROWS` go to the recorder's
    side file (`Recorder.pending_path`: `<store>.pending-<run>.jsonl`), and everything is committed once the
    file is free. A side file left by a killed process is committed when the same run resumes."""

    HEARTBEAT_SECONDS = 30.0
    SPILL_ROWS = 20_000
    """Rows kept in memory while the store is held; more go to the side file."""
    NOTICE_AFTER_SECONDS = NOTICE_AFTER_SECONDS
    RETRY_SECONDS = RETRY_SECONDS

    def __init__(self, recorder: Recorder, run_id: str, *, flush_seconds: float = 1.0, flush_rows: int = 512,
                 notice: Callable[[str], None] | None = None):
        self.recorder = recorder
        self.run_id = run_id
        self.flush_seconds = flush_seconds
        self.flush_rows = flush_rows
        self.notice = notice
        self._last_beat = time.monotonic()
        self.buffer: list[ResultRow] = []
        self._due = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._error: Exception | None = None
        self._unready = False
        self.commits = 0
        self.waiting_since: float | None = None
        """monotonic time since which commits find the store held by another process (None: not waiting)."""
        self.waits = 0
        """How many times the run waited for the store."""
        self.spill_path: Path | None = recorder.pending_path(run_id)
        self.spilled = 0
        """Rows in the side file."""
        self._spill_lock = threading.Lock()

    def start(self, ready: Awaitable[None] | None = None) -> None:
        """Start committing, once `ready` (the recording of the run's trials) is done."""
        if self.spill_path is not None and self.spill_path.exists():
            self.spilled = sum(1 for _ in self.spill_path.open(encoding="utf-8"))  # left by a killed process
        self._task = asyncio.create_task(self._loop(ready))

    def _notice(self, message: str) -> None:
        if self.notice:
            self.notice(message)

    async def add(self, rows: list[ResultRow]) -> None:
        if self._error is not None:
            raise self._error  # the store failed: stop scoring what could not be recorded
        self.buffer.extend(rows)
        if len(self.buffer) >= self.flush_rows:
            self._due.set()
        if self.waiting_since is not None:
            if len(self.buffer) >= self.SPILL_ROWS and self.spill_path is not None:
                await asyncio.to_thread(self._spill, self.buffer)
                self.buffer = []
            return
        if len(self.buffer) >= 4 * self.flush_rows:
            self._room.clear()
            await self._room.wait()

    def _spill(self, rows: list[ResultRow]) -> None:
        """Append rows to the side file (one JSON object per line)."""
        assert self.spill_path is not None
        text = "".join(json.dumps(asdict(row), default=str) + "\n" for row in rows)
        with self._spill_lock, self.spill_path.open("a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            self.spilled += len(rows)

    def _spilled_rows(self) -> tuple[list[ResultRow], int]:
        """The side file's rows and how many of its bytes they are (rows spilled later follow them)."""
        if self.spill_path is None:
            return [], 0
        with self._spill_lock:
            data = self.spill_path.read_bytes() if self.spill_path.exists() else b""
        rows = []
        for line in data.decode("utf-8", "replace").splitlines():
            try:
                fields = json.loads(line)
            except ValueError:
                continue  # a line cut by a kill: its trial is sent again on resume
            if isinstance(fields.get("created_at"), str):
                fields["created_at"] = datetime.fromisoformat(fields["created_at"])
            rows.append(ResultRow(**fields))
        return rows, len(data)

    def _drop_spilled(self, upto: int) -> None:
        """Forget the first `upto` bytes of the side file (committed); rows spilled meanwhile stay."""
        assert self.spill_path is not None
        with self._spill_lock:
            rest = self.spill_path.read_bytes()[upto:] if self.spill_path.exists() else b""
            if rest:
                self.spill_path.write_bytes(rest)
            else:
                self.spill_path.unlink(missing_ok=True)
            self.spilled = rest.count(b"\n")

    async def _loop(self, ready: Awaitable[None] | None) -> None:
        try:
            if ready is not None:
                try:
                    await ready
                except Exception:
                    self._unready = True  # the run's trials could not be recorded: commit nothing
                    raise
            while not self._closing:
                try:
                    await asyncio.wait_for(self._due.wait(), timeout=self.flush_seconds)
                except asyncio.TimeoutError:
                    pass
                self._due.clear()
                await self._flush_once()
                if time.monotonic() - self._last_beat > self.HEARTBEAT_SECONDS and self.waiting_since is None:
                    # The run's owner shows life, so another process waits instead of taking the run over.
                    try:
                        await asyncio.to_thread(self.recorder.heartbeat, self.run_id)
                    except StoreLockedError:
                        pass  # shown next time: a reader holds the store
                    self._last_beat = time.monotonic()
        except Exception as error:
            self._error = error
            self._room.set()

    async def _flush_once(self) -> bool:
        """Commit the side file's rows and the buffer; False (all kept) when another process holds the store."""
        if not self.buffer and not self.spilled:
            return True
        rows, self.buffer = self.buffer, []
        pending, consumed = await asyncio.to_thread(self._spilled_rows) if self.spilled else ([], 0)
        commit = asyncio.ensure_future(asyncio.to_thread(self.recorder.record_results, pending + rows))
        try:
            done, _ = await asyncio.wait({commit}, timeout=self.NOTICE_AFTER_SECONDS)
            if not done and self.waiting_since is None:
                self._start_waiting()
            await commit
        except StoreLockedError:
            self.buffer[:0] = rows  # kept; committed when the store is free
            self._start_waiting()
            return False
        except BaseException:
            self.buffer[:0] = rows  # kept for the final flush (or the caller's error)
            raise
        finally:
            self._room.set()
        if consumed:
            await asyncio.to_thread(self._drop_spilled, consumed)
        if self.waiting_since is not None:
            self._notice(f"the store is free again: {len(pending) + len(rows)} result(s) committed after waiting "
                         f"{time.monotonic() - self.waiting_since:.0f}s")
            self.waiting_since = None
        self.commits += 1
        return True

    def _start_waiting(self) -> None:
        if self.waiting_since is not None:
            return
        self.waiting_since = time.monotonic()
        self.waits += 1
        self._room.set()
        where = f" (beyond {self.SPILL_ROWS:,} in {self.spill_path})" if self.spill_path is not None else ""
        self._notice(f"{WAITING}: the run goes on and keeps its results in memory{where}; they are committed as soon "
                     "as the store is free")

    async def close(self) -> None:
        """Stop the background task and commit what is left, waiting for the store as long as another process
        holds it (interrupted: what is left goes to the side file, committed when the run resumes)."""
        self._closing = True
        self._due.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._unready:
            return
        try:
            while not await self._flush_once():  # what is left (and, after a store error, one more try)
                await asyncio.sleep(self.RETRY_SECONDS)
        except BaseException:
            if self.buffer and self.spill_path is not None:
                self._spill(self.buffer)
                self.buffer = []
            raise


async def patiently(call: Callable[..., Any], *args: Any, notice: Callable[[str], None] | None = None) -> Any:
    """`call(*args)` in a thread, retried while another process holds the store (StoreLockedError), telling the
    user once: run bookkeeping (model records, the final status) must not end a run because someone reads."""
    told = False
    while True:
        attempt = asyncio.ensure_future(asyncio.to_thread(call, *args))
        try:
            done, _ = await asyncio.wait({attempt}, timeout=ResultWriter.NOTICE_AFTER_SECONDS)
            if not done and not told and notice:
                notice(f"{WAITING}: waiting for it to record the run")
                told = True
            return await attempt
        except StoreLockedError:
            if not told and notice:
                notice(f"{WAITING}: waiting for it to record the run")
                told = True
            await asyncio.sleep(ResultWriter.RETRY_SECONDS)
