"""The CLI in real subprocesses: validate, expand, run on the embedded model, query, runs, kill -9 + resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from probekit.store.store import Store

REPO = Path(__file__).resolve().parents[2]
STARTER = REPO / "surveys" / "moralchoice_starter.yaml"
ENV = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "TOKENIZERS_PARALLELISM": "false"}


def probekit(*args: str, check: bool = False, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "probekit.cli.main", *args], capture_output=True, text=True,
                            env=ENV, cwd=REPO, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"probekit {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def test_help_lists_the_commands() -> None:
    out = probekit("--help", check=True).stdout
    for command in ("run", "expand", "validate", "query", "runs", "status"):
        assert command in out


def test_validate_ok_and_bad_specs_exit_2(tmp_path: Path) -> None:
    assert "ok (choice, 20 items, 3 templates)" in probekit("validate", str(STARTER), check=True).stdout
    cases = {
        "syntax": ("kind: choice\n", "kind: [choice\n", "YAML syntax error"),
        "unknown field": ("kind: choice\n", "kind: choice\ncolour: red\n", "unknown field 'colour'"),
        "duplicate id": ("- id: C_003\n", "- id: C_001\n", "duplicate item id 'C_001'"),
        "placeholder": ("{context}", "{contexts}", "uses {contexts}"),
        "label scheme": ("labels: letters", "labels: greek", "invalid value 'greek'"),
    }
    text = STARTER.read_text()
    for name, (old, new, message) in cases.items():
        assert old in text, name
        bad = tmp_path / f"{name.replace(' ', '_')}.yaml"
        bad.write_text(text.replace(old, new, 1))
        result = probekit("validate", str(bad))
        assert result.returncode == 2, (name, result.stderr)
        first = result.stderr.splitlines()[0]
        assert first.startswith(f"{bad}:") and message in result.stderr, (name, result.stderr)
        assert " — " in first, "the message says how to fix it"
    few = tmp_path / "few.yaml"
    few.write_text(text.replace("  - id: action2\n", "  - id: action2\n    REMOVE: 1\n", 1).split("    REMOVE")[0] + "\n")
    assert probekit("validate", str(few)).returncode == 2


def test_expand_counts_and_shows_prompts() -> None:
    out = probekit("expand", str(STARTER), "--show", "2", "--orders", "cyclic", check=True).stdout
    assert "trials: 120" in out and "orders: 2" in out
    assert out.count("--- trial ") == 2 and "[user]" in out


@pytest.mark.slow
def test_run_query_runs_on_the_embedded_model(tmp_path: Path) -> None:
    store = tmp_path / "cli.duckdb"
    result = probekit("run", str(STARTER), "--limit", "1", "--store", str(store), check=True)
    assert "smollm2: 6 ok" in result.stdout, result.stdout
    rows = json.loads(probekit("query", "SELECT item_id, template_id, distribution, valid_mass FROM trial_results",
                               "--store", str(store), "--format", "json", check=True).stdout)
    assert len(rows) == 6 and {r["template_id"] for r in rows} == {"ab", "compare", "repeat"}
    assert all(abs(sum(r["distribution"]) - 1) < 1e-9 and r["valid_mass"] > 0 for r in rows)
    csv = probekit("runs", "--store", str(store), "--format", "csv", check=True).stdout
    assert "completed" in csv and "smollm2" in csv
    refused = probekit("query", "DELETE FROM results", "--store", str(store))
    assert refused.returncode == 1 and "read-only" in refused.stderr.lower()
    assert len(Store(store).results()) == 6, "a refused write changes nothing"


@pytest.mark.slow
def test_kill_9_mid_run_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    args = [str(STARTER), "--limit", "4", "--batch-size", "2", "--quiet"]
    reference = tmp_path / "reference.duckdb"
    probekit("run", *args, "--store", str(reference), check=True)

    killed = tmp_path / "killed.duckdb"
    process = subprocess.Popen([sys.executable, "-m", "probekit.cli.main", "run", *args, "--store", str(killed)],
                               env=ENV, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    stored = 0
    while time.monotonic() < deadline and process.poll() is None:
        if killed.exists():
            try:
                stored = int(Store(killed, lock_wait=5).query("SELECT count(*) AS n FROM results")["n"][0])
            except Exception:  # schema not created yet, or locked past the short wait
                stored = 0
            if stored >= 4:
                break
        time.sleep(0.2)
    assert process.poll() is None, "the run finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    partial = int(Store(killed).query("SELECT count(*) AS n FROM results")["n"][0])
    assert 4 <= partial < 24

    probekit("run", *args, "--store", str(killed), check=True)
    runs = Store(killed).query("SELECT run_id, status FROM runs")
    assert len(runs) == 1 and runs["status"][0] == "completed", "the same command resumed the killed run"
    key = "trial_id, model, sample_index"
    got = Store(killed).query(f"SELECT {key}, status, choice, distribution FROM results ORDER BY {key}")
    want = Store(reference).query(f"SELECT {key}, status, choice, distribution FROM results ORDER BY {key}")
    assert len(got) == len(want) == 24
    keys = ["trial_id", "model", "sample_index", "status", "choice"]
    assert got[keys].equals(want[keys])
    worst = max(abs(a - b) for x, y in zip(got["distribution"], want["distribution"]) for a, b in zip(x, y))
    assert worst < 1e-4


def test_models_take_several_values(tmp_path: Path) -> None:
    store = tmp_path / "multi.duckdb"
    result = probekit("run", str(STARTER), "--models", "fake:a", "fake:b", "--limit", "1", "--store", str(store), check=True)
    assert "fake:a: 6 ok" in result.stdout and "fake:b: 6 ok" in result.stdout
    models = json.loads(probekit("query", "SELECT DISTINCT model FROM results ORDER BY 1", "--store", str(store),
                                 "--format", "json", check=True).stdout)
    assert [m["model"] for m in models] == ["fake:a", "fake:b"]


def test_run_with_errors_exits_non_zero_and_says_how_to_resume(tmp_path: Path) -> None:
    store = tmp_path / "errors.duckdb"
    result = probekit("run", str(STARTER), "--models", "fake:a?fatal=1", "--limit", "1", "--store", str(store))
    assert result.returncode == 1
    assert "stored as errors (not answers)" in result.stderr and "--resume" in result.stderr
    statuses = json.loads(probekit("query", "SELECT DISTINCT status FROM results", "--store", str(store), "--format", "json").stdout)
    assert statuses == [{"status": "error"}]
