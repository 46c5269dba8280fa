"""Where a model's trials are scored: in this process (`LocalScorer`, the default) or on Ray actors
(`probekit.execution.ray_pool.RayScorer`, `--executor ray`).

A scorer turns one batch of trials into result rows — answers, or error rows for what still failed after the
runtime's retries — and never touches the store: the runner's one writer records what every scorer returns,
so a run is resumable and duplicate-free whichever scorer produced its rows.
"""

from __future__ import annotations

from typing import Protocol

from probekit.backends import Backend, BackendError
from probekit.backends.base import ModelInfo
from probekit.runtime import ModelRuntime, RetryPolicy
from probekit.scoring import ScoringSettings, score_trials
from probekit.store.rows import ResultRow
from probekit.survey.expand import Trial


class Scorer(Protocol):
    """Scores a model's trials. `max_batch` and `concurrency` are valid once `start` returned."""

    model: str

    @property
    def max_batch(self) -> int:
        """Trials per `score` call."""
        ...

    @property
    def concurrency(self) -> int:
        """`score` calls worth having in flight at once."""
        ...

    async def start(self) -> ModelInfo: ...

    async def score(self, batch: list[Trial], settings: ScoringSettings) -> list[ResultRow]:
        """Rows for every trial of the batch (answers or error rows); `run_id` and `model` are left to the caller."""
        ...

    async def close(self) -> None: ...

    async def stats(self) -> tuple[int, int]:
        """(response-cache hits, primitive calls sent) so far."""
        ...


def error_row(run_id: str, trial: Trial, model: str, error_class: str, message: str, attempts: int) -> ResultRow:
    """A failed trial's row. The message is redacted (again: it may come from any exception) before it is cut."""
    from probekit.backends.errors import redact_and_cut

    return ResultRow(run_id=run_id, trial_id=trial.trial_id, model=model, sample_index=0, status="error", mode="none",
                     error_class=error_class, error_message=redact_and_cut(message, 2000), attempts=attempts)


async def score_batch(runtime: ModelRuntime, batch: list[Trial], settings: ScoringSettings) -> list[ResultRow]:
    """Score a batch through the runtime; a fault that survived the retries (or a bug) becomes one error row per
    trial of the batch, never an answer."""
    try:
        per_trial = await score_trials(runtime, batch, settings)
    except Exception as error:
        error_class = error.error_class if isinstance(error, BackendError) else type(error).__name__
        attempts = getattr(error, "attempts", 1)
        return [error_row("", trial, runtime.model, error_class, str(error), attempts) for trial in batch]
    return [row for rows in per_trial for row in rows]


class LocalScorer:
    """Scores in this process, through a ModelRuntime around the backend."""

    def __init__(self, backend: Backend, policy: RetryPolicy):
        self.runtime = ModelRuntime(backend, policy)
        self.model = backend.model

    @property
    def max_batch(self) -> int:
        return max(1, self.runtime.backend.max_batch)

    @property
    def concurrency(self) -> int:
        return max(1, self.runtime.backend.concurrency)

    async def start(self) -> ModelInfo:
        return await self.runtime.start()

    async def score(self, batch: list[Trial], settings: ScoringSettings) -> list[ResultRow]:
        return await score_batch(self.runtime, batch, settings)

    async def close(self) -> None:
        await self.runtime.close()

    def stats_now(self) -> tuple[int, int]:
        return self.runtime.cache.hits, self.runtime.calls

    async def stats(self) -> tuple[int, int]:
        return self.stats_now()
