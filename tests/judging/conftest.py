"""Fixtures of the judging tests (helpers in selfpref_helpers.py, importable from the tests of this folder)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from selfpref_helpers import write_experiment  # noqa: E402


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    return write_experiment(tmp_path)
