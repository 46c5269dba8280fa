"""API models (any litellm model string) as a probekit backend.

- logprob mode: one greedy request per trial with `logprobs` and `top_logprobs` (the most the provider
  allows) and `max_tokens` just enough to reach the label; the distribution is read at the answer
  position (probekit.backends.answer_reading).
- sample mode: `samples` requests per trial at the survey's temperature, each with its own seed (derived
  from the run seed and the trial id, so answers do not depend on scheduling or resume).
- capability: `start()` probes once whether the model returns logprobs; the runner switches the run's
  logprob surveys to their fallback (sampling) when it does not, and every row records its mode.

Concurrency and RPM/TPM limits apply to each HTTP request; identical requests are answered from the
in-run cache. Retries belong to the runner: every failure leaves here as a classified BackendError.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from probekit.backends.answer_reading import LabelReading, answer_start_index, read_labels
from probekit.backends.api_transport import Completion, make_transport
from probekit.backends.base import Backend, BackendError, ModelInfo, ResultRow
from probekit.backends.response_cache import ResponseCache, request_key
from probekit.models_config import ModelConfig, resolve
from probekit.ratelimit import RateLimiter
from probekit.scoring import ScoringSettings, distribution_fields, sample_row
from probekit.survey.expand import Trial

PROBE_MESSAGES = [{"role": "user", "content": "Reply with the single letter A."}]
PROBE_ATTEMPTS = 6


def _trial_seed(seed: int, trial_id: str) -> int:
    """Same derivation as the transformers backend: per-trial, independent of batching and resume."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{trial_id}".encode()).digest()[:4], "big")


def _common_prefix(texts: list[str]) -> str:
    first, last = min(texts), max(texts)
    size = 0
    while size < min(len(first), len(last)) and first[size] == last[size]:
        size += 1
    return first[:size]


def label_max_tokens(labels: tuple[str, ...]) -> int:
    """Tokens enough to reach the decision point: a short preamble ("Answer: ", "**") plus the labels'
    shared prefix (≈ 1 token per 3 characters, rounded up generously)."""
    return 6 + len(_common_prefix([label.lower() for label in labels])) // 2


