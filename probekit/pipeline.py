"""A run from inputs to stored results: the library entry point behind `probekit.run` and `probekit run`.

inputs (survey files, an experiment file, Survey objects) → expansion into trials → the run's
configuration and hash → pre-flight (models resolve, modes supported, a reused PriDe prior exists) → a new
run, or the unfinished run with the same configuration resumed → the runner (probekit.runner) → the
tables derived from the finished run (the PriDe position prior of a permuted run) → the final status.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from ulid import ULID

from probekit.backends import Backend, check_model_key, engine_for, make_backend
from probekit.defaults import DEFAULT_MODEL
from probekit.experiment import RunInputs, resolve_inputs
from probekit.hashing import config_hash
from probekit.provenance import package_versions, survey_hash
from probekit.runner import ModelSummary, RunOptions, RunSummary, execute
from probekit.scoring import MODES, ScoringSettings
from probekit.scoring.priors import run_priors, source_priors
from probekit.settings import (
    REASONING_MODES,
    RunPlan,
    RunRequest,
    RunSettings,
    check_installed,
    check_ray_installed,
    plan_run,
)
from probekit.store.recorder import Recorder, StoreRecorder
from probekit.store.store import RunClaim, Store
from probekit.store.writer import patiently
from probekit.survey.expand import Trial, expand
from probekit.survey.personas import check_persona_subset
from probekit.survey.schema import ReasoningMode, Survey

DEFAULT_MODELS = [DEFAULT_MODEL]
RESULT_SHAPING_OPTIONS = ("api_base", "transport", "top_logprobs", "models_config", "api_key_env")


def scoring_settings(survey: Survey, options: RunOptions) -> ScoringSettings:
    from probekit.survey.schema import mode_problem

    scoring = survey.scoring
    problem = mode_problem(survey.kind, options.mode) if options.mode else None
    if problem:  # e.g. --mode logprob on a free-answer survey: refused before any model loads or row is stored
        raise ValueError(f"survey {survey.id}: {problem}")
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
        judging=survey.kind == "pairwise",  # a judge's verdict is never read from the responses' texts
    )


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
        **({"personas": options.personas} if options.personas is not None else {}),
        # Where an API model is served shapes its answers: a run never resumes against another endpoint.
        # Only these keys are recorded (names of key variables may be, key values never are).
        **({"endpoints": endpoints} if (endpoints := _endpoints(options)) else {}),
    }


def _endpoints(options: RunOptions) -> dict[str, dict[str, Any]]:
    return {
        model: {key: str(value) for key, value in sorted(settings.items()) if key in RESULT_SHAPING_OPTIONS and value is not None}
        for model, settings in sorted(options.backend_options.items())
        if any(key in RESULT_SHAPING_OPTIONS and value is not None for key, value in settings.items())
    }


def _preflight(options: RunOptions, settings: dict[str, ScoringSettings]) -> dict[str, Backend]:
    """Checks that need no model call, before a run is created: each model key names a model (did-you-mean
    otherwise), makes a backend (unknown options are errors) and can run each survey's scoring mode."""
    for survey_id, survey_settings in settings.items():
        if survey_settings.mode not in MODES:
            raise ValueError(f"survey {survey_id}: unknown scoring mode {survey_settings.mode!r} (use one of {', '.join(MODES)})")
    if options.uses_ray():
        check_ray_installed()  # before the run exists: a missing Ray would leave an interrupted run behind
    for model in options.models:
        check_model_key(model)
        engine = engine_for(model)
        check_installed(model, engine.name)
        for survey_id, survey_settings in settings.items():
            if survey_settings.mode not in engine.modes:
                raise ValueError(f"{model} ({engine.name}) cannot run {survey_settings.mode} mode (survey {survey_id}): it "
                                 f"supports {', '.join(sorted(engine.modes))}. Choose another --mode, or a local model "
                                 "(smollm2, hf:<dir>) for sequence scoring")
    return {model: make_backend(model, options.backend_options.get(model)) for model in dict.fromkeys(options.models)}


def _distinct_surveys(surveys: list[tuple[Survey, str, str | None]]) -> list[tuple[Survey, str, str | None]]:
    """Each survey once: the same spec given twice is asked once; two different specs with one id are an error
    (a run keys its trials and tables by survey id)."""
    from probekit.survey.errors import SpecError, SpecProblem

    kept: dict[str, tuple[Survey, str, str | None]] = {}
    for survey, digest, path in surveys:
        first = kept.get(survey.id)
        if first is None:
            kept[survey.id] = (survey, digest, path)
        elif first[1] != digest:
            raise SpecError([SpecProblem(str(path or survey.id), 1, f"survey id {survey.id!r} is also the id of a different "
                                         f"survey ({first[2] or 'given before'})", "give each survey its own id")])
    return list(kept.values())


