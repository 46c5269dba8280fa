"""The survey specification: pydantic models for everything a survey YAML file can say.

One schema covers every family; `kind` selects the family-specific checks in `validate_kind`.
Field docstrings are the reference documentation (`docs/survey-spec.md` is generated from them).
"""

from __future__ import annotations

import re
import string
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from probekit.survey.personas import Personas

SurveyKind = Literal["choice", "likert", "mcq", "pairwise", "generate"]
ScoringMode = Literal["logprob", "sample", "sequence", "generate"]
ReasoningMode = Literal["direct", "reasoning"]
LabelKind = Literal["letters", "numbers", "yesno", "custom", "option_text"]

# Placeholders every template may use, filled from the trial rather than from the item.
BUILTIN_PLACEHOLDERS = frozenset({"options", "labels", "labels_or", "n_options"})
_OPTION_SLOT = re.compile(r"^(option|label)_(\d+)$")


class Strict(BaseModel):
    """Base: unknown fields are errors, so a typo in a spec never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=False)


class Source(Strict):
    """Where the survey's content comes from; kept with every stored run."""

    citation: str = ""
    """Paper or dataset to cite."""
    url: str = ""
    """Original repository or page."""
    license: str = ""
    """License of the content (SPDX id or name)."""
    attribution: str = ""
    """Attribution notice the license requires."""


class Option(Strict):
    """One answer option. For `likert` surveys the options are usually shared by all items."""

    text: str
    """Text shown to the model."""
    id: str | None = None
    """Stable identifier (defaults to the 0-based canonical index)."""
    value: float | None = None
    """Scale value (likert: e.g. 1..5) used for expected scores."""
    polarity: float | None = None
    """Opinion polarity in [-1, 1] (POBs style); None for Refused."""
    refusal: bool = False
    """True for an explicit 'Refused'/'no answer' option."""
    meta: dict[str, Any] = Field(default_factory=dict)
    """Free-form metadata (e.g. rule-violation labels of a dilemma action)."""
    position: float | None = Field(default=None, exclude_if=lambda value: value is None)
    """Ordinal position on the item's answer scale (OpinionQA; may be non-integer, e.g. 1.5 for a middle answer
    listed last); None for options off the scale (refusals, nominal items). Left out of the stored spec when None,
    so adding this field changed no other survey's content hash."""


class HumanGroup(Strict):
    """One human group's answer distribution over an item's options (survey weights already applied)."""

    shares: list[float] | dict[str, float]
    """Share of each option: a list in the item's canonical option order, or a mapping option id (or text) -> share
    (options left out have share 0). Must sum to 1 within the survey's `human.tolerance`; stored renormalised."""
    n: float | None = None
    """Respondents behind the shares (or what `human.n_kind` says, e.g. a weighted population estimate)."""

    @model_validator(mode="before")
    @classmethod
    def _shares_only(cls, value: Any) -> Any:
        # Shorthand: `Germany: [0.2, 0.8]` is `Germany: {shares: [0.2, 0.8]}`.
        return {"shares": value} if isinstance(value, (list, tuple)) else value


class HumanReference(Strict):
    """Where a survey's human answer distributions come from and how they are checked (docs/human-alignment.md)."""

    file: str | None = None
    """Sidecar table (CSV or Parquet; relative to the survey file) with columns question_id, group_var, group,
    option (id or text), share and optionally n: one row per question x group x option."""
    groups: dict[str, list[str]] = Field(default_factory=dict)
    """The groups each group variable may name (e.g. country: [Germany, Japan]); when given, any other group is an
    error. Empty: every group the data name is accepted."""
    population: str | None = None
    """`group_var:group` of the whole population (e.g. `overall:all`): the reference of the human baselines (each
    group against the population). None: the baselines use the mean over the groups asked each question."""
    tolerance: float = Field(default=0.01, gt=0, lt=0.5)
    """How far a group's shares may sum from 1 (rounding in published tables) before the load is refused."""
    n_kind: str = "respondents"
    """What `n` counts: respondents, or e.g. weighted_population_estimate (NTIA)."""


