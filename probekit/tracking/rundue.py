"""`probekit track run-due`: run every job whose slot is due, exactly once per job × slot.

How "exactly once" holds:

- **Claims are rows.** Before a slot runs, a row (job, slot_at, kind) of `track_slots` is claimed inside
  one store transaction: read the row, then insert it (status `running`) or take it over. DuckDB lets one
  process open the file for writing at a time and every store transaction opens, works and closes it, so
  two invocations (two processes, or two threads) cannot both see a slot unclaimed; the primary key is
  a second guard. The invocation that loses the race sees `running` or `done` and skips the slot.
- **Done is done.** A `done` slot is never run again, however often run-due is called.
- **Failed slots are retried** by the next call while that slot is still the due one (status `failed`,
  attempts + 1; the run of the failed attempt is resumed, so only its missing or failed trials are sent
  again), up to the job's `max_attempts` (then `abandoned`). Once a newer slot is due, that slot runs
  instead and the failed one stays in the history as failed.
- **A missed slot runs once.** run-due runs only the latest due slot of a job. Slots passed while nothing
  called run-due are not run one by one (their runs would all measure the model now, not then); the run
  records how many were skipped (`missed`).
- **Crashes free their slot.** The invocation holding a slot refreshes `heartbeat_at` while the run goes
  on. A `running` slot whose holder is dead (its pid is gone on this host) or whose heartbeat is older
  than `stale_seconds` is taken over by the next call and its run resumed.
- **Noise floor.** After a slot's run, when the version it measured (version identity and settings, see
  probekit.analysis.snapshots) has only this run among the job's runs, the job runs once more for the same
  slot (kind `repeat`): the pair gives `probekit drift` its noise floor. The repeat is a slot of its own
  (claimed, retried and counted the same way).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ulid import ULID

from probekit.hashing import extended_hash
from probekit.store.recorder import StoreRecorder
from probekit.store.store import Store
from probekit.tracking.jobs import Job, list_jobs
from probekit.tracking.schedule import utc

HEARTBEAT_SECONDS = 30.0
STALE_SECONDS = 900.0
"""A running slot whose heartbeat is older than this is taken over (its holder is presumed dead)."""

Runner = Callable[[Job, "SlotRun"], Any]
"""Runs one slot and returns a probekit.runner.RunSummary (or raises); `execute_slot` is the real one."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class SlotRun:
    """A claimed slot, as the runner gets it."""

    job: str
    slot_at: datetime
    kind: str
    """scheduled | repeat"""
    claim_id: str
    attempt: int
    resume_run: str | None
    """The run of an earlier attempt to resume, if any."""
    missed: int
    store: Path

    @property
    def seed_salt(self) -> int:
        """A number derived from job, slot and kind (the per-run seed offset of jobs with vary_seed)."""
        digest = hashlib.sha256(f"{self.job}|{self.slot_at.isoformat()}|{self.kind}".encode()).hexdigest()
        return int(digest[:8], 16) % 1_000_000

    def tracking(self, job: Job) -> dict[str, Any]:
        """What is stored under `tracking` in the run's config."""
        return {"job": self.job, "slot": self.slot_at.isoformat(), "kind": self.kind, "model_label": job.model_label}


@dataclass
class SlotOutcome:
    """What run-due did with one job's slot."""

    job: str
    slot_at: datetime | None
    kind: str
    action: str
    """ran | failed | abandoned | done-already | running-elsewhere | not-due | gave-up-already"""
    run_id: str | None = None
    attempt: int = 0
    missed: int = 0
    error: str | None = None

    def line(self) -> str:
        slot = self.slot_at.isoformat() if self.slot_at else "-"
        text = f"{self.job} [{self.kind} {slot}] {self.action}"
        if self.run_id:
            text += f" run {self.run_id}"
        if self.attempt > 1:
            text += f" (attempt {self.attempt})"
        if self.missed:
            text += f" ({self.missed} earlier slot(s) missed: only the latest runs)"
        if self.error:
            text += f": {self.error}"
        return text


@dataclass
class _Claim:
    granted: bool
    action: str
    attempt: int = 0
    run_id: str | None = None
    missed: int = 0
    error: str | None = None


@dataclass
class Invocation:
    """One run-due call: its claim id, host and pid (what a claim row records)."""

    claim_id: str = field(default_factory=lambda: str(ULID()))
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)


def claim_slot(store: Store, job: Job, slot_at: datetime, kind: str, invocation: Invocation, *,
               stale_seconds: float = STALE_SECONDS, missed: int = 0) -> _Claim:
    """Atomically claim (job, slot_at, kind) in one store transaction (see the module docstring)."""
    claim = store.claim_slot(job.name, slot_at, kind, claim_id=invocation.claim_id, host=invocation.host, pid=invocation.pid,
                             max_attempts=job.max_attempts, stale_seconds=stale_seconds, missed=missed)
    return _Claim(claim.granted, claim.action, attempt=claim.attempt, run_id=claim.run_id, missed=claim.missed)


