"""The two-stage judging run: the models answer (stage 1), then judge pairs of the stored answers (stage 2).

Each stage runs per model through `probekit.pipeline.run_async` (the same runner, runtime, recorder and
resume as any run). A stage is keyed by what shapes its results (`stage_key`: the pipeline's run
configuration of that survey content on that model, without the experiment record); before running one:

- the trials of the stage that already have a stored non-error result in a run with that key are counted;
  when none is missing the stage is skipped (no model is loaded, nothing is sent);
- otherwise the latest run with that key is resumed (only its missing or failed trials are sent), or a new
  run is made.

Stage 2 reads only stored answers, so a killed run resumes in either stage and re-running the experiment never
generates an answer again. Local models run one after another, API models concurrently.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from probekit.defaults import DEFAULT_STORE
from probekit.hashing import config_hash
from probekit.judging.gold import set_gold
from probekit.judging.pairs import pair_items, pair_survey, plan_pairs
from probekit.judging.spec import LoadedJudging, load_judging
from probekit.judging.stored import StoredAnswer, stored_answers
from probekit.provenance import survey_hash
from probekit.store.store import Store
from probekit.survey.expand import expand
from probekit.survey.schema import Survey

Progress = Callable[[str, int, int, int], None]


@dataclass
class StageRun:
    """One model's part of one stage."""

    stage: str
    """answer | judge."""
    model: str
    trials: int
    """Trials of the stage on this model (both orders of every pair for a judge)."""
    missing: int
    """Trials that had no stored result before this invocation (0: the stage was skipped)."""
    run_id: str | None = None
    """The run that holds the stage's results (None when skipped and never run)."""
    ok: int = 0
    invalid: int = 0
    refusal: int = 0
    errors: int = 0
    seconds: float = 0.0
    calls: int = 0
    """Primitive calls sent to the engine in this invocation."""

    @property
    def skipped(self) -> bool:
        return self.missing == 0


