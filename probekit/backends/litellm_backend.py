"""API models (any litellm model string): the `generate` primitive over one HTTP transport.

A request becomes one chat completion: `max_tokens`, `temperature`, `seed` (where the provider takes
one), `stop`, and `logprobs` with `top_logprobs` when the scoring layer asks for them (logprob mode reads
the label distribution from those, probekit.scoring). The backend declares what it knows: whether the
model returns logprobs (from models.yaml, or unknown: the runtime probes once per run), its concurrency
and its RPM/TPM limits. Retries, the cache, the limiter and the probe belong to the runtime
(probekit.runtime): every failure leaves here as a classified BackendError.
"""

from __future__ import annotations

from typing import Any

from probekit.backends.api_transport import Completion, make_transport
from probekit.backends.base import Backend, Capabilities, GenerateRequest, Generation, ModelInfo, Provenance, RateLimits
from probekit.models_config import ModelConfig, resolve


class LiteLLMBackend(Backend):
    """One API model."""

    def __init__(self, model: str, *, models_config: str | None = None, **overrides: Any):
        self.model = model
        self.config: ModelConfig = resolve(model, models_config, overrides)
        self.max_batch = 1  # one request per call: the runtime's retry and cache unit is one HTTP request
        self.concurrency = self.config.concurrency
        self._transport: Any = None

    @property
    def transport(self) -> Any:
        if self._transport is None:
            self._transport = make_transport(self.model, self.config)
        return self._transport

    def limits(self) -> RateLimits:
        return RateLimits(self.config.rpm, self.config.tpm)

    async def start(self) -> ModelInfo:
        details: dict[str, Any] = {"transport": self.transport.name, "api_base": self.config.api_base,
                                   "top_logprobs": self.config.top_logprobs, "api_key_env": self.config.api_key_env,
                                   "concurrency": self.config.concurrency, "rpm": self.config.rpm, "tpm": self.config.tpm}
        top_k: int | None
        if self.config.logprobs is not None:
            top_k = self.config.top_logprobs if self.config.logprobs else 0
            details["probe"] = "set in the model configuration"
        elif not (self.transport.supports("logprobs") and self.transport.supports("top_logprobs")):
            top_k = 0
            details["probe"] = "litellm lists no logprobs parameter for this provider"
        else:
            top_k = None  # the runtime asks the model once
        return ModelInfo(backend="litellm", resolved_name=self.model, details=details,
                         capabilities=Capabilities(top_logprobs=top_k, generate=True, native_samples=False))

    def params(self, request: GenerateRequest) -> dict[str, Any]:
        params: dict[str, Any] = {"max_tokens": request.max_tokens, "temperature": request.temperature}
        if request.seed is not None and self.transport.supports("seed"):
            params["seed"] = request.seed
        if request.stop and self.transport.supports("stop"):
            params["stop"] = list(request.stop)
        if request.top_logprobs > 0:
            params["logprobs"] = True
            params["top_logprobs"] = min(request.top_logprobs, self.config.top_logprobs)
        return params

    async def generate(self, requests: list[GenerateRequest]) -> list[list[Generation]]:
        outputs = []
        for request in requests:  # max_batch = 1: one request, unless called directly with more
            completion = await self.transport.send(request.prompt.message_dicts(), self.params(request))
            outputs.append([_generation(completion)] * request.n)
        return outputs

    async def close(self) -> None:
        if self._transport is not None:
            await self._transport.close()


def _generation(completion: Completion) -> Generation:
    return Generation(completion.text, completion.tokens, Provenance(
        prompt_tokens=completion.prompt_tokens, completion_tokens=completion.completion_tokens,
        latency_ms=completion.latency_ms, resolved_model=completion.model,
        system_fingerprint=completion.system_fingerprint, cost_usd=completion.cost_usd))
