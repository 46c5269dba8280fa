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
    modes: frozenset[str]
    """Scoring modes the engine can run (checked before a run is created)."""
    install_hint: str = ""
    local_weights: bool = False
    """The weights load in the calling process (not behind an API): `--executor ray` shards the model over actors,
    and a judging experiment loads such models one at a time."""
    stored_name: Callable[[str], str] = str
    """The model name results are stored under for a key (the key itself, unless the engine says otherwise)."""

    def accepts(self, option: str) -> bool:
        """Whether the engine takes this option (an engine that validates its own options takes any)."""
        return self.options is None or option in self.options


_ENGINES: list[Engine] = []


ALL_MODES = frozenset({"logprob", "sample", "sequence", "generate"})


def register(name: str, matches: Callable[[str], bool], *, options: set[str] | None, modes: frozenset[str] = ALL_MODES,
             install_hint: str = "", local_weights: bool = False,
             stored_name: Callable[[str], str] = str
             ) -> Callable[[Callable[[str, dict[str, Any]], Backend]], Callable[[str, dict[str, Any]], Backend]]:
    """Register an engine factory (first match wins, in registration order)."""
    def decorate(factory: Callable[[str, dict[str, Any]], Backend]) -> Callable[[str, dict[str, Any]], Backend]:
        _ENGINES.append(Engine(name, matches, factory, frozenset(options) if options is not None else None, modes, install_hint,
                               local_weights, stored_name))
        return factory
    return decorate


def _fake_key(model: str) -> bool:
    return model == "fake" or model.startswith("fake:")


def fake_stored_name(model: str) -> str:
    """`fake:NAME?script` is stored as `fake:NAME`: the query only scripts the fake engine's behaviour."""
    name = model.removeprefix("fake").removeprefix(":").partition("?")[0]
    return f"fake:{name or 'fake'}"


# The scriptable test engine (probekit.backends.fake): no options, sharded by Ray like a local engine (tests).
@register("fake", _fake_key, options=set(), local_weights=True, stored_name=fake_stored_name)
def _fake(model: str, options: dict[str, Any]) -> Backend:
    from probekit.backends.fake import FakeBackend

    return FakeBackend(model)


def _transformers_key(model: str) -> bool:
    return model in BUILTIN_LOCAL or model.startswith(LOCAL_PREFIXES)


@register("transformers", _transformers_key, options={"token_budget", "device", "max_batch", "share_prefix", "chat_template"},
          install_hint="pip install 'probekit[local]' (and torch)", local_weights=True)
def _transformers(model: str, options: dict[str, Any]) -> Backend:
    from probekit.backends.hf import HFBackend

    return HFBackend(model, **options)


from probekit.backends import vllm_backend  # noqa: E402,F401  # registers `vllm:` (before litellm's catch-all)


# API models have no continuation log-likelihoods; a model without logprobs falls back to sampling (probed).
@register("litellm", lambda model: True, options=None, modes=frozenset({"logprob", "sample", "generate"}),
          install_hint="pip install litellm")
def _litellm(model: str, options: dict[str, Any]) -> Backend:
    from probekit.backends.litellm_backend import LiteLLMBackend

    return LiteLLMBackend(model, **options)


def option_names() -> frozenset[str]:
    """Every option some engine accepts (models.yaml checks: an option name is never mistaken for a secret)."""
    return frozenset(name for engine in _ENGINES for name in engine.options or ())


def engine_for(model: str) -> Engine:
    return next(engine for engine in _ENGINES if engine.matches(model))


def stored_model_name(model: str) -> str:
    """The model name a key's results are stored under (its engine's rule)."""
    return engine_for(model).stored_name(model)


# Providers named often enough to check without importing litellm (~3 s); others are looked up in litellm.
COMMON_PROVIDERS = frozenset({
    "openai", "anthropic", "gemini", "vertex_ai", "azure", "bedrock", "hosted_vllm", "mistral", "groq", "together_ai",
    "ollama", "ollama_chat", "openrouter", "deepseek", "fireworks_ai", "cohere", "huggingface", "xai", "perplexity",
    "databricks", "cerebras", "sambanova", "deepinfra", "anyscale", "lm_studio", "vllm", "text-completion-openai",
})


