"""`--executor ray` on a real local Ray instance (and a real `ray start` cluster): the same rows as one
process, an actor killed mid-run loses and duplicates nothing, and a run whose actors are all gone is
stored as errors and completed by a resume."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

import probekit
from probekit.execution.ray_pool import RayOptions
from probekit.runner import RunOptions

pytest.importorskip("ray")
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
MMLU = ROOT / "surveys" / "mmlu.yaml"
STARTER = ROOT / "surveys" / "moralchoice_starter.yaml"
PROBEKIT = Path(sys.executable).with_name("probekit")


def actor_pids() -> list[int]:
    """Processes of probekit's Ray actors (Ray titles them after the actor class)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                title = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")[0]
            except OSError:
                continue
            if title.startswith(b"ray::ModelActor"):
                pids.append(int(entry))
    return sorted(pids)


def results(store: Path) -> dict[tuple[str, int], tuple[str, int | None, list[float] | None]]:
    with duckdb.connect(str(store), read_only=True) as con:
        rows = con.execute("SELECT trial_id, sample_index, status, choice, distribution FROM results").fetchall()
        duplicates = con.execute("SELECT count(*) FROM (SELECT trial_id, model, sample_index FROM results "
                                 "GROUP BY ALL HAVING count(*) > 1)").fetchone()
    assert duplicates == (0,)
    return {(trial, sample): (status, choice, dist) for trial, sample, status, choice, dist in rows}


def test_two_actors_give_the_rows_of_one_process_even_when_one_is_killed(tmp_path: Path) -> None:
    """smollm2 on 12 MMLU items × 4 orders in batches of 4: in this process, then on 2 Ray actors with one of
    them SIGKILLed once a quarter of the trials are done; distributions agree within 1e-4, nothing lost or doubled."""
    common = dict(models=["smollm2"], limit=12, backend_options={"smollm2": {"max_batch": 4}})
    one = probekit.run([MMLU], RunOptions(store=tmp_path / "one.duckdb", **common))  # type: ignore[arg-type]
    assert one.models[0].ok == 48

    killed: list[int] = []
    notices: list[str] = []

    def kill_one(model: str, done: int, total: int, errors: int) -> None:
        if not killed and 12 <= done < total:
            pids = actor_pids()
            assert len(pids) == 2, pids
            os.kill(pids[0], signal.SIGKILL)
            killed.append(done)

    sharded = probekit.run([MMLU], RunOptions(store=tmp_path / "ray.duckdb", progress=kill_one, notice=notices.append,
                                              ray=RayOptions(actors=2), **common))  # type: ignore[arg-type]
    assert killed, "the actor was not killed mid-run"
    assert any("died" in notice for notice in notices), notices
    assert sharded.models[0].ok == 48 and sharded.models[0].error == 0

    expected, got = results(tmp_path / "one.duckdb"), results(tmp_path / "ray.duckdb")
    assert set(got) == set(expected) and len(got) == 48
    worst = 0.0
    for key, (status, choice, dist) in expected.items():
        assert got[key][0] == status == "ok"
        assert got[key][1] == choice, key
        worst = max(worst, max(abs(a - b) for a, b in zip(dist or [], got[key][2] or [])))
    assert worst < 1e-4, worst
    with duckdb.connect(str(tmp_path / "ray.duckdb"), read_only=True) as con:
        details = con.execute("SELECT details FROM models").fetchone()
    assert details is not None and '"kind": "ray"' in details[0] and '"actors": 2' in details[0]


