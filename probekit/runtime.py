"""The model runtime: one object per model of a run that every primitive call goes through.

The backend declares (capabilities, batch size, concurrency, rate limits); the runtime enforces, the same
way for every engine (inspect_ai's split between ModelAPI and Model):

- the response cache: identical requests are answered once per run, concurrent identical requests share
  one call, failures are never cached (local models too);
- batching: a list of requests is cut into the backend's `max_batch`;
- concurrency: at most `concurrency` calls in flight;
- rate limits: RPM/TPM buckets, and a 429 with Retry-After pauses the whole model;
- retries: tenacity, exponential backoff with full jitter, honouring Retry-After, for retryable faults;
- response checks: a response without the logprobs asked for is a retryable fault (before it is cached);
- samples: n > 1 samples become n seeded requests for engines without native n;
- the capability probe: whether an API model returns top-k logprobs, asked once per run.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from probekit.backends.base import (
    Backend,
    BackendError,
    Capabilities,
    ContinuationRequest,
    ContinuationScores,
    GenerateRequest,
    Generation,
    LabelRequest,
    LabelScores,
    ModelInfo,
    Prompt,
)
from probekit.cache import ResponseCache
from probekit.ratelimit import RateLimiter

Request = TypeVar("Request", bound=Hashable)
Result = TypeVar("Result")

PROBE_PROMPT = Prompt((("user", "Reply with the single letter A."),), "Reply with the single letter A.")
PROBE_ATTEMPTS_WITHOUT_LOGPROBS = 3
"""A response without logprobs is asked again, so one faulty response is not mistaken for a model without."""


@dataclass
class RetryPolicy:
    """How the runtime retries retryable faults. Rate limits (429) do not spend the attempts: they are waited
    out (Retry-After when the provider gives one) within a total wait per call."""

    max_attempts: int = 5
    """Calls per request for faults other than rate limits (server errors, timeouts, dropped connections)."""
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_rate_limit_wait: float = 600.0
    """Seconds one request may spend waiting out rate limits before it is recorded as a rate_limit error."""
    max_rate_limited: int = 200
    """Rate-limited answers one request may get (a guard for providers that send 429 without a wait)."""


class _Budget:
    """What one request has spent: failed calls, rate-limited calls and seconds waited for rate limits."""

    def __init__(self, policy: RetryPolicy):
        self.policy = policy
        self.calls = 0
        self.failures = 0
        self.rate_limited = 0
        self.waited = 0.0

    def record(self, error: BaseException | None) -> None:
        self.calls += 1
        if error is None:
            return
        if _is_rate_limit(error):
            self.rate_limited += 1
        else:
            self.failures += 1

    def exhausted(self) -> bool:
        return (self.failures >= self.policy.max_attempts or self.rate_limited >= self.policy.max_rate_limited
                or self.waited >= self.policy.max_rate_limit_wait)

    def delay(self, error: BaseException | None) -> float:
        """Seconds before the next call: Retry-After for a rate limit (capped by what is left of the wait
        budget), else exponential backoff with full jitter."""
        if _is_rate_limit(error):
            after = getattr(error, "retry_after", None)
            if after is None:
                after = random.uniform(0, min(self.policy.backoff_max, self.policy.backoff_base * 2 ** (self.rate_limited - 1)))
            wait = float(min(after, max(0.0, self.policy.max_rate_limit_wait - self.waited)))
            self.waited += max(wait, 1e-3)  # a zero Retry-After still uses the budget a little
            return wait
        if isinstance(error, BackendError) and error.retry_after is not None:
            return float(min(error.retry_after, self.policy.backoff_max))
        exponential = self.policy.backoff_base * 2 ** (self.failures - 1)
        return float(min(self.policy.backoff_max, random.uniform(0, exponential)))


def _is_rate_limit(error: BaseException | None) -> bool:
    return isinstance(error, BackendError) and error.error_class == "rate_limit"


class ModelRuntime:
    """Retries, cache, concurrency, rate limits and probes around one backend."""

    def __init__(self, backend: Backend, policy: RetryPolicy | None = None):
        self.backend = backend
        self.model = backend.model
        self.policy = policy or RetryPolicy()
        self.capabilities = Capabilities()
        self.info: ModelInfo | None = None
        limits = backend.limits()
        self.limiter = RateLimiter(limits.rpm, limits.tpm)
        self.cache: ResponseCache[Any] = ResponseCache()
        self._slots = asyncio.Semaphore(max(1, backend.concurrency))
        self.calls = 0
        """Primitive calls sent to the backend (cache hits excluded)."""

    # -- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> ModelInfo:
        """Start the backend and settle its capabilities (probing an API model's logprobs if unknown)."""
        info = await self.backend.start()
        if info.capabilities.top_logprobs is None:
            top_k, note = await self._probe_top_logprobs(int(info.details.get("top_logprobs") or 20))
            info.capabilities = replace(info.capabilities, top_logprobs=top_k)
            info.details["probe"] = note
        self.capabilities = info.capabilities
        self.info = info
        return info

    async def close(self) -> None:
        await self.backend.close()

    async def _probe_top_logprobs(self, asked: int) -> tuple[int, str]:
        for _ in range(PROBE_ATTEMPTS_WITHOUT_LOGPROBS):
            request = GenerateRequest(PROBE_PROMPT, 1, 0.0, seed=0, top_logprobs=asked)
            try:
                (outputs,) = await self._with_retries(functools.partial(self.backend.generate, [request]))
            except BackendError as error:
                if error.error_class == "bad_request" and "logprob" in str(error).lower():
                    return 0, "the provider rejected the logprobs parameters"
                raise RuntimeError(f"{self.model}: the capability probe failed: {error}") from None
            tokens = outputs[0].tokens
            if tokens and tokens[0].top:
                return asked, "response carried top_logprobs"
        return 0, "responses carried no logprobs"

    # -- primitives ---------------------------------------------------------------------------------
    async def label_logprobs(self, requests: list[LabelRequest]) -> list[LabelScores]:
        return await self._cached(requests, self.backend.label_logprobs)

    async def continuation_logprobs(self, requests: list[ContinuationRequest]) -> list[ContinuationScores]:
        return await self._cached(requests, self.backend.continuation_logprobs)

    async def generate(self, requests: list[GenerateRequest]) -> list[list[Generation]]:
        if self.capabilities.native_samples or all(r.n == 1 for r in requests):
            return await self._cached(requests, self._generate_checked)
        # One request per sample: each is cached on its own, so a retry re-sends only the failed samples.
        singles: list[GenerateRequest] = []
        owners: list[int] = []
        for index, request in enumerate(requests):
            for k in range(request.n):
                seed = None if request.seed is None else request.seed + k
                singles.append(replace(request, n=1, seed=seed, sample=k))
                owners.append(index)
        outputs = await self._cached(singles, self._generate_checked)
        joined: list[list[Generation]] = [[] for _ in requests]
        for index, output in zip(owners, outputs):
            joined[index].extend(output)
        return joined

    async def _generate_checked(self, requests: list[GenerateRequest]) -> list[list[Generation]]:
        outputs = await self.backend.generate(requests)
        for request, generations in zip(requests, outputs):
            if request.top_logprobs > 0 and any(g.tokens is None for g in generations):
                # Checked inside the retried call, before the response enters the cache: a faulty response
                # must not be cached, or every retry of the trial would get it back.
                raise BackendError("missing_logprobs", f"{self.model} returned a response without logprobs", retryable=True)
        return outputs

    # -- the machinery ------------------------------------------------------------------------------
    async def _cached(self, requests: Sequence[Request], call: Callable[[list[Request]], Awaitable[list[Result]]]) -> list[Result]:
        """Answer each request from the cache or from batched backend calls (max_batch per call)."""
        if len(requests) == 1:  # the usual API case: no extra tasks
            request = requests[0]
            return [await self.cache.get_or_call(request, lambda: self._one(call, request))]
        results: list[Any] = [None] * len(requests)
        missing: list[int] = []
        waits: list[tuple[int, Awaitable[Any]]] = []
        for index, request in enumerate(requests):
            state = self.cache.peek(request)
            if state is ResponseCache.MISSING:
                missing.append(index)
            elif isinstance(state, asyncio.Future):
                waits.append((index, asyncio.shield(state)))
            else:
                results[index] = state
        size = max(1, self.backend.max_batch)
        chunks = [missing[start:start + size] for start in range(0, len(missing), size)]
        chunk_results = await asyncio.gather(*(self._chunk(call, [requests[i] for i in chunk]) for chunk in chunks))
        for chunk, values in zip(chunks, chunk_results):
            for index, value in zip(chunk, values):
                results[index] = value
        for index, waiting in waits:
            results[index] = await waiting
        return results

    async def _one(self, call: Callable[[list[Request]], Awaitable[list[Result]]], request: Request) -> Result:
        (result,) = await self._with_retries(lambda: call([request]), [request])
        return result

    async def _chunk(self, call: Callable[[list[Request]], Awaitable[list[Result]]], chunk: list[Request]) -> list[Result]:
        pending = self.cache.reserve(chunk)
        try:
            values = await self._with_retries(lambda: call(chunk), chunk)
        except BaseException as error:
            self.cache.fail(pending, error)
            raise
        self.cache.fill(pending, values)
        return values

    async def _with_retries(self, send: Callable[[], Awaitable[list[Result]]], requests: Sequence[Any] = ()) -> list[Result]:
        """The call, retried on retryable faults. The first attempt goes without the retry machinery (the
        usual case costs nothing extra); after a retryable fault tenacity takes over with the backoff."""
        budget = _Budget(self.policy)
        try:
            values = await self._limited(send, requests)
            budget.record(None)
        except BackendError as first:
            budget.record(first)
            if not first.retryable or budget.exhausted():
                first.attempts = budget.calls  # type: ignore[attr-defined]
                raise
            await asyncio.sleep(budget.delay(first))
            values = await self._retry(send, requests, budget)
        for value in values:
            _set_attempts(value, budget.calls)
        return values

    async def _retry(self, send: Callable[[], Awaitable[list[Result]]], requests: Sequence[Any], budget: _Budget) -> list[Result]:
        def stop(state: RetryCallState) -> bool:
            budget.record(state.outcome.exception() if state.outcome else None)
            return budget.exhausted()

        try:
            async for attempt in AsyncRetrying(
                stop=stop, wait=lambda state: budget.delay(state.outcome.exception() if state.outcome else None),
                retry=retry_if_exception(lambda e: isinstance(e, BackendError) and e.retryable), reraise=True,
            ):
                with attempt:
                    values = await self._limited(send, requests)
        except BackendError as error:
            if not error.retryable:
                budget.record(error)
            error.attempts = budget.calls  # type: ignore[attr-defined]
            raise
        budget.record(None)
        return values

    async def _limited(self, send: Callable[[], Awaitable[list[Result]]], requests: Sequence[Any]) -> list[Result]:
        async with self._slots:
            estimate = 0
            if self.limiter.active:
                estimate = sum(_estimate_tokens(r) for r in requests) if requests else 1
                await self.limiter.acquire(estimate)
            self.calls += 1
            try:
                values = await send()
            except BackendError as error:
                if error.error_class == "rate_limit" and error.retry_after:
                    self.limiter.hold(error.retry_after)  # the provider's window is shared by the whole model
                raise
            if self.limiter.tokens is not None:
                used = sum(_used_tokens(v) for v in values)
                if used:
                    self.limiter.settle(estimate, used)
            return values

def _estimate_tokens(request: Any) -> int:
    prompt = getattr(request, "prompt", None)
    text = sum(len(content) for _role, content in prompt.messages) if prompt is not None else 0
    return text // 4 + int(getattr(request, "max_tokens", 0)) * max(1, int(getattr(request, "n", 1)))


def _used_tokens(value: Any) -> int:
    items = value if isinstance(value, list) else [value]
    total = 0
    for item in items:
        provenance = getattr(item, "provenance", None)
        if provenance is not None and provenance.prompt_tokens is not None:
            total += provenance.prompt_tokens + (provenance.completion_tokens or 0)
    return total


def _set_attempts(value: Any, attempts: int) -> None:
    items = value if isinstance(value, list) else [value]
    for item in items:
        provenance = getattr(item, "provenance", None)
        if provenance is not None:
            provenance.attempts = attempts