def _update_own(store: Store, slot: SlotRun, **fields: Any) -> bool:
    """Set fields of this slot's row, only while this invocation still holds it."""
    return store.update_slot(slot.job, slot.slot_at, slot.kind, slot.claim_id, **fields)


def record_slot_run(store: Store, slot: SlotRun, run_id: str) -> None:
    """Link the run just created to the slot (a later attempt resumes it)."""
    _update_own(store, slot, run_id=run_id)


def finish_slot(store: Store, slot: SlotRun, status: str, run_id: str | None, error: str | None = None) -> bool:
    """Mark the slot done / failed / abandoned (only while this invocation holds it)."""
    return _update_own(store, slot, status=status, finished_at=_now(), run_id=run_id, error=error)


class _Heartbeat:
    """Refreshes the slot's heartbeat from a thread while the run goes on."""

    def __init__(self, store: Store, slot: SlotRun, every: float):
        self.store, self.slot, self.every = store, slot, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{slot.job}", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                _update_own(self.store, self.slot, heartbeat_at=_now())
            except Exception:  # a busy store: the next beat tries again
                continue

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *args: object) -> None:
        self._stop.set()
        self._thread.join()


class TrackingRecorder(StoreRecorder):
    """The store recorder, plus tracking: the run's config carries `tracking` (job, slot, kind, label),
    every model row's details carry `model_label`, and the run id reaches the slot row as soon as the run
    exists. Its config hash differs from an untracked run's, so `probekit run` never resumes a tracked run."""

    def __init__(self, store: Store, slot: SlotRun, job: Job):
        super().__init__(store)
        self.slot, self.job = slot, job
        self.run_id: str | None = None

    def _tracked(self, config: dict[str, Any], config_hash: str) -> tuple[dict[str, Any], str]:
        tracking = self.slot.tracking(self.job)
        return {**config, "tracking": tracking}, extended_hash(config_hash, tracking)

    def _started(self, run_id: str) -> None:
        self.run_id = run_id
        record_slot_run(self.store, self.slot, run_id)

    def begin_run(self, run_id: str, config: dict[str, Any], config_hash: str, packages: dict[str, str]) -> None:
        config, config_hash = self._tracked(config, config_hash)
        super().begin_run(run_id, config, config_hash, packages)
        self._started(run_id)

    def claim_run(self, run_id: str, config: dict[str, Any], config_hash: str, packages: dict[str, str], *,
                  force_new: bool = False) -> Any:
        config, config_hash = self._tracked(config, config_hash)
        claim = super().claim_run(run_id, config, config_hash, packages, force_new=force_new)
        self._started(claim.run_id)
        return claim

    def resume_run(self, run_id: str) -> dict[str, Any]:
        self.run_id = run_id
        return super().resume_run(run_id)

    def record_model(self, run_id: str, model: str, info: dict[str, Any]) -> None:
        if self.job.model_label:
            info = {**info, "model_label": self.job.model_label}
        super().record_model(run_id, model, info)


def _options(job: Job, slot: SlotRun, resume: str | None) -> Any:
    """The runner's options of one slot's run, built by the one settings builder (probekit.settings) from the
    job's stored settings: the same checks and the same API options (rpm, tpm, timeout too) as `probekit run`."""
    from probekit.settings import run_settings

    settings = job.options
    seed = settings.seed + (slot.seed_salt if settings.vary_seed else 0)
    request = settings.request(job.models, seed=seed).model_copy(update={"resume": resume, "new_run": resume is None})
    return run_settings(request, store=slot.store).run_options()


async def execute_slot_async(job: Job, slot: SlotRun) -> Any:
    """Run a claimed slot through probekit.pipeline (a retry resumes the earlier attempt's run)."""
    from probekit.pipeline import run_async

    recorder = TrackingRecorder(Store(slot.store), slot, job)
    if slot.resume_run:
        try:
            return await run_async(list(job.surveys), _options(job, slot, slot.resume_run), recorder)
        except (KeyError, ValueError):  # the earlier run is gone or the survey files changed: start afresh
            pass
    return await run_async(list(job.surveys), _options(job, slot, None), recorder)


def execute_slot(job: Job, slot: SlotRun) -> Any:
    return asyncio.run(execute_slot_async(job, slot))


def _run_claimed(store: Store, job: Job, slot: SlotRun, runner: Runner, heartbeat_seconds: float) -> SlotOutcome:
    outcome = SlotOutcome(job=job.name, slot_at=slot.slot_at, kind=slot.kind, action="ran", attempt=slot.attempt, missed=slot.missed)
    try:
        with _Heartbeat(store, slot, heartbeat_seconds):
            summary = runner(job, slot)
    except BaseException as error:
        failed = "abandoned" if slot.attempt >= job.max_attempts else "failed"
        message = f"{type(error).__name__}: {error}"[:2000]
        finish_slot(store, slot, failed, None, message)
        if not isinstance(error, Exception):
            raise  # KeyboardInterrupt, SystemExit: recorded as failed, then stop
        outcome.action, outcome.error = failed, message
        outcome.run_id = _slot_run_id(store, slot)
        return outcome
    run_id = getattr(summary, "run_id", None)
    errors = int(getattr(summary, "errors", 0) or 0)
    if errors:
        failed = "abandoned" if slot.attempt >= job.max_attempts else "failed"
        message = f"{errors} trial(s) failed after retries (stored as errors); the next run-due resumes run {run_id}"
        finish_slot(store, slot, failed, run_id, message)
        outcome.action, outcome.error, outcome.run_id = failed, message, run_id
        return outcome
    finish_slot(store, slot, "done", run_id)
    outcome.run_id = run_id
    return outcome


