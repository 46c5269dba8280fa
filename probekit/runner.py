"""The runner: executes a run's trials on its models. Every model gets a runtime (probekit.runtime: retries,
cache, concurrency, rate limits, probes) and the models proceed concurrently (API models overlap each other
and a local model); trials are scored by the scoring layer (probekit.scoring) in batches, what still fails
is recorded as errors (never as answers), and results reach the recorder in small batches (through the run's
one writer, probekit.store.writer), so a killed run resumes without loss or duplicates. Planning a run (inputs,
configuration, resume, post-run tables) is probekit.pipeline's job."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probekit.backends import Backend, engine_for, make_backend
from probekit.defaults import DEFAULT_MODEL, DEFAULT_STORE
from probekit.execution import LocalScorer, Scorer, error_row
from probekit.runtime import RetryPolicy
from probekit.scoring import ScoringSettings, supported_modes
from probekit.store.recorder import Recorder
from probekit.store.writer import ResultWriter, patiently
from probekit.survey.expand import Trial

if TYPE_CHECKING:
    from probekit.ray_options import RayOptions

__all__ = ["ModelSummary", "RunOptions", "RunSummary", "error_row", "execute"]


@dataclass
class RunOptions:
    """Everything that shapes a run. Fields that change results enter the config hash (auto-resume)."""

    models: list[str] = field(default_factory=lambda: [DEFAULT_MODEL])
    store: Path = DEFAULT_STORE
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
    max_rate_limit_wait: float = 600.0
    """Seconds one request may wait out rate limits (429s do not spend max_attempts)."""
    notice: Callable[[str], None] | None = None
    """Called with messages for the user (e.g. waiting for another process running the same configuration)."""
    executor: str = "auto"
    """Where local models score: "local" (this process), "ray" (sharded over Ray actors with `ray`'s settings,
    probekit.execution.ray_pool), "auto" (ray when `ray` is given or the experiment file says so, else
    local). Not part of the configuration: a run started one way resumes the other."""
    ray: RayOptions | None = None
    """Ray settings (address, actors per model, GPUs/CPUs per actor)."""
    personas: list[str] | None = None
    """Only these persona ids of surveys with personas (and their default context when the spec includes it);
    None: every persona. In the config hash only when given."""

    def uses_ray(self) -> bool:
        return self.executor == "ray" or (self.executor == "auto" and self.ray is not None)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_attempts, self.backoff_base, self.backoff_max, self.max_rate_limit_wait)


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
    cache_hits: int = 0
    calls: int = 0


@dataclass
class RunSummary:
    run_id: str
    resumed: bool
    store: Path
    trials: int
    models: list[ModelSummary]
    already_complete: bool = False
    """The configuration had completed before: nothing was sent (`new_run` repeats it on purpose)."""

    @property
    def errors(self) -> int:
        return sum(m.error for m in self.models)


def effective_settings(model: str, runtime_modes: set[str], settings_by_survey: dict[str, ScoringSettings]) -> dict[str, ScoringSettings]:
    """Each survey's settings on this model: a logprob survey on a model without logprobs falls back to its
    fallback (sampling; recorded per row as mode='sample', never silently mixed) or is an error."""
    out = {}
    for survey_id, settings in settings_by_survey.items():
        if settings.mode == "logprob" and "logprob" not in runtime_modes:
            if settings.fallback == "error":
                raise RuntimeError(f"{model} returns no logprobs and survey {survey_id} sets fallback: error")
            settings = replace(settings, mode="sample")
        if settings.mode not in runtime_modes:
            raise RuntimeError(f"{model} cannot run {settings.mode} mode (survey {survey_id}); it supports "
                               f"{', '.join(sorted(runtime_modes)) or 'nothing'}: choose another --mode or model")
        out[survey_id] = settings
    return out


async def _run_model(key: str, scorer: Scorer, run_id: str, trials: list[Trial], settings_by_survey: dict[str, ScoringSettings],
                     recorder: Recorder, writer: ResultWriter, options: RunOptions, resumed: bool) -> ModelSummary:
    started = time.perf_counter()
    local_weights = engine_for(key).local_weights
    info = await scorer.start()  # loading a model or probing an API overlaps the recording of the run's trials
    model = scorer.model  # the backend's name for it (known once it started, wherever it runs)
    summary = ModelSummary(model=model, total=len(trials))
    settings_by_survey = effective_settings(model, supported_modes(info.capabilities), settings_by_survey)
    # Recorded while the model scores (the store may be busy recording the run's trials).
    recording_model = asyncio.ensure_future(patiently(recorder.record_model, run_id, model, info.as_row(), notice=options.notice))
    done = await patiently(recorder.completed_trials, run_id, model, notice=options.notice) if resumed else set()
    pending = [t for t in trials if t.trial_id not in done]
    summary.skipped = len(trials) - len(pending)
    # Scoring batches: the backend's batch size (one trial per task for API models), grouped by survey
    # (scoring settings), expansion order kept inside a group.
    size = max(1, scorer.max_batch)
    batches: list[tuple[ScoringSettings, list[Trial]]] = []
    for survey_id, settings in settings_by_survey.items():
        group = [t for t in pending if t.survey_id == survey_id]
        batches.extend((settings, group[start:start + size]) for start in range(0, len(group), size))
    progress_done = summary.skipped
    seen_names: set[str] = set()
    seen_fingerprints: set[str] = set()

    async def one_batch(settings: ScoringSettings, batch: list[Trial]) -> None:
        nonlocal progress_done
        rows = await scorer.score(batch, settings)  # answers, or error rows for faults that outlived the retries
        persona_of = {t.trial_id: t.persona_id for t in batch if t.persona_id}  # a persona trial's respondent
        for row in rows:
            row.run_id, row.model = run_id, model
            if persona_of:
                row.respondent = persona_of.get(row.trial_id, row.respondent)
            setattr(summary, row.status, getattr(summary, row.status) + 1)
            if row.status == "error" and row.error_class:
                summary.errors_by_class[row.error_class] = summary.errors_by_class.get(row.error_class, 0) + 1
            if row.resolved_model:
                seen_names.add(row.resolved_model)
            if row.system_fingerprint:
                seen_fingerprints.add(row.system_fingerprint)
        await writer.add(rows)
        progress_done += len(batch)
        if options.progress:
            options.progress(model, progress_done, summary.total, summary.error)

    if options.progress:
        options.progress(model, progress_done, summary.total, 0)
    # A pool of workers pulls the batches: twice the scorer's concurrency keeps every slot busy (a worker
    # builds its next request while another waits) without creating a task per trial up front, which
    # would hold back the first requests of a large run.
    queue = iter(batches)

    async def worker() -> None:
        for settings, batch in queue:
            await one_batch(settings, batch)

    await asyncio.gather(*(worker() for _ in range(min(len(batches), 2 * max(1, scorer.concurrency)))))
    await recording_model
    if seen_names or seen_fingerprints:
        # The provider's resolved names and fingerprints seen in this run (a provider may switch snapshots).
        row = info.as_row()
        row["resolved_names"], row["system_fingerprints"] = sorted(seen_names), sorted(seen_fingerprints)
        if not local_weights:  # local models keep their path and weights hash
            row["resolved_name"] = ", ".join(sorted(seen_names)) or row["resolved_name"]
            row["revision"] = ", ".join(sorted(seen_fingerprints)) or row["revision"]
        await patiently(recorder.record_model, run_id, model, row, notice=options.notice)
    summary.cache_hits, summary.calls = await scorer.stats()
    summary.seconds = time.perf_counter() - started
    return summary


def _scorer(model: str, options: RunOptions, backend: Backend | None) -> Scorer:
    """In this process, or on Ray actors for a model whose weights run locally (API models stay here)."""
    if options.uses_ray() and engine_for(model).local_weights:
        from probekit.execution.ray_pool import RayScorer
        from probekit.ray_options import RayOptions

        ray = options.ray or RayOptions()
        sharded = sum(engine_for(m).local_weights for m in options.models)
        return RayScorer(model, options.backend_options.get(model), options.retry_policy(), ray,
                         notice=options.notice, cpus_needed=sharded * ray.actors * ray.num_cpus)
    return LocalScorer(backend or make_backend(model, options.backend_options.get(model)), options.retry_policy())


async def execute(run_id: str, trials: list[Trial], settings_by_survey: dict[str, ScoringSettings], recorder: Recorder,
                  options: RunOptions, backends: dict[str, Backend] | None = None,
                  ready: Awaitable[None] | None = None, resumed: bool = True) -> list[ModelSummary]:
    """Run every trial on every model of `options.models`, the models concurrently. `ready` (the recording
    of the run's surveys and trials) runs while the models start and score; results are committed only
    after it (a result row never precedes its trial in the store). A model that cannot
    start (load failure, failed probe, unsupported mode) stops the run with its error after the others'
    completed work is recorded. `resumed=False` (a run just created) skips looking for stored results."""
    ready_task = asyncio.ensure_future(ready) if ready is not None else None
    writer = ResultWriter(recorder, run_id, flush_seconds=options.flush_seconds, flush_rows=options.flush_rows,
                          notice=options.notice)
    writer.start(ready_task)
    scorers = [_scorer(model, options, (backends or {}).get(model)) for model in options.models]
    try:
        results = await asyncio.gather(
            *(_run_model(key, scorer, run_id, trials, dict(settings_by_survey), recorder, writer, options, resumed)
              for key, scorer in zip(options.models, scorers)),
            return_exceptions=True)
        if ready_task is not None:
            await ready_task
    finally:
        await writer.close()
        for scorer in scorers:
            await scorer.close()
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        raise failures[0]
    return [r for r in results if isinstance(r, ModelSummary)]
