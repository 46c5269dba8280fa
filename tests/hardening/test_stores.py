"""Issue 10, stores: a path that cannot be a store (not DuckDB, truncated, empty, text, a directory, /dev/null,
a read-only place, another program's DuckDB file) gives one clear line and a non-zero exit from every command,
and the file is left byte for byte as it was, with no WAL beside it."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from cli_helpers import STARTER, cli, cli_subprocess, digest, refused

from probekit.store.store import Store, StoreFileError

pytestmark = pytest.mark.slow  # drives the CLI or other processes: the full suite, not the quick loop


def _duckdb_file(path: Path) -> Path:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t AS SELECT range AS a FROM range(50000)")
    con.close()
    return path


def _zero(tmp: Path) -> Path:
    (tmp / "zero.duckdb").write_bytes(b"")
    return tmp / "zero.duckdb"


def _text(tmp: Path) -> Path:
    (tmp / "notes.duckdb").write_text("these are my notes, not a database\n" * 20)
    return tmp / "notes.duckdb"


def _garbage(tmp: Path) -> Path:
    (tmp / "garbage.duckdb").write_bytes(bytes(range(256)) * 64)
    return tmp / "garbage.duckdb"


def _sqlite(tmp: Path) -> Path:
    con = sqlite3.connect(tmp / "other.db")
    con.execute("CREATE TABLE t (a INTEGER)")
    con.commit()
    con.close()
    return tmp / "other.db"


def _truncated_header(tmp: Path) -> Path:
    whole = _duckdb_file(tmp / "whole.duckdb").read_bytes()
    (tmp / "cut.duckdb").write_bytes(whole[:100])
    return tmp / "cut.duckdb"


def _truncated_body(tmp: Path) -> Path:
    whole = _duckdb_file(tmp / "whole.duckdb").read_bytes()
    (tmp / "half.duckdb").write_bytes(whole[: len(whole) // 2])
    return tmp / "half.duckdb"


def _corrupt(tmp: Path) -> Path:
    data = bytearray(_duckdb_file(tmp / "whole.duckdb").read_bytes())
    data[12288:12288 + 4096] = bytes(4096)  # a data block overwritten: its checksum no longer matches
    (tmp / "corrupt.duckdb").write_bytes(bytes(data))
    return tmp / "corrupt.duckdb"


def _directory(tmp: Path) -> Path:
    (tmp / "adir.duckdb").mkdir()
    return tmp / "adir.duckdb"


def _dev_null(tmp: Path) -> Path:
    return Path("/dev/null")


def _under_a_file(tmp: Path) -> Path:
    (tmp / "plain.txt").write_text("x")
    return tmp / "plain.txt" / "store.duckdb"


def _read_only_dir(tmp: Path) -> Path:
    if os.geteuid() == 0:  # root writes anywhere chmod allows nothing; /proc/sys refuses even root
        return Path("/proc/sys/probekit-test.duckdb")
    locked = tmp / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    return locked / "store.duckdb"


def _foreign_duckdb(tmp: Path) -> Path:
    return _duckdb_file(tmp / "theirs.duckdb")


BAD_STORES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "zero-byte file": (_zero, "empty file"),
    "text file": (_text, "text file"),
    "binary garbage": (_garbage, "not a DuckDB store"),
    "SQLite database": (_sqlite, "SQLite"),
    "DuckDB cut inside its header": (_truncated_header, "truncated"),
    "DuckDB cut in half": (_truncated_body, "cannot open"),
    "DuckDB with a corrupt block": (_corrupt, "corrupt"),
    "a directory": (_directory, "is a directory"),
    "/dev/null": (_dev_null, "not a regular file"),
}
WRITE_ONLY_BAD: dict[str, tuple[Callable[[Path], Path], str]] = {
    "parent is a file": (_under_a_file, "not a directory"),
    "read-only directory": (_read_only_dir, "not writable"),
    "another program's DuckDB file": (_foreign_duckdb, "not a probekit store"),
}


def _commands(store: Path, tmp: Path) -> dict[str, list[str]]:
    jsonl = tmp / "answers.jsonl"
    jsonl.write_text(json.dumps({"survey": "moralchoice_starter", "item": "H_001", "model": "m", "choice": 0}) + "\n")
    return {
        "query": ["query", "SELECT 1", "--store", str(store)],
        "runs": ["runs", "--store", str(store)],
        "status": ["status", "01ABC", "--store", str(store)],
        "analyze": ["analyze", "--store", str(store)],
        "export": ["export", "-o", str(tmp / "export"), "--store", str(store)],
        "run": ["run", str(STARTER), "--models", "fake:a", "--limit", "1", "--store", str(store), "-q"],
        "import": ["import", str(jsonl), "--store", str(store)],
    }


READERS = ("query", "runs", "status", "analyze", "export")
WRITERS = ("run", "import")


def _aged(store: Path) -> Path:
    """A file written an hour ago: a short file changed in the last seconds may be a store another process is
    creating, which readers give two seconds to become one."""
    if store.is_file():
        os.utime(store, (time.time() - 3600, time.time() - 3600))
    return store


@pytest.mark.parametrize("kind", sorted(BAD_STORES))
def test_every_command_refuses_a_path_that_is_no_store_and_leaves_it_untouched(tmp_path: Path, kind: str) -> None:
    make, words = BAD_STORES[kind]
    store = _aged(make(tmp_path))
    before = digest(store)
    for name, args in _commands(store, tmp_path).items():
        first = refused(cli(*args), words, code=1)
        assert str(store.name) in first or str(store) in first, (name, first)
        assert digest(store) == before, f"{name} changed {store}"
        assert not Path(f"{store}.wal").exists(), f"{name} left a WAL beside {store}"


@pytest.mark.parametrize("kind", sorted(WRITE_ONLY_BAD))
def test_writers_refuse_a_place_they_cannot_write_and_touch_nothing(tmp_path: Path, kind: str) -> None:
    make, words = WRITE_ONLY_BAD[kind]
    store = _aged(make(tmp_path))
    before = digest(store)
    for name in WRITERS:
        refused(cli(*_commands(store, tmp_path)[name]), words, code=1)
        assert digest(store) == before, f"{name} changed {store}"
        assert not Path(f"{store}.wal").exists()


def test_readers_read_another_programs_duckdb_file_and_say_it_holds_no_runs(tmp_path: Path) -> None:
    store = _foreign_duckdb(tmp_path)
    before = digest(store)
    result = cli("query", "SELECT count(*) AS n FROM t", "--store", str(store))
    assert result.returncode == 0 and "50000" in result.stdout, result.stderr
    for name in ("runs", "status", "analyze"):
        refused(cli(*_commands(store, tmp_path)[name]), "not a probekit store", code=1)
    assert digest(store) == before


@pytest.mark.parametrize("kind", ["text file", "a directory", "DuckDB with a corrupt block"])
def test_through_the_console_script(tmp_path: Path, kind: str) -> None:
    make, words = BAD_STORES[kind]
    store = _aged(make(tmp_path))
    before = digest(store)
    for name in ("query", "run"):
        refused(cli_subprocess(*_commands(store, tmp_path)[name]), words, code=1)
    assert digest(store) == before


def test_library_raises_store_file_error_before_duckdb_sees_the_file(tmp_path: Path) -> None:
    store = _aged(_text(tmp_path))
    before = digest(store)
    with pytest.raises(StoreFileError, match="text file"):
        Store(store).runs()
    with pytest.raises(StoreFileError, match="text file"):
        Store(store).migrate()
    assert digest(store) == before


def test_a_good_store_still_works_after_the_checks(tmp_path: Path, small_store: Path) -> None:
    copy = tmp_path / "copy.duckdb"
    shutil.copy(small_store, copy)
    assert cli("runs", "--store", str(copy)).returncode == 0
    again = cli("run", str(STARTER), "--models", "fake:b", "--limit", "1", "--store", str(copy), "-q")
    assert again.returncode == 0, again.stderr
    assert len(Store(copy).runs()) == 2


def test_a_store_another_process_is_creating_is_waited_for(tmp_path: Path, small_store: Path) -> None:
    import threading

    store = tmp_path / "new.duckdb"
    store.write_bytes(b"")  # the moment DuckDB has created the file and not yet written its headers

    def finish() -> None:
        time.sleep(0.4)
        store.write_bytes(small_store.read_bytes())

    writer = threading.Thread(target=finish)
    writer.start()
    assert len(Store(store).runs()) == 1
    writer.join()
