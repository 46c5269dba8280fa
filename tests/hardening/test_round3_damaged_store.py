"""Issue 23, a damaged store: `run` (and `import`) on a store with 64 KiB overwritten mid-file, or cut to half
its length, fail with one clear message before anything is written: the file keeps its bytes, and no WAL (or
pending-rows file) is left beside it. Readers still read what they can."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_helpers import REPO, STARTER, cli, digest, refused

HEADER_BYTES, BLOCK_BYTES = 3 * 4096, 262144  # DuckDB's file layout: three 4 KiB headers, then 256 KiB blocks
USED_BLOCKS: list[int] = []


@pytest.fixture(scope="module")
def whole_store(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A store of a few MB (the political compass on two fake models), as bytes; USED_BLOCKS gets the file
    offsets of the blocks that hold table data (free blocks may be overwritten harmlessly)."""
    import duckdb

    store = tmp_path_factory.mktemp("whole") / "whole.duckdb"
    done = cli("run", str(REPO / "surveys" / "pct.yaml"), "--models", "fake:a", "fake:b", "--store", str(store), "-q")
    assert done.returncode == 0, done.stderr
    con = duckdb.connect(str(store), read_only=True)
    try:
        assert con.execute("PRAGMA database_size").fetchall()[0][2] == BLOCK_BYTES
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        blocks = {r[0] for t in tables for r in con.execute(
            f"SELECT DISTINCT block_id FROM pragma_storage_info('{t}') WHERE block_id >= 0").fetchall()}
    finally:
        con.close()
    USED_BLOCKS[:] = sorted(HEADER_BYTES + b * BLOCK_BYTES for b in blocks)
    return store.read_bytes()


def _overwritten(data: bytes) -> bytes:
    """64 KiB overwritten in the data block nearest the middle of the file."""
    start = min(USED_BLOCKS, key=lambda offset: abs(offset - len(data) // 2))
    return data[:start] + b"\xab" * 65536 + data[start + 65536:]


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


DAMAGE: dict[str, Callable[[bytes], bytes]] = {"64 KiB overwritten mid-file": _overwritten, "cut to half its length": _half}


def _writers(store: Path, tmp: Path) -> dict[str, list[str]]:
    answers = tmp / "answers.jsonl"
    answers.write_text(json.dumps({"survey": "moralchoice_starter", "item": "H_001", "model": "m", "choice": 0}) + "\n")
    return {"run": ["run", str(STARTER), "--models", "fake:a", "--limit", "1", "--store", str(store), "-q"],
            "import": ["import", str(answers), "--store", str(store)]}


@pytest.mark.parametrize("writer", ["run", "import"])
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_store_is_refused_before_anything_is_written(whole_store: bytes, tmp_path: Path, damage: str, writer: str) -> None:
    assert len(whole_store) > 4 * 65536
    store = tmp_path / "damaged.duckdb"
    store.write_bytes(DAMAGE[damage](whole_store))
    before = digest(store)
    first = refused(cli(*_writers(store, tmp_path)[writer]), "damaged", code=1)
    assert str(store) in first
    assert digest(store) == before, "the store changed"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(store.name)) == [store.name], "something was left beside it"


def test_an_undamaged_store_still_takes_runs(whole_store: bytes, tmp_path: Path) -> None:
    store = tmp_path / "whole.duckdb"
    store.write_bytes(whole_store)
    done = cli(*_writers(store, tmp_path)["run"])
    assert done.returncode == 0, done.stderr
