"""Shared fixtures. Real components: the embedded models, real DuckDB files, real subprocesses."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
STARTER = REPO / "surveys" / "moralchoice_starter.yaml"


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """A fresh DuckDB file path (created on first write)."""
    return tmp_path / "store.duckdb"


@pytest.fixture(scope="session")
def smollm2():
    """The embedded SmolLM2-135M-Instruct, loaded once per test session (transformers, CPU)."""
    from probekit.backends.hf import HFBackend

    backend = HFBackend("smollm2")
    backend.load()
    return backend


@pytest.fixture(scope="session")
def gemma3():
    """The embedded Gemma-3-270M base model (no chat template), loaded once per test session."""
    from probekit.backends.hf import HFBackend

    backend = HFBackend("gemma3-270m")
    backend.load()
    return backend