def _litellm_names() -> tuple[set[str], set[str]]:
    """(providers, bare model names) litellm knows, from its bundled map (no network)."""
    import os

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        import litellm
    except ImportError:
        return set(COMMON_PROVIDERS), set()
    providers = {str(getattr(p, "value", p)) for p in getattr(litellm, "provider_list", [])}
    return providers | set(COMMON_PROVIDERS), set(getattr(litellm, "model_cost", {}))


def _check_local_path(target: str) -> None:
    """`hf:<target>` that names a path (absolute, relative with ./ ../ ~, or a .gguf file) must be a model
    directory (config.json or a .gguf inside) or a GGUF file; other targets are hub ids (read from the local
    Hugging Face cache: nothing is downloaded)."""
    from pathlib import Path

    path = Path(target).expanduser()
    looks_like_path = target.startswith(("/", "./", "../", "~")) or target.endswith(".gguf") or path.exists()
    if not looks_like_path:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return  # the transformers engine's own check names the missing package
        try:
            cached = try_to_load_from_cache(target, "config.json")
        except Exception:  # not a valid hub id either (e.g. a/b/c)
            cached = None
        if not isinstance(cached, str):
            raise ValueError(f"model key 'hf:{target}': no directory {target!r} here and no hub model {target!r} in the "
                             "local Hugging Face cache (probekit downloads nothing at run time): give a model directory, "
                             "or download the model beforehand (huggingface-cli download <org>/<name>)")
        return
    if target.endswith(".gguf"):
        if not path.is_file():
            raise ValueError(f"model key 'hf:{target}': GGUF file {path} not found")
        return
    if not path.exists():
        raise ValueError(f"model key 'hf:{target}': directory {path} not found (hf:<dir> is a folder with config.json "
                         "and weights, hf:<dir>/<file>.gguf a GGUF file, hf:<org>/<name> a model in the local hub cache)")
    if not path.is_dir():
        raise ValueError(f"model key 'hf:{target}': {path} is a file; name its directory, or a .gguf file")
    if not (path / "config.json").is_file() and not any(path.glob("*.gguf")):
        raise ValueError(f"model key 'hf:{target}': {path} holds no config.json and no .gguf file, so it is not a "
                         "model directory")


def check_model_key(model: str) -> None:
    """Reject a model key that cannot name a model, before anything runs: empty, with spaces, `provider/`
    without a name, an unknown provider, or a bare name neither built in nor known to litellm (a typo such
    as `smollm3`); the message names the known keys and the closest match."""
    import difflib

    hint = ("offline models: " + ", ".join(BUILTIN_LOCAL) + "; local: hf:<dir or hub id>; API: provider/name, e.g. "
            "openai/gpt-4o-mini, anthropic/claude-3-5-haiku-latest, openai/<name> with --api-base")
    if not model.strip() or any(c.isspace() for c in model):
        raise ValueError(f"model key {model!r}: model keys have no spaces ({hint})")
    engine = engine_for(model)
    if engine.name == "transformers":
        if model.startswith("hf:") and not model.removeprefix("hf:").strip():
            raise ValueError(f"model key {model!r}: name a directory, GGUF file or hub id after hf: ({hint})")
        if model.startswith("hf:"):
            _check_local_path(model.removeprefix("hf:"))
        return
    if engine.name != "litellm":
        return
    provider, slash, name = model.partition("/")
    if slash:
        if not provider or not name.strip("/"):
            raise ValueError(f"model key {model!r}: write provider/name ({hint})")
        if provider in COMMON_PROVIDERS:
            return
        providers, _ = _litellm_names()
        if provider not in providers:
            close = difflib.get_close_matches(provider, sorted(providers), n=1)
            guess = f"; did you mean {close[0]}/{name}?" if close else ""
            raise ValueError(f"model key {model!r}: unknown provider {provider!r}{guess} ({hint})")
        return
    close = difflib.get_close_matches(model, BUILTIN_LOCAL, n=1, cutoff=0.75)
    _, names = _litellm_names() if not close else (set(), set())
    if model in names:
        return
    close = close or difflib.get_close_matches(model, sorted(names), n=1, cutoff=0.8)
    guess = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown model {model!r}{guess} ({hint})")


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


__all__ = ["Backend", "BackendError", "Capabilities", "Engine", "ModelInfo", "check_model_key", "engine_for", "make_backend",
           "register", "stored_model_name"]
