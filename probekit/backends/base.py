"""The backend interface. A backend only turns a batch of trials into result rows; retries, concurrency,
caching, resume and storage live in the runner, once, for every backend."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from probekit.scoring import ScoringSettings
from probekit.survey.expand import Trial

ResultRow = dict[str, Any]
"""Fields of the `results` table (see probekit.store.store.RESULT_COLUMNS) for one sample of one trial."""


class BackendError(Exception):
    """A failed call. `retryable` faults (rate limits, 5xx, timeouts, resets) are retried by the runner;
    the others (bad request, auth, context length) are stored as errors at once."""

    def __init__(self, error_class: str, message: str, *, retryable: bool, retry_after: float | None = None):
        super().__init__(message)
        self.error_class = error_class
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass
class ModelInfo:
    """What a backend knows about the model it serves (stored in the `models` table)."""

    backend: str
    resolved_name: str
    revision: str | None = None
    weights_sha256: str | None = None
    dtype: str | None = None
    device: str | None = None
    logprobs_supported: bool | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_row(self) -> dict[str, Any]:
        return {
            "backend": self.backend, "resolved_name": self.resolved_name, "revision": self.revision,
            "weights_sha256": self.weights_sha256, "dtype": self.dtype, "device": self.device,
            "logprobs_supported": self.logprobs_supported, **self.details,
        }


class Backend(ABC):
    """One model behind one backend."""

    model: str
    """The model key as requested by the user."""
    max_batch: int = 1
    """How many trials one `score` call takes."""
    concurrency: int = 1
    """How many `score` calls may be in flight at once."""

    @abstractmethod
    async def start(self) -> ModelInfo:
        """Load or probe the model; called once before scoring."""

    @abstractmethod
    async def score(self, trials: list[Trial], settings: ScoringSettings) -> list[list[ResultRow]]:
        """Score a batch: for each trial, one row per sample (one row in logprob/sequence mode).
        Raise BackendError for a fault of the whole call."""

    async def close(self) -> None:
        """Release resources."""
        return None
