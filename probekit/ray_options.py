"""Ray settings: how local models are spread over Ray actors (`--executor ray`, an experiment's `executor:` block).

A plain value, apart from the executor (probekit.execution.ray_pool) that acts on it, so that reading an
experiment file or the command line never imports the run stack (or Ray).
"""

from __future__ import annotations

from dataclasses import dataclass


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
