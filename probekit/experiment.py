"""Experiment specs: surveys × settings × analyses, replicating a paper's design on any models.

An experiment file names surveys (paths relative to the experiment file) and, per survey, the settings of
the design: which templates and factor levels, option-order policy, reasoning modes, scoring. Loading it
applies those settings to each survey, so the spec stored with the run is exactly what ran. Models come
from the command line (`--models`) or the experiment's default list.

    id: moralchoice_6forms
    surveys:
      - path: ../surveys/moralchoice.yaml
        orders: reversed
        scoring: {mode: sample, samples: 5, temperature: 1.0}
    analyses: [uncertainty, consistency]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from probekit.survey.errors import SpecError, SpecProblem
from probekit.survey.loader import _Locator, load_survey
from probekit.survey.schema import ReasoningMode, Scoring, Survey


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
    """Analyses to compute on the run."""
    meta: dict[str, Any] = Field(default_factory=dict)
    """Free-form metadata."""


def is_experiment_file(path: str | Path) -> bool:
    """An experiment file has `surveys:` and no survey `kind:`; cheap enough for the CLI to ask per file."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and "surveys" in data and "kind" not in data


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
    exp_path = Path(path)
    if not exp_path.exists():
        raise SpecError([SpecProblem(str(path), 0, "file not found", "check the path")])
    text = exp_path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
        locate = _Locator(yaml.compose(text))
        experiment = Experiment.model_validate(data)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise SpecError([SpecProblem(str(path), mark.line + 1 if mark else 1, "YAML syntax error",
                                     "check indentation and quotes")]) from None
    except ValidationError as error:
        raise SpecError([SpecProblem(str(path), locate.line(list(e["loc"])), f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}",
                                     "see docs/surveys.md (experiments)") for e in error.errors()]) from None
    surveys = []
    for index, entry in enumerate(experiment.surveys):
        survey_path = (exp_path.parent / entry.path).resolve()
        if not survey_path.exists():
            raise SpecError([SpecProblem(str(path), locate.line(["surveys", index, "path"]),
                                         f"survey file {entry.path!r} not found", "paths are relative to the experiment file")])
        survey = load_survey(survey_path)
        surveys.append(apply_settings(survey, entry, str(path), locate.line(["surveys", index])))
    return experiment, surveys


def run_record(experiment: Experiment, path: str | Path) -> dict[str, Any]:
    """What the run stores about the experiment (in runs.config.experiment)."""
    return {"id": experiment.id, "path": str(path), "analyses": experiment.analyses,
            "surveys": [entry.model_dump(exclude_defaults=True) for entry in experiment.surveys]}