class LiteLLMBackend(Backend):
    """One API model."""

    def __init__(self, model: str, *, models_config: str | None = None, **overrides: Any):
        self.model = model
        self.config: ModelConfig = resolve(model, models_config, overrides)
        self.max_batch = 1  # one trial per score call: the runner's retry unit is one trial
        self.concurrency = self.config.concurrency
        self.limiter = RateLimiter(self.config.rpm, self.config.tpm)
        self.cache: ResponseCache[Completion] = ResponseCache()
        self._transport: Any = None
        self._slots: asyncio.Semaphore | None = None

    # -- plumbing -----------------------------------------------------------------------------------
    @property
    def transport(self) -> Any:
        if self._transport is None:
            self._transport = make_transport(self.model, self.config)
        return self._transport

    async def request(self, messages: list[dict[str, str]], params: dict[str, Any], *, cache_extra: dict[str, Any] | None = None,
                      require_logprobs: bool = False) -> Completion:
        """One completion, through the cache, the concurrency slots and the rate limiter."""
        key = request_key(self.model, {**self.config.params, **params, **(cache_extra or {})}, messages)

        async def call() -> Completion:
            completion = await self._send(messages, params)
            if require_logprobs and completion.tokens is None:
                # Checked before the response enters the cache: a faulty response must not be cached,
                # or every retry of the trial would get it back.
                raise BackendError("missing_logprobs", f"{self.model} returned a response without logprobs", retryable=True)
            return completion

        return await self.cache.get_or_call(key, call)

    async def _send(self, messages: list[dict[str, str]], params: dict[str, Any]) -> Completion:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.config.concurrency)
        async with self._slots:
            estimate = 0
            if self.limiter.active:
                estimate = sum(len(m["content"]) for m in messages) // 4 + int(params.get("max_tokens", 0))
                await self.limiter.acquire(estimate)
            try:
                completion = await self.transport.send(messages, params)
            except BackendError as error:
                if error.error_class == "rate_limit" and error.retry_after:
                    self.limiter.hold(error.retry_after)
                raise
            if self.limiter.tokens is not None and completion.prompt_tokens is not None:
                self.limiter.settle(estimate, completion.prompt_tokens + (completion.completion_tokens or 0))
            return completion

    def _logprob_params(self, max_tokens: int, seed: int) -> dict[str, Any]:
        params: dict[str, Any] = {"max_tokens": max_tokens, "temperature": 0.0, "logprobs": True,
                                  "top_logprobs": self.config.top_logprobs}
        if self.transport.supports("seed"):
            params["seed"] = seed
        return params

    def _sample_params(self, max_tokens: int, temperature: float, seed: int) -> dict[str, Any]:
        params: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature}
        if self.transport.supports("seed"):
            params["seed"] = seed
        return params

    # -- capability probe ---------------------------------------------------------------------------
    async def start(self) -> ModelInfo:
        details: dict[str, Any] = {"transport": self.transport.name, "api_base": self.config.api_base,
                                   "top_logprobs": self.config.top_logprobs, "api_key_env": self.config.api_key_env,
                                   "concurrency": self.config.concurrency, "rpm": self.config.rpm, "tpm": self.config.tpm}
        supported = self.config.logprobs
        completion: Completion | None = None
        if supported is None and not (self.transport.supports("logprobs") and self.transport.supports("top_logprobs")):
            supported = False
            details["probe"] = "litellm lists no logprobs parameter for this provider"
        if supported is None:
            completion, supported = await self._probe()
            details["probe"] = "response carried top_logprobs" if supported else "responses carried no logprobs"
        return ModelInfo(
            backend="litellm",
            resolved_name=(completion.model if completion and completion.model else self.model),
            revision=completion.system_fingerprint if completion else None,
            logprobs_supported=supported,
            details=details,
        )

    async def _probe(self) -> tuple[Completion, bool]:
        """Ask for one token with logprobs. Transient faults are retried here (the run cannot start
        without the answer); a response without logprobs is asked again so that one faulty response is
        not mistaken for a model without logprobs."""
        last: Completion | None = None
        without = 0
        delay = 0.5
        for attempt in range(PROBE_ATTEMPTS):
            try:
                completion = await self._send(PROBE_MESSAGES, self._logprob_params(1, 0))
            except BackendError as error:
                if error.error_class == "bad_request" and "logprob" in str(error).lower():
                    # A provider that rejects the logprobs parameters itself (not mapped by litellm).
                    return Completion("", None, None, None, None, None, None, 0.0), False
                if not error.retryable or attempt == PROBE_ATTEMPTS - 1:
                    raise RuntimeError(f"{self.model}: the capability probe failed: {error}") from None
                await asyncio.sleep(min(error.retry_after if error.retry_after is not None else delay, 30.0))
                delay *= 2
                continue
            last = completion
            if completion.tokens and completion.tokens[0].top:
                return completion, True
            without += 1
            if without >= 3:
                return completion, False
        if last is None:
            raise RuntimeError(f"{self.model}: the capability probe got no response")
        return last, False

    # -- scoring ------------------------------------------------------------------------------------
    async def score(self, trials: list[Trial], settings: ScoringSettings) -> list[list[ResultRow]]:
        if settings.mode == "logprob":
            if len(trials) == 1:  # the usual case (max_batch = 1): no extra task per request
                return [await self._score_logprob(trials[0], settings)]
            return list(await asyncio.gather(*(self._score_logprob(t, settings) for t in trials)))
        if settings.mode == "sample":
            return list(await asyncio.gather(*(self._score_sample(t, settings) for t in trials)))
        raise BackendError("unsupported_mode", f"{settings.mode} mode needs a local model (hf:...); API models "
                           "support logprob and sample", retryable=False)

    async def _messages(self, trial: Trial, settings: ScoringSettings) -> tuple[list[dict[str, str]], str | None]:
        """The trial's messages; multi-turn forms first get the model's own greedy answer."""
        messages = [{"role": m.role, "content": m.content} for m in trial.messages]
        if not trial.followups:
            return messages, None
        first = await self.request(messages, self._sample_params(settings.max_tokens, 0.0, settings.seed))
        answer = first.text.strip()
        messages.append({"role": "assistant", "content": answer})
        messages += [{"role": t.role, "content": t.content.replace("{previous_answer}", answer)} for t in trial.followups]
        return messages, answer

    async def _score_logprob(self, trial: Trial, settings: ScoringSettings) -> list[ResultRow]:
        messages, first_answer = await self._messages(trial, settings)
        max_tokens = label_max_tokens(trial.labels)
        if trial.reasoning == "reasoning":
            max_tokens += settings.reasoning_max_tokens
        # The probe said this model returns logprobs: a response without them is a faulty response.
        completion = await self.request(messages, self._logprob_params(max_tokens, settings.seed), require_logprobs=True)
        assert completion.tokens is not None
        min_start = answer_start_index(completion.tokens, trial.answer_prefix) if trial.reasoning == "reasoning" else 0
        reading = read_labels(completion.tokens, trial.labels, min_start=min_start)
        raw_text = completion.text if first_answer is None else f"[first answer] {first_answer}\n{completion.text}"
        row: ResultRow = {
            **distribution_fields(reading.probs, trial.order),
            "sample_index": 0, "mode": "logprob", "missing_labels": reading.missing,
            "top_logprobs": _evidence(completion, reading), "raw_text": raw_text,
        }
        return [{**row, **_provenance(completion)}]

    async def _score_sample(self, trial: Trial, settings: ScoringSettings) -> list[ResultRow]:
        messages, _ = await self._messages(trial, settings)
        seed = _trial_seed(settings.seed, trial.trial_id)
        max_tokens = settings.max_tokens + (settings.reasoning_max_tokens if trial.reasoning == "reasoning" else 0)
        # The sample index is part of the cache key: without a seed parameter, M identical requests are
        # still M samples, not one.
        completions = await asyncio.gather(*(
            self.request(messages, self._sample_params(max_tokens, settings.temperature, seed + k), cache_extra={"sample": k})
            for k in range(settings.samples)))
        rows: list[ResultRow] = []
        for k, completion in enumerate(completions):
            rows.append({**sample_row(trial, completion.text, k, settings), **_provenance(completion)})
        return rows

    async def close(self) -> None:
        if self._transport is not None:
            await self._transport.close()


def _provenance(completion: Completion) -> dict[str, Any]:
    return {
        "resolved_model": completion.model, "system_fingerprint": completion.system_fingerprint,
        "prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens,
        "latency_ms": completion.latency_ms, "cost_usd": completion.cost_usd,
    }


def _evidence(completion: Completion, reading: LabelReading) -> dict[str, Any]:
    """What the distribution was read from: generated tokens up to the decision position, with their
    top-k as returned."""
    tokens = completion.tokens or []
    return {
        "position": reading.position, "start": reading.start, "found": reading.found,
        "tokens": [[t.token, round(t.logprob, 6), [[a, round(lp, 6)] for a, lp in t.top]]
                   for t in tokens[: reading.position + 1]],
    }
