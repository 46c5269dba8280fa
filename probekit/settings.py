"""Run settings: one typed, frozen object for what shapes a run, built by one function from `probekit run`'s
flags, `probekit.run(...)` keywords, an experiment file's defaults and a tracking job alike.

    request = RunRequest(models=("smollm2",), orders="cyclic", reasoning=("direct", "reasoning"))
    plan = plan_run(["surveys/moralchoice_starter.yaml"], request, store="outputs/probekit.duckdb")
    plan.settings.mode, plan.settings.engines["smollm2"].engine      # typed: None, "transformers"

- `RunRequest` is what was asked, as given (None: not given, the spec's or the default applies). Mode,
  order policy and reasoning modes are parsed here, at the edge: a misspelling fails before any spec is
  read or anything is stored. A tracking job stores the same fields (`probekit.tracking.jobs.JobOptions`).
- `run_settings(request, kind=...)` turns it into `RunSettings`: model keys checked (did-you-mean), each
  model's engine options typed through the engine registry (`probekit.backends`: unknown options are
  errors), each API model's `ModelConfig` resolved once (models.yaml merged with the flags), the API key
  variable and the local engine's packages checked, the executor settled. An option that does not apply to
  the spec kind or to the models named is refused with a message (`SettingsError`), never dropped.
- `plan_run(paths, request)` loads the inputs (surveys, an experiment or a judging experiment) and builds
  the settings from the request and the spec's defaults.

Everything raises `SettingsError` (a ValueError) naming the option and the fix; spec files raise SpecError.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from probekit.defaults import DEFAULT_MODEL, DEFAULT_STORE
from probekit.errors import EXIT_SPEC_ERROR, ProbekitError
from probekit.models_config import ModelConfig
from probekit.ray_options import RayOptions, check_local_capacity, check_reachable
from probekit.survey.schema import ReasoningMode

if TYPE_CHECKING:
    from probekit.experiment import RunInputs
    from probekit.judging.spec import LoadedJudging
    from probekit.runner import RunOptions
    from probekit.survey.schema import Survey

Mode = Literal["logprob", "sample", "sequence", "generate"]
MODES: tuple[Mode, ...] = ("logprob", "sample", "sequence", "generate")
REASONING_MODES: tuple[ReasoningMode, ...] = ("direct", "reasoning")
Executor = Literal["auto", "local", "ray"]
SpecKind = Literal["survey", "experiment", "judging"]

API_OPTIONS = ("api_base", "api_key_env", "concurrency", "rpm", "tpm", "timeout")
"""Flags that configure API models (with models.yaml); refused when a run has no API model."""
RAY_OPTIONS = {"ray_address": "address", "ray_actors": "actors", "ray_gpus": "num_gpus", "ray_cpus": "num_cpus"}
"""--ray-* flags → RayOptions fields."""

NOT_FOR_JUDGING = {
    "orders": "each pair is judged in both orders and stage 1 answers with the answer survey's own settings",
    "resume": "each stage resumes its own runs: run the same command again",
    "new_run": "each stage reuses what is already stored and runs only what is missing",
    "prior_from": "PriDe priors apply to multiple-choice surveys, not to pairwise judgments",
    "personas": "its surveys are not expanded over personas (run a survey with a personas: block instead)",
}
"""Options of `probekit run` a judging experiment cannot honour, and why (the refusal says it)."""

PROVIDER_KEYS: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",), "anthropic": ("ANTHROPIC_API_KEY",), "mistral": ("MISTRAL_API_KEY",),
    "groq": ("GROQ_API_KEY",), "deepseek": ("DEEPSEEK_API_KEY",), "openrouter": ("OPENROUTER_API_KEY",),
    "xai": ("XAI_API_KEY",), "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
}
"""Hosted providers whose usual key variable is unambiguous: a run on one with no key set (and no api_base,
api_key_env or custom headers) is refused before it exists instead of failing at the first request."""

ENGINE_PACKAGES = {"transformers": ("torch", "bash scripts/setup.sh (it installs torch and probekit's local extra), "
                                             "or: pip install torch 'probekit[local]'")}
"""Packages a local engine imports only when its model loads: checked before a run exists."""


class SettingsError(ProbekitError, ValueError):
    """A run setting that cannot be used (the message names the option and the fix)."""


class PersonaSubsetError(SettingsError):
    """`--personas` names ids the run's specs do not have: an input mismatch, so it exits like a spec error."""

    exit_code = EXIT_SPEC_ERROR


def flag(name: str) -> str:
    """The command-line spelling of a setting: `prior_from` → `--prior-from`."""
    return "--" + name.replace("_", "-")


