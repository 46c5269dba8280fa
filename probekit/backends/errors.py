"""Classification of API failures into `BackendError`s: what the runner may retry and what it may not.

Retryable: rate limits (429), server errors (5xx), timeouts, dropped or refused connections, malformed
responses and responses that lack the logprobs the run relies on. Not retryable: bad requests (400, 404,
422), authentication and permission failures (401, 403) and context-length overflows, because sending the
same request again cannot succeed.

Messages are redacted before they leave this module: a provider may echo the API key ("Incorrect API key
provided: sk-...") and error messages end up in the store.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

from probekit.backends.base import BackendError

RETRYABLE_CLASSES = frozenset({"rate_limit", "server_error", "timeout", "connection", "malformed_response", "missing_logprobs"})
"""Error classes the runner retries."""

_CONTEXT_MARKERS = ("context length", "context_length", "maximum context", "context window", "too many tokens",
                    "reduce the length", "prompt is too long")
_KEY_PATTERN = re.compile(r"\b(sk|pk|rk|key|api)[-_][A-Za-z0-9_\-]{8,}")


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Remove secrets (exact values, then anything shaped like an API key) from a message."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return _KEY_PATTERN.sub("***", text)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After (or retry-after-ms) header: delta seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def retry_after_from_headers(headers: Mapping[str, str] | None) -> float | None:
    """Retry-After from response headers (OpenAI also sends retry-after-ms)."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lowered:
        seconds = parse_retry_after(lowered["retry-after-ms"])
        if seconds is not None:
            return seconds / 1000
    return parse_retry_after(lowered.get("retry-after"))


def from_status(status: int, body: str, headers: Mapping[str, str] | None = None, *,
                secrets: Iterable[str | None] = ()) -> BackendError:
    """The BackendError for an HTTP error status and its body."""
    message = redact(f"HTTP {status}: {body[:500]}", secrets)
    lowered = body.lower()
    if status == 429:
        return BackendError("rate_limit", message, retryable=True, retry_after=retry_after_from_headers(headers))
    if status in (408, 409) or status >= 500:
        return BackendError("server_error" if status >= 500 else "timeout", message, retryable=True,
                            retry_after=retry_after_from_headers(headers))
    if status in (401, 403):
        return BackendError("auth", message + " — check the API key's environment variable and its permissions",
                            retryable=False)
    if any(marker in lowered for marker in _CONTEXT_MARKERS):
        return BackendError("context_length", message + " — the prompt is longer than the model's context", retryable=False)
    if status == 404:
        return BackendError("not_found", message + " — check the model name and api_base", retryable=False)
    return BackendError("bad_request", message, retryable=False)


def from_exception(error: BaseException, *, secrets: Iterable[str | None] = ()) -> BackendError:
    """The BackendError for an exception raised by aiohttp, httpx, openai or litellm."""
    if isinstance(error, BackendError):
        error.args = (redact(str(error), secrets),)
        return error
    secrets = list(secrets)
    name = type(error).__name__
    text = redact(f"{name}: {error}", secrets)
    status = getattr(error, "status_code", None)
    response: Any = getattr(error, "response", None)
    headers = getattr(response, "headers", None) or getattr(error, "headers", None)
    # litellm maps provider errors to openai-style classes carrying status_code; use the status first.
    if name in {"ContextWindowExceededError"}:
        return BackendError("context_length", text, retryable=False)
    if name in {"Timeout", "APITimeoutError", "TimeoutError", "ServerTimeoutError"} or isinstance(error, asyncio.TimeoutError):
        return BackendError("timeout", text, retryable=True)
    if name in {"APIConnectionError", "ServerDisconnectedError", "ClientConnectorError", "ClientOSError",
                "ClientPayloadError", "ConnectionResetError", "ConnectError", "RemoteProtocolError", "ReadError"}:
        return BackendError("connection", text, retryable=True)
    if name in {"UnsupportedParamsError", "BadRequestError", "UnprocessableEntityError", "NotFoundError",
                "AuthenticationError", "PermissionDeniedError", "RateLimitError", "InternalServerError",
                "ServiceUnavailableError", "BadGatewayError", "APIError", "APIStatusError"} and isinstance(status, int):
        body = str(getattr(error, "message", "") or error)
        mapped = from_status(status, body, headers, secrets=secrets)
        mapped.args = (text,)
        return mapped
    if isinstance(error, (ConnectionError, OSError)):
        return BackendError("connection", text, retryable=True)
    if isinstance(error, (ValueError, KeyError, TypeError, IndexError)):
        # A response we could not parse: the provider or a proxy returned something broken.
        return BackendError("malformed_response", text, retryable=True)
    return BackendError(name, text, retryable=False)
