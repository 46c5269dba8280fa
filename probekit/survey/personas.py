"""Personas: who the model is asked to answer as, an expansion axis like templates and option orders.

A persona is an id with attributes ({country: Japan}) and/or a free-text first-person bio. Each persona is
rendered in the context styles of OpinionQA (Santurkar et al. 2023, "Whose Opinions Do Language Models
Reflect?"; the phrasings follow HELM's `opinions_qa` scenario, which ran the paper's steering prompts):

- `qa`: a prior question/answer exchange stating each attribute (user "What is your country?", assistant
  "Japan"; in a completion prompt "Question: ...\\nAnswer: ...");
- `bio`: "Below you will be asked to provide a short description of yourself and then answer some
  questions.\\n\\nDescription: I am from Japan." (the persona's own bio when it has one);
- `portray`: "Answer the following question as if you were a person who lives in Japan."

The default context (no persona, persona_id '') is kept unless `include_default: false`: steerability
compares each persona context against it. Personas come inline (`people:`) and/or from a file (`file:`,
YAML/JSON/JSON lines/CSV, relative to the spec), checked on load with file:line errors.
"""

from __future__ import annotations

import csv
import io
import json
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from probekit.survey.errors import SpecError, SpecProblem
from probekit.survey.yamlfile import Loc, Locator, read_text

PersonaStyle = Literal["qa", "bio", "portray"]
PERSONA_STYLES: tuple[PersonaStyle, ...] = ("qa", "bio", "portray")
PERSONA_FILE_TYPES = (".yaml", ".yml", ".json", ".jsonl", ".csv")

BIO_FRAME = "Below you will be asked to provide a short description of yourself and then answer some questions.\n\nDescription: {bio}"
"""OpinionQA's steer-bio context ("... a short description of your political affiliation ..."), for any attribute."""
PORTRAY_FRAME = "Answer the following question as if you were a person {clauses}."
"""OpinionQA's steer-portray context; `clauses` are the attributes' relative clauses ('a, b and c')."""
PORTRAY_BIO_FRAME = "Answer the following question as if you were the person who describes themselves as follows: {bio}"
"""portray for a persona given only by a free-text bio."""
QA_BIO_QUESTION = "Please describe yourself."
"""qa for a persona given only by a free-text bio: its bio is the answer to this question."""

