"""Sending one chat request to an API model: two transports with the same contract.

- `DirectTransport`: a lean aiohttp client for OpenAI-compatible endpoints (`openai/…`, `hosted_vllm/…`,
  any `api_base` server such as vLLM, llama.cpp, Ollama's /v1). Profiling a plain `litellm.acompletion`
  loop showed most of its ~3.7 ms of CPU per request going to per-call machinery probekit does not need
  (logging objects and callbacks, cost and model-map look-ups, parameter mapping, the openai SDK's httpx
  stack), which caps throughput at high concurrency on small machines. See docs/api-models.md.
- `LiteLLMTransport`: `litellm.acompletion` for every other provider (Anthropic, Gemini, Bedrock ...), so
  provider coverage is litellm's. litellm's own retries are switched off: the runner owns retries.

Both return a `Completion` or raise a classified `BackendError` (see probekit.backends.errors).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Protocol

from probekit.backends.base import BackendError, TokenLogprobs
from probekit.backends.errors import from_exception, from_status, redact_and_cut
from probekit.models_config import ModelConfig

OPENAI_COMPATIBLE = {"openai": ("https://api.openai.com/v1", "OPENAI_API_KEY"),
                     "hosted_vllm": (None, "HOSTED_VLLM_API_KEY")}
"""Providers the direct transport serves: default base URL and key variable."""


@dataclass
class Completion:
    """What probekit keeps of one chat completion."""

    text: str
    tokens: list[TokenLogprobs] | None
    """Per generated token logprobs; None when the response carried none."""
    model: str | None
    """The provider's resolved model name (`response.model`)."""
    system_fingerprint: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    finish_reason: str | None
    latency_ms: float
    cost_usd: float | None = None


class Transport(Protocol):
    name: str

    async def send(self, messages: list[dict[str, str]], params: dict[str, Any]) -> Completion: ...

    async def close(self) -> None: ...

    def supports(self, param: str) -> bool: ...


def _tokens(logprobs: Any) -> list[TokenLogprobs] | None:
    """Token logprobs from an OpenAI-shaped `choices[0].logprobs` (None if absent)."""
    if not logprobs:
        return None
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if content is None:
        return None
    out = []
    for entry in content:
        top = tuple((str(alt["token"]), float(alt["logprob"])) for alt in entry.get("top_logprobs") or ())
        out.append(TokenLogprobs(str(entry["token"]), float(entry["logprob"]), top))
    return out


def parse_completion(data: dict[str, Any], latency_ms: float) -> Completion:
    """An OpenAI-shaped chat completion body → Completion. Raises KeyError/TypeError/ValueError on a
    body that is not one (the caller classifies it as a malformed response)."""
    choice = data["choices"][0]
    message = choice.get("message") or {}
    usage = data.get("usage") or {}
    return Completion(
        text=message.get("content") or "",
        tokens=_tokens(choice.get("logprobs")),
        model=data.get("model"),
        system_fingerprint=data.get("system_fingerprint"),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        finish_reason=choice.get("finish_reason"),
        latency_ms=latency_ms,
    )


def split_provider(model: str) -> tuple[str | None, str]:
    """'openai/gpt-4o-mini' → ('openai', 'gpt-4o-mini'); a bare name has no provider prefix."""
    provider, sep, name = model.partition("/")
    return (provider, name) if sep else (None, model)


def _litellm_prices(model: str) -> tuple[float, float] | None:
    """(input, output) USD per token from litellm's bundled price map, for hosted OpenAI models only (the
    one place the direct transport imports litellm: once per run, not per request)."""
    try:
        import litellm
    except ImportError:
        return None
    entry = litellm.model_cost.get(model) or {}
    prompt, completion = entry.get("input_cost_per_token"), entry.get("output_cost_per_token")
    return (float(prompt), float(completion)) if prompt is not None and completion is not None else None


