"""Ray settings: how local models are spread over Ray actors (`--executor ray`, an experiment's `executor:` block).

A plain value, apart from the executor (probekit.execution.ray_pool) that acts on it, so that reading an
experiment file or the command line never imports the run stack (or Ray). The checks that need no Ray
(capacity of this machine, a reachable address) are here too, so a run's settings refuse before a run exists.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

CONNECT_TIMEOUT_SECONDS = 10.0
"""How long the driver tries to reach a cluster's address before it says it cannot (Ray itself retries for
minutes against an address where nothing listens)."""


@dataclass(frozen=True)
class RayOptions:
    """How local models are spread over Ray. Not part of a run's configuration: the rows are the same."""

    address: str | None = None
    """An existing cluster (`ray://host:10001`, `host:6379`, `auto`); None starts a local Ray instance."""
    actors: int = 1
    """Actors per local model, each holding a copy of the model."""
    num_gpus: float | None = None
    """GPUs per actor; None: the engine's tensor_parallel_size (else 1) when the cluster has GPUs, else 0."""
    num_cpus: float = 1.0
    """CPUs per actor (Ray also sets the actor's OMP thread count from it)."""
    max_restarts: int = 2
    """Times Ray restarts a dead actor (its lost batches are sent again either way)."""

    def __post_init__(self) -> None:
        if self.actors < 1:
            raise ValueError(f"Ray actors per model must be at least 1 (got {self.actors})")
        if self.num_gpus is not None and self.num_gpus < 0:
            raise ValueError(f"GPUs per Ray actor cannot be negative (got {self.num_gpus})")
        if self.num_cpus <= 0:
            raise ValueError(f"CPUs per Ray actor must be positive (got {self.num_cpus})")


def check_local_capacity(options: RayOptions, cores: int | None = None) -> None:
    """ValueError when a local Ray instance (no --ray-address) is asked for more than this machine has: each
    actor is a process holding its own copy of the model, so one model's actors may number at most the
    machine's cores and ask for at most that many CPUs in all (the actors of several models share them).
    Called before Ray starts, so nothing is started when it refuses. A cluster is checked against its own
    resources once joined (`RayScorer._check_fits`)."""
    if options.address:
        return
    have = cores if cores is not None else (os.cpu_count() or 1)
    need = options.actors * options.num_cpus
    if options.actors > have or need > have:
        raise ValueError(f"--ray-actors {options.actors} × {options.num_cpus:g} CPU per actor needs {max(need, options.actors):g} "
                         f"CPUs (one process with its own copy of the model per actor) but this machine has {have}: use at "
                         f"most {max(1, int(have // max(options.num_cpus, 1.0)))} actor(s), or join a cluster with --ray-address")


def check_reachable(address: str | None, timeout: float = CONNECT_TIMEOUT_SECONDS) -> None:
    """RuntimeError when nothing accepts a TCP connection at a `host:port` or `ray://host:port` address within
    `timeout` seconds (`auto` and addresses without a port are left to Ray)."""
    import socket
    from urllib.parse import urlsplit

    if not address or address == "auto":
        return
    try:
        parts = urlsplit(address if "://" in address else f"tcp://{address}")
        host, port = parts.hostname, parts.port
    except ValueError:
        raise RuntimeError(f"--ray-address {address!r} is not host:port or ray://host:port") from None
    if not host or port is None:
        return
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        reason = "timed out" if isinstance(error, socket.timeout) else (error.strerror or str(error))
        raise RuntimeError(f"cannot reach the Ray cluster at {address}: {reason} (within {timeout:g}s). Check --ray-address "
                           "(e.g. 127.0.0.1:6379 for `ray start --head`, ray://host:10001 for Ray Client) and that the "
                           "cluster is running") from None
