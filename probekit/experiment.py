"""Experiment specs: surveys × settings × analyses, replicating a paper's design on any models.

An experiment file names surveys (paths relative to the experiment file) and, per survey, the settings of
the design: which templates and factor levels, option-order policy, reasoning modes, scoring. Loading it
applies those settings to each survey, so the spec stored with the run is exactly what ran. Models come
from the command line (`--models`) or the experiment's default list. `analyses` names the tables
`probekit analyze` shows by default (checked against the analysis registry at load time).

    id: moralchoice_6forms
    surveys:
      - path: ../surveys/moralchoice.yaml
        orders: reversed
        scoring: {mode: sample, samples: 5, temperature: 1.0}
    analyses: [moralchoice, uncertainty_summary]

`resolve_inputs` turns what a run is given (survey files, one experiment file, Survey objects) into the
surveys as they run, the experiment's run record and its default models.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from probekit.execution.ray_pool import RayOptions
from probekit.survey.errors import SpecError, SpecProblem
from probekit.survey.loader import analysis_problems, survey_from_yaml
from probekit.survey.personas import Personas, resolve_personas
from probekit.survey.schema import ReasoningMode, Scoring, Survey
from probekit.survey.yamlfile import Locator, YamlDocument, paused_gc, read_yaml


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SurveyRun(_Strict):
    """One survey of an experiment and the settings the design needs."""

    path: str
    """Survey YAML file, relative to the experiment file."""
    templates: list[str] | None = None
    """Only these template ids (default: all)."""
    factors: dict[str, list[str]] = Field(default_factory=dict)
    """Only these levels of a factor, e.g. {forcing: [none, job]} (default: all levels)."""
    orders: str | None = None
    """Permutation policy for this survey (default: the survey's)."""
    reasoning: list[ReasoningMode] | None = None
    """Reasoning modes (default: the survey's)."""
    scoring: dict[str, Any] = Field(default_factory=dict)
    """Scoring fields to override (mode, samples, temperature, max_tokens ...)."""
    limit: int | None = None
    """Only the first N items (smoke runs)."""
    personas: Personas | None = None
    """Personas to ask this survey as (replacing the survey's own; `file:` relative to the experiment file);
    docs/personas.md."""


class ExecutorSpec(_Strict):
    """Where the experiment's local models run (the command line's --executor/--ray-* flags override it)."""

    kind: Literal["local", "ray"] = "local"
    """local: in the probekit process; ray: sharded over Ray actors (docs/ray.md)."""
    address: str | None = None
    """Ray cluster to join (None: a local Ray instance)."""
    actors: int = Field(default=1, ge=1)
    """Ray actors per local model."""
    gpus_per_actor: float | None = Field(default=None, ge=0)
    """GPUs per actor (default: 1, or the engine's tensor_parallel_size, when the cluster has GPUs)."""
    cpus_per_actor: float = Field(default=1.0, gt=0)
    """CPUs per actor."""

    def ray_options(self) -> RayOptions | None:
        if self.kind != "ray":
            return None
        return RayOptions(address=self.address, actors=self.actors, num_gpus=self.gpus_per_actor, num_cpus=self.cpus_per_actor)


class Experiment(_Strict):
    """An experiment: surveys with their settings, default models and the analyses that apply."""

    id: str
    """Identifier, stored with the run."""
    title: str = ""
    """Human-readable title."""
    description: str = ""
    """What the experiment replicates and how."""
    replicates: str = ""
    """Citation of the design it replicates."""
    models: list[str] = Field(default_factory=lambda: ["smollm2"])
    """Models used when the command line names none."""
    surveys: list[SurveyRun]
    """The surveys and their settings."""
    analyses: list[str] = Field(default_factory=list)
    """Tables `probekit analyze` shows by default for this experiment's runs (names from the analysis
    registry; empty: each survey's own `analyses`, else every table that applies)."""
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)
    """Where local models run; not part of the run's configuration (the rows are the same either way)."""
    meta: dict[str, Any] = Field(default_factory=dict)
    """Free-form metadata."""


def _is_experiment_data(data: Any) -> bool:
    return isinstance(data, dict) and "surveys" in data and "kind" not in data


def is_experiment_file(path: str | Path) -> bool:
    """An experiment file has `surveys:` and no survey `kind:`; cheap enough for the CLI to ask per file."""
    try:
        return _is_experiment_data(read_yaml(path).data)
    except SpecError:
        return False


def apply_settings(survey: Survey, entry: SurveyRun, where: str, line: int = 0) -> Survey:
    """The survey as the design runs it. Raises SpecError (`where`:`line`, the entry) on unknown names."""
    problems: list[SpecProblem] = []
    update: dict[str, Any] = {}
    if entry.templates is not None:
        known = [t.id for t in survey.templates]
        unknown = [t for t in entry.templates if t not in known]
        if unknown:
            problems.append(SpecProblem(where, line, f"survey {survey.id!r} has no template(s) {unknown}",
                                        f"use some of {known}"))
        update["templates"] = [t for t in survey.templates if t.id in entry.templates]
    if entry.factors:
        factors = dict(survey.factors)
        for name, levels in entry.factors.items():
            if name not in factors:
                problems.append(SpecProblem(where, line, f"survey {survey.id!r} has no factor {name!r}",
                                            f"use one of {list(factors)}"))
                continue
            missing = [level for level in levels if level not in factors[name]]
            if missing:
                problems.append(SpecProblem(where, line, f"factor {name!r} has no level(s) {missing}",
                                            f"use some of {list(factors[name])}"))
            factors[name] = {level: text for level, text in factors[name].items() if level in levels}
        update["factors"] = factors
    if entry.orders is not None:
        update["permutations"] = survey.permutations.model_copy(update={"policy": entry.orders})
    if entry.reasoning is not None:
        update["reasoning_modes"] = list(entry.reasoning)
    if entry.scoring:
        try:
            update["scoring"] = Scoring.model_validate({**survey.scoring.model_dump(), **entry.scoring})
        except ValidationError as error:
            problems.append(SpecProblem(where, line, f"scoring: {error.errors()[0]['msg']}", "fix the scoring override"))
    if entry.limit is not None:
        update["items"] = survey.items[: entry.limit]
    if entry.personas is not None:
        update["personas"] = entry.personas
    if problems:
        raise SpecError(problems)
    # Re-validate so a bad policy (e.g. 'random:x') fails here, before any model is called.
    try:
        return Survey.model_validate({**survey.model_dump(), **{k: _dump(v) for k, v in update.items()}})
    except ValidationError as error:
        raise SpecError([SpecProblem(where, line, str(error.errors()[0]["msg"]), "fix the survey settings")]) from None


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, list):
        return [_dump(v) for v in value]
    return value


