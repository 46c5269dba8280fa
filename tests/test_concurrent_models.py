"""One run with two API models (two real loopback OpenAI-compatible servers with a fixed latency) and the
local SmolLM2: the models proceed concurrently. Servers record when each request was served, so the overlap
is checked from their records and the stored rows, never from how long the run took (a loaded machine
stretches every duration; timings belong in benchmarks/)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from latency_server import server_stats, start_latency_server, stop_latency_server

from probekit.pipeline import run
from probekit.runner import RunOptions
from probekit.store.store import Store

pytestmark = pytest.mark.slow
STARTER = Path(__file__).resolve().parents[1] / "surveys" / "moralchoice_starter.yaml"
LATENCY = 0.2
LIMIT = 3  # 18 trials per model


@pytest.fixture(scope="module")
def servers() -> Iterator[list[str]]:
    started = [start_latency_server(LATENCY, model=f"bench-{name}") for name in ("a", "b")]
    try:
        yield [url for _process, url in started]
    finally:
        for process, _url in started:
            stop_latency_server(process)


def options(models: dict[str, str | None], store: Path) -> RunOptions:
    backend = {model: {"api_base": url, "concurrency": 2, "api_key_env": None} for model, url in models.items() if url}
    return RunOptions(models=list(models), store=store, limit=LIMIT, new_run=True, backend_options=backend)


def test_two_api_models_and_a_local_model_overlap(servers: list[str], tmp_path: Path) -> None:
    models: dict[str, str | None] = {"openai/bench-a": servers[0], "openai/bench-b": servers[1], "smollm2": None}
    together_started = time.time()
    summary = run([STARTER], options(models, tmp_path / "together.duckdb"))
    assert summary.errors == 0 and len(summary.models) == 3
    store = Store(tmp_path / "together.duckdb")
    counts = store.query("SELECT model, count(*) AS n FROM results GROUP BY model ORDER BY model")
    assert counts["n"].tolist() == [summary.trials] * 3
    # Each server's requests of the joint run overlap the other's: the two API models ran at the same time.
    windows = []
    for url in servers:
        intervals = [pair for pair in server_stats(url, intervals=True)["intervals"] if pair[0] >= together_started]
        assert len(intervals) >= summary.trials
        windows.append((min(start for start, _ in intervals), max(end for _, end in intervals)))
    (a_start, a_end), (b_start, b_end) = windows
    assert max(a_start, b_start) < min(a_end, b_end), windows
    # The API models did not wait for the local model: their servers answered the first request before the
    # local model stored its last row (it loads, then scores, for longer than they need).
    local_last = store.query("SELECT max(epoch(created_at)) AS t FROM results WHERE model = 'smollm2'")["t"][0]
    assert min(a_start, b_start) < local_last, (windows, local_last)


def test_two_local_models_start_together(tmp_path: Path) -> None:
    """Both built-in models in one run: they load one at a time (transformers' lazy imports are not
    thread-safe) and then score concurrently; a fresh process, so nothing is imported beforehand."""
    import os
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "probekit.cli.main", "run", str(STARTER), "--models", "smollm2", "gemma3-270m",
                           "--limit", "1", "--store", str(tmp_path / "s.duckdb"), "-q"], capture_output=True, text=True,
                          env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}, timeout=600)
    assert done.returncode == 0, done.stderr
    counts = Store(tmp_path / "s.duckdb").query("SELECT model, count(*) AS n FROM results WHERE status <> 'error' GROUP BY model")
    assert sorted(counts["model"]) == ["gemma3-270m", "smollm2"] and (counts["n"] == 6).all()