@dataclass
class JudgingSummary:
    """What a judging run did."""

    experiment: str
    store: Path
    answer_survey: str
    judge_survey: str
    recognition_survey: str | None
    stages: list[StageRun] = field(default_factory=list)
    pairs: dict[str, int] = field(default_factory=dict)
    """Pair items per judge."""
    missing_answers: list[tuple[str, str]] = field(default_factory=list)
    """(model, question) without a stored answer: their pairs were left out."""
    gold: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time per stage."""

    @property
    def errors(self) -> int:
        return sum(s.errors for s in self.stages)

    def judge_runs(self) -> list[str]:
        return [s.run_id for s in self.stages if s.stage == "judge" and s.run_id]


def stored_name(model: str) -> str:
    """The model name results are stored under for a model key (the engine registry's rule)."""
    from probekit.backends import stored_model_name

    return stored_model_name(model)


def _stage_key(surveys: Sequence[Survey], model: str, options: Any) -> str:
    """What shapes a stage's results on one model: the pipeline's run configuration of these surveys (their
    content hashes, the model, seed, overrides, endpoint), without the experiment record."""
    from probekit.pipeline import run_config

    config = run_config([(s, survey_hash(s)) for s in surveys], replace(options, models=[model], experiment=None))
    return config_hash(config)


def _stage_runs(store: Store, key: str) -> list[str]:
    """Runs made for a stage key, newest first."""
    if not store.path.exists():
        return []
    frame = store.query("SELECT run_id FROM runs WHERE json_extract_string(config, '$.experiment.stage_key') = ? "
                        "ORDER BY started_at DESC", [key])
    return [str(r) for r in frame["run_id"]]


def _stored_trials(store: Store, runs: Sequence[str], model: str, samples: dict[str, int]) -> set[str]:
    """Trials with a non-error result for every expected sample (samples per trial id) in these runs."""
    if not runs:
        return set()
    marks = ", ".join("?" for _ in runs)
    frame = store.query(f"SELECT trial_id, count(DISTINCT sample_index) AS n FROM results WHERE run_id IN ({marks}) "
                        "AND model = ? AND status <> 'error' GROUP BY trial_id", [*runs, stored_name(model)])
    return {str(t) for t, n in zip(frame["trial_id"], frame["n"]) if int(n) >= samples.get(str(t), 1)}


async def _run_stage(stage: str, surveys: list[tuple[Survey, str | None]], model: str, loaded: LoadedJudging,
                     base: Any, store: Store, progress: Progress | None) -> StageRun:
    """One model's part of a stage: skipped when everything is stored, else run (resuming its stage run)."""
    from probekit.experiment import RunInputs
    from probekit.pipeline import run_async, scoring_settings

    key = _stage_key([s for s, _ in surveys], model, base)
    expected: dict[str, int] = {}
    for survey, _path in surveys:
        settings = scoring_settings(survey, base)
        per_trial = settings.samples if settings.mode in ("sample", "generate") else 1
        for trial in expand(survey, policy=base.orders, reasoning_modes=base.reasoning, seed=base.seed):
            expected[trial.trial_id] = per_trial
    runs = await asyncio.to_thread(_stage_runs, store, key)
    done = await asyncio.to_thread(_stored_trials, store, runs, model, expected)
    missing = len(set(expected) - done)
    result = StageRun(stage=stage, model=model, trials=len(expected), missing=missing, run_id=runs[0] if runs else None)
    if missing == 0:
        return result
    record = {"id": loaded.spec.id, "path": str(Path(loaded.path).resolve()), "stage": stage, "stage_key": key,
              "analyses": loaded.spec.analyses}
    options = replace(base, models=[model], experiment=record, resume=runs[0] if runs else None, new_run=False,
                      progress=(lambda m, d, t, e: progress(f"{stage}: {m}", d, t, e)) if progress else None)
    started = time.perf_counter()
    summary = await run_async(RunInputs(surveys=surveys, experiment=record, models=[model]), options)
    result.run_id = summary.run_id
    for part in summary.models:
        result.ok += part.ok
        result.invalid += part.invalid
        result.refusal += part.refusal
        result.errors += part.error
        result.calls += part.calls
    result.seconds = time.perf_counter() - started
    return result


async def _run_models(stage: str, jobs: list[tuple[str, list[tuple[Survey, str | None]]]], loaded: LoadedJudging,
                      base: Any, store: Store, progress: Progress | None) -> list[StageRun]:
    """The stage on each model: API models concurrently, models whose weights load in this process (transformers,
    vLLM, any engine registered with local_weights: they share the CPU or GPU) one at a time."""
    from probekit.backends import engine_for

    local = asyncio.Lock()

    async def one(model: str, surveys: list[tuple[Survey, str | None]]) -> StageRun:
        if engine_for(model).local_weights:
            async with local:
                return await _run_stage(stage, surveys, model, loaded, base, store, progress)
        return await _run_stage(stage, surveys, model, loaded, base, store, progress)

    return list(await asyncio.gather(*(one(model, surveys) for model, surveys in jobs)))


async def run_judging_async(experiment: str | Path | LoadedJudging, *, models: Sequence[str] | None = None,
                            judges: Sequence[str] | None = None, store: str | Path = DEFAULT_STORE,
                            limit: int | None = None, options: Any = None, progress: Progress | None = None,
                            stages: Sequence[str] = ("answer", "judge")) -> JudgingSummary:
    """Run a judging experiment (docs/judges.md): stage 1 answers, stage 2 judgments, the gold source set.
    `models` / `judges` replace the file's; `limit` the number of questions; `options` (a RunOptions) carries
    the run settings (seed, backend options for API models, retries, judge-stage mode/samples/temperature);
    `stages=["answer"]` stops after stage 1."""
    from probekit.importers.judgments import import_answers
    from probekit.runner import RunOptions

    loaded = experiment if isinstance(experiment, LoadedJudging) else load_judging(experiment)
    spec = loaded.spec
    answer_models = list(dict.fromkeys(models or spec.models))
    judge_models = list(dict.fromkeys(judges if judges is not None else (spec.judges or answer_models)))
    base = replace(options or RunOptions(), store=Path(store), limit=None, experiment=None, resume=None)
    store_obj = Store(store)
    answer = loaded.answer
    if limit is not None:
        answer = answer.model_copy(update={"items": answer.items[:limit]})
    judge_id, recognition_id = f"{spec.id}.judge", f"{spec.id}.recognition"
    summary = JudgingSummary(experiment=spec.id, store=Path(store), answer_survey=answer.id, judge_survey=judge_id,
                             recognition_survey=recognition_id if loaded.recognition is not None else None)

    # -- stage 1: the models answer (their own answer settings: the judge-stage overrides do not apply) -------
    started = time.perf_counter()
    stage1 = replace(base, mode=None, samples=None, temperature=None, orders=None, reasoning=None)
    answer_path = str(loaded.resolve(spec.answer.path))
    summary.stages += await _run_models("answer", [(m, [(answer, answer_path)]) for m in answer_models], loaded, stage1,
                                        store_obj, progress)
    summary.seconds["answer"] = time.perf_counter() - started
    if "judge" not in stages:
        return summary

    # -- the answers stage 2 compares: the models' own (from their stage runs) and others stored elsewhere -----
    started = time.perf_counter()
    if spec.judge.others_from:  # imported once (an identical import is a no-op), for every question of the survey
        from probekit.survey.loader import load_survey

        await asyncio.to_thread(import_answers, loaded.resolve(spec.judge.others_from), store=store_obj,
                                survey=load_survey(loaded.resolve(spec.answer.path)), models=spec.judge.others)
    item_ids = [item.id for item in answer.items]
    answers: dict[tuple[str, str], StoredAnswer] = {}
    for model in answer_models:
        key = _stage_key([answer], model, stage1)
        runs = await asyncio.to_thread(_stage_runs, store_obj, key)
        found = await asyncio.to_thread(stored_answers, store_obj, answer.id, [stored_name(model)], item_ids, runs=runs)
        answers.update(found)
    names = {stored_name(m): m for m in judge_models}  # stored judge name → model key
    others = [m for m in spec.judge.others if m not in {stored_name(a) for a in answer_models}]
    answers.update(await asyncio.to_thread(stored_answers, store_obj, answer.id, others, item_ids))
    gold_panel = spec.gold.file is None
    planned = plan_pairs([*(stored_name(m) for m in answer_models), *others], list(names), mode=spec.judge.pairs,
                         panel=spec.gold.panel, panel_gold=gold_panel, exclude=spec.gold.exclude)
    note = {"experiment": spec.id, "judge_survey": loaded.judge.id, "answer_survey": answer.id}
    jobs: list[tuple[str, list[tuple[Survey, str | None]]]] = []
    missing: set[tuple[str, str]] = set()
    judge_path = str(loaded.resolve(spec.judge.path))
    for judge, judge_key in names.items():
        items, lacking = pair_items(planned[judge], answer.items, answers, max_chars=spec.judge.max_answer_chars)
        missing |= set(lacking)
        summary.pairs[judge] = len(items)
        surveys: list[tuple[Survey, str | None]] = []
        if items:
            surveys.append((pair_survey(loaded.judge, judge_id, items, note), judge_path))
        if loaded.recognition is not None and spec.self_recognition is not None:
            own = [item for item in items if judge in item["meta"]["models"]]
            if own:
                surveys.append((pair_survey(loaded.recognition, recognition_id, own, {**note, "judge_survey": loaded.recognition.id}),
                                str(loaded.resolve(spec.self_recognition.path))))
        if surveys:
            jobs.append((judge_key, surveys))
    summary.missing_answers = sorted(missing)
    if spec.gold.file is not None:
        summary.gold = await asyncio.to_thread(set_gold, store_obj, judge_id, file=loaded.resolve(spec.gold.file))
    else:
        summary.gold = await asyncio.to_thread(set_gold, store_obj, judge_id, panel=spec.gold.panel, exclude=spec.gold.exclude)

    # -- stage 2: each judge judges its pairs in both orders (and recognises its own answers) -------------------
    summary.stages += await _run_models("judge", jobs, loaded, base, store_obj, progress)
    summary.seconds["judge"] = time.perf_counter() - started
    return summary


def run_judging(experiment: str | Path | LoadedJudging, **kwargs: Any) -> JudgingSummary:
    """Synchronous `run_judging_async`: `probekit.judging.run_judging("experiments/selfpref_mtbench.yaml",
    models=["smollm2", "gemma3-270m"], store="outputs/probekit.duckdb")`."""
    return asyncio.run(run_judging_async(experiment, **kwargs))


def judging_tables(summary: JudgingSummary, *, tables: Sequence[str] | None = None, n_boot: int = 1000,
                   seed: int = 0) -> dict[str, Any]:
    """The analysis tables of a judging run: the judge survey (and recognition survey) over every run of them,
    so all judges are in one table (`probekit analyze --survey <experiment>.judge` shows the same)."""
    from probekit.analysis import analyze

    out: dict[str, Any] = {}
    for survey_id in (summary.judge_survey, summary.recognition_survey):
        if survey_id is None:
            continue
        try:
            found = analyze(summary.store, survey=survey_id, tables=tables, n_boot=n_boot, seed=seed)
        except KeyError:
            continue
        out.update({f"{survey_id}.{name}" if survey_id != summary.judge_survey else name: frame for name, frame in found.items()})
    return out