class DirectTransport:
    """OpenAI-compatible chat completions over one pooled aiohttp session."""

    name = "direct"

    def __init__(self, model: str, config: ModelConfig):
        provider, self.remote_name = split_provider(model)
        default_base, default_env = OPENAI_COMPATIBLE.get(provider or "openai", (None, None))
        base = config.api_base or default_base
        if not base:
            raise ValueError(f"{model}: set api_base (models.yaml or --api-base) for this OpenAI-compatible server")
        self.url = base.rstrip("/") + "/chat/completions"
        self.config = config
        self.key_env = config.api_key_env or default_env
        self._session: Any = None
        self._prices = _litellm_prices(self.remote_name) if provider == "openai" and not config.api_base else None

    def supports(self, param: str) -> bool:
        return True

    def _client(self) -> Any:
        import aiohttp

        if self._session is None or self._session.closed:
            # One session per backend: keep-alive connections reused across all requests of the run.
            connector = aiohttp.TCPConnector(limit=self.config.concurrency, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=self.config.timeout),
                json_serialize=json.dumps, raise_for_status=False)
        return self._session

    async def send(self, messages: list[dict[str, str]], params: dict[str, Any]) -> Completion:
        key = self.config.api_key(self.key_env)  # read now: never stored on the object
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        # The OpenAI client's extra_* parameters (models.yaml `params`), as the openai SDK and litellm send them:
        # extra_headers are HTTP headers, extra_body is merged into the body, extra_query into the URL.
        extra = dict(self.config.params)
        extra_headers = {str(k): str(v) for k, v in (extra.pop("extra_headers", None) or {}).items()}
        extra_body = extra.pop("extra_body", None) or {}
        extra_query = extra.pop("extra_query", None) or None
        headers.update(extra_headers)
        secrets = [key, *extra_headers.values()]
        body = {"model": self.remote_name, "messages": messages, **extra, **params, **extra_body}
        started = time.perf_counter()
        try:
            async with self._client().post(self.url, data=json.dumps(body), headers=headers, params=extra_query) as response:
                raw = await response.read()
                status = response.status
                response_headers = response.headers
        except Exception as error:  # aiohttp / asyncio network faults and timeouts
            raise from_exception(error, secrets=secrets) from None
        latency = (time.perf_counter() - started) * 1000
        text = raw.decode("utf-8", "replace")
        if status >= 400:
            raise from_status(status, text, response_headers, secrets=secrets)
        try:
            completion = parse_completion(json.loads(text), latency)
        except (ValueError, KeyError, TypeError, IndexError) as error:
            raise BackendError("malformed_response", redact_and_cut(f"unparseable response ({type(error).__name__}: {error}): {text}",
                                                                    400, secrets), retryable=True) from None
        if self._prices is not None and completion.prompt_tokens is not None:
            completion.cost_usd = (completion.prompt_tokens * self._prices[0]
                                   + (completion.completion_tokens or 0) * self._prices[1])
        return completion

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class LiteLLMTransport:
    """Any litellm model string through `litellm.acompletion`."""

    name = "litellm"

    def __init__(self, model: str, config: ModelConfig):
        import litellm

        litellm.suppress_debug_info = True
        litellm.telemetry = False
        self.litellm = litellm
        self.model = model
        self.config = config
        try:
            self._supported = set(litellm.get_supported_openai_params(model=model) or [])
        except Exception:  # an unmapped provider: let the call itself say what is wrong
            self._supported = set()

    def supports(self, param: str) -> bool:
        return not self._supported or param in self._supported

    async def send(self, messages: list[dict[str, str]], params: dict[str, Any]) -> Completion:
        key = self.config.api_key()  # None: litellm reads the provider's usual variable itself
        kwargs: dict[str, Any] = {**self.config.params, **params}
        if self.config.api_base:
            kwargs["api_base"] = self.config.api_base
        if key:
            kwargs["api_key"] = key
        started = time.perf_counter()
        secrets = [key, *[str(v) for v in (kwargs.get("extra_headers") or {}).values()]]
        try:
            response = await self.litellm.acompletion(
                model=self.model, messages=messages, timeout=self.config.timeout, num_retries=0, max_retries=0, **kwargs)
        except Exception as error:  # the provider's text (litellm's AuthenticationError may quote the header): redacted
            raise from_exception(error, secrets=secrets) from None
        latency = (time.perf_counter() - started) * 1000
        try:
            data = response.model_dump() if hasattr(response, "model_dump") else dict(response)
            completion = parse_completion(data, latency)
        except (ValueError, KeyError, TypeError, IndexError) as error:
            raise BackendError("malformed_response", f"unparseable response ({type(error).__name__}: {error})", retryable=True) from None
        hidden = getattr(response, "_hidden_params", None) or {}
        cost = hidden.get("response_cost") if isinstance(hidden, dict) else None
        completion.cost_usd = float(cost) if isinstance(cost, (int, float)) else None
        return completion

    async def close(self) -> None:
        return None


def make_transport(model: str, config: ModelConfig) -> Transport:
    """The direct client for OpenAI-compatible providers (unless configured otherwise), litellm for the rest."""
    provider, _ = split_provider(model)
    direct = config.transport == "direct" or (config.transport == "auto" and provider in OPENAI_COMPATIBLE)
    return DirectTransport(model, config) if direct else LiteLLMTransport(model, config)