class Turn(Strict):
    """One message of a multi-turn form (e.g. self-reflection). `{previous_answer}` is filled at run time."""

    role: Literal["user", "assistant"]
    """Who speaks."""
    content: str
    """Message text; may use the same placeholders as the template."""


class Template(Strict):
    """A prompt template: how an item is asked. Each template is one value of the `template` axis."""

    id: str
    """Identifier, unique within the survey."""
    user: str
    """User message; `{placeholders}` name item fields or builtins (options, labels, option_N, label_N)."""
    system: str | None = None
    """System message (defaults to the survey's `system`)."""
    labels: LabelKind | list[str] | None = None
    """Label scheme for this template (defaults to the survey's `labels`)."""
    option_format: str | None = None
    """How one option line is rendered into `{options}` (defaults to the survey's)."""
    option_separator: str | None = None
    """Separator between option lines in `{options}` (defaults to the survey's)."""
    answer_prefix: str | None = None
    """Text after which the answer label is read (completion prompts and reasoning mode)."""
    followups: list[Turn] = Field(default_factory=list)
    """Extra turns appended after the model's first answer (self-reflection setups)."""
    reverse_options: bool = False
    """Show every option order of this template reversed (e.g. a scale printed 'Strongly agree' first).
    The canonical order, and so every stored distribution, stays as written in the spec."""
    option_texts: list[str] | None = None
    """Option texts for this template in canonical order (e.g. an administration style's own anchor
    words); scale values, polarities and ids still come from the options. None = the options' texts."""
    group: str | None = None
    """Optional grouping (e.g. 'paraphrase' or administration style) carried to the results."""
    meta: dict[str, Any] = Field(default_factory=dict)
    """Free-form metadata."""


class Item(Strict):
    """One survey item. Its fields fill the template placeholders."""

    id: str
    """Identifier kept from the source data (e.g. MoralChoice scenario_id, pc-01)."""
    fields: dict[str, str] = Field(default_factory=dict)
    """Values for template placeholders (e.g. context, question, statement)."""
    options: list[Option] | None = None
    """Options of this item (defaults to the survey's shared `options`)."""
    gold: int | None = None
    """Canonical index of the correct option (mcq)."""
    paraphrases: list[dict[str, str]] = Field(default_factory=list)
    """Alternative wordings: each overrides some `fields`; paraphrase p0 is the original."""
    position_dependent: bool = False
    """Options refer to each other ('all of the above'): never permuted."""
    keyed: Literal[1, -1] = 1
    """+1 or -1: reverse-keyed items are scored (k+1)-r (likert)."""
    meta: dict[str, Any] = Field(default_factory=dict)
    """Free-form metadata (domain, facet, axis, topic, rule labels ...)."""
    human: dict[str, dict[str, HumanGroup]] = Field(default_factory=dict, exclude_if=lambda value: not value)
    """Human answer distributions: group variable (country, age ...) -> group -> shares over this item's options
    (docs/human-alignment.md). Left out of the stored spec when empty."""


class Permutations(Strict):
    """Which option orders each item is shown in."""

    policy: str = "identity"
    """identity | reversed | cyclic | all | random:K | pride[:alpha]."""
    seed: int = 0
    """Seed for random:K and PriDe item sampling (deterministic expansion)."""

    @field_validator("policy")
    @classmethod
    def _check_policy(cls, value: str) -> str:
        from probekit.survey.permutations import parse_policy

        parse_policy(value)
        return value


