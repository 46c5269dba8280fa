"""API model configuration: `models.yaml` entries merged with CLI flags.

```yaml
models:
  openai/gpt-4o-mini:
    api_key_env: OPENAI_API_KEY      # the NAME of the variable; the key itself never appears in files
    rpm: 500
    tpm: 200000
    concurrency: 32
  "openai/local-*":                  # glob patterns match several model keys; exact keys win
    api_base: http://127.0.0.1:8000/v1
    api_key_env: LOCAL_KEY
```

Keys are read from the environment when a request is sent (`ModelConfig.api_key()`), so they are never
part of a configuration object that is stored, logged or hashed.
"""

from __future__ import annotations

import copy
import fnmatch
import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_CONCURRENCY = 16
DEFAULT_TIMEOUT = 60.0


class ModelConfig(BaseModel):
    """How to reach one API model and how hard to push it."""

    model_config = ConfigDict(extra="forbid")

    api_base: str | None = None
    """Base URL of an OpenAI-compatible server (…/v1) or a provider endpoint override."""
    api_key_env: str | None = None
    """Name of the environment variable that holds the API key (default: the provider's usual one)."""
    concurrency: int = Field(default=DEFAULT_CONCURRENCY, ge=1)
    """Requests in flight at once for this model."""
    rpm: float | None = Field(default=None, gt=0)
    """Requests-per-minute limit (None: unlimited)."""
    tpm: float | None = Field(default=None, gt=0)
    """Tokens-per-minute limit, prompt + completion (None: unlimited)."""
    timeout: float = Field(default=DEFAULT_TIMEOUT, gt=0)
    """Seconds before one request is abandoned (and retried as a timeout)."""
    top_logprobs: int = Field(default=20, ge=1)
    """How many alternatives per position to ask for: the most the provider allows (OpenAI: 20)."""
    logprobs: bool | None = None
    """Whether the model returns logprobs; None probes once per run."""
    transport: Literal["auto", "litellm", "direct"] = "auto"
    """auto: OpenAI-compatible providers (openai/, hosted_vllm/) use probekit's lean HTTP client, all
    others litellm; litellm / direct force one."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Extra request parameters passed through unchanged (e.g. extra_headers, custom_llm_provider)."""

    @field_validator("api_key_env")
    @classmethod
    def _name_not_key(cls, value: str | None) -> str | None:
        if value is not None and not is_variable_name(value):
            raise ValueError("api_key_env is the NAME of an environment variable (e.g. OPENAI_API_KEY), not the key "
                             "(the value given is not shown)")
        return value

    @field_validator("api_base")
    @classmethod
    def _no_credentials_in_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).password:
            raise ValueError("api_base holds a user:password; put the key in an environment variable and name it with "
                             "api_key_env (the value given is not shown)")
        return value

    def api_key(self, default_env: str | None = None) -> str | None:
        """The key, read from the environment now (never cached on the object)."""
        name = self.api_key_env or default_env
        return os.environ.get(name) if name else None


_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_KEY_PREFIX = re.compile(r"(?i)^(sk|pk|rk)[-_]|^(AIza|hf_|gh[pousr]_|xox[abprs]-|AKIA|eyJ)")
_SECRET_FIELD = re.compile(r"(?i)(key|token|secret|password|passwd|credential|auth|bearer)")


def is_variable_name(value: str) -> bool:
    """Whether `value` can be the NAME of an environment variable and does not look like a key itself: a key
    pasted where the name belongs is refused before it can be stored (runs.config records the name)."""
    if not _VARIABLE.fullmatch(value) or _KEY_PREFIX.search(value):
        return False

    def random_looking(part: str) -> bool:  # long, with many digits or mixed case: a token, not a word
        digits = sum(c.isdigit() for c in part)
        return len(part) >= 16 and (digits >= 4 or not (part.isupper() or part.islower()))

    return not any(random_looking(part) for part in value.split("_"))


def _safe_errors(error: ValidationError) -> str:
    """A ValidationError as text that never quotes an input value (it may be a key)."""
    lines = []
    for detail in error.errors():
        where = ".".join(str(part) for part in detail["loc"]) or "(settings)"
        if detail["type"] == "extra_forbidden":
            name = str(detail["loc"][-1])
            lines.append(f"{where}: unknown setting" + (" (a key? keys go in an environment variable named by api_key_env)"
                                                        if _SECRET_FIELD.search(name) else ""))
        else:
            lines.append(f"{where}: {detail['msg'].removeprefix('Value error, ')}")
    return "; ".join(lines)