def test_actors_gone_for_good_are_errors_and_a_resume_completes_the_run(tmp_path: Path) -> None:
    """One actor without restarts, killed: what it had not scored is stored as errors (never answers); the
    same command then resumes in this process and completes the run without duplicates."""
    store = tmp_path / "store.duckdb"
    killed: list[int] = []

    def kill(model: str, done: int, total: int, errors: int) -> None:
        if not killed and 0 < done < total:
            (pid,) = actor_pids()
            os.kill(pid, signal.SIGKILL)
            killed.append(done)

    first = probekit.run([STARTER], RunOptions(models=["fake:delay=0.05"], store=store, progress=kill,
                                               ray=RayOptions(actors=1, max_restarts=0)))
    summary = first.models[0]
    assert killed and summary.error > 0 and summary.errors_by_class == {"actor_died": summary.error}
    assert summary.ok + summary.error == summary.total == 120
    with duckdb.connect(str(store), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM results WHERE status = 'error' AND choice IS NOT NULL").fetchone() == (0,)

    resumed = probekit.run([STARTER], RunOptions(models=["fake:delay=0.05"], store=store))
    assert resumed.run_id == first.run_id and resumed.models[0].skipped == summary.ok
    assert resumed.models[0].ok == summary.error and resumed.models[0].error == 0
    rows = results(store)
    assert len(rows) == 120 and {status for status, _, _ in rows.values()} == {"ok"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_cli_joins_an_existing_cluster(tmp_path: Path) -> None:
    """`ray start --head` as a user would, then `probekit run --executor ray --ray-address` (a subprocess)."""
    ray_cli = Path(sys.executable).with_name("ray")
    port = _free_port()
    # Token authentication, as Ray's docs set it up for a cluster (the driver must say so too).
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "RAY_AUTH_MODE": "token"}
    # --block: the cluster lives as long as this process (terminating it stops exactly this cluster's
    # processes, not every Ray on the machine as `ray stop` would).
    head = subprocess.Popen([str(ray_cli), "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                             "--disable-usage-stats", "--block"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        # Asked until it answers, as long as the head process lives: a bounded number of asks (each its own
        # `ray status`, slower on a loaded machine), not a wall-clock limit.
        for _attempt in range(300):
            if subprocess.run([str(ray_cli), "status", f"--address=127.0.0.1:{port}"], env=env, capture_output=True,
                              timeout=300).returncode == 0:
                break
            assert head.poll() is None, "the Ray head exited before it started"
            time.sleep(1)
        else:
            pytest.fail("the Ray head never answered `ray status`")
        store = tmp_path / "store.duckdb"
        done = subprocess.run([str(PROBEKIT), "run", str(STARTER), "--models", "fake", "--store", str(store), "-q",
                               "--executor", "ray", "--ray-address", f"127.0.0.1:{port}", "--ray-actors", "2"],
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        rows = results(store)
        assert len(rows) == 120 and {status for status, _, _ in rows.values()} == {"ok"}
        with duckdb.connect(str(store), read_only=True) as con:
            details = con.execute("SELECT details FROM models").fetchone()
        assert details is not None and '"actors": 2' in details[0]
        # The cluster is the user's: probekit leaves it running.
        status = subprocess.run([str(ray_cli), "status", f"--address=127.0.0.1:{port}"], env=env, capture_output=True,
                                text=True, timeout=120)
        assert status.returncode == 0, status.stderr
    finally:
        head.terminate()
        head.wait(timeout=60)


def test_cli_refuses_more_than_the_cluster_has(tmp_path: Path) -> None:
    """Actors asking for GPUs a CPU-only cluster lacks would wait forever: an error naming the fix instead."""
    store = tmp_path / "store.duckdb"
    done = subprocess.run([str(PROBEKIT), "run", str(STARTER), "--models", "fake", "--store", str(store), "-q",
                           "--executor", "ray", "--ray-gpus", "1"],
                          env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1
    assert "need 1 GPUs but the cluster has 0" in done.stderr and "--ray-gpus" in done.stderr


VLLM_PROBEKIT = ROOT / ".venv-vllm" / "bin" / "probekit"


def test_vllm_engines_on_two_actors_agree_with_transformers_in_one_process(tmp_path: Path) -> None:
    """`vllm:smollm2` on 2 Ray actors (each its own vLLM engine; run from .venv-vllm, where vLLM lives) gives
    the rows of the transformers backend in one process: same trials, same argmax, distributions within 1e-4."""
    if not VLLM_PROBEKIT.exists() or subprocess.run([str(VLLM_PROBEKIT.with_name("python")), "-c", "import ray"],
                                                    capture_output=True).returncode != 0:
        pytest.skip("no .venv-vllm with Ray: build it with `bash scripts/setup_vllm.sh`")
    one = probekit.run([MMLU], RunOptions(models=["smollm2"], store=tmp_path / "hf.duckdb", limit=6))
    assert one.models[0].ok == 24
    done = subprocess.run([str(VLLM_PROBEKIT), "run", str(MMLU), "--models", "vllm:smollm2", "--limit", "6", "-q",
                           "--store", str(tmp_path / "vllm.duckdb"), "--executor", "ray", "--ray-actors", "2",
                           "--batch-size", "4"],
                          env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "TOKENIZERS_PARALLELISM": "false"},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    expected, got = results(tmp_path / "hf.duckdb"), results(tmp_path / "vllm.duckdb")
    assert set(got) == set(expected) and len(got) == 24
    for key, (status, choice, dist) in expected.items():
        assert got[key][:2] == (status, choice) == ("ok", choice), key
        assert max(abs(a - b) for a, b in zip(dist or [], got[key][2] or [])) < 1e-4, key
    with duckdb.connect(str(tmp_path / "vllm.duckdb"), read_only=True) as con:
        backend, details = con.execute("SELECT backend, details FROM models").fetchone()  # type: ignore[misc]
    assert backend == "vllm" and '"actors": 2' in details
