"""The backend contract: primitives, not scoring modes.

A backend implements only what differs between engines (lm-evaluation-harness's `loglikelihood` /
`generate_until` split is the model), and declares which primitives it has:

- `label_logprobs`: exact next-token log-probabilities at the answer position, summed over the token
  variants of each label (engines that see the whole vocabulary: transformers, vLLM);
- `generate`: n continuations (temperature, seed, max tokens, stop), optionally with the top-k
  log-probabilities of every generated token (APIs give labels' probabilities this way);
- `continuation_logprobs`: per-token log-likelihoods of given continuations.

The scoring modes (logprob, sample, sequence, reasoning, follow-up turns), label reading and the mapping
back to canonical option order are written once, in probekit.scoring, over these primitives. Retries,
concurrency, rate limits, the response cache and capability probes live in probekit.runtime.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from probekit.errors import ProbekitError


class BackendError(ProbekitError):
    """A failed call. `retryable` faults (rate limits, 5xx, timeouts, resets) are retried by the runtime;
    the others (bad request, auth, context length, unsupported primitive) are stored as errors at once."""

    def __init__(self, error_class: str, message: str, *, retryable: bool, retry_after: float | None = None):
        super().__init__(message)
        self.error_class = error_class
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True)
class TokenLogprobs:
    """One generated position: the token chosen, its logprob and the top-k alternatives."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...]


# -- what the primitives take ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Prompt:
    """What the model is given: chat messages for chat models, the same text as one plain completion prompt
    for models without a chat template, and the start of the model's answer that the engine continues
    from (reasoning mode: the reasoning and the answer prefix)."""

    messages: tuple[tuple[str, str], ...]
    """(role, content) pairs."""
    completion: str
    """Plain-text rendering for models without a chat template."""
    assistant_prefix: str = ""
    """Text appended after the rendered prompt (the beginning of the assistant's answer)."""

    def message_dicts(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]

    def with_turns(self, turns: Sequence[tuple[str, str]]) -> Prompt:
        """The conversation continued by further turns. In the plain rendering a user turn starts a new
        line and an assistant turn follows on the same line (as the label follows the prompt)."""
        completion = self.completion
        for role, content in turns:
            completion += ("\n" + content) if role == "user" else (" " + content)
        return Prompt(self.messages + tuple(turns), completion, "")

    def with_prefix(self, prefix: str) -> Prompt:
        return replace(self, assistant_prefix=prefix)


@dataclass(frozen=True, slots=True)
class LabelRequest:
    """P(label) at the position right after the prompt, for each label (its surface forms summed)."""

    def label_forms(self) -> tuple[tuple[str, ...], ...]:
        return self.forms or tuple((label,) for label in self.labels)

    prompt: Prompt
    labels: tuple[str, ...]
    forms: tuple[tuple[str, ...], ...] = ()
    """Per label, the surface forms whose probabilities are summed ("A", " A", "(A", ...): decided by the
    scoring layer (`probekit.survey.labels.label_forms`), so every engine counts the same variants. Empty:
    each label only as written."""
    group: Hashable = None
    """Requests with the same group (one item's option orders in one form) share most of their prompt;
    engines may compute that prefix once. Never changes the numbers."""
    context: Any = field(default=None, compare=False, repr=False)
    """The trial, for scripted test engines only (the fake backend); real engines read only the prompt."""


@dataclass(frozen=True, slots=True)
class GenerateRequest:
    """`n` continuations of the prompt."""

    prompt: Prompt
    max_tokens: int
    temperature: float = 0.0
    seed: int | None = None
    n: int = 1
    stop: tuple[str, ...] = ()
    top_logprobs: int = 0
    """> 0: return the top-k log-probabilities of every generated token (at most what the engine allows)."""
    sample: int = 0
    """Distinguishes otherwise identical requests (the k-th of several unseeded samples)."""
    context: Any = field(default=None, compare=False, repr=False)
    """The trial, for scripted test engines only."""


@dataclass(frozen=True, slots=True)
class ContinuationRequest:
    """Per-token log P(continuation | prompt) for each continuation."""

    prompt: Prompt
    continuations: tuple[str, ...]
    context: Any = field(default=None, compare=False, repr=False)


