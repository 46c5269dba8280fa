"""Backends: model key → backend instance. Heavy libraries are imported only by the backend that needs them."""

from __future__ import annotations

from typing import Any

from probekit.backends.base import Backend, BackendError, ModelInfo, ResultRow

LOCAL_PREFIXES = ("hf:",)
BUILTIN_LOCAL = ("smollm2", "gemma3-270m")


def is_local(model: str) -> bool:
    return model in BUILTIN_LOCAL or model.startswith(LOCAL_PREFIXES)


def make_backend(model: str, options: dict[str, Any] | None = None) -> Backend:
    """Create the backend for a model key: built-ins and `hf:` → transformers; `fake:` → the scriptable
    test backend; anything else is a litellm model string (`openai/gpt-4o-mini`, `anthropic/...`)."""
    options = dict(options or {})
    if model.startswith("fake:") or model == "fake":
        from probekit.backends.fake import FakeBackend

        return FakeBackend(model)
    if is_local(model):
        from probekit.backends.hf import HFBackend

        return HFBackend(model, **{k: v for k, v in options.items() if k in {"token_budget", "device", "max_batch", "share_prefix"}})
    from probekit.backends.litellm_backend import LiteLLMBackend

    return LiteLLMBackend(model, **options)


__all__ = ["Backend", "BackendError", "ModelInfo", "ResultRow", "make_backend", "is_local"]