WAIT_POLL_SECONDS = 1.0


async def _claim(recorder: Recorder, config: dict[str, Any], config_hash: str, options: RunOptions) -> RunClaim:
    """A new run, the unfinished run of this configuration taken over, or a completed one; while another live
    process runs the same configuration, wait for it (two identical commands end up as one run)."""
    told = False
    while True:
        claim = await patiently(lambda: recorder.claim_run(str(ULID()), config, config_hash, package_versions(),
                                                           force_new=options.new_run), notice=options.notice)
        if claim.action != "wait":
            return claim
        if not told and options.notice:
            options.notice(f"run {claim.run_id} with the same configuration is running ({claim.owner}); waiting for it "
                           "(use --new-run to start a separate run)")
            told = True
        await asyncio.sleep(WAIT_POLL_SECONDS)


async def run_async(inputs: Sequence[str | Path | Survey] | RunInputs, options: RunOptions | RunSettings,
                    recorder: Recorder | None = None) -> RunSummary:
    """Run surveys (or one experiment file) on models into the store; resumes an unfinished run with the same
    configuration. `inputs` may be already resolved (probekit.experiment.resolve_inputs); `options` the checked
    settings (probekit.settings.plan_run) or the runner's options."""
    if isinstance(options, RunSettings):
        options = options.run_options()
    resolved = inputs if isinstance(inputs, RunInputs) else resolve_inputs(list(inputs))
    reasoning = _reasoning_modes(options.reasoning)
    if options.experiment is None and resolved.experiment is not None:
        options.experiment = resolved.experiment
    if not options.models:
        options.models = list(resolved.models or DEFAULT_MODELS)
    if options.executor not in ("auto", "local", "ray"):
        raise ValueError(f"unknown executor {options.executor!r}: use local or ray")
    if options.executor != "local" and options.ray is None:
        options.ray = resolved.ray  # the experiment file's `executor:` block
    options.models = list(dict.fromkeys(options.models))  # a model named twice is asked once
    surveys = _distinct_surveys([(survey, survey_hash(survey), path) for survey, path in resolved.surveys])
    per_survey_trials: dict[str, list[Trial]] = {}
    all_trials: list[Trial] = []
    check_persona_subset([survey for survey, _, _ in surveys], options.personas)
    for survey, _digest, _path in surveys:
        # With a reused PriDe prior every item is asked once, unless orders are given explicitly.
        policy = options.orders or ("identity" if options.prior_from else None)
        # --personas applies to the surveys that have personas, each keeping the named ones it has.
        subset = None
        if survey.personas is not None and options.personas is not None:
            subset = [i for i in options.personas if any(p.id == i for p in survey.personas.people)]
        trials = expand(survey, policy=policy, reasoning_modes=reasoning, limit=options.limit, seed=options.seed,
                        personas=subset)
        per_survey_trials[survey.id] = trials
        all_trials.extend(trials)
    settings = {s.id: scoring_settings(s, options) for s, _, _ in surveys}
    backends = _preflight(options, settings)
    config = run_config([(s, h) for s, h, _ in surveys], options)
    run_hash = config_hash(config)
    store = Store(options.store)
    recorder = recorder or StoreRecorder(store)
    prior_rows: list[dict[str, Any]] = []
    if options.prior_from:
        # Checked before the run exists: a model without a stored prior is an error, not a silent no-op.
        prior_rows, estimated = await asyncio.to_thread(source_priors, store, options.prior_from, options.models)
        if estimated:  # the source run had stored none: they are kept with it, as its own run would have
            await patiently(recorder.record_priors, options.prior_from, estimated, notice=options.notice)
    if options.resume:
        run_id, resumed = options.resume, True
        stored = await asyncio.to_thread(recorder.resume_run, run_id)
        if stored.get("surveys") != config["surveys"]:
            raise ValueError(f"run {run_id} was made with other surveys or settings; resume it with the same arguments")
    else:
        claim = await _claim(recorder, config, run_hash, options)
        if claim.action == "done":
            # A finished command is a no-op: nothing is sent again (--new-run repeats it on purpose).
            return RunSummary(run_id=claim.run_id, resumed=False, store=options.store, trials=len(all_trials), models=[],
                              already_complete=True)
        run_id, resumed = claim.run_id, claim.action == "resume"
    def record_inputs() -> None:
        with recorder.session():  # one open of the store for the whole set-up
            for survey, digest, path in surveys:
                recorder.record_survey(survey, digest, path)
                recorder.record_trials(run_id, digest, per_survey_trials[survey.id])
            if prior_rows:
                recorder.record_priors(run_id, prior_rows)

    summaries: list[ModelSummary] = []
    status = "interrupted"
    try:
        summaries = await execute(run_id, all_trials, settings, recorder, options, backends,
                                  ready=asyncio.to_thread(record_inputs), resumed=resumed)
        if any(t.order != tuple(range(len(t.order))) for t in all_trials):
            # Record the PriDe position prior with the run, so `--prior-from RUN` can reuse it later.
            priors = await patiently(lambda: run_priors(store, run_id, seed=options.seed), notice=options.notice)
            if priors:
                await patiently(recorder.record_priors, run_id, priors, notice=options.notice)
        status = "completed" if sum(s.error for s in summaries) == 0 else "completed_with_errors"
    finally:
        await patiently(recorder.finish_run, run_id, status, notice=options.notice)
    return RunSummary(run_id=run_id, resumed=resumed, store=options.store, trials=len(all_trials), models=summaries)


