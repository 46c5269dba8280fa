"""Issue 23, `probekit drift`: settings that cannot give an answer (`--n-boot 0`, `--alpha 2`) and a plot path
that cannot be written (`--plot /dev/null/x`) are refused with one clear message before the store is read; a
hung `--on-change` hook is stopped after `--on-change-timeout` seconds, with what it started."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cli_helpers import STARTER, cli, cli_subprocess, refused

SURVEY, MODEL = "moralchoice_starter", "fake:x"


@pytest.mark.parametrize("flags, words", [
    (["--n-boot", "0"], "--n-boot 0"),
    (["--n-boot", "-5"], "--n-boot -5"),
    (["--alpha", "2"], "--alpha 2"),
    (["--alpha", "0"], "--alpha 0"),
    (["--alpha", "1"], "--alpha 1"),
    (["--min-effect", "-0.1"], "--min-effect"),
    (["--plot", "/dev/null/x"], "/dev/null is not a directory"),
    (["--on-change-timeout", "0"], "--on-change-timeout"),
])
def test_drift_refuses_settings_that_cannot_give_an_answer(small_store: Path, flags: list[str], words: str) -> None:
    refused(cli("drift", "--survey", SURVEY, "--model", "fake:a", "--store", str(small_store), *flags), words, code=1)


def test_drift_settings_are_checked_by_the_library_too() -> None:
    from probekit.analysis.drift import check_drift_settings

    for bad in ({"alpha": 2.0}, {"alpha": 0.0}, {"n_boot": 0}, {"min_effect": float("nan")}):
        with pytest.raises(ValueError):
            check_drift_settings(**bad)  # type: ignore[arg-type]
    check_drift_settings(alpha=0.05, n_boot=1, min_effect=0.0)


@pytest.fixture(scope="module")
def changed_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tracked fake model whose version changes (as in tests/tracking/test_drift_store.py): drift exits 3."""
    from probekit.store.store import Store
    from probekit.tracking import JobOptions, add_job, new_job, run_due

    store = tmp_path_factory.mktemp("drift") / "store.duckdb"
    start = datetime(2025, 6, 2, 15, tzinfo=timezone.utc)
    options = JobOptions(limit=6, mode="sample", samples=12, temperature=1.0, orders="identity")
    for day, (model, label) in enumerate([("fake:x?prior=1,1", "v1"), ("fake:x?prior=9,1", "v2")]):
        add_job(Store(store), new_job("mc", [STARTER], [model], "1d", options=options, model_label=label, now=start), replace=True)
        assert all(o.action == "ran" for o in run_due(store, now=start + timedelta(days=day)))
    return store


@pytest.mark.slow
def test_a_hung_on_change_hook_is_stopped_with_what_it_started(changed_store: Path, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    hook = f"sleep 600 & echo $! > {pids}; echo $$ >> {pids}; wait"
    result = cli_subprocess("drift", "--survey", SURVEY, "--model", MODEL, "--n-boot", "100", "--store", str(changed_store),
                            "--on-change", hook, "--on-change-timeout", "2", timeout=300)
    assert result.returncode == 3, result.stderr
    assert "--on-change command still running after 2s; stopped it" in result.stderr
    for pid in map(int, pids.read_text().split()):
        for _ in range(50):  # the group was signalled before drift exited; reaping may lag a moment
            if not _alive(pid):
                break
            time.sleep(0.1)
        assert not _alive(pid), f"hook process {pid} still running"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"  # a zombie has ended
    except OSError:
        return False
