"""Classification of API failures into `BackendError`s: what the runner may retry and what it may not.

Retryable: rate limits (429), server errors (5xx), timeouts, dropped or refused connections, malformed
responses and responses that lack the logprobs the run relies on. Not retryable: bad requests (400, 404,
422), authentication and permission failures (401, 403) and context-length overflows, because sending the
same request again cannot succeed.

Messages are redacted before they leave this module: a provider may echo the API key ("Incorrect API key
provided: sk-...", or the whole Authorization header) and error messages end up in the store. Redaction is by
value (the key actually sent, and every environment variable whose name says it holds a credential) and by
pattern (Bearer tokens, `api_key: ...`, the usual key shapes), and always on the whole text before it is cut.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
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
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # "Authorization: Bearer <token>", "Basic <base64>", "token <value>"
    (re.compile(r"(?i)\b(bearer|basic|token)(\s+)(?!\*\*\*)[A-Za-z0-9._~+/=\-]{8,}"), r"\1\2***"),
    # api_key=..., "x-api-key": "...", password: ..., access_token=...
    (re.compile(r"(?i)((?:api[_-]?key|x-api-key|access[_-]?token|refresh[_-]?token|client[_-]?secret|secret|password|"
                r"passwd)[\"']?\s*[:=]\s*[\"']?)(?!\*\*\*)[^\s\"',;}]{6,}"), r"\1***"),
    # the usual key shapes: OpenAI/Anthropic sk-..., Google AIza..., Hugging Face hf_..., GitHub, Slack, AWS, JWTs
    (_KEY_PATTERN, "***"),
    (re.compile(r"\b(?:AIza[0-9A-Za-z_\-]{20,}|hf_[A-Za-z0-9]{16,}|gh[pousr]_[A-Za-z0-9]{16,}|xox[abprs]-[A-Za-z0-9\-]{10,}|"
                r"AKIA[0-9A-Z]{16}|eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{5,})"), "***"),
)
_SECRET_NAME = re.compile(r"(?i)(api[_-]?key|token|secret|password|passwd|credential|private[_-]?key|auth)")


def environment_secrets() -> list[str]:
    """Values of the environment variables whose names say they hold a credential (OPENAI_API_KEY, HF_TOKEN,
    MY_SECRET ...), at least 8 characters long: redacted by value wherever they appear."""
    return [value for name, value in os.environ.items() if len(value) >= 8 and _SECRET_NAME.search(name)]


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Remove secrets from a message: the given values and the credential-like environment values (longest
    first), then anything shaped like a key or an authorization header. Redact a whole text, then cut it
    (`redact_and_cut`): a key straddling the cut is otherwise half kept."""
    values = sorted({s for s in [*secrets, *environment_secrets()] if s and len(s) >= 4}, key=len, reverse=True)
    for secret in values:
        text = text.replace(secret, "***")
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_and_cut(text: str, limit: int, secrets: Iterable[str | None] = ()) -> str:
    """`redact` the whole text, then keep at most `limit` characters."""
    text = redact(text, secrets)
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
    message = redact_and_cut(f"HTTP {status}: {body}", 500, secrets)
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
    text = redact_and_cut(f"{name}: {error}", 1000, secrets)
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