def _reasoning_modes(modes: Sequence[str] | None) -> list[ReasoningMode] | None:
    """RunOptions' reasoning modes, checked (a library caller's RunOptions is not parsed at the CLI's edge)."""
    if modes is None:
        return None
    bad = [mode for mode in modes if mode not in REASONING_MODES]
    if bad:
        raise ValueError(f"unknown reasoning mode(s) {', '.join(map(repr, bad))}: use direct and/or reasoning")
    return [known for mode in modes for known in REASONING_MODES if known == mode]


def prepare_run(inputs: Sequence[str | Path | Survey] | str | Path | Survey, options: RunOptions | None = None,
                **kwargs: Any) -> tuple[RunPlan | None, RunOptions]:
    """The plan and runner options of a library call: keywords are `probekit run`'s options
    (probekit.settings.RunRequest, plus `store` and the runner's own knobs), checked before anything is
    stored; or the runner's `options` given directly (then no plan: the inputs are surveys or an experiment).
    Raises SpecError / probekit.settings.SettingsError."""
    if options is not None:
        if kwargs:
            raise TypeError(f"give either options or keywords, not both (got {', '.join(sorted(kwargs))})")
        return None, options
    paths = [inputs] if isinstance(inputs, (str, Path, Survey)) else list(inputs)
    store = kwargs.pop("store", None)
    # The runner's own knobs (retries, flushing, callbacks, extra engine options) pass through to RunOptions.
    runner_only = {name: kwargs.pop(name) for name in list(kwargs)
                   if name not in RunRequest.model_fields and name in {f.name for f in fields(RunOptions)}}
    if isinstance(kwargs.get("models"), str):
        kwargs["models"] = [kwargs["models"]]
    if kwargs.get("models") is not None:
        kwargs["models"] = tuple(kwargs["models"]) or None  # models=[]: the spec's default models
    plan = plan_run(paths, RunRequest.checked(**kwargs), **({"store": store} if store is not None else {}))
    options = plan.settings.run_options()
    if runner_only:
        engine_options = {**options.backend_options}
        for model, extra in (runner_only.pop("backend_options", None) or {}).items():
            engine_options[model] = {**engine_options.get(model, {}), **extra}
        options = replace(options, backend_options=engine_options, **runner_only)
    return plan, options


def run(inputs: Sequence[str | Path | Survey] | str | Path | Survey, options: RunOptions | None = None,
        **kwargs: Any) -> RunSummary:
    """Synchronous entry point for surveys and experiment files: `run(["surveys/x.yaml"], models=["smollm2"])`,
    `run("experiments/spinning_arrow.yaml")` (its default models unless `models=` is given). A judging
    experiment runs through `probekit.run` (the judging workflow sits above the pipeline)."""
    plan, options = prepare_run(inputs, options, **kwargs)
    if plan is not None and plan.judging is not None:
        raise ValueError("a judging experiment runs through probekit.run(...) or `probekit run`, not probekit.pipeline.run")
    paths = [inputs] if isinstance(inputs, (str, Path, Survey)) else list(inputs)
    return asyncio.run(run_async(plan.inputs if plan is not None and plan.inputs is not None else paths, options))
