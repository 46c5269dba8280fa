"""The DuckDB store: migration ledger, atomic batch writes, resume bookkeeping, reads during writes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb

from probekit.store.migrations import MIGRATIONS
from probekit.store.store import Store


def row(trial: str, status: str = "ok", sample: int = 0, **extra: object) -> dict[str, object]:
    return {"run_id": "r1", "trial_id": trial, "model": "m", "sample_index": sample, "status": status,
            "mode": "logprob", "distribution": [0.25, 0.75] if status == "ok" else None, "choice": 1 if status == "ok" else None,
            "valid_mass": 0.5, **extra}


def test_migrations_are_applied_once_with_a_ledger(store_path: Path) -> None:
    Store(store_path).migrate()
    Store(store_path).migrate()
    con = duckdb.connect(str(store_path), read_only=True)
    ledger = con.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
    con.close()
    assert [v for v, _ in ledger] == [m.version for m in MIGRATIONS]


def test_write_replaces_rows_with_the_same_natural_key(store_path: Path) -> None:
    store = Store(store_path)
    store.write_results([row("t1", "error", error_class="rate_limit"), row("t2")])
    assert store.completed_trials("r1", "m") == {"t2"}
    store.write_results([row("t1")])
    frame = store.query("SELECT trial_id, status, distribution FROM results ORDER BY trial_id")
    assert frame["trial_id"].tolist() == ["t1", "t2"]
    assert frame["status"].tolist() == ["ok", "ok"]
    assert list(frame["distribution"][0]) == [0.25, 0.75]
    assert store.completed_trials("r1", "m") == {"t1", "t2"}


def test_a_failed_batch_writes_nothing(store_path: Path) -> None:
    store = Store(store_path)
    store.write_results([row("t1")])
    bad = row("t2")
    bad["distribution"] = "not a list"
    try:
        store.write_results([row("t3"), bad])
    except Exception:
        pass
    assert store.query("SELECT trial_id FROM results")["trial_id"].tolist() == ["t1"]


def test_reader_in_another_process_while_writer_holds_the_file(store_path: Path) -> None:
    """DuckDB allows one writer process and then no reader; readers retry until the write is done."""
    store = Store(store_path)
    store.write_results([row("t1")])
    holder = textwrap.dedent(f"""
        import duckdb, time, sys
        con = duckdb.connect({str(store_path)!r})
        print("locked", flush=True)
        time.sleep(1.5)
        con.close()
    """)
    process = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "locked"
    frame = Store(store_path, lock_wait=20).query("SELECT count(*) AS n FROM results")
    process.wait(timeout=10)
    assert int(frame["n"][0]) == 1
