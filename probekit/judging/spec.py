"""The judging experiment file: two stages in one spec (docs/judges.md).

    id: selfpref_mtbench
    models: [smollm2, gemma3-270m]            # answer in stage 1 and judge in stage 2
    answer:                                   # stage 1: a `generate` survey and its settings
      path: ../surveys/mtbench.yaml
      limit: 20
      scoring: {max_tokens: 64}
    judge:                                    # stage 2: a `pairwise` survey whose templates judge the pairs
      path: ../surveys/mtbench_judge.yaml
      templates: [pair_v2_verdict]
      scoring: {mode: logprob}
      pairs: self                             # self: each judge's answer vs every other one; all: every pair
      others: [gpt-4]                         # answers stored elsewhere (imported), judged against the models'
      others_from: ../../shared/data/selfpref/mtbench_80q_31models_answers.jsonl
    self_recognition:                         # optional: "which of these did you write?"
      path: ../surveys/mtbench_recognition.yaml
    gold: {panel: null, exclude: parties}     # or {file: human.jsonl}
    analyses: [judge_position, judge_self_preference]

`answer`, `judge` and `self_recognition` take the settings of an experiment's survey entry
(probekit.experiment.SurveyRun: path, templates, factors, reasoning, scoring, limit); a judge survey's
option orders are always both orders of every pair.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from probekit.defaults import DEFAULT_MODEL
from probekit.experiment import SurveyRun, apply_settings
from probekit.survey.errors import SpecError, SpecProblem
from probekit.survey.loader import analysis_problems, survey_from_yaml
from probekit.survey.schema import Survey
from probekit.survey.yamlfile import Locator, YamlDocument, paused_gc, read_yaml


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AnswerStage(SurveyRun):
    """Stage 1: a `generate` survey the models answer (its settings as in an experiment's survey entry)."""


class JudgeStage(SurveyRun):
    """Stage 2: a `pairwise` survey (task judge) whose templates, labels, tie setting and scoring judge the pairs
    built from the stored stage-1 answers (its own items are not used)."""

    pairs: Literal["self", "all"] = "self"
    """self: each judge compares its own answer with every other answer (and, for a panel gold, the panel judges
    the other judges' pairs); all: every judge judges every pair of answers."""
    others: list[str] = Field(default_factory=list)
    """Answer models whose answers were stored elsewhere (e.g. imported MT-Bench answers): compared with the
    judges' answers, never run."""
    others_from: str | None = None
    """An answers file to import before stage 2 (the MT-Bench answers JSONL of shared/data/selfpref, or
    probekit's answers JSONL; docs/judges.md), relative to the experiment file; imported once."""
    max_answer_chars: int | None = Field(default=None, ge=1)
    """Cut answers to this many characters before a judge sees them (long published answers, small contexts)."""


class RecognitionStage(SurveyRun):
    """The optional self-recognition task: a `pairwise` survey with `task: self_recognition`, asked of each
    judge on the pairs that hold its own answer."""


class Gold(_Strict):
    """Where the gold verdicts come from: a panel of judges (default) or a file of labels."""

    panel: list[str] | None = None
    """Judges whose majority verdict (each over both orders; tie = 0.5) is the gold; None = every judge."""
    exclude: Literal["parties", "judge"] = "parties"
    """parties: a pair's two authors never vote on it; judge: only the judge being evaluated is left out."""
    file: str | None = None
    """JSONL labels (question_id, model_a, model_b, winner: model_a | model_b | tie; several lines per pair are
    a majority), relative to the experiment file. Replaces the panel."""

    @model_validator(mode="after")
    def _one_source(self) -> Gold:
        if self.file is not None and self.panel is not None:
            raise ValueError("give either gold.file or gold.panel, not both")
        return self


class JudgingExperiment(_Strict):
    """A two-stage judging experiment: the models answer, then judge pairs of the stored answers."""

    id: str
    """Identifier; the stage-2 surveys are stored as `<id>.judge` and `<id>.recognition`."""
    title: str = ""
    """Human-readable title."""
    description: str = ""
    """What the experiment measures."""
    replicates: str = ""
    """Citation of the design it replicates."""
    models: list[str] = Field(default_factory=lambda: [DEFAULT_MODEL])
    """Models that answer (stage 1) and, unless `judges` says otherwise, judge (stage 2); the command line's
    --models replaces them."""
    judges: list[str] | None = None
    """Models that judge (default: `models`)."""
    answer: AnswerStage
    """Stage 1."""
    judge: JudgeStage
    """Stage 2."""
    self_recognition: RecognitionStage | None = None
    """Optional: "which of these did you write?", in both orders."""
    gold: Gold = Field(default_factory=Gold)
    """Gold verdicts for WR_gold and DBG."""
    analyses: list[str] = Field(default_factory=list)
    """Tables `probekit analyze` shows by default for the experiment's runs."""
    meta: dict[str, Any] = Field(default_factory=dict)
    """Free-form metadata."""


def is_judging_data(data: Any) -> bool:
    return isinstance(data, dict) and "answer" in data and "judge" in data and "kind" not in data and "surveys" not in data


def is_judging_file(path: str | Path) -> bool:
    """A judging experiment has `answer:` and `judge:` and neither a survey `kind:` nor `surveys:`."""
    try:
        return is_judging_data(read_yaml(path).data)
    except (SpecError, OSError):
        return False


class LoadedJudging:
    """A validated judging experiment with its surveys, the experiment's settings applied."""

    def __init__(self, spec: JudgingExperiment, path: str, answer: Survey, judge: Survey, recognition: Survey | None):
        self.spec = spec
        self.path = path
        self.answer = answer
        self.judge = judge
        self.recognition = recognition

    def resolve(self, relative: str) -> Path:
        """A path of the experiment file, relative to it."""
        return (Path(self.path).parent / relative).resolve()


def load_judging(path: str | Path) -> LoadedJudging:
    """Validate a judging experiment file and its surveys; SpecError lists every problem as file:line — fix."""
    with paused_gc():
        return judging_from_yaml(read_yaml(path))


def judging_from_yaml(doc: YamlDocument) -> LoadedJudging:
    path = doc.path
    locate = Locator(doc.root)
    problems = list(doc.duplicates)
    try:
        spec = JudgingExperiment.model_validate(doc.data)
    except ValidationError as error:
        raise SpecError(problems + [
            SpecProblem(path, locate.line(list(e["loc"])),
                        f"{'.'.join(str(p) for p in e['loc'])}: {str(e['msg']).removeprefix('Value error, ')}",
                        "see docs/judges.md (the experiment file)") for e in error.errors()]) from None
    problems.extend(analysis_problems(spec.analyses, path, locate))
    surveys: dict[str, Survey | None] = {}
    wanted = {"answer": ("generate", None), "judge": ("pairwise", "judge"), "self_recognition": ("pairwise", "self_recognition")}
    for stage, (kind, task) in wanted.items():
        entry: SurveyRun | None = getattr(spec, stage)
        if entry is None:
            continue
        line = locate.line([stage, "path"])
        survey_path = (Path(path).parent / entry.path).resolve()
        if not survey_path.is_file():
            problems.append(SpecProblem(path, line, f"survey file {entry.path!r} not found", "paths are relative to the experiment file"))
            continue
        try:
            survey = apply_settings(survey_from_yaml(read_yaml(survey_path)), entry, path, line)
        except SpecError as error:
            problems.extend(error.problems)
            continue
        if survey.kind != kind or (task is not None and survey.judging.task != task):
            found = survey.kind + (f" (task {survey.judging.task})" if survey.kind == "pairwise" else "")
            needed = kind + (f" with pairwise.task {task}" if task else "")
            problems.append(SpecProblem(path, line, f"{stage}: {entry.path} is a {found} survey", f"use a {needed} survey"))
            continue
        surveys[stage] = survey
    for field in ("others_from",):
        value = getattr(spec.judge, field)
        if value is not None and not (Path(path).parent / value).is_file():
            problems.append(SpecProblem(path, locate.line(["judge", field]), f"judge.{field}: {value!r} not found",
                                        "paths are relative to the experiment file"))
    if spec.gold.file is not None and not (Path(path).parent / spec.gold.file).is_file():
        problems.append(SpecProblem(path, locate.line(["gold", "file"]), f"gold.file {spec.gold.file!r} not found",
                                    "paths are relative to the experiment file"))
    if problems:
        raise SpecError(problems)
    answer, judge = surveys["answer"], surveys["judge"]
    assert answer is not None and judge is not None
    return LoadedJudging(spec, path, answer, judge, surveys.get("self_recognition"))
