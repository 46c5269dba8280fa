"""The judging experiment through the real CLI in subprocesses: validate, expand, run, re-run; and SIGKILL in
either stage, then the same command again: nothing stored is sent again (counted at the engine)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from selfpref_helpers import ENV, REPO, write_experiment

from probekit.store.store import Store

pytestmark = pytest.mark.slow  # drives the CLI or other processes: the full suite, not the quick loop

SHIPPED = REPO / "experiments" / "selfpref_mtbench.yaml"


def probekit(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "probekit.cli.main", *args], capture_output=True, text=True, env=ENV,
                          cwd=REPO, timeout=timeout)


def requests(log: Path) -> list[tuple[str, str, str]]:
    """(model, kind, trial) per request that reached the fake engine, in order."""
    if not log.exists():
        return []
    return [(m, k, w.split("/")[2]) for m, k, w in (line.split("\t") for line in log.read_text().splitlines())]


def test_the_shipped_experiment_validates_expands_and_lists_tables_that_apply() -> None:
    from probekit.analysis.registry import SurveyInfo, applicable
    from probekit.judging import load_judging

    done = probekit("validate", str(SHIPPED))
    assert done.returncode == 0, done.stderr
    assert ("ok (judging experiment selfpref_mtbench: answer mtbench, judge mtbench_judge, "
            "self-recognition mtbench_recognition)") in done.stdout
    expanded = probekit("expand", str(SHIPPED))
    assert expanded.returncode == 0, expanded.stderr
    assert "[answer: mtbench] 20 trials per model (20 questions)" in expanded.stdout
    assert "[judge: smollm2] 1 pairs (1 with its own answer) × 20 questions × 2 orders × 1 form(s) = 40 trials" in expanded.stdout
    loaded = load_judging(SHIPPED)
    surveys = [loaded.answer, loaded.judge, *([loaded.recognition] if loaded.recognition else [])]
    applying = {spec.name for s in surveys for spec in applicable(SurveyInfo(s.id, s.kind, s.model_dump()))}
    assert set(loaded.spec.analyses) <= applying


def test_a_bad_judging_file_names_its_line(tmp_path: Path) -> None:
    bad = write_experiment(tmp_path, "bad", judge={"pairs": "some"})
    done = probekit("validate", str(bad))
    assert done.returncode == 2 and f"{bad}:17: judge.pairs: Input should be 'self' or 'all'" in done.stderr
    missing = write_experiment(tmp_path, "missing", gold={"file": "labels.jsonl"})
    done = probekit("validate", str(missing))
    assert done.returncode == 2 and f"{missing}:" in done.stderr and "gold.file 'labels.jsonl' not found" in done.stderr
    wrong = write_experiment(tmp_path, "wrong", answer={"path": str(REPO / "surveys" / "mtbench_judge.yaml")})
    done = probekit("run", str(wrong), "--models", "fake:a", "--store", str(tmp_path / "s.duckdb"))
    assert done.returncode == 2 and "answer: " in done.stderr and "is a pairwise (task judge) survey — use a generate survey" in done.stderr
    assert not (tmp_path / "s.duckdb").exists()


def test_run_prints_the_tables_and_a_second_run_sends_nothing(tmp_path: Path) -> None:
    store, log = tmp_path / "s.duckdb", tmp_path / "calls.log"
    models = [f"fake:a?self=3&log={log}", f"fake:b?log={log}", f"fake:c?log={log}"]
    first = probekit("run", str(write_experiment(tmp_path)), "--models", *models, "--store", str(store))
    assert first.returncode == 0, first.stderr
    assert "answer fake:a?self=3" in first.stdout and "== judge_self_preference" in first.stdout and "dbg" in first.stdout
    sent = len(requests(log))
    second = probekit("run", str(write_experiment(tmp_path)), "--models", *models, "--store", str(store))
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("already stored: nothing sent") == 6 and len(requests(log)) == sent
    analyzed = probekit("analyze", "--survey", "exp.judge", "--store", str(store), "--format", "json")
    assert analyzed.returncode == 0 and '"judge_position"' in analyzed.stdout


def test_both_stages_on_ray_actors_give_the_tables_of_one_process(tmp_path: Path) -> None:
    """`--executor ray` reaches both stages: the answers and judgments of 2 actors per model equal one process's."""
    pytest.importorskip("ray")
    tables = {}
    for executor in ("local", "ray"):
        store = tmp_path / f"{executor}.duckdb"
        flags = ["--executor", "ray", "--ray-actors", "2"] if executor == "ray" else ["--executor", "local"]
        done = probekit("run", str(write_experiment(tmp_path)), "--models", "fake:a?self=3", "fake:b", "--store", str(store),
                        "-q", *flags)
        assert done.returncode == 0, done.stderr
        analyzed = probekit("analyze", "--survey", "exp.judge", "--store", str(store), "--format", "json")
        assert analyzed.returncode == 0, analyzed.stderr
        tables[executor] = analyzed.stdout
        if executor == "ray":
            details = Store(store).query("SELECT DISTINCT details FROM models")["details"]
            assert all('"actors": 2' in d for d in details), list(details)
    assert tables["ray"] == tables["local"] and '"judge_self_preference"' in tables["ray"]