# -- what they return ------------------------------------------------------------------------------
@dataclass(slots=True)
class Provenance:
    """What a response says about how it was made (stored on every result row)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    resolved_model: str | None = None
    system_fingerprint: str | None = None
    cost_usd: float | None = None
    attempts: int | None = None
    """Calls it took (set by the runtime's retries)."""


@dataclass(slots=True)
class LabelScores:
    probs: list[float]
    """P(label) per label, in the order of the request's labels (not renormalised)."""
    top: list[tuple[str, float]] | None = None
    """The most likely next tokens with their logprobs (evidence stored with the row)."""
    provenance: Provenance = field(default_factory=Provenance)


@dataclass(slots=True)
class Generation:
    text: str
    tokens: list[TokenLogprobs] | None = None
    """Per generated token: the token, its logprob and the top-k alternatives (when asked for)."""
    provenance: Provenance = field(default_factory=Provenance)


@dataclass(slots=True)
class ContinuationScores:
    token_logprobs: list[list[float]]
    """Per continuation, the logprob of each of its tokens."""
    provenance: Provenance = field(default_factory=Provenance)


@dataclass(frozen=True)
class Capabilities:
    """Which primitives an engine has."""

    label_logprobs: bool = False
    """Exact next-token logprobs over the whole vocabulary."""
    top_logprobs: int | None = 0
    """Top-k logprobs per generated token the engine returns: 0 none, None not known yet (the runtime
    probes once per run)."""
    generate: bool = True
    continuation: bool = False
    continuation_separator: str = " "
    """What separates the prompt from a continuation (a space for plain prompts, nothing after a chat
    template's generation prompt)."""
    native_samples: bool = False
    """generate() honours n > 1 itself; otherwise the runtime sends n requests (seeds seed, seed+1, ...)."""

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class RateLimits:
    """Limits of the provider, enforced by the runtime."""

    rpm: float | None = None
    tpm: float | None = None


@dataclass
class ModelInfo:
    """What a backend knows about the model it serves (stored in the `models` table)."""

    backend: str
    resolved_name: str
    capabilities: Capabilities = field(default_factory=Capabilities)
    revision: str | None = None
    weights_sha256: str | None = None
    dtype: str | None = None
    device: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def logprobs_supported(self) -> bool | None:
        caps = self.capabilities
        if caps.label_logprobs:
            return True
        return None if caps.top_logprobs is None else caps.top_logprobs > 0

    def as_row(self) -> dict[str, Any]:
        return {
            "backend": self.backend, "resolved_name": self.resolved_name, "revision": self.revision,
            "weights_sha256": self.weights_sha256, "dtype": self.dtype, "device": self.device,
            "logprobs_supported": self.logprobs_supported, "capabilities": self.capabilities.as_dict(), **self.details,
        }


def unsupported(model: str, primitive: str) -> BackendError:
    return BackendError("unsupported_mode", f"{model} has no {primitive} primitive", retryable=False)


class Backend(ABC):
    """One model behind one engine. Subclasses override the primitives their capabilities declare."""

    model: str
    """The model key as requested by the user."""
    max_batch: int = 1
    """How many requests one primitive call takes."""
    concurrency: int = 1
    """How many primitive calls may be in flight at once."""

    @abstractmethod
    async def start(self) -> ModelInfo:
        """Load or connect; called once before any primitive. Returns what is served and its capabilities."""

    def limits(self) -> RateLimits:
        return RateLimits()

    async def label_logprobs(self, requests: list[LabelRequest]) -> list[LabelScores]:
        raise unsupported(self.model, "label_logprobs")

    async def generate(self, requests: list[GenerateRequest]) -> list[list[Generation]]:
        """For each request, its n generations."""
        raise unsupported(self.model, "generate")

    async def continuation_logprobs(self, requests: list[ContinuationRequest]) -> list[ContinuationScores]:
        raise unsupported(self.model, "continuation_logprobs")

    async def close(self) -> None:
        """Release resources."""
        return None


class BlockingBackend(Backend):
    """A local engine whose work blocks (a forward pass, an engine step): `load()` and the `*_sync` primitives
    run in a worker thread, so the event loop (other models, the writer) goes on meanwhile."""

    _info: ModelInfo | None = None

    @abstractmethod
    def load(self) -> ModelInfo:
        """Load the model (once); what `start` returns."""

    async def start(self) -> ModelInfo:
        return self._info if self._info is not None else await asyncio.to_thread(self.load)

    def label_logprobs_sync(self, requests: Sequence[LabelRequest]) -> list[LabelScores]:
        raise unsupported(self.model, "label_logprobs")

    def generate_sync(self, requests: Sequence[GenerateRequest]) -> list[list[Generation]]:
        raise unsupported(self.model, "generate")

    def continuation_sync(self, requests: Sequence[ContinuationRequest]) -> list[ContinuationScores]:
        raise unsupported(self.model, "continuation_logprobs")

    async def label_logprobs(self, requests: list[LabelRequest]) -> list[LabelScores]:
        return await asyncio.to_thread(self.label_logprobs_sync, requests)

    async def generate(self, requests: list[GenerateRequest]) -> list[list[Generation]]:
        return await asyncio.to_thread(self.generate_sync, requests)

    async def continuation_logprobs(self, requests: list[ContinuationRequest]) -> list[ContinuationScores]:
        return await asyncio.to_thread(self.continuation_sync, requests)