def load_models_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """Entries of a models.yaml file: model key or glob → raw settings. Errors never quote a value of the file
    (it may hold a key). Parsed once per file version: the run's settings, each API backend and each local
    engine read the same entries without parsing the file again (a changed file is read again)."""
    try:
        stat = Path(path).stat()
        version: tuple[Any, ...] | None = (str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)
    except OSError:
        version = None  # read_text names the problem
    if version is not None and version in _PARSED:
        return copy.deepcopy(_PARSED[version])
    entries = _parse_models_file(path)
    if version is not None:
        _PARSED.clear()  # one file version kept: the one this run reads
        _PARSED[version] = copy.deepcopy(entries)
    return entries


_PARSED: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}


def _parse_models_file(path: str | Path) -> dict[str, dict[str, Any]]:
    from probekit.survey.errors import SpecError
    from probekit.survey.yamlfile import read_text

    try:
        text = read_text(path, what="models.yaml", fix="give a models.yaml file")
    except SpecError as error:
        raise ValueError("; ".join(f"{p.path}:{p.line}: {p.message}" for p in error.problems)) from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise ValueError(f"{path}:{mark.line + 1 if mark else 1}: YAML syntax error: "
                         f"{getattr(error, 'problem', None) or 'cannot parse'}") from None
    entries = data.get("models", data) if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise ValueError(f"{path}: expected a mapping 'models: {{<model>: {{api_base: ..., api_key_env: ...}}}}'")
    for key, value in entries.items():
        if not isinstance(value, dict):
            raise ValueError(f"{path}: entry {key!r} must be a mapping of settings")
        from probekit.backends import option_names

        known = set(ModelConfig.model_fields) | option_names()  # e.g. token_budget, max_num_batched_tokens
        secret_like = sorted(str(name) for name in value if name not in known and _SECRET_FIELD.search(str(name)))
        if "api_key" in value or secret_like:
            raise ValueError(f"{path}: entry {key!r} holds a key ({', '.join(secret_like) or 'api_key'}; its value is not "
                             "shown); put the key in an environment variable and name it with api_key_env")
    return entries


def resolve(model: str, path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> ModelConfig:
    """The configuration of `model`: matching file entries (globs first, the exact key last) then the
    CLI overrides (None values ignored)."""
    merged: dict[str, Any] = {}
    if path is not None:
        entries = load_models_file(path)
        for key in sorted(k for k in entries if k != model and fnmatch.fnmatchcase(model, k)):
            merged.update(entries[key])
        merged.update(entries.get(model, {}))
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return ModelConfig(**merged)
    except ValidationError as error:
        where = f"{path}: entry for {model}" if path is not None else model
        raise ValueError(f"{where}: {_safe_errors(error)}") from None


def local_entry(model: str, path: str | Path) -> dict[str, Any]:
    """A local model's models.yaml settings (engine options such as vLLM's tensor_parallel_size, transformers'
    device): its exact key, after globs of its own engine prefix (`vllm:*`, `hf:*`). Catch-all globs (`*`)
    are meant for API models and are not applied."""
    entries = load_models_file(path)
    prefix = model.split(":", 1)[0] + ":" if ":" in model else None
    merged: dict[str, Any] = {}
    for key in sorted(k for k in entries if k != model and prefix and k.startswith(prefix) and fnmatch.fnmatchcase(model, k)):
        merged.update(entries[key])
    merged.update(entries.get(model, {}))
    return merged


def backend_options(models: list[str], path: str | Path | None = None, **overrides: Any) -> dict[str, dict[str, Any]]:
    """Backend options per model for `RunOptions.backend_options`. API models: the options name the models
    file and carry CLI overrides; the backend resolves them itself, so an invalid file fails here, before
    any model is called. Local models (transformers, vLLM): their models.yaml entry is engine options,
    checked against the engine's accepted options when the backend is made (pre-flight)."""
    from probekit.backends import engine_for

    options: dict[str, dict[str, Any]] = {}
    for model in models:
        engine = engine_for(model)
        if engine.options == frozenset():  # an engine without options (the test engine) has no entry
            continue
        if engine.local_weights:
            if path is not None and (entry := local_entry(model, path)):
                options[model] = entry
            continue
        resolve(model, path, overrides)  # validate now
        entry = {k: v for k, v in overrides.items() if v is not None}
        if path is not None:
            entry["models_config"] = str(path)
        options[model] = entry
    return options
