"""Scoring outside a run (tests, benchmarks, notebooks): one backend, one runtime, no store."""

from __future__ import annotations

import asyncio

from probekit.backends.base import Backend
from probekit.runtime import ModelRuntime, RetryPolicy
from probekit.scoring.answers import ScoringSettings
from probekit.scoring.modes import score_trials
from probekit.store.rows import ResultRow
from probekit.survey.expand import Trial


def score_sync(backend: Backend, trials: list[Trial], settings: ScoringSettings,
               policy: RetryPolicy | None = None) -> list[list[ResultRow]]:
    """Score trials on one backend: a runtime without retries unless a policy is given; per trial its rows
    (ResultRows without run or model)."""

    async def score() -> list[list[ResultRow]]:
        runtime = ModelRuntime(backend, policy or RetryPolicy(max_attempts=1))
        await runtime.start()
        try:
            return await score_trials(runtime, trials, settings)
        finally:
            await runtime.close()  # API transports hold a session bound to this event loop

    return asyncio.run(score())
