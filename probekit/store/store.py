"""The DuckDB result store: migrations, bulk writes, resume bookkeeping and DataFrame readers.

DuckDB lets only one process open a file for writing, and then no other process may open it at all. So
the store never holds the file: every write (one small batch of results) and every read opens it, does
its work in one transaction (`Store.transaction()`, the only BEGIN/COMMIT in probekit) and closes it. Whoever
finds it locked retries (tenacity, only on DuckDB's lock error) for up to `lock_wait` seconds instead of
failing, which makes `probekit query` / `runs` work while a run is writing. Upserts are `INSERT OR REPLACE`
/ `INSERT OR IGNORE` on the tables' primary keys. The recording lifecycle over these methods is
`probekit.store.recorder.StoreRecorder`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from operator import attrgetter
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pandas as pd
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential_jitter

from probekit.defaults import DEFAULT_STORE  # re-exported here: importers and tests read it from the store
from probekit.errors import ProbekitError
from probekit.hashing import canonical_json
from probekit.processes import pid_alive
from probekit.store.migrations import MIGRATIONS
from probekit.store.rows import RESULT_COLUMNS, ResultRow

LOCK_WAIT_SECONDS = 60.0

RESULT_KEY = ["run_id", "trial_id", "model", "respondent", "sample_index"]
"""The natural key of `results` (its primary key): a row with the same key replaces the stored one."""
_LIST_COLUMNS = {"distribution", "label_logprobs", "seq_logprob_sum", "seq_logprob_mean"}
_INT_COLUMNS = ("choice", "missing_labels", "prompt_tokens", "completion_tokens", "attempts")
_FLOAT_COLUMNS = ("valid_mass", "latency_ms", "cost_usd")
_RESULT_SELECT = ", ".join(
    f"CAST({c} AS DOUBLE[])" if c in _LIST_COLUMNS else (f"CAST({c} AS JSON)" if c == "top_logprobs" else c)
    for c in RESULT_COLUMNS
)
_TRIAL_COLUMNS = ("trial_id, survey_id, survey_hash, item_id, template_id, paraphrase_id, factors, option_order, label_scheme, "
                  "labels, reasoning, messages, completion_prompt, followups, persona_id, persona_style")
"""Columns of `trials` written by add_trials (named: migrations append columns, e.g. 10's persona columns)."""
_MODEL_COLUMNS = ["backend", "resolved_name", "revision", "weights_sha256", "dtype", "device", "logprobs_supported"]
_row_values = attrgetter(*RESULT_COLUMNS)
_TOP_LOGPROBS = RESULT_COLUMNS.index("top_logprobs")
_CREATED_AT = RESULT_COLUMNS.index("created_at")


def _now() -> datetime:
    return datetime.now(timezone.utc)


STALE_HEARTBEAT_SECONDS = 120.0
"""A running run whose owner (on another host) has not shown life for this long is taken over."""


@dataclass(frozen=True)
class SlotClaim:
    """What `Store.claim_slot` decided for a tracking slot (job × scheduled time × kind)."""

    granted: bool
    action: str
    """claimed | done-already | gave-up-already | running-elsewhere | abandoned"""
    attempt: int = 0
    run_id: str | None = None
    missed: int = 0


_SLOT_KEY = "job = ? AND slot_at = ? AND kind = ?"


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _slot_holder_alive(host: str | None, pid: int | None, heartbeat: datetime, own_host: str, stale_seconds: float) -> bool:
    """Whether the holder of a running slot may still be at work: its heartbeat is recent and, on this host,
    its process exists."""
    if (_now() - _aware(heartbeat)).total_seconds() > stale_seconds:
        return False
    if host == own_host and pid is not None:
        return pid_alive(int(pid))
    return True


@dataclass(frozen=True)
class RunClaim:
    """What `Store.claim_run` decided."""

    action: Literal["new", "resume", "wait", "done"]
    run_id: str
    owner: str | None = None
    ended_at: datetime | None = None


def _insert_run(con: duckdb.DuckDBPyConnection, run_id: str, config: dict[str, Any], config_hash: str, version: str,
                packages: dict[str, str]) -> None:
    now = _now()
    con.execute(
        "INSERT INTO runs (run_id, started_at, ended_at, status, config_hash, config, probekit_version, packages, host, "
        "owner_pid, heartbeat_at) VALUES (?, ?, NULL, 'running', ?, ?, ?, ?, ?, ?, ?)",
        [run_id, now, config_hash, canonical_json(config), version, json.dumps(packages), os.uname().nodename,
         os.getpid(), now])


def _take_run(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    con.execute("UPDATE runs SET status = 'running', ended_at = NULL, host = ?, owner_pid = ?, heartbeat_at = ? WHERE run_id = ?",
                [os.uname().nodename, os.getpid(), _now(), run_id])


def _owner_alive(host: str | None, pid: int | None, heartbeat: datetime | None, stale_seconds: float) -> bool:
    """Whether another process still runs it: on this host, its process exists (this process's own unfinished
    run counts as gone); elsewhere, its heartbeat is recent."""
    if pid is None or heartbeat is None:
        return False  # stored before runs had owners
    if host == os.uname().nodename:
        return pid != os.getpid() and pid_alive(pid)
    age = (_now() - heartbeat).total_seconds()
    return age < stale_seconds


class StoreLockedError(ProbekitError, RuntimeError):
    """Another process held the store for longer than the wait allowed."""


class StoreFileError(ProbekitError, RuntimeError):
    """The store path cannot be a store (a directory, a device, not a DuckDB file, not writable ...). Raised
    before DuckDB opens the path, so the file is left exactly as it was."""


DUCKDB_MAGIC = b"DUCK"
"""Bytes 8-11 of every DuckDB database file (after an 8-byte checksum)."""
DUCKDB_HEADER_BYTES = 3 * 4096
"""The main header and the two database headers: no DuckDB file is shorter."""
CREATING_SECONDS = 2.0
"""A file shorter than DuckDB's headers and younger than this may be a store another process is creating."""
_MOVE_HINT = "it was left untouched; pass another --store (or PROBEKIT_STORE), or move the file away"


def _describe(head: bytes) -> str:
    """What a non-DuckDB file looks like, from its first bytes."""
    if head.startswith(b"SQLite format 3"):
        return "an SQLite database"
    if head.startswith((b"PAR1", b"PK\x03\x04", b"\x1f\x8b")):
        return "a Parquet, zip or gzip file"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "binary data"
    return "a text file"


def check_store_path(path: Path, *, write: bool) -> None:
    """Raise StoreFileError (or FileNotFoundError for a missing store that is only read) when `path` cannot be
    opened as a store, looking only at the path and the file's first bytes: DuckDB is never handed a file
    that is not one (it would fail with a traceback-shaped error, and a writable open may change the file)."""
    if path.is_dir():
        raise StoreFileError(f"{path} is a directory, not a store file: pass a file path such as {path / 'probekit.duckdb'}")
    if path.exists():
        if not path.is_file():
            raise StoreFileError(f"{path} is not a regular file (a device, pipe or socket): pass a .duckdb file path")
        try:
            size = path.stat().st_size
            with path.open("rb") as handle:
                head = handle.read(64)
        except OSError as error:
            raise StoreFileError(f"cannot read {path}: {error.strerror or error}") from None
        if size == 0:
            raise StoreFileError(f"{path} is an empty file (0 bytes), not a DuckDB store; {_MOVE_HINT}")
        if head[8:12] != DUCKDB_MAGIC:
            raise StoreFileError(f"{path} is {_describe(head)}, not a DuckDB store; {_MOVE_HINT}")
        if size < DUCKDB_HEADER_BYTES:
            raise StoreFileError(f"{path} is a truncated DuckDB file ({size} bytes); {_MOVE_HINT}")
        if write and not os.access(path, os.W_OK):
            raise StoreFileError(f"{path} is read-only: reading works (probekit query, analyze), writing does not; "
                                 "pass a writable --store")
        return
    if not write:
        raise FileNotFoundError(f"no store at {path}: run a survey first or pass --store PATH")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise StoreFileError(f"cannot create {path}: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StoreFileError(f"cannot create {path}: {parent} is not writable; pass a --store in a writable directory")


_VERIFIED: set[str] = set()
_VERIFIED_GUARD = threading.Lock()


def verify_readable(path: Path) -> None:
    """Before this process first writes to an existing store: read every table whole in a read-only session,
    so a damaged file (a block overwritten, the file cut short) is found while nothing has been written.
    DuckDB checks each block's checksum as it reads it; a writable open of a damaged file can change it
    (checkpoint) and leave a WAL beside it before the damage is met. Once per file per process (the
    process's own writes keep it whole). Costs one scan of the file (about 25 ms per MB on the 2-core
    development machine)."""
    if not path.is_file():
        return
    key = str(path.resolve())
    with _VERIFIED_GUARD:
        if key in _VERIFIED:
            return
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.ConnectionException:
        return  # this process has it open for writing already: a working store
    except duckdb.Error as error:
        if _is_lock_error(error):
            return  # another process is writing it: a working store; the writable open waits for it
        raise StoreFileError(f"cannot open {path} as a DuckDB store: {_first_line(error)}; {_MOVE_HINT}") from None
    try:
        tables = [str(row[0]) for row in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' AND table_type = 'BASE TABLE'"
            ).fetchall()]
        for table in tables:
            # Every column of every row: bit_xor of hashes is cheap and reads all of each column's blocks.
            con.execute(f'SELECT bit_xor(hash(COLUMNS(*))) FROM "{table.replace(chr(34), chr(34) * 2)}"').fetchall()
    except duckdb.Error as error:
        raise StoreFileError(
            f"{path} is damaged ({_first_line(error)}): nothing was written to it and no WAL was left beside it. Restore "
            "it from a backup, or read what is still readable with `probekit query` / `probekit export` and "
            "write new runs to another --store") from None
    finally:
        con.close()
    with _VERIFIED_GUARD:
        _VERIFIED.add(key)


READING_STATEMENTS = frozenset({"SELECT", "EXPLAIN", "PRAGMA", "CALL", "MULTI"})
"""Statement types `Store.user_query` runs (MULTI: PIVOT); everything else writes or configures."""


def check_user_sql(sql: str) -> None:
    """ValueError unless `sql` is exactly one statement that reads (SELECT, WITH, DESCRIBE, SHOW, EXPLAIN,
    PRAGMA, CALL, PIVOT)."""
    if not sql.strip().strip(";").strip():
        raise ValueError("empty SQL: give a query, e.g. probekit query \"SELECT * FROM runs\"")
    statements = duckdb.extract_statements(sql)
    if len(statements) != 1:
        raise ValueError(f"{len(statements)} statements: probekit query runs one read-only statement at a time")
    kind = str(getattr(statements[0].type, "name", statements[0].type))
    if kind not in READING_STATEMENTS:
        raise ValueError(f"{kind} statements are not allowed: probekit query is read-only (SELECT, WITH, DESCRIBE, "
                         "SHOW, EXPLAIN); to write tables or files use `probekit export` or DuckDB itself on a copy")


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _is_lock_error(error: BaseException) -> bool:
    """DuckDB's "Could not set lock on file ...: Conflicting lock is held in ..." (matched on those words, not
    on "lock" anywhere: the file's path may contain it)."""
    text = str(error).lower()
    return isinstance(error, duckdb.IOException) and ("could not set lock" in text or "conflicting lock" in text)


@contextmanager
def _atomic(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN ... COMMIT on an open connection; ROLLBACK (and re-raise) when the block fails."""
    con.begin()
    try:
        yield con
    except BaseException:
        con.rollback()
        raise
    con.commit()


def as_result_row(row: ResultRow | Mapping[str, Any]) -> ResultRow:
    """A ResultRow as is; a mapping as `ResultRow(**row)`, so a misspelt column raises TypeError."""
    return row if isinstance(row, ResultRow) else ResultRow(**row)


def result_frame(rows: Sequence[ResultRow | Mapping[str, Any]]) -> pd.DataFrame:
    """The rows as a DataFrame in `results` column order, typed for a bulk insert. Of rows with the same
    natural key only the last is kept (it replaces the others, as it would replace a stored row)."""
    now = _now()
    records = []
    for row in rows:
        record = list(_row_values(as_result_row(row)))
        if record[_CREATED_AT] is None:
            record[_CREATED_AT] = now
        top = record[_TOP_LOGPROBS]
        if top is not None and not isinstance(top, str):
            record[_TOP_LOGPROBS] = json.dumps(top)
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=RESULT_COLUMNS)
    for column in _INT_COLUMNS:
        frame[column] = frame[column].astype("Int64")
    for column in _FLOAT_COLUMNS:
        frame[column] = frame[column].astype("Float64")
    duplicated = frame.duplicated(subset=RESULT_KEY, keep="last")
    if duplicated.any():
        frame = frame[~duplicated]
    return frame


_FILE_LOCKS: dict[str, threading.RLock] = {}
_FILE_LOCKS_GUARD = threading.Lock()


def _file_lock(path: Path) -> threading.RLock:
    key = str(path.resolve())
    with _FILE_LOCKS_GUARD:
        return _FILE_LOCKS.setdefault(key, threading.RLock())


class Store:
    """A DuckDB file holding runs, surveys, trials and results (see docs/schema.md).

    Writers use `transaction()`; `probekit.store.recorder.StoreRecorder` is the recording lifecycle over
    these methods that the runner, the importers and PriDe use.
    """

    def __init__(self, path: str | Path = DEFAULT_STORE, *, lock_wait: float = LOCK_WAIT_SECONDS):
        self.path = Path(path)
        self.lock_wait = lock_wait
        self._migrated = False
        self._checked = False
        self._held = threading.local()

    # -- connections -------------------------------------------------------------------------------
    def _open(self, read_only: bool, config: Mapping[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
        """duckdb.connect, retried (with jittered backoff) while another process holds the file, for at
        most `lock_wait` seconds; other errors are raised at once."""
        retrying = Retrying(
            retry=retry_if_exception(_is_lock_error),
            stop=stop_after_delay(self.lock_wait),
            wait=wait_exponential_jitter(multiplier=0.02, exp_base=1.5, max=0.25, jitter=0.05),
            reraise=True,
        )
        try:
            con = retrying(duckdb.connect, str(self.path), read_only=read_only, config=dict(config or {}))
        except duckdb.IOException as error:
            if _is_lock_error(error):
                raise StoreLockedError(
                    f"{self.path} stayed locked by another process for {self.lock_wait:.0f}s; "
                    "wait for it to finish or use another --store"
                ) from error
            raise StoreFileError(f"cannot open {self.path} as a DuckDB store: {_first_line(error)}; {_MOVE_HINT}") from None
        except duckdb.Error as error:  # a corrupt file (checksum mismatch), a newer format ...
            raise StoreFileError(f"cannot open {self.path} as a DuckDB store: {_first_line(error)}; {_MOVE_HINT}") from None
        if not read_only:
            self._checked = True  # a file once opened for writing is a store; later opens skip the header check
        return con

    def _check_path(self, write: bool) -> None:
        """`check_store_path`, giving a file that another process is creating right now (shorter than DuckDB's
        headers, changed in the last seconds) a few seconds to become a store."""
        deadline = time.monotonic() + CREATING_SECONDS
        while True:
            try:
                check_store_path(self.path, write=write)
                return
            except StoreFileError as error:
                try:
                    info = self.path.stat()
                except OSError:
                    raise error from None
                being_created = info.st_size < DUCKDB_HEADER_BYTES and time.time() - info.st_mtime < CREATING_SECONDS
                if not being_created or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the file (retrying while another process holds it), yield, close.

        Within one process, connections to one file are taken one at a time: threads of a run (the models
        proceed concurrently) would otherwise share DuckDB's cached database instance while another
        thread closes it (seen as 'pandas_scan does not exist' on register)."""
        held = getattr(self._held, "con", None)
        if held is not None:  # inside session(): the block's one connection
            yield held
            return
        if not self._checked:  # before DuckDB sees the path: a file that is no store is never touched
            self._check_path(write=not read_only)
        if not read_only:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StoreFileError(f"cannot create the directory of {self.path}: {error.strerror or error}") from None
        with _file_lock(self.path):
            if not read_only and not self._checked:
                verify_readable(self.path)
            con = self._open(read_only)
            try:
                if not read_only and not self._migrated:
                    self._migrate(con)
                try:
                    yield con
                except duckdb.CatalogException:
                    self._check_is_store(con)  # a table missing from another program's database: say so
                    raise
            finally:
                con.close()

    @contextmanager
    def session(self) -> Iterator[None]:
        """Keep one writable connection open for every call of the block made by this thread (a run's set-up
        records its surveys and trials with one open of the file instead of one per call)."""
        with self.connect() as con:
            self._held.con = con
            try:
                yield
            finally:
                self._held.con = None

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the file for writing and run the block as one transaction: all of it is stored, or
        (when the block raises) none of it."""
        with self.connect() as con, _atomic(con):
            yield con

    def _check_is_store(self, con: duckdb.DuckDBPyConnection) -> None:
        """StoreFileError for a DuckDB file with tables but no migration ledger: another program's database."""
        tables = {str(row[0]) for row in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
        if tables and "schema_migrations" not in tables:
            raise StoreFileError(f"{self.path} is a DuckDB database but not a probekit store (tables: "
                                 f"{', '.join(sorted(tables)[:5])}); it was left untouched; pass another --store")

    def check_writable(self) -> None:
        """Raise StoreFileError now when writing to this store would be refused (see `check_store_path`, and a
        DuckDB file of another program); creates nothing. Importers call it before reading their input."""
        check_store_path(self.path, write=True)
        if self.path.exists():
            with self.connect(read_only=True) as con:
                self._check_is_store(con)
            with _file_lock(self.path):
                verify_readable(self.path)  # a damaged file: said now, before the input is read

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        self._check_is_store(con)
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMPTZ)"
        )
        applied = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
        for migration in MIGRATIONS:
            if migration.version in applied:
                continue
            with _atomic(con):
                con.execute(migration.sql)
                con.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [migration.version, migration.name, _now()])
        self._migrated = True

    def migrate(self) -> None:
        """Create the file and apply pending migrations."""
        with self.connect():
            pass

    # -- runs --------------------------------------------------------------------------------------
    def create_run(self, run_id: str, config: dict[str, Any], config_hash: str, version: str, packages: dict[str, str]) -> None:
        with self.transaction() as con:
            _insert_run(con, run_id, config, config_hash, version, packages)

    def claim_run(self, run_id: str, config: dict[str, Any], config_hash: str, version: str, packages: dict[str, str], *,
                  force_new: bool = False, stale_seconds: float = STALE_HEARTBEAT_SECONDS) -> RunClaim:
        """Decide, in one transaction (DuckDB lets one process hold the file, so two processes cannot both
        claim), what a run of this configuration does: `new` (a run `run_id` is created), `resume` (the last
        run of this configuration did not finish and its owner is gone: this process takes it over),
        `wait` (its owner is alive and still running it) or `done` (it completed: nothing to send)."""
        with self.transaction() as con:
            if not force_new:
                row = con.execute(
                    "SELECT run_id, status, host, owner_pid, heartbeat_at, ended_at FROM runs WHERE config_hash = ? "
                    "ORDER BY started_at DESC LIMIT 1", [config_hash]).fetchone()
                if row is not None:
                    found, status, host, pid, heartbeat, ended = row
                    if status == "completed":
                        return RunClaim("done", found, ended_at=ended)
                    if status == "running" and _owner_alive(host, pid, heartbeat, stale_seconds):
                        return RunClaim("wait", found, owner=f"pid {pid} on {host}")
                    _take_run(con, found)
                    return RunClaim("resume", found)
            _insert_run(con, run_id, config, config_hash, version, packages)
            return RunClaim("new", run_id)

    def take_run(self, run_id: str) -> None:
        """Mark a stored run as running in this process (an explicit --resume)."""
        with self.transaction() as con:
            if con.execute("SELECT 1 FROM runs WHERE run_id = ?", [run_id]).fetchone() is None:
                raise KeyError(f"no run {run_id!r} in {self.path}; `probekit runs` lists them")
            _take_run(con, run_id)

    def heartbeat(self, run_id: str) -> None:
        with self.transaction() as con:
            con.execute("UPDATE runs SET heartbeat_at = ? WHERE run_id = ?", [_now(), run_id])

    RUN_TABLES = ("results", "run_trials", "models", "position_priors", "runs")
    """The tables whose rows belong to one run (surveys, items and trials are keyed by content and shared)."""

    def delete_run(self, run_id: str) -> None:
        """Remove a run and its rows from every run table, in one transaction."""
        with self.transaction() as con:
            for table in self.RUN_TABLES:
                con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])

    def resumable_run(self, config_hash: str) -> str | None:
        """The latest run with this configuration that did not complete cleanly."""
        if not self.path.exists():
            return None
        with self.connect() as con:
            row = con.execute(
                "SELECT run_id FROM runs WHERE config_hash = ? AND status <> 'completed' ORDER BY started_at DESC LIMIT 1",
                [config_hash],
            ).fetchone()
        return row[0] if row else None

    def run_config(self, run_id: str) -> dict[str, Any]:
        with self.connect(read_only=True) as con:
            row = con.execute("SELECT config FROM runs WHERE run_id = ?", [run_id]).fetchone()
        if row is None:
            raise KeyError(f"no run {run_id!r} in {self.path}; `probekit runs` lists them")
        return dict(json.loads(row[0]))

    def set_run_status(self, run_id: str, status: str, ended: bool = True) -> None:
        with self.transaction() as con:
            con.execute(
                "UPDATE runs SET status = ?, ended_at = ? WHERE run_id = ?", [status, _now() if ended else None, run_id]
            )

    def upsert_model(self, run_id: str, model: str, info: dict[str, Any]) -> None:
        values = [info.get(c) for c in _MODEL_COLUMNS]
        details = json.dumps({k: v for k, v in info.items() if k not in _MODEL_COLUMNS}, default=str)
        with self.transaction() as con:
            con.execute(
                f"INSERT OR REPLACE INTO models VALUES (?, ?, {', '.join('?' for _ in _MODEL_COLUMNS)}, ?)",
                [run_id, model, *values, details],
            )

    # -- surveys and trials ------------------------------------------------------------------------
    def register_survey(self, survey_hash: str, survey: Any, path: str | None, item_rows: list[dict[str, Any]]) -> None:
        """Store the spec and its items once per content hash (a stored hash is left as it is)."""
        with self.transaction() as con:
            con.execute(
                "INSERT OR IGNORE INTO surveys VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [survey_hash, survey.id, survey.version, survey.kind, survey.title, survey.source.model_dump_json(),
                 survey.model_dump_json(), path, _now()],
            )
            if item_rows:
                con.register("item_frame", pd.DataFrame(item_rows))
                con.execute(
                    "INSERT OR IGNORE INTO items SELECT survey_hash, survey_id, item_id, n_options, option_texts, option_values, "
                    "option_polarities, option_refusal, gold, keyed, position_dependent, fields, meta FROM item_frame"
                )
                con.unregister("item_frame")

    def register_personas(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Store a survey version's personas (probekit.survey.personas.persona_rows) once per survey hash × id."""
        if not rows:
            return
        with self.transaction() as con:
            con.executemany("INSERT OR IGNORE INTO personas (survey_hash, survey_id, persona_id, attributes, bio) "
                            "VALUES (?, ?, ?, ?, ?)",
                            [[r["survey_hash"], r["survey_id"], r["persona_id"], r["attributes"], r["bio"]] for r in rows])

    def add_trials(self, run_id: str, survey_hash: str, trial_rows: list[dict[str, Any]]) -> None:
        """Insert trials not yet stored (trial ids are content hashes) and link them to the run."""
        if not trial_rows:
            return
        frame = pd.DataFrame(trial_rows).drop_duplicates(subset=["trial_id"])
        frame["survey_hash"] = survey_hash
        for column in ("persona_id", "persona_style"):  # rows built before personas existed: the default context
            if column not in frame:
                frame[column] = ""
        with self.transaction() as con:
            con.register("trial_frame", frame)
            con.execute(
                f"INSERT OR IGNORE INTO trials ({_TRIAL_COLUMNS}) SELECT {_TRIAL_COLUMNS} FROM trial_frame"
            )
            con.execute("INSERT OR IGNORE INTO run_trials SELECT ?, trial_id FROM trial_frame", [run_id])
            con.unregister("trial_frame")

    # -- results -----------------------------------------------------------------------------------
    def completed_trials(self, run_id: str, model: str) -> set[str]:
        """Trials of the run that have a stored non-error answer for every sample (resume skips these)."""
        if not self.path.exists():
            return set()
        with self.connect() as con:
            rows = con.execute(
                "SELECT trial_id FROM results WHERE run_id = ? AND model = ? GROUP BY trial_id "
                "HAVING count(*) FILTER (WHERE status = 'error') = 0",
                [run_id, model],
            ).fetchall()
        return {row[0] for row in rows}

    def write_results(self, rows: Sequence[ResultRow | Mapping[str, Any]]) -> None:
        """Write one batch atomically, in bulk from a DataFrame. Rows replace stored rows with the same
        natural key (run × trial × model × sample: error retries). A mapping with a key that is not a
        column raises TypeError before anything is written."""
        if not rows:
            return
        frame = result_frame(rows)
        with self.transaction() as con:
            con.register("result_frame", frame)
            con.execute(f"INSERT OR REPLACE INTO results SELECT {_RESULT_SELECT} FROM result_frame")
            con.unregister("result_frame")

    # -- position priors (PriDe) -------------------------------------------------------------------
    def write_priors(self, run_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Write a run's position priors in one transaction, replacing those with the same key (model,
        survey, reasoning mode, number of options)."""
        if not rows:
            return
        now = _now()
        values = [[run_id, r["model"], r["survey_id"], r["reasoning"], int(r["n_options"]), [float(x) for x in r["prior"]],
                   int(r["n_items"]), r.get("source_run"), now] for r in rows]
        with self.transaction() as con:
            con.executemany("INSERT OR REPLACE INTO position_priors VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", values)

    def position_priors(self, run_id: str) -> pd.DataFrame:
        """The position priors stored with a run (empty frame when none)."""
        return self.query(
            "SELECT model, survey_id, reasoning, n_options, prior, n_items, source_run FROM position_priors WHERE run_id = ? "
            "ORDER BY model, survey_id, reasoning, n_options", [run_id])

    def run_distributions(self, run_id: str) -> pd.DataFrame:
        """One row per (model, trial) of a run with an ok answer: model, survey_id, item_id, reasoning,
        option_order (tuple: canonical option shown at each position) and dist (canonical distribution, an
        array); what PriDe estimates position priors from."""
        frame = self.query(
            "SELECT r.model, t.survey_id, t.item_id, t.reasoning, array_to_string(t.option_order, ',') AS option_order, "
            "r.distribution AS dist FROM results r JOIN trials t USING (trial_id) "
            "WHERE r.run_id = ? AND r.status = 'ok' AND r.distribution IS NOT NULL AND r.sample_index = 0", [run_id])
        frame["option_order"] = [tuple(int(x) for x in s.split(",")) for s in frame["option_order"]]
        frame["dist"] = [np.asarray(d, dtype=float) for d in frame["dist"]]
        return frame

    # -- readers -----------------------------------------------------------------------------------
    def query(self, sql: str, params: Iterable[Any] | None = None) -> pd.DataFrame:
        """Run read-only SQL and return a DataFrame."""
        with self.connect(read_only=True) as con:
            return con.execute(sql, list(params or [])).df()

    def user_query(self, sql: str) -> pd.DataFrame:
        """Run SQL a user typed (`probekit query`): one statement that reads, on a read-only connection with no
        file system access (COPY ... TO, EXPORT DATABASE, ATTACH, read_csv of other files are refused) and a
        locked configuration (SET log_query_path and the like are refused). Raises ValueError for SQL that is
        not one reading statement, duckdb.Error for what DuckDB refuses."""
        check_user_sql(sql)
        if self.path.exists() and not self._checked:
            self._check_path(write=False)
        if not self.path.exists():
            raise FileNotFoundError(f"no store at {self.path}: run a survey first or pass --store PATH")
        with _file_lock(self.path):
            con = self._open(True, {"enable_external_access": False, "lock_configuration": True})
            try:
                return con.execute(sql).df()
            finally:
                con.close()

    def runs(self) -> pd.DataFrame:
        return self.query(
            "SELECT r.run_id, r.started_at, r.ended_at, r.status, "
            "array_to_string(json_extract_string(r.config, '$.surveys[*].id'), ' ') AS surveys, "
            "coalesce(array_to_string(json_extract_string(r.config, '$.models[*]'), ' '), "
            "(SELECT string_agg(DISTINCT model, ' ') FROM models m WHERE m.run_id = r.run_id)) AS models, "
            "(SELECT count(*) FROM run_trials t WHERE t.run_id = r.run_id) AS trials, "
            "(SELECT count(*) FROM results x WHERE x.run_id = r.run_id AND x.status <> 'error') AS answered, "
            "(SELECT count(*) FROM results x WHERE x.run_id = r.run_id AND x.status = 'error') AS errors "
            "FROM runs r ORDER BY r.started_at"
        )

    def results(self, run_id: str | None = None) -> pd.DataFrame:
        """One row per trial × model × sample with the trial's form columns (the `trial_results` view)."""
        if run_id is None:
            return self.query("SELECT * FROM trial_results ORDER BY run_id, model, trial_id, sample_index")
        return self.query(
            "SELECT * FROM trial_results WHERE run_id = ? ORDER BY model, trial_id, sample_index", [run_id]
        )

    def run_progress(self, run_id: str) -> pd.DataFrame:
        """Result rows of a run so far per model × status × mode (columns model, status, mode, rows)."""
        return self.query(
            "SELECT model, status, mode, count(*) AS rows FROM results WHERE run_id = ? GROUP BY ALL ORDER BY ALL", [run_id])

    def run_trial_count(self, run_id: str) -> int:
        """Trials linked to a run (per model)."""
        frame = self.query("SELECT count(*) AS trials FROM run_trials WHERE run_id = ?", [run_id])
        return int(frame["trials"][0])

    def items(self, survey_id: str | None = None) -> pd.DataFrame:
        if survey_id is None:
            return self.query("SELECT * FROM items")
        return self.query("SELECT * FROM items WHERE survey_id = ?", [survey_id])

    # -- restoring exported runs (probekit export → probekit import) ------------------------------
    def restore_rows(self, tables: Mapping[str, Any], *, replace: bool = False) -> dict[str, tuple[int, int]]:
        """Insert rows exported from a store (`probekit.exporting`), every value as exported (run ids,
        timestamps, statuses), in one transaction: all tables or none. `tables` maps a table name to an Arrow
        table or DataFrame whose columns are (some of) the table's columns. A row whose primary key is already
        stored is left as it is, unless `replace` (then the exported values replace the stored ones). Returns
        per table (rows inserted, stored rows whose values differ from the exported ones: kept, or replaced).
        A table or column the store does not have raises ValueError before anything is written."""
        counts: dict[str, tuple[int, int]] = {}
        with self.transaction() as con:
            for table, frame in tables.items():
                stored = [str(r[0]) for r in con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' AND table_name = ? "
                    "ORDER BY ordinal_position", [table]).fetchall()]
                if not stored:
                    raise ValueError(f"{self.path} has no table {table!r} (an export from a newer probekit?)")
                columns = [str(c) for c in (frame.column_names if hasattr(frame, "column_names") else frame.columns)]
                unknown = [c for c in columns if c not in stored]
                if unknown:
                    raise ValueError(f"table {table} of {self.path} has no column {', '.join(unknown)} "
                                     "(an export from a newer probekit?)")
                key_row = con.execute(
                    "SELECT constraint_column_names FROM duckdb_constraints() WHERE table_name = ? "
                    "AND constraint_type = 'PRIMARY KEY'", [table]).fetchall()
                key = [str(c) for c in key_row[0][0]] if key_row else columns
                local = _REGISTRATION_COLUMNS.get(table, ())
                quoted = ", ".join(_quote(c) for c in columns)
                match = " AND ".join(f"s.{_quote(c)} IS NOT DISTINCT FROM f.{_quote(c)}" for c in key)
                con.register("restore_frame", frame)
                try:
                    values = [c for c in columns if c not in key and c not in local]
                    differ = 0
                    if values and key_row:
                        changed = " OR ".join(f"s.{_quote(c)} IS DISTINCT FROM f.{_quote(c)}" for c in values)
                        found = con.execute(
                            f"SELECT count(*) FROM restore_frame f JOIN {_quote(table)} s ON {match} WHERE {changed}"
                        ).fetchall()
                        differ = int(found[0][0])
                        if differ and replace:
                            keep = ", ".join(f"s.{_quote(c)}" if c in local else f"f.{_quote(c)}" for c in columns)
                            con.execute(
                                f"INSERT OR REPLACE INTO {_quote(table)} ({quoted}) SELECT {keep} FROM restore_frame f "
                                f"JOIN {_quote(table)} s ON {match} WHERE {changed}")
                    inserted = con.execute(
                        f"INSERT INTO {_quote(table)} ({quoted}) SELECT {quoted} FROM restore_frame f "
                        f"WHERE NOT EXISTS (SELECT 1 FROM {_quote(table)} s WHERE {match})").fetchall()
                finally:
                    con.unregister("restore_frame")
                counts[table] = (int(inserted[0][0]) if inserted else 0, differ)
        return counts


    # -- tracking slots (probekit.tracking.rundue: one run per job × slot) -----------------------
    def claim_slot(self, job: str, slot_at: datetime, kind: str, *, claim_id: str, host: str, pid: int, max_attempts: int,
                   stale_seconds: float, missed: int = 0) -> SlotClaim:
        """Claim the slot in one transaction (DuckDB lets one process hold the file, so two invocations cannot
        both see it unclaimed): a new slot is inserted `running`; a failed one (a retry, until `max_attempts`,
        then `abandoned`) or a running one whose holder is gone (its heartbeat older than `stale_seconds`, or its
        process dead on this host) is taken over; a done, abandoned or live running slot is left as it is."""
        now = _now()
        with self.transaction() as con:
            found = con.execute(f"SELECT status, attempts, run_id, host, pid, heartbeat_at, missed FROM track_slots WHERE {_SLOT_KEY}",
                                [job, slot_at, kind]).fetchone()
            if found is None:
                con.execute(
                    "INSERT INTO track_slots (job, slot_at, kind, status, attempts, claim_id, host, pid, claimed_at, heartbeat_at, missed) "
                    "VALUES (?, ?, ?, 'running', 1, ?, ?, ?, ?, ?, ?)", [job, slot_at, kind, claim_id, host, pid, now, now, missed])
                return SlotClaim(True, "claimed", attempt=1, missed=missed)
            status, attempts, run_id, held_host, held_pid, heartbeat, held_missed = found
            if status == "done":
                return SlotClaim(False, "done-already", attempt=attempts, run_id=run_id)
            if status == "abandoned":
                return SlotClaim(False, "gave-up-already", attempt=attempts, run_id=run_id)
            if status == "running" and _slot_holder_alive(held_host, held_pid, heartbeat, host, stale_seconds):
                return SlotClaim(False, "running-elsewhere", attempt=attempts, run_id=run_id)
            if status == "failed" and attempts >= max_attempts:
                con.execute(f"UPDATE track_slots SET status = 'abandoned' WHERE {_SLOT_KEY}", [job, slot_at, kind])
                return SlotClaim(False, "abandoned", attempt=attempts, run_id=run_id)
            # failed (a retry) or running with a dead holder (a take-over): claim it again.
            attempt = int(attempts) + 1
            con.execute(
                "UPDATE track_slots SET status = 'running', attempts = ?, claim_id = ?, host = ?, pid = ?, claimed_at = ?, "
                f"heartbeat_at = ?, finished_at = NULL WHERE {_SLOT_KEY}", [attempt, claim_id, host, pid, now, now, job, slot_at, kind])
            return SlotClaim(True, "claimed", attempt=attempt, run_id=run_id, missed=int(held_missed))

    _SLOT_FIELDS = frozenset({"run_id", "status", "finished_at", "error", "heartbeat_at"})

    def update_slot(self, job: str, slot_at: datetime, kind: str, claim_id: str, **fields: Any) -> bool:
        """Set fields of a slot (run_id, status, finished_at, error, heartbeat_at), only while the invocation
        `claim_id` still holds it; False when it does not. `run_id=None` keeps the stored run id."""
        unknown = set(fields) - self._SLOT_FIELDS
        if unknown:
            raise ValueError(f"track_slots has no settable field(s) {', '.join(sorted(unknown))}")
        sets = ", ".join("run_id = coalesce(?, run_id)" if name == "run_id" else f"{name} = ?" for name in fields)
        with self.transaction() as con:
            held = con.execute(f"SELECT claim_id FROM track_slots WHERE {_SLOT_KEY}", [job, slot_at, kind]).fetchone()
            if held is None or held[0] != claim_id:
                return False
            con.execute(f"UPDATE track_slots SET {sets} WHERE {_SLOT_KEY}", [*fields.values(), job, slot_at, kind])
        return True

    def slot_run_id(self, job: str, slot_at: datetime, kind: str) -> str | None:
        """The run made for a slot (None: no slot, or no run yet)."""
        frame = self.query(f"SELECT run_id FROM track_slots WHERE {_SLOT_KEY}", [job, slot_at, kind])
        return None if frame.empty or frame["run_id"][0] is None else str(frame["run_id"][0])

    def last_slot_at(self, job: str, kind: str = "scheduled") -> datetime | None:
        """The latest slot of a job of this kind that was ever claimed (aware, UTC), or None."""
        last = self.query("SELECT max(slot_at) AS last FROM track_slots WHERE job = ? AND kind = ?", [job, kind])["last"][0]
        return None if pd.isna(last) else _aware(pd.Timestamp(last).to_pydatetime())

    # -- judge gold verdicts (probekit.judging; docs/judges.md) ------------------------------------
    def write_judge_gold(self, survey_id: str, kind: str, settings: Mapping[str, Any],
                         rows: Sequence[Mapping[str, Any]] = ()) -> None:
        """Set the gold source of a pairwise survey, in one transaction: `kind` panel (no rows) or file (its
        verdicts: question_id, model_a, model_b, score_a, votes_a, votes_b, votes_tie). Replaces the survey's
        previous source and verdicts."""
        values = [[survey_id, str(r["question_id"]), str(r["model_a"]), str(r["model_b"]), float(r["score_a"]),
                   int(r["votes_a"]), int(r["votes_b"]), int(r["votes_tie"])] for r in rows]
        with self.transaction() as con:
            con.execute("INSERT OR REPLACE INTO judge_gold_sources VALUES (?, ?, ?, ?)",
                        [survey_id, kind, canonical_json(dict(settings)), _now()])
            con.execute("DELETE FROM judge_gold WHERE survey_id = ?", [survey_id])
            if values:
                con.executemany("INSERT INTO judge_gold VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values)

    def judge_gold(self, survey_id: str) -> tuple[str | None, dict[str, Any], pd.DataFrame]:
        """(kind, settings, verdicts) of a pairwise survey's gold source; (None, {}, empty) when none is set."""
        if not self.path.exists():
            return None, {}, pd.DataFrame()
        try:
            source = self.query("SELECT kind, settings FROM judge_gold_sources WHERE survey_id = ?", [survey_id])
        except duckdb.CatalogException:  # a store last written before migration 6 (readers do not migrate)
            return None, {}, pd.DataFrame()
        if source.empty:
            return None, {}, pd.DataFrame()
        verdicts = self.query("SELECT question_id, model_a, model_b, score_a, votes_a, votes_b, votes_tie FROM judge_gold "
                              "WHERE survey_id = ? ORDER BY ALL", [survey_id])
        settings = source["settings"][0]
        return str(source["kind"][0]), dict(json.loads(settings) if isinstance(settings, str) else settings), verdicts

_REGISTRATION_COLUMNS = {"surveys": ("path", "created_at")}
"""Columns that say where and when this store registered a row keyed by content (a survey's hash): a restore
never compares or replaces them (the same spec registered elsewhere is the same survey)."""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def open_store(path: str | Path = DEFAULT_STORE) -> Store:
    """Open (lazily) the store at `path`; the file is created on first write."""
    return Store(path)