def load_experiment(path: str | Path) -> tuple[Experiment, list[Survey]]:
    """Validate an experiment file and return it with its surveys, settings applied."""
    with paused_gc():
        return experiment_from_yaml(read_yaml(path))


def experiment_from_yaml(doc: YamlDocument) -> tuple[Experiment, list[Survey]]:
    """`load_experiment` of an already parsed file (`read_yaml`)."""
    path = doc.path
    locate = Locator(doc.root)
    problems = list(doc.duplicates)
    try:
        experiment = Experiment.model_validate(doc.data)
    except ValidationError as error:
        raise SpecError(problems + [
            SpecProblem(path, locate.line(list(e["loc"])), f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}",
                        "see docs/surveys.md (experiments)") for e in error.errors()]) from None
    problems.extend(analysis_problems(experiment.analyses, path, locate))
    surveys = []
    loaded: dict[Path, Survey | None] = {}  # a survey named by several entries is read once
    for index, entry in enumerate(experiment.surveys):
        survey_path = (Path(path).parent / entry.path).resolve()
        if survey_path not in loaded:
            loaded[survey_path] = None
            if not survey_path.is_file():
                problems.append(SpecProblem(path, locate.line(["surveys", index, "path"]),
                                            f"survey file {entry.path!r} not found", "paths are relative to the experiment file"))
                continue
            try:
                loaded[survey_path] = survey_from_yaml(read_yaml(survey_path))
            except SpecError as error:
                problems.extend(error.problems)
        survey = loaded[survey_path]
        if survey is None:
            continue
        if entry.personas is not None:  # the persona file read (relative to the experiment file), ids checked
            block, persona_problems = resolve_personas(entry.personas, path, locate, ("surveys", index, "personas"))
            problems.extend(persona_problems)
            entry = entry.model_copy(update={"personas": block})
        try:
            surveys.append(apply_settings(survey, entry, path, locate.line(["surveys", index])))
        except SpecError as error:
            problems.extend(error.problems)
    if problems:
        raise SpecError(problems)
    return experiment, surveys


def run_record(experiment: Experiment, path: str | Path) -> dict[str, Any]:
    """What the run stores about the experiment (in runs.config.experiment)."""
    return {"id": experiment.id, "path": str(path), "analyses": experiment.analyses,
            "surveys": [entry.model_dump(exclude_defaults=True) for entry in experiment.surveys]}


@dataclass
class RunInputs:
    """What a run is asked to do, resolved from survey files, experiment files and Survey objects."""

    surveys: list[tuple[Survey, str | None]]
    """Each survey as it runs (an experiment's settings applied) and the file it came from (None for an
    in-memory Survey)."""
    experiment: dict[str, Any] | None = None
    """`run_record(...)` of the experiment file, if one was given (stored in runs.config.experiment)."""
    models: list[str] | None = None
    """The experiment's default models; None without an experiment file."""
    ray: RayOptions | None = None
    """The experiment's `executor: {kind: ray, ...}`; None: in this process."""


def resolve_inputs(paths: Sequence[str | Path | Survey]) -> RunInputs:
    """Load any mix of survey files, experiment files (at most one) and Survey objects, in order.

    Each file is parsed once. An experiment file contributes its surveys with the design's settings
    applied, its run record and its default models. Raises SpecError listing the problems of every bad
    file (file:line — fix) before anything runs."""
    surveys: list[tuple[Survey, str | None]] = []
    problems: list[SpecProblem] = []
    experiment_record: dict[str, Any] | None = None
    models: list[str] | None = None
    ray: RayOptions | None = None
    experiment_path: str | None = None
    with paused_gc():
        for entry in paths:
            if isinstance(entry, Survey):
                surveys.append((entry, None))
                continue
            try:
                doc = read_yaml(entry)
                if not _is_experiment_data(doc.data):
                    surveys.append((survey_from_yaml(doc), str(entry)))
                    continue
                if experiment_path is not None:
                    problems.append(SpecProblem(str(entry), 1, f"a second experiment file (the first is {experiment_path})",
                                                "run one experiment file at a time (each is its own run)"))
                    continue
                experiment_path = str(entry)
                experiment, loaded = experiment_from_yaml(doc)
            except SpecError as error:
                problems.extend(error.problems)
                continue
            base = Path(entry).parent
            surveys.extend((survey, str((base / run.path).resolve())) for survey, run in zip(loaded, experiment.surveys))
            experiment_record = run_record(experiment, entry)
            models = list(experiment.models)
            ray = experiment.executor.ray_options()
    if problems:
        raise SpecError(problems)
    return RunInputs(surveys=surveys, experiment=experiment_record, models=models, ray=ray)