class Scoring(Strict):
    """How a model's answer is read."""

    mode: ScoringMode = "logprob"
    """logprob: label distribution from next-token logprobs; sample: parse M generations; sequence:
    teacher-forced option likelihood (local models); generate: free-text answers stored as they are
    (`generate` surveys, where it is the default and the only mode)."""
    samples: int = Field(default=5, ge=1)
    """Number of generations per trial in sample mode."""
    temperature: float = Field(default=1.0, ge=0.0)
    """Sampling temperature in sample mode."""
    max_tokens: int = Field(default=32, ge=1)
    """Generation budget for sample mode answers (and for free answers in generate mode)."""
    reasoning_max_tokens: int = Field(default=256, ge=1)
    """Generation budget for the reasoning text in reasoning mode."""
    fallback: Literal["sample", "error"] = "sample"
    """What to do when a model gives no logprobs: sample instead (recorded per row) or fail."""


class Reasoning(Strict):
    """Reasoning-mode prompt parts."""

    instruction: str = (
        "First think step by step about the question in a few sentences. "
        "Then give your final answer on a new line as 'Answer: <label>'."
    )
    """Appended to the user message in reasoning mode."""
    answer_prefix: str = "Answer:"
    """Where the label is read after the reasoning."""


class Matcher(Strict):
    """Free-text answer matching for sample mode (MoralChoice-style)."""

    patterns: dict[str, list[list[str]]] = Field(default_factory=dict)
    """Per template id: one list of answer patterns per shown position. Patterns may use {option_N}
    and {option_N_short}."""
    refusals: list[str] = Field(default_factory=list)
    """Substrings that mark a refusal."""


class Pairwise(Strict):
    """How a `pairwise` survey is judged. Each item's two options are the two responses (canonical order:
    as written); every item is shown in both orders whatever the permutation policy, and a tie verdict is
    one more option after the two responses that is never permuted (label C with letter labels)."""

    tie: bool = False
    """The judge may declare a tie (a third option, always shown last; the FastChat `[[C]]`)."""
    tie_text: str = "Tie"
    """Text of the tie option (seen only by templates that render `{options}` or `{option_3}`)."""
    task: Literal["judge", "self_recognition"] = "judge"
    """judge: which response is better; self_recognition: which response did the judge itself write
    (Panickssery et al. 2024). The judge tables read `judge` surveys, `self_recognition` its own table."""


