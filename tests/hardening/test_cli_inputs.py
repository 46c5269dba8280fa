"""Issue 10, flags and SQL: every bad value gives one clear message and a non-zero exit, never a traceback, and
nothing is written; `probekit query` is read-only: no statement writes a file or changes the store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cli_helpers import STARTER, cli, cli_subprocess, digest, refused

from probekit.store.store import Store

# (flags added to `probekit run STARTER --store S -q`, words of the message, exit code)
RUN_FLAGS: list[tuple[list[str], str, int]] = [
    (["--models", ""], "no model key", 1),
    (["--models", "  "], "no model key", 1),
    (["--models", "fake:a", "--limit", "0"], "--limit", 2),
    (["--models", "fake:a", "--limit", "-1"], "--limit", 2),
    (["--models", "fake:a", "--samples", "0"], "--samples", 2),
    (["--models", "fake:a", "--samples", "-3"], "--samples", 2),
    (["--models", "fake:a", "--temperature", "-1"], "--temperature", 2),
    (["--models", "fake:a", "--batch-size", "0"], "--batch-size", 2),
    (["--models", "fake:a", "--concurrency", "0"], "--concurrency", 2),
    (["--models", "fake:a", "--mode", "bogus"], "unknown scoring mode", 1),
    (["--models", "fake:a", "--orders", "bogus"], "permutation policy", 1),
    (["--models", "fake:a", "--orders", "random:0"], "random:K", 1),
    (["--models", "fake:a", "--reasoning", "bogus"], "unknown reasoning mode", 1),
    (["--models", "fake:a", "--resume", "NOPE"], "no run 'NOPE'", 1),
    (["--models", "fake:a", "--prior-from", "NOPE"], "no position prior", 1),
    (["--models", "smollm3"], "did you mean 'smollm2'", 1),
    (["--models", "hf:/nonexistent/dir"], "directory /nonexistent/dir not found", 1),
    (["--models", "hf:./no/such/dir"], "not found", 1),
    (["--models", "hf:/no/such/model.gguf"], "GGUF file", 1),
    (["--models", "hf:no-such-org/no-such-model"], "local Hugging Face cache", 1),
]


@pytest.mark.parametrize("flags,words,code", RUN_FLAGS, ids=[" ".join(f[0]) or "empty" for f in RUN_FLAGS])
def test_bad_run_flags_are_refused_before_anything_is_stored(tmp_path: Path, small_store: Path, flags: list[str],
                                                             words: str, code: int) -> None:
    store = tmp_path / "s.duckdb"
    shutil.copy(small_store, store)
    before = digest(store)
    refused(cli("run", str(STARTER), *flags, "--store", str(store), "-q"), words, code=code)
    assert digest(store) == before


def test_hf_directory_that_is_not_a_model_is_named(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    refused(cli("run", str(STARTER), "--models", f"hf:{tmp_path}", "--store", str(tmp_path / "s.duckdb")),
            "not a model directory", code=1)
    refused(cli("run", str(STARTER), "--models", f"hf:{tmp_path / 'notes.txt'}", "--store", str(tmp_path / "s.duckdb")),
            "is a file", code=1)
    assert not (tmp_path / "s.duckdb").exists()


def test_the_same_survey_twice_is_asked_once(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    result = cli("run", str(STARTER), str(STARTER), "--models", "fake:a", "--limit", "2", "--store", str(store), "-q")
    assert result.returncode == 0, result.stderr
    once = tmp_path / "once.duckdb"
    assert cli("run", str(STARTER), "--models", "fake:a", "--limit", "2", "--store", str(once), "-q").returncode == 0
    twice_config = Store(store).query("SELECT config_hash FROM runs")["config_hash"][0]
    once_config = Store(once).query("SELECT config_hash FROM runs")["config_hash"][0]
    assert twice_config == once_config  # the same run as naming it once
    counts = Store(store).query("SELECT count(*) AS n, count(DISTINCT trial_id) AS d FROM results")
    assert counts["n"][0] == counts["d"][0] == 12


def test_two_different_surveys_with_one_id_are_a_spec_error(tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(STARTER.read_text().replace("title:", "title: changed", 1) if "title:" in STARTER.read_text()
                     else STARTER.read_text() + "\nversion: '99'\n")
    refused(cli("run", str(STARTER), str(other), "--models", "fake:a", "--store", str(tmp_path / "s.duckdb")),
            "also the id of a different survey", code=2)
    assert not (tmp_path / "s.duckdb").exists()


ANALYZE_FLAGS: list[tuple[list[str], str, int]] = [
    (["--n-boot", "0"], "--n-boot", 2),
    (["--n-boot", "-5"], "--n-boot", 2),
    (["--tables", "nonsense"], "unknown analysis 'nonsense'", 1),
    (["--tables", "uncertanty"], "did you mean 'uncertainty'", 1),
    (["--tables", ","], "names no table", 1),
    (["--tables", "pobs"], "applies to its survey family", 1),
    (["--format", "xml"], "unknown format", 1),
    (["--limit", "0"], "--limit", 2),
    (["--run", "NOPE"], "no run 'NOPE'", 1),
    (["--survey", "NOPE"], "no survey 'NOPE'", 1),
    (["--models", "nope"], "no results of model(s) nope", 1),
    (["--out", "/dev/null"], "cannot write the tables", 1),
]


@pytest.mark.parametrize("flags,words,code", ANALYZE_FLAGS, ids=[" ".join(f[0]) for f in ANALYZE_FLAGS])
def test_bad_analyze_flags_name_the_problem(small_store: Path, flags: list[str], words: str, code: int) -> None:
    refused(cli("analyze", "--store", str(small_store), *flags), words, code=code)


def test_status_of_an_unknown_run_fails(small_store: Path, tmp_path: Path) -> None:
    refused(cli("status", "NOPE", "--store", str(small_store)), "no run 'NOPE'", code=1)
    refused(cli("status", "NOPE", "--store", str(tmp_path / "missing.duckdb")), "no store", code=1)
    run_id = Store(small_store).runs()["run_id"][0]
    ok = cli("status", run_id, "--store", str(small_store))
    assert ok.returncode == 0 and "trials per model" in ok.stdout


# (SQL, words of the message): each refused, the store unchanged, no file written in the working directory
BAD_SQL: list[tuple[str, str]] = [
    ("", "empty SQL"),
    ("  ;  ", "empty SQL"),
    ("SELECT 1; SELECT 2", "2 statements"),
    ("COPY results TO 'out.csv'", "COPY statements are not allowed"),
    ("COPY (SELECT 1) TO 'out.parquet' (FORMAT parquet)", "COPY statements are not allowed"),
    ("EXPORT DATABASE 'exported'", "EXPORT statements are not allowed"),
    ("SET log_query_path = 'queries.log'", "SET statements are not allowed"),
    ("SELECT 1; COPY results TO 'out.csv'", "2 statements"),
    ("SELECT * FROM runs; EXPORT DATABASE 'exported'", "2 statements"),
    ("ATTACH 'other.duckdb' AS o", "ATTACH statements are not allowed"),
    ("CREATE TABLE x AS SELECT 1", "CREATE statements are not allowed"),
    ("INSERT INTO runs (run_id) VALUES ('x')", "INSERT statements are not allowed"),
    ("DELETE FROM results", "DELETE statements are not allowed"),
    ("DROP TABLE results", "DROP statements are not allowed"),
    ("INSTALL httpfs", "not allowed"),
    ("SELECT * FROM read_csv('/etc/passwd')", "disabled by configuration"),
    ("SELECT * FROM read_text('/etc/hostname')", "disabled by configuration"),
    ("PRAGMA enable_profiling", "configuration has been locked"),
    ("SELEC 1", "SQL error"),
]


@pytest.mark.parametrize("sql,words", BAD_SQL, ids=[s[0] or "empty" for s in BAD_SQL])
def test_query_is_read_only(tmp_path: Path, small_store: Path, sql: str, words: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "s.duckdb"
    shutil.copy(small_store, store)
    before = digest(store)
    monkeypatch.chdir(tmp_path)
    refused(cli("query", sql, "--store", str(store)), words, code=1)
    assert digest(store) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.duckdb"]


def test_query_refusals_through_the_console_script(tmp_path: Path, small_store: Path) -> None:
    store = tmp_path / "s.duckdb"
    shutil.copy(small_store, store)
    target = tmp_path / "existing.csv"
    target.write_text("precious\n")
    for sql in (f"COPY results TO '{target}'", f"SELECT 1; COPY results TO '{target}'", f"SET log_query_path = '{target}'"):
        refused(cli_subprocess("query", sql, "--store", str(store)), "not allowed" if sql.startswith(("COPY", "SET")) else
                "statements", code=1)
    assert target.read_text() == "precious\n"  # an existing file is never overwritten


def test_reading_queries_still_work(small_store: Path) -> None:
    for sql in ("SELECT count(*) AS n FROM results", "WITH r AS (SELECT * FROM runs) SELECT run_id FROM r",
                "DESCRIBE results", "SHOW TABLES", "SUMMARIZE runs", "EXPLAIN SELECT 1", "PRAGMA show_tables",
                "FROM item_marginals LIMIT 2", "SELECT 1;"):
        result = cli("query", sql, "--store", str(small_store))
        assert result.returncode == 0, (sql, result.stderr)


@pytest.mark.parametrize("command", [["query", "SELECT * FROM trial_results"], ["analyze"], ["runs"]])
def test_tables_fit_100_columns_unless_wide(small_store: Path, command: list[str]) -> None:
    narrow = cli(*command, "--store", str(small_store))
    assert narrow.returncode == 0, narrow.stderr
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 100
    wide = cli(*command, "--store", str(small_store), "--wide")
    assert wide.returncode == 0, wide.stderr
    if command[0] != "runs":  # runs fits anyway
        assert max(len(line) for line in wide.stdout.splitlines()) > 100


def test_an_unexpected_error_is_one_line_without_a_traceback(tmp_path: Path) -> None:
    # A crash nobody turned into a message still ends as one line (exit 1); PROBEKIT_DEBUG=1 shows the traceback.
    code = ("import probekit.cli.main as m, sys\n"
            "def boom(*a, **k):\n    raise RuntimeError('boom with sk-abcdefghijklmnop1234 inside')\n"
            "m.app = boom\nsys.argv = ['probekit', 'runs']\nm.main()\n")
    import subprocess
    import sys

    from cli_helpers import ENV

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
    first = refused(result, "RuntimeError: boom", code=1)
    assert "sk-abcdefghijklmnop1234" not in result.stderr and "PROBEKIT_DEBUG" in first
    debug = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**ENV, "PROBEKIT_DEBUG": "1"},
                           timeout=60)
    assert "Traceback" in debug.stderr
