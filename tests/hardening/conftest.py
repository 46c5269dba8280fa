"""Fixtures of the hardening tables (issue 10); the helpers live in cli_helpers.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from cli_helpers import STARTER, cli_subprocess  # noqa: E402


@pytest.fixture(scope="session")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding one finished run of the starter survey on the fake backend."""
    store = tmp_path_factory.mktemp("store") / "small.duckdb"
    result = cli_subprocess("run", str(STARTER), "--models", "fake:a", "--limit", "2", "--store", str(store), "-q")
    assert result.returncode == 0, result.stderr
    return store