def committed(store: Path, mode: str) -> int:
    """Result rows of a scoring mode committed so far (0 while the store does not exist or stays locked)."""
    if not store.exists():
        return 0
    try:
        return int(Store(store, lock_wait=2).query("SELECT count(*) AS n FROM results WHERE mode = ?", [mode])["n"][0])
    except Exception:  # schema not created yet, or held by the writer past the short wait
        return 0


@pytest.mark.parametrize(("stage", "questions"), [("answer", 12), ("judge", 4)])
def test_sigkill_in_either_stage_then_the_same_command_sends_only_what_is_missing(tmp_path: Path, stage: str,
                                                                                  questions: int) -> None:
    store, log = tmp_path / "s.duckdb", tmp_path / "calls.log"
    # One request at a time per model, 0.2 s each: slow enough to be killed mid-stage.
    models = [f"fake:{n}?log={log}&delay=0.2&batch=1&concurrency=1" for n in "abc"]
    args = ["run", str(write_experiment(tmp_path, answer={"limit": questions})), "--models", *models, "--store", str(store),
            "--quiet"]
    process = subprocess.Popen([sys.executable, "-m", "probekit.cli.main", *args], env=ENV, cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    mode = "generate" if stage == "answer" else "logprob"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None and committed(store, mode) < 3:
        time.sleep(0.05)
    assert process.poll() is None, "the run finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = requests(log)
    stored = Store(store).query("SELECT model, trial_id, mode FROM results WHERE status <> 'error'")
    stored_keys = set(zip(stored["model"], stored["trial_id"]))
    per_trial = 2 * 3 * questions  # 3 pairs (panel gold) × questions × 2 orders
    assert 3 <= (stored["mode"] == mode).sum() < 3 * (questions if stage == "answer" else per_trial), "killed mid-stage"

    done = probekit(*args, timeout=600)
    assert done.returncode == 0, done.stderr
    after = requests(log)[len(before):]
    resent = [(m, t) for m, k, t in after if k in ("generate", "label") and (m, t) in stored_keys]
    assert resent == [], "a trial stored before the kill was sent again"
    if stage == "judge":
        assert not [r for r in after if r[1] == "generate"], "no stage-1 request after a kill in stage 2"
    # Everything is there exactly once, and each stage's run was resumed (one run per model and stage).
    counts = Store(store).query("SELECT model, count(*) AS n, count(DISTINCT trial_id) AS trials FROM results GROUP BY 1 ORDER BY 1")
    assert list(counts["n"]) == list(counts["trials"]) == [questions + per_trial] * 3
    runs = Store(store).query("SELECT status, count(*) AS n FROM runs GROUP BY 1")
    assert runs.to_dict("records") == [{"status": "completed", "n": 6}]
