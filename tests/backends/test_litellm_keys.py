"""API keys are read from the environment at call time and never written to the store, the CLI's output
or error messages — even when the provider echoes a wrong key back in its 401 body."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fault_proxy import FaultProxy

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
STARTER = REPO / "surveys" / "moralchoice_starter.yaml"
KEY_ENV = "PROBEKIT_TEST_SECRET_KEY"


def run_cli(store: Path, config: Path, key: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, KEY_ENV: key, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    command = [sys.executable, "-m", "probekit.cli.main", "run", str(STARTER), "--models", "openai/smollm2",
               "--models-config", str(config), "--limit", "1", "--store", str(store)]
    return subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)


def assert_absent(key: str, store: Path, outputs: list[str], dump: Path) -> None:
    # DuckDB compresses strings on disk, so a byte search alone could miss a stored key: also export
    # every table to CSV and search that.
    con = duckdb.connect(str(store), read_only=True)
    con.execute(f"EXPORT DATABASE '{dump}' (FORMAT CSV)")
    con.close()
    files = [p for p in [store, store.with_suffix(".duckdb.wal"), *dump.iterdir()] if p.exists()]
    for path in files:
        assert key.encode() not in path.read_bytes(), f"key found in {path}"
    for text in outputs:
        assert key not in text


def test_key_never_written(llama_server: Any, tmp_path: Path) -> None:
    key = f"sk-probekit-{secrets.token_hex(12)}"
    wrong = f"sk-wrong-{secrets.token_hex(12)}"
    proxy = FaultProxy(upstream=llama_server.api_base.removesuffix("/v1"), require_key=key).start()
    try:
        config = tmp_path / "models.yaml"
        config.write_text(f"models:\n  openai/smollm2:\n    api_base: {proxy.api_base}\n    api_key_env: {KEY_ENV}\n"
                          "    concurrency: 2\n")
        good = run_cli(tmp_path / "good.duckdb", config, key)
        assert good.returncode == 0, good.stderr
        assert proxy.stats["authorized"] >= 7 and proxy.stats["unauthorized"] == 0  # probe + 6 trials, all with the key
        assert_absent(key, tmp_path / "good.duckdb", [good.stdout, good.stderr], tmp_path / "dump-good")

        # A wrong key: the server answers 401 and echoes it. Declaring logprobs skips the probe, so the
        # trials themselves fail and are stored as (non-retried) auth errors.
        config.write_text(config.read_text() + "    logprobs: true\n")
        bad = run_cli(tmp_path / "bad.duckdb", config, wrong)
    finally:
        proxy.stop()
    assert bad.returncode == 1 and "--resume" in bad.stderr
    rows = duckdb.connect(str(tmp_path / "bad.duckdb"), read_only=True).execute(
        "SELECT status, error_class, error_message, attempts FROM results").fetchall()
    assert len(rows) == 6 and {r[:2] for r in rows} == {("error", "auth")} and {r[3] for r in rows} == {1}
    assert "Incorrect API key provided: ***" in rows[0][2]
    assert_absent(wrong, tmp_path / "bad.duckdb", [bad.stdout, bad.stderr], tmp_path / "dump-bad")
