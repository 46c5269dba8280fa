"""Pre-flight: every mistake caught before the first request, and no work paid for twice. Through the real
CLI in a subprocess; a failed check leaves the store exactly as it was."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from probekit.pipeline import run
from probekit.runner import RunOptions
from probekit.store.store import Store

pytestmark = pytest.mark.slow  # drives the CLI or other processes: the full suite, not the quick loop

REPO = Path(__file__).resolve().parents[2]
STARTER = REPO / "surveys" / "moralchoice_starter.yaml"
ENV = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


def probekit(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "probekit.cli.main", *args], capture_output=True, text=True, env=ENV,
                          timeout=timeout)


def digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def test_a_finished_command_is_a_no_op_and_new_run_repeats_it(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    args = ("run", str(STARTER), "--models", "fake:a", "--limit", "2", "--store", str(store), "-q")
    first = probekit(*args)
    assert first.returncode == 0, first.stderr
    before = Store(store).query("SELECT count(*) AS n, max(created_at) AS last FROM results")
    again = probekit(*args)  # -q on a no-op prints the run's id, as after a run (scripts read it)
    assert again.returncode == 0 and again.stdout.split() == first.stdout.split(), again.stdout
    told = probekit(*args[:-1])  # without -q it says why nothing ran and how to repeat it
    assert told.returncode == 0 and "Nothing to do" in told.stdout and "--new-run" in told.stdout
    assert Store(store).query("SELECT count(*) AS n, max(created_at) AS last FROM results").equals(before)
    assert len(Store(store).runs()) == 1
    repeat = probekit(*args, "--new-run")
    assert repeat.returncode == 0, repeat.stderr
    assert len(Store(store).runs()) == 2


def test_two_identical_runs_started_together_end_up_as_one(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    args = [sys.executable, "-m", "probekit.cli.main", "run", str(STARTER), "--models", "fake:slow?delay=0.2&concurrency=1&batch=4",
            "--limit", "4", "--store", str(store), "-q"]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    second = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    outputs = [process.communicate(timeout=300) for process in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs
    runs = Store(store).runs()
    assert len(runs) == 1 and runs["status"][0] == "completed", runs
    results = Store(store).query("SELECT trial_id, sample_index, count(*) AS n FROM results GROUP BY ALL")
    assert len(results) == 24 and (results["n"] == 1).all()
    said = " ".join(out + err for out, err in outputs)
    # The second one waited for the first, or found it finished (-q then prints that run's id, as the first did).
    run_id = str(runs["run_id"][0])
    assert "waiting for it" in said or all(out.split() == [run_id] for out, _err in outputs), said


@pytest.mark.parametrize(("args", "message"), [
    (["--models", "smollm3"], "did you mean 'smollm2'"),
    (["--models", "openai/"], "write provider/name"),
    (["--models", "hf:"], "name a directory, GGUF file or hub id"),
    (["--models", "openia/gpt-4o-mini"], "did you mean openai/gpt-4o-mini"),
    (["--models", "openai/gpt-4o-mini", "--mode", "sequence"], "cannot run sequence mode"),
    (["--models", "smollm2", "--batch-size", "0"], "--batch-size"),
    (["--models", "openai/gpt-4o-mini", "--concurrency", "0"], "--concurrency"),
    (["--models", "fake:a", "--samples", "0"], "--samples"),
    (["--models", "fake:a", "--limit", "0"], "--limit"),
    (["--models", "fake:a", "--temperature", "-1"], "--temperature"),
])
def test_preflight_failures_leave_the_store_untouched(tmp_path: Path, args: list[str], message: str) -> None:
    store = tmp_path / "s.duckdb"
    run([STARTER], RunOptions(models=["fake:before"], store=store, limit=1))
    before = digest(store)
    done = probekit("run", str(STARTER), *args, "--store", str(store))
    assert done.returncode != 0
    assert message in done.stderr + done.stdout, done.stderr
    assert "Traceback" not in done.stderr
    assert digest(store) == before, "a failed pre-flight check must not touch the store"
    assert len(Store(store).runs()) == 1


def test_a_model_named_twice_is_asked_once_through_the_cli(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    done = probekit("run", str(STARTER), "--models", "fake:a", "fake:a", "--limit", "1", "--store", str(store), "-q")
    assert done.returncode == 0, done.stderr
    assert Store(store).query("SELECT DISTINCT model FROM results")["model"].tolist() == ["fake:a"]


def test_rate_limits_do_not_spend_the_retry_budget_over_twenty_seeds(tmp_path: Path) -> None:
    """30 % faults per call (25 % 429 with Retry-After, 5 % 503), 6 attempts: every trial of every run is
    answered. Were the 429s counted against the attempts, about 0.3^6 × 2,400 ≈ 1.7 trials would fail."""
    for seed in range(20):
        store = tmp_path / f"s{seed}.duckdb"
        model = f"fake:seed{seed}?fail=0.25&fail5xx=0.05&batch=1&concurrency=16"
        summary = run([STARTER], RunOptions(models=[model], store=store, max_attempts=6, backoff_base=0.0, backoff_max=0.0,
                                            flush_seconds=0.2))
        assert summary.errors == 0, (seed, summary.models[0].errors_by_class)
        attempts = Store(store).query("SELECT max(attempts) AS most, sum(attempts) AS calls, count(*) AS n FROM results")
        assert int(attempts["n"][0]) == summary.trials == 120
        assert int(attempts["calls"][0]) > 1.3 * summary.trials  # faults were injected and retried
