"""Tracking jobs: what to run on a schedule, stored in the `track_jobs` table of the store.

A job names survey (or experiment) files, model keys, a schedule and the run settings. Jobs are rows, so
they survive restarts and `probekit query "SELECT * FROM track_jobs"` sees them; their slot history is
`track_slots` (probekit.tracking.rundue).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from probekit.errors import ProbekitError
from probekit.settings import RunFlags, RunRequest
from probekit.store.store import Store
from probekit.tracking.names import check_job_name
from probekit.tracking.schedule import Schedule, ScheduleError, parse_schedule, utc


class JobExistsError(ProbekitError, ValueError):
    """A job with this name exists (`track add --replace` updates it)."""


class JobNotFoundError(ProbekitError, KeyError):
    """No job with this name (`probekit track list` shows the jobs)."""


class JobOptions(RunFlags):
    """The run settings of a job: the `probekit run` settings of the same names (probekit.settings.RunFlags:
    limit, orders, mode, samples, temperature, reasoning, seed, models_config, api_base, api_key_env,
    concurrency, rpm, tpm, timeout), parsed and checked the same way, plus how each run's seed is chosen."""

    vary_seed: bool = True
    """A different sampling seed per run, so a repeated run measures sampling noise (the drift noise floor);
    `seed` is then the base each run's seed is derived from (with the job, the slot and the run kind)."""

    def request(self, models: list[str], seed: int | None = None) -> RunRequest:
        """The run request of one of the job's runs (`seed`: that run's seed; default the base seed)."""
        values = self.model_dump(exclude={"vary_seed"})
        return RunRequest(**{**values, "models": tuple(models), "seed": self.seed if seed is None else seed})