_PERSONA_ID = re.compile(r"[^,\s](?:[^,]*[^,\s])?")
_PHRASING_NAMES = frozenset({"value", "attribute"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AttributePhrasing(_Strict):
    """How one attribute is said in each style; `{value}` is the persona's value, `{attribute}` the name."""

    question: str | None = None
    """qa: the question whose answer is the value (default 'What is your {attribute}?')."""
    bio: str | None = None
    """bio: a first-person sentence (default 'My {attribute} is {value}.')."""
    portray: str | None = None
    """portray: a relative clause after 'as if you were a person ' (default 'whose {attribute} is {value}')."""

    @field_validator("question", "bio", "portray")
    @classmethod
    def _check_placeholders(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            names = {field for _text, field, _spec, _conv in string.Formatter().parse(value) if field is not None}
        except ValueError as error:
            raise ValueError(f"malformed placeholder ({error}): write {{value}} or {{attribute}}") from None
        unknown = sorted(names - _PHRASING_NAMES)
        if unknown:
            raise ValueError(f"unknown placeholder {{{unknown[0]}}}: a phrasing may use {{value}} and {{attribute}}")
        return value


BUILTIN_PHRASING: dict[str, AttributePhrasing] = {
    "country": AttributePhrasing(question="What is your country?", bio="I am from {value}.", portray="who lives in {value}"),
    "age": AttributePhrasing(question="What is your age?", bio="I am {value} years old.", portray="who is {value} years old"),
}
GENERIC_PHRASING = AttributePhrasing(question="What is your {attribute}?", bio="My {attribute} is {value}.",
                                     portray="whose {attribute} is {value}")


class Persona(_Strict):
    """One persona: attributes and/or a free-text bio."""

    id: str
    """Identifier (no commas); stored as the trials' persona_id and the results' respondent."""
    attributes: dict[str, str] = Field(default_factory=dict)
    """Attribute name -> value, e.g. {country: Japan, age: 30-49}; order kept in the rendered contexts."""
    bio: str | None = None
    """Free-text first-person bio ('I am a retired nurse from Ohio.'); the bio style uses it as written."""

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _PERSONA_ID.fullmatch(value):
            raise ValueError(f"persona id {value!r}: give a non-empty id without commas or surrounding spaces "
                             "(it is what --personas names)")
        return value

    @field_validator("attributes", mode="before")
    @classmethod
    def _numbers_as_text(cls, value: Any) -> Any:
        # `age: 30` in YAML is a number; an attribute is text shown in the prompt.
        if isinstance(value, dict):
            return {k: str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for k, v in value.items()}
        return value

    @field_validator("attributes")
    @classmethod
    def _check_attributes(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not name.strip():
                raise ValueError("an attribute has an empty name: name it, e.g. country")
            if not text.strip():
                raise ValueError(f"attribute {name!r} is empty: give its value or leave the attribute out")
        return value

    @field_validator("bio")
    @classmethod
    def _check_bio(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("bio is empty: write the persona's first-person description, or leave bio out")
        return value

    @model_validator(mode="after")
    def _has_content(self) -> Persona:
        if not self.attributes and self.bio is None:
            raise ValueError(f"persona {self.id!r} has neither attributes nor a bio: give attributes: {{country: ...}} "
                             "or bio: '...'")
        return self


class Personas(_Strict):
    """The persona axis of a survey (or of one survey of an experiment)."""

    people: list[Persona] = Field(default_factory=list)
    """Inline personas."""
    file: str | None = None
    """A file of personas (YAML/JSON list, JSON lines, or CSV with an `id` column, an optional `bio` column and
    one column per attribute), relative to the spec file; added after the inline ones."""
    styles: list[PersonaStyle] = Field(default_factory=lambda: list[PersonaStyle](PERSONA_STYLES))
    """Context styles each persona is asked in: qa, bio, portray (OpinionQA's steer-qa/bio/portray)."""
    include_default: bool = True
    """Also ask every form with no persona (the default context steerability compares against)."""
    phrasing: dict[str, AttributePhrasing] = Field(default_factory=dict)
    """Per attribute: how it is said in each style (overrides the built-in phrasings of country and age and the
    generic 'What is your {attribute}?' / 'My {attribute} is {value}.' / 'whose {attribute} is {value}')."""

    @field_validator("styles")
    @classmethod
    def _check_styles(cls, value: list[PersonaStyle]) -> list[PersonaStyle]:
        if not value:
            raise ValueError("no styles: list at least one of qa, bio, portray")
        if len(set(value)) < len(value):
            raise ValueError("a style is listed twice: list each of qa, bio, portray at most once")
        return value

    @model_validator(mode="after")
    def _has_people(self) -> Personas:
        if not self.people and self.file is None:
            raise ValueError("no personas: add people: [{id: ..., attributes: {...}}] or file: personas.csv")
        return self


# -- rendering ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PersonaContext:
    """What a persona adds to a trial's prompt."""

    turns: tuple[tuple[str, str], ...] = ()
    """(role, content) chat turns before the survey's user message (qa style)."""
    completion_prefix: str = ""
    """The same turns as text before the user text of a completion prompt."""
    preamble: str = ""
    """Text put before the user message, separated by a blank line (bio and portray styles)."""


def phrasing_for(name: str, block: Personas | None = None) -> AttributePhrasing:
    """The phrasing of an attribute: the spec's override, else the built-in, else the generic, part by part."""
    builtin = BUILTIN_PHRASING.get(name.lower(), GENERIC_PHRASING)
    override = (block.phrasing.get(name) if block else None) or AttributePhrasing()
    return AttributePhrasing(question=override.question or builtin.question, bio=override.bio or builtin.bio,
                             portray=override.portray or builtin.portray)


def _say(template: str | None, name: str, value: str = "") -> str:
    return (template or "").format(attribute=name.replace("_", " "), value=value)


def render_persona(persona: Persona, style: str, block: Personas | None = None) -> PersonaContext:
    """The context of `persona` in `style` (qa | bio | portray). Pure."""
    attributes = list(persona.attributes.items())
    if style == "qa":
        pairs = ([(_say(phrasing_for(k, block).question, k, v), v) for k, v in attributes] if attributes
                 else [(QA_BIO_QUESTION, persona.bio or "")])
        turns = tuple(turn for question, answer in pairs for turn in (("user", question), ("assistant", answer)))
        prefix = "".join(f"Question: {question}\nAnswer: {answer}\n\n" for question, answer in pairs)
        return PersonaContext(turns=turns, completion_prefix=prefix)
    if style == "bio":
        bio = persona.bio if persona.bio is not None else " ".join(_say(phrasing_for(k, block).bio, k, v) for k, v in attributes)
        return PersonaContext(preamble=BIO_FRAME.format(bio=bio))
    if style == "portray":
        if not attributes:
            return PersonaContext(preamble=PORTRAY_BIO_FRAME.format(bio=persona.bio or ""))
        clauses = [_say(phrasing_for(k, block).portray, k, v) for k, v in attributes]
        joined = clauses[0] if len(clauses) == 1 else ", ".join(clauses[:-1]) + " and " + clauses[-1]
        return PersonaContext(preamble=PORTRAY_FRAME.format(clauses=joined))
    raise ValueError(f"unknown persona style {style!r}: use one of {', '.join(PERSONA_STYLES)}")


def contexts(block: Personas | None, subset: Sequence[str] | None = None) -> list[tuple[Persona | None, str]]:
    """The persona contexts a form is asked in, in expansion order: the default context (None, '') when
    included, then every selected persona in every style. `subset` keeps only those persona ids (ValueError
    naming the known ids for one the block lacks)."""
    if block is None:
        if subset:
            raise ValueError(f"--personas {','.join(subset)}: this survey has no personas (add a personas: block)")
        return [(None, "")]
    ids = [p.id for p in block.people]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ValueError(f"duplicate persona id(s) {duplicated}: give each persona its own id")
    people = block.people
    if subset is not None:
        unknown = [i for i in subset if i not in ids]
        if unknown:
            raise ValueError(f"no persona(s) {unknown}: the survey has {', '.join(ids)}")
        wanted = set(subset)
        people = [p for p in people if p.id in wanted]
    default: list[tuple[Persona | None, str]] = [(None, "")] if block.include_default else []
    return default + [(persona, style) for persona in people for style in block.styles]


def parse_subset(text: str | Sequence[str] | None) -> list[str] | None:
    """`--personas a,b --personas c` → ['a', 'b', 'c'] (None when not given)."""
    if text is None:
        return None
    parts = [text] if isinstance(text, str) else list(text)
    out = [p.strip() for part in parts for p in part.split(",") if p.strip()]
    return list(dict.fromkeys(out))


# -- loading (file:line errors) -------------------------------------------------------------------------
def _validation_problems(error: ValidationError, path: str, line: int) -> list[SpecProblem]:
    problems = []
    for detail in error.errors():
        loc = [p for p in detail["loc"] if not (isinstance(p, str) and p.startswith("_"))]
        where = ".".join(str(p) for p in loc) or "persona"
        if detail["type"] == "extra_forbidden":
            message, fix = f"unknown field {loc[-1]!r} in a persona", "a persona has id, attributes and bio"
        elif detail["type"] == "missing":
            message, fix = f"a persona has no {loc[-1]!r}", f"add {loc[-1]}:"
        else:
            message, fix = f"{where}: {detail['msg'].removeprefix('Value error, ')}", "fix the persona"
        problems.append(SpecProblem(path, line, message, fix))
    return problems


def _csv_personas(text: str, shown: str) -> tuple[list[Persona], list[int], list[SpecProblem]]:
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    if not header:
        return [], [], [SpecProblem(shown, 1, "the persona file is empty", "write a header row: id,bio,<attribute>,...")]
    if "id" not in header:
        return [], [], [SpecProblem(shown, 1, f"no 'id' column (columns: {', '.join(header)})",
                                    "name one column id; bio is the free-text bio, every other column an attribute")]
    people: list[Persona] = []
    lines: list[int] = []
    problems: list[SpecProblem] = []
    line = reader.line_num + 1  # where the next record starts (a quoted field may span lines)
    for row in reader:
        start, line = line, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            problems.append(SpecProblem(shown, start, f"{len(row)} fields, the header has {len(header)}",
                                        "give every row one field per column (quote fields that contain commas)"))
            continue
        record = dict(zip(header, row))
        data: dict[str, Any] = {"id": record.pop("id").strip(),
                                "attributes": {k: v.strip() for k, v in record.items() if k != "bio" and v.strip()}}
        if record.get("bio", "").strip():
            data["bio"] = record["bio"].strip()
        try:
            people.append(Persona.model_validate(data))
            lines.append(start)
        except ValidationError as error:
            problems.extend(_validation_problems(error, shown, start))
    return people, lines, problems


def _structured_personas(file: Path, shown: str) -> tuple[list[Persona], list[int], list[SpecProblem]]:
    """A YAML/JSON list of personas (or a mapping with `people:`), or JSON lines."""
    from probekit.survey.yamlfile import parse_yaml

    if file.suffix.lower() == ".jsonl":
        from probekit.jsonl import iter_jsonl

        entries: list[tuple[Any, int]] = []
        problems: list[SpecProblem] = []
        for number, data, error in iter_jsonl(file):
            if error is not None:
                problems.append(SpecProblem(shown, number, f"invalid JSON: {error}", "write one persona object per line"))
            else:
                entries.append((data, number))
    else:
        import yaml

        text = read_text(file, what="persona", fix="give a YAML, JSON or CSV file of personas")
        root: Any = None
        problems = []
        try:
            doc = parse_yaml(text, shown)
            root, data, problems = doc.root, doc.data, list(doc.duplicates)
        except yaml.YAMLError as error:  # e.g. JSON indented with tabs: JSON is read as YAML for its line numbers
            if file.suffix.lower() != ".json":
                mark = getattr(error, "problem_mark", None)
                return [], [], [SpecProblem(shown, mark.line + 1 if mark else 1,
                                            f"YAML syntax error: {getattr(error, 'problem', None) or error}",
                                            "check indentation, colons and quotes on this line")]
            try:
                data = json.loads(text)
            except json.JSONDecodeError as json_error:
                return [], [], [SpecProblem(shown, json_error.lineno, f"invalid JSON: {json_error.msg}", "fix the JSON")]
        locate = Locator(root)
        prefix: list[str | int] = []
        if isinstance(data, dict) and "people" in data:
            data, prefix = data["people"], ["people"]
        if not isinstance(data, list):
            return [], [], [SpecProblem(shown, 1, "a persona file holds a list of personas",
                                        "write '- {id: ..., attributes: {...}}' entries (or people: [...])")]
        entries = [(entry, locate.line([*prefix, index])) for index, entry in enumerate(data)]
    people, lines = [], []
    for entry, line in entries:
        try:
            people.append(Persona.model_validate(entry))
            lines.append(line)
        except ValidationError as error:
            problems.extend(_validation_problems(error, shown, line))
    return people, lines, problems


def load_persona_file(spec_path: str, name: str, line_of_ref: int) -> tuple[list[Persona], list[tuple[str, int]], list[SpecProblem]]:
    """Personas of `name` (relative to the spec at `spec_path`) with their (file, line), and the problems."""
    file = (Path(spec_path).parent / name).resolve()
    if not file.exists():
        return [], [], [SpecProblem(spec_path, line_of_ref, f"persona file {name!r} not found",
                                    f"create {file} or fix the path (relative to {Path(spec_path).name})")]
    if not file.is_file():
        return [], [], [SpecProblem(spec_path, line_of_ref, f"persona file {name!r} is a directory",
                                    "name a YAML, JSON, JSON lines or CSV file of personas")]
    if file.suffix.lower() not in PERSONA_FILE_TYPES:
        return [], [], [SpecProblem(spec_path, line_of_ref, f"persona file {name!r}: unknown type {file.suffix!r}",
                                    f"use one of {', '.join(PERSONA_FILE_TYPES)}")]
    shown = str(file)
    try:
        if file.suffix.lower() == ".csv":
            people, numbers, problems = _csv_personas(read_text(file, what="persona", fix="give a CSV file"), shown)
        else:
            people, numbers, problems = _structured_personas(file, shown)
    except SpecError as error:
        return [], [], list(error.problems)
    return people, [(shown, n) for n in numbers], problems


def resolve_personas(block: Personas, spec_path: str, locate: Locator, loc: Loc = ("personas",)) -> tuple[Personas, list[SpecProblem]]:
    """The block with its file's personas added after the inline ones, and every problem as file:line (a file
    that does not exist or does not parse, a bad persona in it, an id used twice)."""
    where = [(spec_path, locate.line([*loc, "people", index])) for index in range(len(block.people))]
    people = list(block.people)
    problems: list[SpecProblem] = []
    if block.file is not None:
        from_file, file_where, file_problems = load_persona_file(spec_path, block.file, locate.line([*loc, "file"]))
        people.extend(from_file)
        where.extend(file_where)
        problems.extend(file_problems)
    first: dict[str, tuple[str, int]] = {}
    for persona, (path, line) in zip(people, where):
        if persona.id in first:
            at = first[persona.id]
            problems.append(SpecProblem(path, line, f"duplicate persona id {persona.id!r} (first at {at[0]}:{at[1]})",
                                        "give every persona its own id"))
        else:
            first[persona.id] = (path, line)
    for name in block.phrasing:
        if not any(name in p.attributes for p in people):
            problems.append(SpecProblem(spec_path, locate.line([*loc, "phrasing", name]),
                                        f"phrasing for attribute {name!r}, which no persona has",
                                        f"use one of {', '.join(sorted({a for p in people for a in p.attributes})) or '(none)'}"))
    return block.model_copy(update={"people": people}), problems


def persona_rows(survey_id: str, survey_hash: str, block: Personas | None) -> list[dict[str, Any]]:
    """One `personas` store row per persona of a survey."""
    if block is None:
        return []
    return [{"survey_hash": survey_hash, "survey_id": survey_id, "persona_id": p.id,
             "attributes": json.dumps(p.attributes, ensure_ascii=False), "bio": p.bio} for p in block.people]
