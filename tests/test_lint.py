"""`ruff check` is clean (the rules and line length of pyproject.toml's [tool.ruff]): part of the quick loop, so a
lint failure shows up in `pytest -m "not slow"` as well as in scripts/test.sh."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PATHS = ["probekit", "tests", "benchmarks", "surveys", "scripts"]


def test_ruff_check_is_clean() -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed: pip install -e '.[test]' (scripts/setup.sh --test installs it)")
    done = subprocess.run([ruff, "check", "--no-cache", *PATHS], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
