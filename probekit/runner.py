"""The runner: the only place that calls backends. It schedules batches per model with bounded
concurrency, retries transient faults (exponential backoff with jitter, honouring Retry-After), records
what still fails as errors (never as answers), commits results in small batches and resumes runs."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from ulid import ULID

from probekit.backends import Backend, BackendError, make_backend
from probekit.scoring import ScoringSettings
from probekit.store.store import Store
from probekit.survey.expand import Trial, expand
from probekit.survey.loader import load_survey
from probekit.survey.schema import Survey

TRACKED_PACKAGES = ("probekit", "transformers", "torch", "litellm", "duckdb", "numpy", "llama_cpp_python")


@dataclass
class RunOptions:
    """Everything that shapes a run. Fields that change results enter the config hash (auto-resume)."""

    models: list[str] = field(default_factory=lambda: ["smollm2"])
    store: Path = Path("outputs/probekit.duckdb")
    limit: int | None = None
    orders: str | None = None
    mode: str | None = None
    samples: int | None = None
    temperature: float | None = None
    reasoning: list[str] | None = None
    seed: int = 0
    resume: str | None = None
    new_run: bool = False
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    flush_seconds: float = 1.0
    flush_rows: int = 512
    backend_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    progress: Callable[[str, int, int, int], None] | None = None
    """Called as progress(model, done, total, errors) after every batch."""
    experiment: dict[str, Any] | None = None
    """The experiment this run belongs to (probekit.experiment.run_record); stored in the run config."""
    prior_from: str | None = None
    """PriDe: reuse the position prior stored with this run (same models); orders default to identity."""


@dataclass
class ModelSummary:
    model: str
    total: int = 0
    skipped: int = 0
    ok: int = 0
    refusal: int = 0
    invalid: int = 0
    error: int = 0
    seconds: float = 0.0
    errors_by_class: dict[str, int] = field(default_factory=dict)


@dataclass
class RunSummary:
    run_id: str
    resumed: bool
    store: Path
    trials: int
    models: list[ModelSummary]

    @property
    def errors(self) -> int:
        return sum(m.error for m in self.models)


def survey_hash(survey: Survey) -> str:
    return hashlib.sha256(survey.model_dump_json().encode()).hexdigest()


def package_versions() -> dict[str, str]:
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            continue
    return versions


def scoring_settings(survey: Survey, options: RunOptions) -> ScoringSettings:
    scoring = survey.scoring
    return ScoringSettings(
        mode=options.mode or scoring.mode,
        samples=options.samples or scoring.samples,
        temperature=scoring.temperature if options.temperature is None else options.temperature,
        max_tokens=scoring.max_tokens,
        reasoning_max_tokens=scoring.reasoning_max_tokens,
        seed=options.seed,
        fallback=scoring.fallback,
        patterns=survey.matcher.patterns,
        refusals=survey.matcher.refusals,
    )


def item_rows(survey: Survey, digest: str) -> list[dict[str, Any]]:
    from probekit.survey.expand import item_options

    rows = []
    for item in survey.items:
        options = item_options(survey, item)
        rows.append({
            "survey_hash": digest, "survey_id": survey.id, "item_id": item.id, "n_options": len(options),
            "option_texts": [o.text for o in options], "option_values": [o.value for o in options],
            "option_polarities": [o.polarity for o in options], "option_refusal": [o.refusal for o in options],
            "gold": item.gold, "keyed": item.keyed, "position_dependent": item.position_dependent,
            "fields": json.dumps(item.fields), "meta": json.dumps(item.meta, default=str),
        })
    return rows


def trial_rows(trials: Sequence[Trial]) -> list[dict[str, Any]]:
    return [{
        "trial_id": t.trial_id, "survey_id": t.survey_id, "item_id": t.item_id, "template_id": t.template_id,
        "paraphrase_id": t.paraphrase_id, "factors": json.dumps(t.factors), "option_order": list(t.order),
        "label_scheme": t.label_scheme, "labels": list(t.labels), "reasoning": t.reasoning,
        "messages": json.dumps([m.model_dump() for m in t.messages]), "completion_prompt": t.completion_prompt,
        "followups": json.dumps([f.model_dump() for f in t.followups]),
    } for t in trials]


def _wait(options: RunOptions) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, BackendError) and error.retry_after is not None:
            return min(error.retry_after, options.backoff_max)
        exponential = options.backoff_base * 2 ** (state.attempt_number - 1)
        return float(min(options.backoff_max, random.uniform(0, exponential)))  # full jitter
    return wait


class _Writer:
    """Buffers result rows and commits them in small transactions (time- or size-triggered)."""

    def __init__(self, store: Store, options: RunOptions):
        self.store = store
        self.options = options
        self.buffer: list[dict[str, Any]] = []
        self.last_flush = time.monotonic()
        self.lock = asyncio.Lock()

    async def add(self, rows: list[dict[str, Any]]) -> None:
        self.buffer.extend(rows)
        if len(self.buffer) >= self.options.flush_rows or time.monotonic() - self.last_flush >= self.options.flush_seconds:
            await self.flush()

    async def flush(self) -> None:
        async with self.lock:
            if not self.buffer:
                return
            rows, self.buffer = self.buffer, []
            await asyncio.to_thread(self.store.write_results, rows)
            self.last_flush = time.monotonic()


async def _run_model(
    backend: Backend, run_id: str, trials: list[Trial], settings_by_survey: dict[str, ScoringSettings],
    store: Store, writer: _Writer, options: RunOptions,
) -> ModelSummary:
    summary = ModelSummary(model=backend.model, total=len(trials))
    started = time.perf_counter()
    info = await backend.start()
    if info.logprobs_supported is False:
        for survey_id, settings in settings_by_survey.items():
            if settings.mode == "logprob":
                if settings.fallback == "error":
                    raise RuntimeError(f"{backend.model} returns no logprobs and survey {survey_id} sets fallback: error")
                # Recorded per row (mode='sample'), never silently mixed.
                settings_by_survey[survey_id] = ScoringSettings(**{**settings.__dict__, "mode": "sample"})
    await asyncio.to_thread(store.upsert_model, run_id, backend.model, info.as_row())
    done = await asyncio.to_thread(store.completed_trials, run_id, backend.model)
    pending = [t for t in trials if t.trial_id not in done]
    summary.skipped = len(trials) - len(pending)
    # Group by survey (scoring settings) and keep expansion order inside a group.
    batches: list[tuple[ScoringSettings, list[Trial]]] = []
    for survey_id, settings in settings_by_survey.items():
        group = [t for t in pending if t.survey_id == survey_id]
        for start in range(0, len(group), backend.max_batch):
            batches.append((settings, group[start:start + backend.max_batch]))
    semaphore = asyncio.Semaphore(backend.concurrency)
    progress_done = summary.skipped

    async def one_batch(settings: ScoringSettings, batch: list[Trial]) -> None:
        nonlocal progress_done
        async with semaphore:
            attempts = 0
            try:
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(options.max_attempts),
                    wait=_wait(options),
                    retry=retry_if_exception(lambda e: isinstance(e, BackendError) and e.retryable),
                    reraise=True,
                ):
                    with attempt:
                        attempts = attempt.retry_state.attempt_number
                        per_trial = await backend.score(batch, settings)
                rows = []
                for trial, trial_result in zip(batch, per_trial):
                    for row in trial_result:
                        rows.append({**row, "run_id": run_id, "trial_id": trial.trial_id, "model": backend.model, "attempts": attempts})
                        status = row.get("status", "ok")
                        setattr(summary, status, getattr(summary, status) + 1)
            except BackendError as error:
                rows = [_error_row(run_id, trial, backend.model, error.error_class, str(error), attempts) for trial in batch]
                summary.error += len(batch)
                summary.errors_by_class[error.error_class] = summary.errors_by_class.get(error.error_class, 0) + len(batch)
            except Exception as error:  # a bug or an unexpected provider response: record, do not answer
                rows = [_error_row(run_id, trial, backend.model, type(error).__name__, str(error), attempts) for trial in batch]
                summary.error += len(batch)
                name = type(error).__name__
                summary.errors_by_class[name] = summary.errors_by_class.get(name, 0) + len(batch)
            await writer.add(rows)
            progress_done += len(batch)
            if options.progress:
                options.progress(backend.model, progress_done, summary.total, summary.error)

    if options.progress:
        options.progress(backend.model, progress_done, summary.total, 0)
    try:
        await asyncio.gather(*(one_batch(s, b) for s, b in batches))
    finally:
        await writer.flush()
        await backend.close()
    await asyncio.to_thread(_record_versions, store, run_id, backend.model, info)
    summary.seconds = time.perf_counter() - started
    return summary


def _record_versions(store: Store, run_id: str, model: str, info: Any) -> None:
    """Store the distinct resolved model names and system fingerprints the provider reported in this run
    (a provider may switch snapshots mid-run) in the models table."""
    seen = store.query(
        "SELECT coalesce(list(DISTINCT resolved_model) FILTER (WHERE resolved_model IS NOT NULL), []) AS names, "
        "coalesce(list(DISTINCT system_fingerprint) FILTER (WHERE system_fingerprint IS NOT NULL), []) AS fingerprints "
        "FROM results WHERE run_id = ? AND model = ?", [run_id, model])
    names = sorted(str(n) for n in seen["names"][0])
    fingerprints = sorted(str(f) for f in seen["fingerprints"][0])
    if not names and not fingerprints:
        return
    row = info.as_row()
    row["resolved_names"], row["system_fingerprints"] = names, fingerprints
    if info.backend != "hf":  # local models keep their path and weights hash
        row["resolved_name"] = ", ".join(names) or row["resolved_name"]
        row["revision"] = ", ".join(fingerprints) or row["revision"]
    store.upsert_model(run_id, model, row)


def _error_row(run_id: str, trial: Trial, model: str, error_class: str, message: str, attempts: int) -> dict[str, Any]:
    return {
        "run_id": run_id, "trial_id": trial.trial_id, "model": model, "sample_index": 0, "status": "error",
        "mode": "none", "error_class": error_class, "error_message": message[:2000], "attempts": attempts,
    }


def run_config(surveys: list[tuple[Survey, str]], options: RunOptions) -> dict[str, Any]:
    """The configuration stored with the run (no secrets: keys live only in the environment)."""
    return {
        "surveys": [{"id": s.id, "hash": h} for s, h in surveys],
        "models": sorted(options.models),
        "limit": options.limit, "orders": options.orders, "mode": options.mode, "samples": options.samples,
        "temperature": options.temperature, "reasoning": options.reasoning, "seed": options.seed,
        # Only present for experiment runs, so configurations (and auto-resume) of plain runs are unchanged.
        **({"experiment": options.experiment} if options.experiment else {}),
        **({"prior_from": options.prior_from} if options.prior_from else {}),
        # Where an API model is served shapes its answers: a run never resumes against another endpoint.
        # Only these keys are recorded (names of key variables may be, key values never are).
        **({"endpoints": endpoints} if (endpoints := _endpoints(options)) else {}),
    }


RESULT_SHAPING_OPTIONS = ("api_base", "transport", "top_logprobs", "models_config", "api_key_env")


def _endpoints(options: RunOptions) -> dict[str, dict[str, Any]]:
    return {
        model: {key: str(value) for key, value in sorted(settings.items()) if key in RESULT_SHAPING_OPTIONS and value is not None}
        for model, settings in sorted(options.backend_options.items())
        if any(key in RESULT_SHAPING_OPTIONS and value is not None for key, value in settings.items())
    }


async def run_async(survey_paths: Sequence[str | Path | Survey], options: RunOptions) -> RunSummary:
    """Run surveys on models into the store; resumes an unfinished run with the same configuration."""
    surveys: list[tuple[Survey, str, str | None]] = []
    for entry in survey_paths:
        survey = entry if isinstance(entry, Survey) else load_survey(entry)
        surveys.append((survey, survey_hash(survey), None if isinstance(entry, Survey) else str(entry)))
    all_trials: list[Trial] = []
    per_survey_trials: dict[str, list[Trial]] = {}
    for survey, _digest, _path in surveys:
        # With a reused PriDe prior every item is asked once, unless orders are given explicitly.
        policy = options.orders or ("identity" if options.prior_from else None)
        trials = expand(survey, policy=policy, reasoning_modes=options.reasoning, limit=options.limit, seed=options.seed)  # type: ignore[arg-type]
        per_survey_trials[survey.id] = trials
        all_trials.extend(trials)
    config = run_config([(s, h) for s, h, _ in surveys], options)
    config_hash = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
    store = Store(options.store)
    prior_rows: list[dict[str, Any]] = []
    if options.prior_from:
        from probekit.analysis.pride import source_priors

        # Checked before the run exists: a model without a stored prior is an error, not a silent no-op.
        prior_rows = await asyncio.to_thread(source_priors, store, options.prior_from, options.models)
    run_id = options.resume or (None if options.new_run else await asyncio.to_thread(store.resumable_run, config_hash))
    resumed = run_id is not None
    if run_id is None:
        run_id = str(ULID())
        await asyncio.to_thread(store.create_run, run_id, config, config_hash, package_versions().get("probekit", "dev"), package_versions())
    else:
        stored = await asyncio.to_thread(store.run_config, run_id)
        if options.resume and stored.get("surveys") != config["surveys"]:
            raise ValueError(f"run {run_id} was made with other surveys or settings; resume it with the same arguments")
        await asyncio.to_thread(store.set_run_status, run_id, "running", False)
    for survey, digest, path in surveys:
        await asyncio.to_thread(store.register_survey, digest, survey, path, item_rows(survey, digest))
        await asyncio.to_thread(store.add_trials, run_id, digest, trial_rows(per_survey_trials[survey.id]))
    if prior_rows:
        from probekit.analysis.pride import save_priors

        await asyncio.to_thread(save_priors, store, run_id, prior_rows)
    settings = {s.id: scoring_settings(s, options) for s, _, _ in surveys}
    writer = _Writer(store, options)
    summaries: list[ModelSummary] = []
    status = "interrupted"
    try:
        for model in options.models:
            backend = make_backend(model, options.backend_options.get(model))
            summaries.append(await _run_model(backend, run_id, all_trials, dict(settings), store, writer, options))
        await writer.flush()
        if any(t.order != tuple(range(len(t.order))) for t in all_trials):
            from probekit.analysis.pride import store_run_priors

            # Store the PriDe position prior with the run, so `--prior-from RUN` can reuse it later.
            await asyncio.to_thread(store_run_priors, store, run_id, seed=options.seed)
        status = "completed" if sum(s.error for s in summaries) == 0 else "completed_with_errors"
    finally:
        await writer.flush()
        await asyncio.to_thread(store.set_run_status, run_id, status)
    return RunSummary(run_id=run_id, resumed=resumed, store=options.store, trials=len(all_trials), models=summaries)


def run(survey_paths: Sequence[str | Path | Survey], options: RunOptions | None = None, **kwargs: Any) -> RunSummary:
    """Synchronous entry point: `probekit.run(["surveys/x.yaml"], models=["smollm2"])`."""
    if options is None:
        if "store" in kwargs:
            kwargs["store"] = Path(kwargs["store"])
        options = RunOptions(**kwargs)
    return asyncio.run(run_async(survey_paths, options))
