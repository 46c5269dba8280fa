"""One run with two API models (two real loopback OpenAI-compatible servers with a fixed latency) and the
local SmolLM2: the models proceed concurrently, so the run takes far less than the three runs one after
another. Servers record when each request was served, so the overlap is checked from their records."""

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
    alone = {}
    for model, url in models.items():
        started = time.perf_counter()
        summary = run([STARTER], options({model: url}, tmp_path / f"{model.replace('/', '_')}.duckdb"))
        alone[model] = time.perf_counter() - started
        assert summary.errors == 0
    together_started = time.time()
    started = time.perf_counter()
    summary = run([STARTER], options(models, tmp_path / "together.duckdb"))
    together = time.perf_counter() - started
    print(f"\nalone: {', '.join(f'{m} {s:.1f}s' for m, s in alone.items())} (sum {sum(alone.values()):.1f}s); "
          f"together {together:.1f}s ({together / sum(alone.values()):.2f} of the sum)")
    assert summary.errors == 0 and len(summary.models) == 3
    counts = Store(tmp_path / "together.duckdb").query("SELECT model, count(*) AS n FROM results GROUP BY model ORDER BY model")
    assert counts["n"].tolist() == [summary.trials] * 3
    # Each server's requests of the joint run (the last ones it served) overlap the other's.
    windows = []
    for url in servers:
        intervals = [pair for pair in server_stats(url, intervals=True)["intervals"] if pair[0] >= together_started]
        assert len(intervals) >= summary.trials
        windows.append((min(start for start, _ in intervals), max(end for _, end in intervals)))
    (a_start, a_end), (b_start, b_end) = windows
    assert max(a_start, b_start) < min(a_end, b_end), windows
    # The API models did not wait for the local model (it loads and scores for longer than they need).
    assert max(a_end, b_end) - together_started < together
    # The others' time is hidden behind the longest model (at least half of it; all of it ideally).
    longest = max(alone.values())
    assert together < longest + 0.5 * (sum(alone.values()) - longest)


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