def _slot_run_id(store: Store, slot: SlotRun) -> str | None:
    return store.slot_run_id(slot.job, slot.slot_at, slot.kind)


def _missed(store: Store, job: Job, due: datetime) -> int:
    """Slots of the job before `due` that never ran: after its last scheduled slot, or since its creation."""
    schedule = job.parsed_schedule()
    last = store.last_slot_at(job.name, "scheduled")
    if last is not None:
        return schedule.slots_between(last, due)
    first = schedule.latest_slot(job.created_at)
    if first is None or first >= due:
        return 0
    return schedule.slots_between(first, due) + 1


def needs_repeat(store: Store, job: Job, run_id: str) -> bool:
    """Whether the version measured by `run_id` has no other completed run of this job with the same
    settings, for some model of the job (then a repeat gives the drift noise floor). Runs with errors do
    not count: a failed repeat is tried again."""
    from probekit.analysis.snapshots import settings_key, version_key

    frame = store.query(
        "SELECT v.*, r.config FROM model_versions v JOIN runs r USING (run_id) WHERE v.job = ? AND v.run_status = 'completed'",
        [job.name])
    if frame.empty:
        return False
    frame["settings"] = [settings_key(json.loads(c) if isinstance(c, str) else dict(c)) for c in frame["config"]]
    records = frame.to_dict("records")
    keys = [(version_key(r), r["settings"], r["model"]) for r in records]
    mine = {k for k, r in zip(keys, records) if r["run_id"] == run_id}
    return any(sum(1 for k in keys if k == key) < 2 for key in mine)


def run_job(store: Store, job: Job, *, now: datetime, invocation: Invocation, runner: Runner,
            heartbeat_seconds: float = HEARTBEAT_SECONDS, stale_seconds: float = STALE_SECONDS) -> list[SlotOutcome]:
    """The due slot of one job (and its noise-floor repeat when needed)."""
    due = job.parsed_schedule().latest_slot(now)
    if due is None:
        return [SlotOutcome(job=job.name, slot_at=None, kind="scheduled", action="not-due")]
    outcomes = []
    scheduled_run: str | None = None
    for kind in ("scheduled", "repeat"):
        if kind == "repeat":
            if not job.noise_repeat or scheduled_run is None or not needs_repeat(store, job, scheduled_run):
                break
        missed = _missed(store, job, due) if kind == "scheduled" else 0
        claim = claim_slot(store, job, due, kind, invocation, stale_seconds=stale_seconds, missed=missed)
        if not claim.granted:
            outcomes.append(SlotOutcome(job=job.name, slot_at=due, kind=kind, action=claim.action, run_id=claim.run_id,
                                        attempt=claim.attempt))
            if kind == "scheduled" and claim.action == "done-already":
                scheduled_run = claim.run_id  # a repeat that failed earlier is retried
                continue
            break
        slot = SlotRun(job=job.name, slot_at=due, kind=kind, claim_id=invocation.claim_id, attempt=claim.attempt,
                       resume_run=claim.run_id, missed=claim.missed, store=store.path)
        outcome = _run_claimed(store, job, slot, runner, heartbeat_seconds)
        outcomes.append(outcome)
        if outcome.action != "ran":
            break
        scheduled_run = outcome.run_id if kind == "scheduled" else scheduled_run
    return outcomes


def run_due(store_path: str | Path, *, now: datetime | None = None, jobs: Sequence[str] | None = None, runner: Runner | None = None,
            heartbeat_seconds: float = HEARTBEAT_SECONDS, stale_seconds: float = STALE_SECONDS,
            on_outcome: Callable[[SlotOutcome], None] | None = None) -> list[SlotOutcome]:
    """Run the due slot of every job (or of the named ones), one job after another. `now` (default: the
    clock) decides which slot is due; claims and heartbeats always use the clock. Returns what happened
    per job and slot kind; `on_outcome` is called as each is known."""
    store = Store(store_path)
    store.migrate()
    known = list_jobs(store)
    if jobs:
        missing = sorted(set(jobs) - {j.name for j in known})
        if missing:
            from probekit.tracking.jobs import JobNotFoundError

            raise JobNotFoundError(f"no tracking job {', '.join(map(repr, missing))} in {store.path}; `probekit track list` shows the jobs")
        known = [j for j in known if j.name in set(jobs)]
    moment = utc(now) if now is not None else _now()
    invocation = Invocation()
    outcomes: list[SlotOutcome] = []
    for job in known:
        for outcome in run_job(store, job, now=moment, invocation=invocation, runner=runner or execute_slot,
                               heartbeat_seconds=heartbeat_seconds, stale_seconds=stale_seconds):
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
    return outcomes