class Job(BaseModel):
    """One tracking job (a row of `track_jobs`)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    """Job name: letters, digits, `_`, `.`, `-`."""
    surveys: list[str]
    """Survey or experiment files (absolute paths)."""
    models: list[str]
    """Model keys as requested."""
    schedule: str
    """Interval (30m, 6h, 1d, 1w) or cron expression."""
    tz: str = "UTC"
    """Time zone a cron expression is evaluated in."""
    anchor: datetime | None = None
    """First slot of an interval schedule (UTC); None for cron."""
    options: JobOptions = Field(default_factory=JobOptions)
    """Run settings."""
    model_label: str | None = None
    """User label of the model version, recorded with every run (models.details.model_label)."""
    noise_repeat: bool = True
    """Run a second time when the version just measured has no repeated run yet (drift's noise floor)."""
    max_attempts: int = Field(default=3, ge=1)
    """Claims of one slot before run-due gives it up (status abandoned)."""
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    """When the job was added."""
    updated_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    """When it was last added or replaced."""

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return check_job_name(value)  # raises JobNameError, a ValueError pydantic reports

    @field_validator("surveys", "models")
    @classmethod
    def _not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one is needed")
        return value

    def parsed_schedule(self) -> Schedule:
        return parse_schedule(self.schedule, anchor=self.anchor, tz=self.tz, created=self.created_at)


def new_job(name: str, surveys: Sequence[str | Path], models: list[str], every: str, *, tz: str = "UTC", start: datetime | None = None,
            options: JobOptions | None = None, model_label: str | None = None, noise_repeat: bool = True, max_attempts: int = 3,
            now: datetime | None = None) -> Job:
    """A job with its schedule checked (ScheduleError) and its survey paths made absolute (a scheduler
    runs from another directory)."""
    created = utc(now) if now is not None else datetime.now(timezone.utc)
    try:
        schedule = parse_schedule(every, created=created, anchor=start, tz=tz)
        schedule.next_slot(created)  # the first slot must be a date
    except (OverflowError, OSError) as error:  # an interval past the calendar's end (e.g. 99999999999999d)
        raise ScheduleError(f"schedule {every!r} is too long to compute its slots ({error}): use an interval of at most "
                            "a few years, e.g. 1w or 52w") from None
    return Job(name=name, surveys=[str(Path(s).expanduser().resolve()) for s in surveys], models=list(dict.fromkeys(models)),
               schedule=schedule.text, tz=schedule.tz, anchor=schedule.anchor, options=options or JobOptions(),
               model_label=model_label, noise_repeat=noise_repeat, max_attempts=max_attempts, created_at=created, updated_at=created)


_COLUMNS = ["name", "surveys", "models", "schedule", "tz", "anchor", "options", "model_label", "noise_repeat", "max_attempts",
            "created_at", "updated_at"]


def _row(job: Job) -> list[Any]:
    return [job.name, json.dumps(job.surveys), json.dumps(job.models), job.schedule, job.tz, job.anchor,
            job.options.model_dump_json(), job.model_label, job.noise_repeat, job.max_attempts, job.created_at, job.updated_at]


def add_job(store: Store, job: Job, *, replace: bool = False) -> Job:
    """Store a job. With `replace`, a job of that name is updated (its slot history and creation time kept);
    without, an existing name raises JobExistsError."""
    with store.transaction() as con:
        found = con.execute("SELECT created_at FROM track_jobs WHERE name = ?", [job.name]).fetchone()
        if found is not None and not replace:
            raise JobExistsError(f"a job named {job.name!r} exists: `probekit track add {job.name} ... --replace` updates it, "
                                 f"`probekit track remove {job.name}` removes it")
        if found is not None:
            job = job.model_copy(update={"created_at": utc(found[0])})
            con.execute("DELETE FROM track_jobs WHERE name = ?", [job.name])
        con.execute(f"INSERT INTO track_jobs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})", _row(job))
    return job


def _job(record: dict[str, Any]) -> Job:
    def when(value: Any) -> datetime | None:
        if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
            return None
        return utc(pd.Timestamp(value).to_pydatetime())

    return Job(name=record["name"], surveys=json.loads(record["surveys"]), models=json.loads(record["models"]),
               schedule=record["schedule"], tz=record["tz"], anchor=when(record["anchor"]),
               options=JobOptions.model_validate_json(record["options"]),
               model_label=None if pd.isna(record["model_label"]) else record["model_label"],
               noise_repeat=bool(record["noise_repeat"]), max_attempts=int(record["max_attempts"]),
               created_at=when(record["created_at"]) or datetime.now(timezone.utc),
               updated_at=when(record["updated_at"]) or datetime.now(timezone.utc))


def list_jobs(store: Store) -> list[Job]:
    """Every job, by name."""
    store.migrate()
    frame = store.query(f"SELECT {', '.join(_COLUMNS)} FROM track_jobs ORDER BY name")
    return [_job(r) for r in frame.to_dict("records")]


def get_job(store: Store, name: str) -> Job:
    for job in list_jobs(store):
        if job.name == name:
            return job
    raise JobNotFoundError(f"no tracking job {name!r} in {store.path}; `probekit track list` shows the jobs")


def remove_job(store: Store, name: str) -> int:
    """Remove a job and its slot history (its runs stay: their config names the job). Returns the number of
    slot rows removed; JobNotFoundError when there is no such job."""
    with store.transaction() as con:
        if con.execute("SELECT 1 FROM track_jobs WHERE name = ?", [name]).fetchone() is None:
            raise JobNotFoundError(f"no tracking job {name!r} in {store.path}; `probekit track list` shows the jobs")
        slots = con.execute("SELECT count(*) FROM track_slots WHERE job = ?", [name]).fetchone()
        con.execute("DELETE FROM track_slots WHERE job = ?", [name])
        con.execute("DELETE FROM track_jobs WHERE name = ?", [name])
    return int(slots[0]) if slots else 0


def slot_history(store: Store, job: str | None = None) -> pd.DataFrame:
    """Rows of `track_slots` (newest first), optionally of one job."""
    store.migrate()
    if job is None:
        return store.query("SELECT * FROM track_slots ORDER BY slot_at DESC, job, kind")
    return store.query("SELECT * FROM track_slots WHERE job = ? ORDER BY slot_at DESC, kind", [job])


def label_run(store: Store, run_id: str, label: str | None, models: list[str] | None = None) -> list[str]:
    """Set (or, with None, clear) the user's version label of a stored run's models — for runs made
    without a tracking job, or labelled wrongly. Returns the models labelled; KeyError for an unknown run
    or model."""
    with store.transaction() as con:
        stored = [row[0] for row in con.execute("SELECT model FROM models WHERE run_id = ? ORDER BY model", [run_id]).fetchall()]
        if not stored:
            raise KeyError(f"no run {run_id!r} with models in {store.path}; `probekit runs` lists them")
        unknown = sorted(set(models or []) - set(stored))
        if unknown:
            raise KeyError(f"run {run_id} has no model {', '.join(unknown)} (it has {', '.join(stored)})")
        chosen = [m for m in stored if not models or m in models]
        for model in chosen:
            con.execute("UPDATE models SET details = json_merge_patch(coalesce(details, CAST('{}' AS JSON)), ?) "
                        "WHERE run_id = ? AND model = ?",
                        [json.dumps({"model_label": label}), run_id, model])
    return chosen