def _mode(value: Any) -> Any:
    if value is not None and value not in MODES:
        raise ValueError(f"unknown scoring mode {value!r} (use one of {', '.join(MODES)})")
    return value


def _orders(value: Any) -> Any:
    if value is None:
        return None
    from probekit.survey.permutations import parse_policy

    parse_policy(str(value))  # ValueError naming the forms that work
    return str(value).strip()


def _reasoning(value: Any) -> Any:
    if value is None:
        return None
    modes = [value] if isinstance(value, str) else list(value)
    modes = [part for mode in modes for part in str(mode).replace(",", " ").split()]
    bad = [mode for mode in modes if mode not in REASONING_MODES]
    if bad:
        raise ValueError(f"unknown reasoning mode(s) {', '.join(map(repr, bad))}: use direct and/or reasoning")
    if not modes:
        raise ValueError("no reasoning mode given: use direct and/or reasoning")
    return tuple(dict.fromkeys(modes))


class RunFlags(BaseModel):
    """The settings that shape a run's results, as given (None: the spec's or the default). Shared by
    `RunRequest` (a run asked now) and a tracking job's stored options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: int | None = Field(default=None, ge=1)
    """Only the first N items of each survey (of the answer survey's questions in a judging experiment)."""
    orders: str | None = None
    """Permutation policy override: identity | reversed | cyclic | all | random:K | pride[:alpha] (checked)."""
    mode: Mode | None = None
    """Scoring mode override."""
    samples: int | None = Field(default=None, ge=1)
    """Samples per trial in sample mode."""
    temperature: float | None = Field(default=None, ge=0)
    """Sampling temperature."""
    reasoning: tuple[ReasoningMode, ...] | None = None
    """Reasoning modes override."""
    seed: int = 0
    """Seed for random orders and sampling."""
    models_config: Path | None = None
    """models.yaml: API models' endpoints, key variable NAMES and limits; local engines' options."""
    api_base: str | None = None
    """Base URL of an OpenAI-compatible server for the API models."""
    api_key_env: str | None = None
    """NAME of the environment variable holding the API key (the key itself is never stored)."""
    concurrency: int | None = Field(default=None, ge=1)
    """Requests in flight per API model."""
    rpm: float | None = Field(default=None, gt=0)
    """Requests-per-minute limit per API model."""
    tpm: float | None = Field(default=None, gt=0)
    """Tokens-per-minute limit per API model."""
    timeout: float | None = Field(default=None, gt=0)
    """Seconds per API request before it is retried."""
    personas: tuple[str, ...] | None = None
    """Only these persona ids of surveys with a personas: block (their default context stays when the spec
    includes it); checked against the surveys by `plan_run`."""

    @field_validator("mode", mode="before")
    @classmethod
    def _check_mode(cls, value: Any) -> Any:
        return _mode(value)

    @field_validator("orders", mode="before")
    @classmethod
    def _check_orders(cls, value: Any) -> Any:
        return _orders(value)

    @field_validator("reasoning", mode="before")
    @classmethod
    def _check_reasoning(cls, value: Any) -> Any:
        return _reasoning(value)

    @field_validator("personas", mode="before")
    @classmethod
    def _check_personas(cls, value: Any) -> Any:
        from probekit.survey.personas import parse_subset

        ids = parse_subset(value)
        if ids is not None and not ids:
            raise ValueError("--personas was given no persona id: name at least one, or leave it out")
        return tuple(ids) if ids is not None else None

    @classmethod
    def checked(cls, **values: Any) -> Any:
        """`cls(**values)` with validation errors as one SettingsError that names the flags."""
        try:
            return cls(**values)
        except ValidationError as error:
            raise SettingsError(validation_message(error)) from None


class RunRequest(RunFlags):
    """What a run is asked to do, as given: `probekit run`'s flags or `probekit.run(...)` keywords."""

    models: tuple[str, ...] | None = None
    """Model keys (entries may hold several, space-separated); None: the spec's, else the default model."""
    resume: str | None = None
    """Resume this run id."""
    new_run: bool = False
    """A new run even if one with the same configuration exists."""
    prior_from: str | None = None
    """PriDe: reuse the position prior stored with this run."""
    batch_size: int | None = Field(default=None, ge=1)
    """Trials per backend call for local models (their engine's max_batch)."""
    max_rate_limit_wait: float = Field(default=600.0, ge=0)
    """Seconds one request may wait out rate limits."""
    executor: Literal["local", "ray"] | None = None
    """Where local models score; None: the experiment file's executor, else this process."""
    ray_address: str | None = None
    ray_actors: int | None = Field(default=None, ge=1)
    ray_gpus: float | None = Field(default=None, ge=0)
    ray_cpus: float | None = Field(default=None, gt=0)

    @field_validator("executor", mode="before")
    @classmethod
    def _executor(cls, value: Any) -> Any:
        if value not in (None, "local", "ray"):
            raise ValueError(f"--executor {value!r}: use local or ray")
        return value


def validation_message(error: ValidationError) -> str:
    """A pydantic error as `--flag: what` lines (values are not quoted back: an API option may hold a key)."""
    lines = []
    for detail in error.errors():
        where = flag(str(detail["loc"][0])) if detail["loc"] else "settings"
        message = detail["msg"].removeprefix("Value error, ")
        if detail["type"] == "extra_forbidden":
            message = "unknown setting"
        lines.append(message if message.startswith(where) else f"{where}: {message}")
    return "; ".join(lines)


class ModelSettings(BaseModel):
    """One model of a run as its engine will be made: the engine the registry chose and its options."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    key: str
    engine: str
    """The registered engine's name (transformers, vllm, litellm, fake ...)."""
    local_weights: bool
    """The weights load in this process (or a Ray actor), not behind an API."""
    options: dict[str, Any] = Field(default_factory=dict)
    """What `make_backend` gets, checked against the options the engine registered. API models: the flags
    given and the models.yaml path (what the run's configuration records as its endpoint)."""
    api: ModelConfig | None = None
    """API models: the configuration resolved once (models.yaml entries, then the flags)."""


class RunSettings(BaseModel):
    """Everything that shapes a run, typed and checked. `run_options()` hands it to the runner."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    kind: SpecKind = "survey"
    models: tuple[str, ...] = (DEFAULT_MODEL,)
    """The models asked (a judging experiment's answer models; its judges are in `engines` too)."""
    store: Path = DEFAULT_STORE
    limit: int | None = None
    orders: str | None = None
    mode: Mode | None = None
    samples: int | None = None
    temperature: float | None = None
    reasoning: tuple[ReasoningMode, ...] | None = None
    seed: int = 0
    resume: str | None = None
    new_run: bool = False
    prior_from: str | None = None
    personas: tuple[str, ...] | None = None
    max_rate_limit_wait: float = 600.0
    engines: dict[str, ModelSettings] = Field(default_factory=dict)
    """Every model the run may load or call, by key."""
    executor: Executor = "auto"
    ray: RayOptions | None = None
    experiment: dict[str, Any] | None = None
    """The experiment's run record (probekit.experiment.run_record), stored in the run's configuration."""

    def backend_options(self) -> dict[str, dict[str, Any]]:
        """Options per model for `make_backend` (models without options are left out)."""
        return {key: dict(model.options) for key, model in self.engines.items() if model.options}

    def run_options(self, *, progress: Callable[[str, int, int, int], None] | None = None,
                    notice: Callable[[str], None] | None = None) -> RunOptions:
        """The runner's options (callbacks are not settings: they are given here)."""
        from probekit.runner import RunOptions

        return RunOptions(models=list(self.models), store=self.store, limit=self.limit, orders=self.orders, mode=self.mode,
                          samples=self.samples, temperature=self.temperature,
                          reasoning=list(self.reasoning) if self.reasoning is not None else None, seed=self.seed,
                          resume=self.resume, new_run=self.new_run, prior_from=self.prior_from,
                          backend_options=self.backend_options(), max_rate_limit_wait=self.max_rate_limit_wait,
                          experiment=self.experiment, executor=self.executor, ray=self.ray, progress=progress, notice=notice,
                          personas=list(self.personas) if self.personas is not None else None)


# -- the one builder ---------------------------------------------------------------------------------------
def split_models(entries: Sequence[str]) -> list[str]:
    """Model keys from entries that may hold several, space-separated; each once, in order."""
    return list(dict.fromkeys(m for entry in entries for m in entry.split()))


def _module_available(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def check_installed(model: str, engine_name: str) -> None:
    """A local engine's packages are installed (else the setup script is named), before a run exists."""
    needed = ENGINE_PACKAGES.get(engine_name)
    if needed is not None and not _module_available(needed[0]):
        raise SettingsError(f"{model}: the {engine_name} engine needs {needed[0]!r}, which is not installed in this "
                            f"environment: run {needed[1]}")


def check_ray_installed() -> None:
    if not _module_available("ray"):
        raise SettingsError("--executor ray needs Ray, which is not installed in this environment: "
                            "pip install 'probekit[ray]' (or drop --executor ray)")


def check_api_key(model: str, config: ModelConfig) -> None:
    """The key variable a hosted API model will read is set, before a run exists (its value is never read
    here beyond being non-empty, and never shown). A server named by api_base (often one's own, needing no
    key) and custom headers (which may carry the credentials) are not checked."""
    if config.api_base is not None or "extra_headers" in config.params:
        return
    if config.api_key_env:
        if not os.environ.get(config.api_key_env):
            raise SettingsError(f"{model}: the API key variable {config.api_key_env} (api_key_env) is not set in this "
                                "environment: export it (keys are read from the environment, never from files)")
        return
    provider = model.partition("/")[0] if "/" in model else ""
    names = PROVIDER_KEYS.get(provider)
    if names and not any(os.environ.get(name) for name in names):
        raise SettingsError(f"{model}: no API key: set {' or '.join(names)}, or name the variable that holds it with "
                            "--api-key-env (models.yaml: api_key_env)")


def ray_settings(request: RunRequest, from_experiment: RayOptions | None) -> tuple[Executor, RayOptions | None]:
    """The executor and Ray settings: the experiment's `executor:` block with the --ray-* flags on top."""
    given = {field: getattr(request, name) for name, field in RAY_OPTIONS.items() if getattr(request, name) is not None}
    if request.executor == "local":
        if given:
            name = next(n for n, f in RAY_OPTIONS.items() if f in given)
            raise SettingsError(f"{flag(name)} has no effect with --executor local: drop it, or use --executor ray")
        return "local", None
    if request.executor is None and not given:
        return "auto", from_experiment
    if request.executor is None and from_experiment is None:
        raise SettingsError("--ray-* options need --executor ray (or an experiment file with executor: {kind: ray})")
    try:
        return request.executor or "auto", replace(from_experiment or RayOptions(), **given)
    except ValueError as error:
        raise SettingsError(str(error)) from None


def _model_settings(model: str, request: RunFlags, batch_size: int | None, check_keys: bool) -> ModelSettings:
    from probekit.backends import engine_for
    from probekit.models_config import local_entry, resolve

    engine = engine_for(model)
    path = request.models_config
    if engine.local_weights:
        options: dict[str, Any] = {}
        try:
            if path is not None:
                options.update(local_entry(model, path))
        except (ValueError, OSError) as error:
            raise SettingsError(f"models config: {error}") from None
        if batch_size is not None and engine.options is not None and "max_batch" in engine.options:
            options["max_batch"] = batch_size
        if engine.options is not None and (unknown := sorted(set(options) - engine.options)):
            raise SettingsError(f"{model}: the {engine.name} engine has no option(s) {', '.join(unknown)} (it accepts: "
                                f"{', '.join(sorted(engine.options)) or 'none'})")
        check_installed(model, engine.name)
        return ModelSettings(key=model, engine=engine.name, local_weights=True, options=options)
    overrides = {name: getattr(request, name) for name in API_OPTIONS if getattr(request, name) is not None}
    try:  # models.yaml merged with the flags, once (the file is read once per process and change)
        config = resolve(model, path, overrides)
    except (ValueError, OSError) as error:
        raise SettingsError(f"models config: {error}") from None
    if check_keys:
        check_api_key(model, config)
    options = {**overrides, **({"models_config": str(path)} if path is not None else {})}
    return ModelSettings(key=model, engine=engine.name, local_weights=False, options=options, api=config)


def run_settings(request: RunRequest, *, kind: SpecKind = "survey", store: str | Path = DEFAULT_STORE,
                 default_models: Sequence[str] | None = None, judges: Sequence[str] = (),
                 experiment: dict[str, Any] | None = None, experiment_ray: RayOptions | None = None,
                 check_keys: bool = True) -> RunSettings:
    """The one place a run's settings are built (CLI, library, judging, tracking). `default_models`: the
    spec's models (used when the request names none); `judges`: a judging experiment's judge models (checked
    and configured like the answer models). `check_keys=False` skips the API key check (`track add`: a
    scheduler's environment is not the shell's). Raises SettingsError."""
    from probekit.backends import check_model_key, engine_for

    if kind == "judging":
        for name, why in NOT_FOR_JUDGING.items():
            if getattr(request, name) not in (None, False):
                raise SettingsError(f"{flag(name)} does not apply to a judging experiment: {why}. Drop it")
    if request.models is not None:
        models = split_models(request.models)
        if not models:
            raise SettingsError("--models was given no model key: name at least one (e.g. --models smollm2), or leave "
                                "--models out for the default")
    else:
        models = split_models(default_models or [DEFAULT_MODEL])
    every = list(dict.fromkeys([*models, *split_models(judges)]))
    for model in every:
        try:
            check_model_key(model)
        except ValueError as error:
            raise SettingsError(str(error)) from None
    if request.mode is not None:  # the mode applies to the models (a judging experiment's judge stage: the judges)
        for model in (split_models(judges) or models) if kind == "judging" else models:
            engine = engine_for(model)
            if request.mode not in engine.modes:
                raise SettingsError(f"{model} ({engine.name}) cannot run {request.mode} mode: it supports "
                                    f"{', '.join(sorted(engine.modes))}. Choose another --mode, or a local model "
                                    "(smollm2, hf:<dir>) for sequence scoring")
    api_models = [m for m in every if not engine_for(m).local_weights]
    if not api_models:
        for name in API_OPTIONS:
            if getattr(request, name) is not None:
                raise SettingsError(f"{flag(name)} applies to API models (provider/name); this run has none "
                                    f"({', '.join(every)}): drop it")
    if request.batch_size is not None and not any("max_batch" in (engine_for(m).options or ()) for m in every):
        raise SettingsError(f"--batch-size applies to local transformers or vLLM models; this run has none "
                            f"({', '.join(every)}): drop it")
    executor, ray = ray_settings(request, experiment_ray)
    if executor == "ray" or (executor == "auto" and ray is not None):
        check_ray_installed()
        try:  # refused before a run exists (the executor checks again when it starts)
            check_local_capacity(ray or RayOptions())
            if check_keys:  # a scheduled job's cluster need not be up when the job is added
                check_reachable((ray or RayOptions()).address)
        except (ValueError, RuntimeError) as error:
            raise SettingsError(str(error)) from None
    engines = {model: _model_settings(model, request, request.batch_size, check_keys) for model in every}
    return RunSettings(kind=kind, models=tuple(models), store=Path(store), limit=request.limit, orders=request.orders,
                       mode=request.mode, samples=request.samples, temperature=request.temperature,
                       reasoning=request.reasoning, seed=request.seed, resume=request.resume, new_run=request.new_run,
                       prior_from=request.prior_from, personas=request.personas,
                       max_rate_limit_wait=request.max_rate_limit_wait, engines=engines,
                       executor=executor, ray=ray, experiment=experiment)


@dataclass(frozen=True)
class RunPlan:
    """A run's inputs and settings: `inputs` for surveys and experiments, `judging` for a judging experiment."""

    settings: RunSettings
    inputs: RunInputs | None = None
    judging: LoadedJudging | None = None


def spec_kind(paths: Sequence[str | Path | Survey]) -> SpecKind:
    """survey, experiment or judging, from the files given (cheap: each is parsed, not validated)."""
    from probekit.experiment import is_experiment_file
    from probekit.judging.spec import is_judging_file

    files = [p for p in paths if isinstance(p, (str, Path))]
    if any(is_judging_file(p) for p in files):
        return "judging"
    return "experiment" if any(is_experiment_file(p) for p in files) else "survey"


def plan_run(paths: Sequence[str | Path | Survey], request: RunRequest, *, store: str | Path = DEFAULT_STORE,
             check_keys: bool = True) -> RunPlan:
    """Load what a run is given (survey files, Survey objects, one experiment file, or one judging experiment
    file) and build its settings. Raises SpecError for bad files, SettingsError for bad settings."""
    from probekit.experiment import resolve_inputs

    kind = spec_kind(paths)
    if kind == "judging":
        from probekit.judging.spec import load_judging

        if len(paths) != 1:
            raise SettingsError("a judging experiment runs on its own: give its file alone")
        loaded = load_judging(paths[0])  # type: ignore[arg-type]  # spec_kind found a file
        settings = run_settings(request, kind=kind, store=store, default_models=loaded.spec.models,
                                judges=loaded.spec.judges or (), check_keys=check_keys)
        return RunPlan(settings=settings, judging=loaded)
    inputs = resolve_inputs(list(paths))
    if request.personas is not None:
        from probekit.survey.personas import check_persona_subset

        try:
            check_persona_subset([survey for survey, _path in inputs.surveys], request.personas)
        except ValueError as error:
            raise PersonaSubsetError(str(error)) from None
    settings = run_settings(request, kind=kind, store=store, default_models=inputs.models, experiment=inputs.experiment,
                            experiment_ray=inputs.ray, check_keys=check_keys)
    return RunPlan(settings=settings, inputs=inputs)


__all__ = ["DEFAULT_MODEL", "DEFAULT_STORE", "MODES", "ModelSettings", "Mode", "RunFlags", "RunPlan", "RunRequest",
           "RunSettings", "SettingsError", "check_api_key", "plan_run", "run_settings", "spec_kind"]
