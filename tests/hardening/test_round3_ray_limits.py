"""Issue 23, Ray: more actors than a local machine has cores (`--ray-actors 1000` on 2 cores) is refused before
Ray starts (no worker process); an address where nothing listens (`--ray-address 127.0.0.1:1`) fails at once
with a clear message instead of Ray's minutes of retries."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from cli_helpers import STARTER, cli_subprocess, refused

from probekit.execution.ray_pool import RayOptions, check_local_capacity, check_reachable
from probekit.store.store import Store

CORES = os.cpu_count() or 1


@pytest.mark.parametrize("actors, cpus, fits", [
    (1, 1.0, True), (CORES, 1.0, True), (CORES + 1, 1.0, False), (1000, 1.0, False),
    (1, CORES + 1.0, False), (1000, 0.001, False),  # a fraction of a CPU each is still a process and a model copy each
])
def test_local_ray_is_refused_more_actors_than_cores(actors: int, cpus: float, fits: bool) -> None:
    options = RayOptions(actors=actors, num_cpus=cpus)
    if fits:
        check_local_capacity(options)
        return
    with pytest.raises(ValueError, match=f"this machine has {CORES}"):
        check_local_capacity(options)


def test_a_cluster_is_checked_against_its_own_resources_not_this_machine() -> None:
    check_local_capacity(RayOptions(address="10.0.0.5:6379", actors=1000))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends: nothing listens there


@pytest.mark.parametrize("form", ["{host}:{port}", "ray://{host}:{port}"])
def test_an_address_where_nothing_listens_is_said_at_once(form: str) -> None:
    address = form.format(host="127.0.0.1", port=_closed_port())
    with pytest.raises(RuntimeError, match="cannot reach the Ray cluster at"):
        check_reachable(address)
    check_reachable("auto")  # left to Ray


@pytest.mark.slow
def test_run_with_1000_actors_starts_no_ray(tmp_path: Path) -> None:
    result = cli_subprocess("run", str(STARTER), "--models", "fake:a", "--limit", "1", "--executor", "ray",
                            "--ray-actors", "1000", "--store", str(tmp_path / "s.duckdb"), "-q",
                            env={"RAY_TMPDIR": str(tmp_path / "ray")}, timeout=300)
    refused(result, "--ray-actors 1000", f"this machine has {CORES}", code=1)
    assert not (tmp_path / "ray").exists(), "a Ray instance was started"
    # Refused with the run's settings, before a run exists: no `interrupted` run is left behind.
    assert not (tmp_path / "s.duckdb").exists() or Store(tmp_path / "s.duckdb").runs().empty


@pytest.mark.slow
def test_run_with_an_unreachable_address_fails_with_a_clear_message(tmp_path: Path) -> None:
    # On main this retried for minutes; the subprocess timeout only keeps a regression from hanging the suite.
    result = cli_subprocess("run", str(STARTER), "--models", "fake:a", "--limit", "1", "--executor", "ray",
                            "--ray-address", "127.0.0.1:1", "--store", str(tmp_path / "s.duckdb"), "-q", timeout=200)
    refused(result, "cannot reach the Ray cluster at 127.0.0.1:1", "Connection refused", code=1)
    assert not (tmp_path / "s.duckdb").exists() or Store(tmp_path / "s.duckdb").runs().empty