class Survey(Strict):
    """A survey: items, the forms they are asked in, and how answers are scored."""

    id: str
    """Survey identifier (letters, digits, _ and -)."""
    kind: SurveyKind
    """Family: choice | likert | mcq | pairwise | generate."""
    version: str = "1"
    """Version of the spec's content."""
    title: str = ""
    """Human-readable title."""
    description: str = ""
    """What the survey measures."""
    source: Source = Field(default_factory=Source)
    """Provenance and license."""
    system: str | None = None
    """Default system message."""
    labels: LabelKind | list[str] = "letters"
    """Default label scheme."""
    option_format: str = "{label}. {text}"
    """Default rendering of one option line in `{options}`."""
    option_separator: str = "\n"
    """Default separator between option lines."""
    answer_prefix: str = "Answer:"
    """Default text after which the label is read in completion prompts."""
    templates: list[Template]
    """Prompt templates (the template axis)."""
    options: list[Option] | None = None
    """Options shared by all items (likert scales)."""
    items: list[Item] = Field(default_factory=list)
    """Inline items."""
    items_file: str | None = None
    """JSONL file of items (same fields as inline items), relative to the survey file."""
    factors: dict[str, dict[str, str]] = Field(default_factory=dict)
    """Extra experiment axes: name -> {level id: text}; each template may use {name}."""
    personas: Personas | None = Field(default=None, exclude_if=lambda value: value is None)
    """The persona axis (docs/personas.md): personas (attributes and/or bios, inline or from a file) asked in the
    qa, bio and portray styles, crossed with every other axis. Left out of the stored spec when None, so adding
    this field changed no other survey's content hash."""
    permutations: Permutations = Field(default_factory=Permutations)
    """Option-order policy."""
    reasoning_modes: list[ReasoningMode] = Field(default_factory=lambda: list[ReasoningMode](["direct"]))
    """Reasoning axis: direct and/or reasoning."""
    reasoning: Reasoning = Field(default_factory=Reasoning)
    """Reasoning-mode prompt parts."""
    scoring: Scoring = Field(default_factory=Scoring)
    """Scoring mode and parameters."""
    matcher: Matcher = Field(default_factory=Matcher)
    """Free-text matching data for sample mode."""
    pairwise: Pairwise | None = None
    """Judging settings of a `pairwise` survey (ignored by the other kinds; None: the defaults). Left out
    of the stored spec when None, so adding this field changed no other survey's content hash."""
    human: HumanReference | None = Field(default=None, exclude_if=lambda value: value is None)
    """Human reference distributions: sidecar file, declared groups, population, tolerance (items may also carry
    them inline under `human:`). Left out of the stored spec when None."""
    analyses: list[str] = Field(default_factory=list)
    """Tables `probekit analyze` shows by default (names from the analysis registry, checked at load
    time; docs/analysis.md lists them). Empty: every table that applies to the survey."""
    meta: dict[str, Any] = Field(default_factory=dict)
    """Free-form metadata."""

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
            raise ValueError("use only letters, digits, '_', '.' and '-' in a survey id")
        return value

    @model_validator(mode="after")
    def _check_templates_unique(self) -> Survey:
        seen: set[str] = set()
        for template in self.templates:
            if template.id in seen:
                raise ValueError(f"duplicate template id {template.id!r}: give each template its own id")
            seen.add(template.id)
        return self

    @model_serializer(mode="wrap")
    def _drop_unset_pairwise(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if self.pairwise is None:
            data.pop("pairwise", None)
        return data

    @property
    def judging(self) -> Pairwise:
        """The pairwise settings in force (the defaults when the spec gives none)."""
        return self.pairwise or Pairwise()

    @model_validator(mode="after")
    def _check_generate_mode(self) -> Survey:
        # A generate survey has no options to score: its answers are the generated texts themselves.
        if self.kind == "generate" and "mode" not in self.scoring.model_fields_set:
            self.scoring.mode = "generate"
        problem = mode_problem(self.kind, self.scoring.mode)
        if problem:
            raise ValueError(problem)
        return self


def mode_problem(kind: str, mode: str) -> str | None:
    """Why a survey of `kind` cannot be scored with `mode` (None when it can): a generate survey has no options, so
    only its generated texts are answers; the other kinds have no free answers. Checked for the spec and for a run's
    --mode override (probekit.pipeline), so `--mode logprob` on a free-answer survey is refused before any model
    loads."""
    if kind == "generate" and mode != "generate":
        return (f"a generate survey is scored with mode 'generate', not {mode!r}: write scoring: {{mode: generate}} or "
                "leave the mode out (and do not pass --mode for it)")
    if kind != "generate" and mode == "generate":
        return f"scoring mode 'generate' is for generate surveys, not {kind!r} ones: use logprob, sample or sequence"
    return None


_PLAIN_NAME = re.compile(r"[A-Za-z_][\w-]*")


def template_placeholders(text: str) -> set[str]:
    """Names of the `{placeholders}` in a format string (raises ValueError on a malformed one)."""
    names: set[str] = set()
    for _literal, field_name, _spec, _conv in string.Formatter().parse(text):
        if field_name is None:
            continue
        if field_name == "" or field_name.isdigit():
            raise ValueError("positional placeholder '{}' : name it, e.g. '{context}'")
        if not _PLAIN_NAME.fullmatch(field_name) or _conv is not None or _spec:
            shown = "{" + field_name + (f"!{_conv}" if _conv else "") + (f":{_spec}" if _spec else "") + "}"
            raise ValueError(f"placeholder {shown} is not a plain name (attribute access, indexing, conversions and "
                             "format specs are not filled)")
        names.add(field_name)
    return names


def is_builtin_placeholder(name: str, n_options: int) -> bool:
    """True when `name` is filled by the trial itself (options block, labels, option_N, label_N)."""
    if name in BUILTIN_PLACEHOLDERS:
        return True
    match = _OPTION_SLOT.match(name)
    return match is not None and 1 <= int(match.group(2)) <= n_options
