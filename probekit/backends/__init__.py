"""Backends: model key → backend instance, through a registry of lazily imported engines.

Each engine registers a factory with the options it accepts; heavy libraries (torch, transformers,
litellm) are imported only when a model of that engine is made. An option an engine does not accept is an
error that names the accepted ones, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from probekit.backends.base import Backend, BackendError, Capabilities, ModelInfo

LOCAL_PREFIXES = ("hf:",)
BUILTIN_LOCAL = ("smollm2", "gemma3-270m")


@dataclass(frozen=True)
class Engine:
    name: str
    matches: Callable[[str], bool]
    factory: Callable[[str, dict[str, Any]], Backend]
    options: frozenset[str] | None
    """Options the engine accepts (None: the engine validates them itself)."""
    install_hint: str = ""


_ENGINES: list[Engine] = []


def register(name: str, matches: Callable[[str], bool], *, options: set[str] | None, install_hint: str = "") -> Callable[
        [Callable[[str, dict[str, Any]], Backend]], Callable[[str, dict[str, Any]], Backend]]:
    """Register an engine factory (first match wins, in registration order)."""
    def decorate(factory: Callable[[str, dict[str, Any]], Backend]) -> Callable[[str, dict[str, Any]], Backend]:
        _ENGINES.append(Engine(name, matches, factory, frozenset(options) if options is not None else None, install_hint))
        return factory
    return decorate


def is_local(model: str) -> bool:
    return model in BUILTIN_LOCAL or model.startswith(LOCAL_PREFIXES)


def is_fake(model: str) -> bool:
    return model == "fake" or model.startswith("fake:")


@register("fake", is_fake, options=set())
def _fake(model: str, options: dict[str, Any]) -> Backend:
    from probekit.backends.fake import FakeBackend

    return FakeBackend(model)


@register("transformers", is_local, options={"token_budget", "device", "max_batch", "share_prefix", "chat_template"},
          install_hint="pip install 'probekit[local]' (and torch)")
def _transformers(model: str, options: dict[str, Any]) -> Backend:
    from probekit.backends.hf import HFBackend

    return HFBackend(model, **options)


@register("litellm", lambda model: True, options=None, install_hint="pip install litellm")
def _litellm(model: str, options: dict[str, Any]) -> Backend:
    from probekit.backends.litellm_backend import LiteLLMBackend

    return LiteLLMBackend(model, **options)


def engine_for(model: str) -> Engine:
    return next(engine for engine in _ENGINES if engine.matches(model))


def make_backend(model: str, options: dict[str, Any] | None = None) -> Backend:
    """Create the backend for a model key: built-ins and `hf:` → transformers; `fake:` → the scriptable
    test backend; anything else is a litellm model string (`openai/gpt-4o-mini`, `anthropic/...`)."""
    options = dict(options or {})
    engine = engine_for(model)
    if engine.options is not None:
        unknown = sorted(set(options) - engine.options)
        if unknown:
            accepted = ", ".join(sorted(engine.options)) or "none"
            raise ValueError(f"{model}: the {engine.name} engine has no option(s) {', '.join(unknown)} (it accepts: {accepted})")
    try:
        return engine.factory(model, options)
    except ModuleNotFoundError as error:
        hint = f"; install it with: {engine.install_hint}" if engine.install_hint else ""
        raise RuntimeError(f"{model}: the {engine.name} engine needs the missing package {error.name!r}{hint}") from None


__all__ = ["Backend", "BackendError", "Capabilities", "ModelInfo", "make_backend", "is_local", "is_fake", "register"]
