"""The DuckDB result store: migrations, bulk writes, resume bookkeeping and DataFrame readers.

DuckDB lets only one process open a file for writing, and then no other process may open it at all. So
the store never holds the file: every write (one small batch of results) and every read opens it, does
its work in one transaction and closes it. A reader that finds it locked retries for a while instead of
failing, which makes `probekit query` / `runs` work while a run is writing.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from probekit.store.migrations import MIGRATIONS

DEFAULT_STORE = Path("outputs/probekit.duckdb")
LOCK_WAIT_SECONDS = 60.0

RESULT_COLUMNS = [
    "run_id", "trial_id", "model", "sample_index", "status", "mode", "choice", "distribution", "valid_mass",
    "missing_labels", "label_logprobs", "seq_logprob_sum", "seq_logprob_mean", "top_logprobs", "raw_text",
    "prompt_tokens", "completion_tokens", "latency_ms", "cost_usd", "resolved_model", "system_fingerprint",
    "error_class", "error_message", "attempts", "created_at",
]
_LIST_COLUMNS = {"distribution", "label_logprobs", "seq_logprob_sum", "seq_logprob_mean"}


def _now() -> datetime:
    return datetime.now(timezone.utc)


class StoreLockedError(RuntimeError):
    """Another process held the store for longer than the wait allowed."""


class Store:
    """A DuckDB file holding runs, surveys, trials and results (see docs/schema.md)."""

    def __init__(self, path: str | Path = DEFAULT_STORE, *, lock_wait: float = LOCK_WAIT_SECONDS):
        self.path = Path(path)
        self.lock_wait = lock_wait
        self._migrated = False

    # -- connections -------------------------------------------------------------------------------
    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the file (retrying while another process holds it), yield, close."""
        if read_only and not self.path.exists():
            raise FileNotFoundError(f"no store at {self.path}: run a survey first or pass --store PATH")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_wait
        delay = 0.02
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only)
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    if "lock" in str(exc).lower():
                        raise StoreLockedError(
                            f"{self.path} stayed locked by another process for {self.lock_wait:.0f}s; "
                            "wait for it to finish or use another --store"
                        ) from exc
                    raise
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 1.5, 0.25)
        try:
            if not read_only and not self._migrated:
                self._migrate(con)
            yield con
        finally:
            con.close()

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMPTZ)"
        )
        applied = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
        for migration in MIGRATIONS:
            if migration.version in applied:
                continue
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(migration.sql)
                con.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [migration.version, migration.name, _now()])
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
        self._migrated = True

    def migrate(self) -> None:
        """Create the file and apply pending migrations."""
        with self.connect():
            pass

    # -- runs --------------------------------------------------------------------------------------
    def create_run(self, run_id: str, config: dict[str, Any], config_hash: str, version: str, packages: dict[str, str]) -> None:
        with self.connect() as con:
            con.execute(
                "INSERT INTO runs VALUES (?, ?, NULL, 'running', ?, ?, ?, ?, ?)",
                [run_id, _now(), config_hash, json.dumps(config, sort_keys=True), version, json.dumps(packages), os.uname().nodename],
            )

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
        with self.connect() as con:
            row = con.execute("SELECT config FROM runs WHERE run_id = ?", [run_id]).fetchone()
        if row is None:
            raise KeyError(f"no run {run_id!r} in {self.path}; `probekit runs` lists them")
        return dict(json.loads(row[0]))

    def set_run_status(self, run_id: str, status: str, ended: bool = True) -> None:
        with self.connect() as con:
            con.execute(
                "UPDATE runs SET status = ?, ended_at = ? WHERE run_id = ?", [status, _now() if ended else None, run_id]
            )

    def upsert_model(self, run_id: str, model: str, info: dict[str, Any]) -> None:
        columns = ["backend", "resolved_name", "revision", "weights_sha256", "dtype", "device", "logprobs_supported"]
        values = [info.get(c) for c in columns]
        details = json.dumps({k: v for k, v in info.items() if k not in columns}, default=str)
        with self.connect() as con:
            con.execute(
                f"INSERT OR REPLACE INTO models VALUES (?, ?, {', '.join('?' for _ in columns)}, ?)",
                [run_id, model, *values, details],
            )

    # -- surveys and trials ------------------------------------------------------------------------
    def register_survey(self, survey_hash: str, survey: Any, path: str | None, item_rows: list[dict[str, Any]]) -> None:
        """Store the spec and its items once per content hash."""
        with self.connect() as con:
            exists = con.execute("SELECT 1 FROM surveys WHERE survey_hash = ?", [survey_hash]).fetchone()
            if exists:
                return
            con.execute("BEGIN TRANSACTION")
            con.execute(
                "INSERT INTO surveys VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [survey_hash, survey.id, survey.version, survey.kind, survey.title, survey.source.model_dump_json(),
                 survey.model_dump_json(), path, _now()],
            )
            frame = pd.DataFrame(item_rows)
            con.register("item_frame", frame)
            con.execute(
                "INSERT INTO items SELECT survey_hash, survey_id, item_id, n_options, option_texts, option_values, "
                "option_polarities, option_refusal, gold, keyed, position_dependent, fields, meta FROM item_frame"
            )
            con.unregister("item_frame")
            con.execute("COMMIT")

    def add_trials(self, run_id: str, survey_hash: str, trial_rows: list[dict[str, Any]]) -> None:
        """Insert trials not yet stored (trial ids are content hashes) and link them to the run."""
        if not trial_rows:
            return
        frame = pd.DataFrame(trial_rows)
        frame["survey_hash"] = survey_hash
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            con.register("trial_frame", frame)
            con.execute(
                "INSERT INTO trials SELECT trial_id, survey_id, survey_hash, item_id, template_id, paraphrase_id, factors, "
                "option_order, label_scheme, labels, reasoning, messages, completion_prompt, followups FROM trial_frame "
                "WHERE trial_id NOT IN (SELECT trial_id FROM trials)"
            )
            con.execute(
                "INSERT INTO run_trials SELECT DISTINCT ?, trial_id FROM trial_frame "
                "WHERE trial_id NOT IN (SELECT trial_id FROM run_trials WHERE run_id = ?)",
                [run_id, run_id],
            )
            con.unregister("trial_frame")
            con.execute("COMMIT")

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

    def write_results(self, rows: list[dict[str, Any]]) -> None:
        """Write one batch atomically. Rows replace earlier rows with the same natural key (error retries)."""
        if not rows:
            return
        records = []
        for row in rows:
            record = {column: row.get(column) for column in RESULT_COLUMNS}
            record["created_at"] = record["created_at"] or _now()
            if record["top_logprobs"] is not None and not isinstance(record["top_logprobs"], str):
                record["top_logprobs"] = json.dumps(record["top_logprobs"])
            records.append(record)
        frame = pd.DataFrame.from_records(records, columns=RESULT_COLUMNS)
        for column in ("choice", "missing_labels", "prompt_tokens", "completion_tokens", "attempts"):
            frame[column] = frame[column].astype("Int64")
        for column in ("valid_mass", "latency_ms", "cost_usd"):
            frame[column] = frame[column].astype("Float64")
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                con.register("result_frame", frame)
                con.execute(
                    "DELETE FROM results WHERE (run_id, trial_id, model, sample_index) IN "
                    "(SELECT (run_id, trial_id, model, sample_index) FROM result_frame)"
                )
                casts = ", ".join(
                    f"CAST({c} AS DOUBLE[])" if c in _LIST_COLUMNS else (f"CAST({c} AS JSON)" if c == "top_logprobs" else c)
                    for c in RESULT_COLUMNS
                )
                con.execute(f"INSERT INTO results SELECT {casts} FROM result_frame")
                con.unregister("result_frame")
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise

    # -- readers -----------------------------------------------------------------------------------
    def query(self, sql: str, params: Iterable[Any] | None = None) -> pd.DataFrame:
        """Run read-only SQL and return a DataFrame."""
        with self.connect(read_only=True) as con:
            return con.execute(sql, list(params or [])).df()

    def runs(self) -> pd.DataFrame:
        return self.query(
            "SELECT r.run_id, r.started_at, r.ended_at, r.status, "
            "(SELECT string_agg(DISTINCT model, ' ') FROM models m WHERE m.run_id = r.run_id) AS models, "
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

    def items(self, survey_id: str | None = None) -> pd.DataFrame:
        if survey_id is None:
            return self.query("SELECT * FROM items")
        return self.query("SELECT * FROM items WHERE survey_id = ?", [survey_id])


def open_store(path: str | Path = DEFAULT_STORE) -> Store:
    """Open (lazily) the store at `path`; the file is created on first write."""
    return Store(path)
