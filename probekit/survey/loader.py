"""Load a survey YAML file into a validated `Survey`, reporting every problem as file:line — fix.

The file is parsed once (probekit.survey.yamlfile: libyaml node tree + data built from it); pydantic
validates the data, the node tree gives each problem its line, and `check_survey` adds what pydantic
cannot express. `analyses:` names are checked against the analysis tables' names (probekit.tablenames), read
without importing the analysis layer.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, SequenceNode

from probekit.jsonl import TextProblem, iter_jsonl
from probekit.survey.errors import SpecError, SpecProblem
from probekit.survey.labels import label_problem
from probekit.survey.personas import resolve_personas
from probekit.survey.schema import (
    Item,
    Survey,
    is_builtin_placeholder,
    template_placeholders,
)
from probekit.survey.yamlfile import Loc, Locator, YamlDocument, paused_gc, read_yaml


def _allowed_fields(model: type[BaseModel], loc: Loc) -> list[str]:
    """Field names of the model addressed by `loc` (best effort, for 'did you mean')."""
    current: Any = model
    for key in loc:
        if isinstance(key, int):
            continue
        field = getattr(current, "model_fields", {}).get(key)
        if field is None:
            break
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        for candidate in candidates:
            inner = [candidate, *getattr(candidate, "__args__", ())]
            found = next((c for c in inner if isinstance(c, type) and issubclass(c, BaseModel)), None)
            if found is not None:
                current = found
                break
    return list(getattr(current, "model_fields", {}).keys())


def _pydantic_problems(
    error: ValidationError, model: type[BaseModel], path: str, locate: Locator, prefix: Loc = ()
) -> list[SpecProblem]:
    problems = []
    for detail in error.errors():
        loc = [*prefix, *[part for part in detail["loc"] if not isinstance(part, str) or part[:1] != "_"]]
        kind = detail["type"]
        where = ".".join(str(p) for p in loc) or "(top level)"
        if kind == "extra_forbidden":
            name = str(loc[-1])
            allowed = _allowed_fields(model, loc[len(prefix):-1])
            close = difflib.get_close_matches(name, allowed, n=1)
            fix = f"did you mean {close[0]!r}?" if close else f"remove it; allowed here: {', '.join(allowed)}"
            problems.append(SpecProblem(path, locate.line(loc), f"unknown field {name!r} at {where}", fix))
        elif kind == "missing":
            problems.append(
                SpecProblem(path, locate.line(loc[:-1]), f"missing required field {str(loc[-1])!r}",
                            f"add '{loc[-1]}:' at {'.'.join(str(p) for p in loc[:-1]) or 'the top level'}")
            )
        elif kind == "literal_error":
            expected = detail.get("ctx", {}).get("expected", "")
            problems.append(
                SpecProblem(path, locate.line(loc), f"invalid value {detail.get('input')!r} at {where}",
                            f"use one of {expected}")
            )
        else:
            message = detail["msg"].removeprefix("Value error, ")
            problems.append(SpecProblem(path, locate.line(loc), f"{where}: {message}", "fix the value"))
    return problems


def _load_items_file(
    survey_path: Path, items_file: str, line_of_ref: int
) -> tuple[list[Item], list[tuple[str, int]], list[SpecProblem]]:
    """Read a JSONL item file; returns items, their (file, line) and problems (file:line)."""
    file_path = (survey_path.parent / items_file).resolve()
    if not file_path.exists():
        return [], [], [SpecProblem(str(survey_path), line_of_ref, f"items_file {items_file!r} not found",
                                    f"create {file_path} or fix the path (relative to the survey file)")]
    if not file_path.is_file():
        return [], [], [SpecProblem(str(survey_path), line_of_ref, f"items_file {items_file!r} is a directory, not a file",
                                    "name a JSON lines file (one item object per line)")]
    items: list[Item] = []
    lines: list[tuple[str, int]] = []
    problems: list[SpecProblem] = []
    for number, data, json_error in iter_jsonl(file_path):
        if isinstance(json_error, TextProblem):
            problems.append(SpecProblem(str(file_path), number, str(json_error)))
            if len(problems) >= 20:
                break
            continue
        if json_error is not None:
            problems.append(SpecProblem(str(file_path), number, f"invalid JSON: {json_error}",
                                        "write one JSON object per line"))
            continue
        try:
            item = Item.model_validate(data)
        except ValidationError as exc:
            for detail in exc.errors():
                where = ".".join(str(p) for p in detail["loc"])
                problems.append(SpecProblem(str(file_path), number, f"{where}: {detail['msg']}",
                                            "fix this item (fields as in the survey spec's items)"))
            continue
        items.append(item)
        lines.append((str(file_path), number))
    return items, lines, problems


@functools.lru_cache(maxsize=1024)
def _placeholders(text: str) -> frozenset[str]:
    """`template_placeholders`, parsed once per distinct text (every item re-checks the same templates)."""
    return frozenset(template_placeholders(text))


def check_survey(survey: Survey, path: str, item_lines: list[tuple[str, int]], locate: Locator) -> list[SpecProblem]:
    """Semantic checks pydantic cannot express: placeholders, ids, option counts, labels, gold.

    `item_lines[i]` is the (file, line) where survey.items[i] is written.
    """
    problems: list[SpecProblem] = []
    seen: dict[str, tuple[str, int]] = {}
    for index, item in enumerate(survey.items):
        where = item_lines[index]
        if item.id in seen:
            first = seen[item.id]
            problems.append(SpecProblem(where[0], where[1], f"duplicate item id {item.id!r} (first at {first[0]}:{first[1]})",
                                        "give every item a unique id"))
        else:
            seen[item.id] = where
    if not survey.items:
        problems.append(SpecProblem(path, 1, "the survey has no items", "add 'items:' or 'items_file:'"))
    if not survey.templates:
        problems.append(SpecProblem(path, locate.line(["templates"]), "the survey has no templates",
                                    "add at least one under 'templates:' (an id and the user text with {placeholders})"))

    needs_options = survey.kind in {"choice", "likert", "mcq", "pairwise"}
    for index, item in enumerate(survey.items):
        where = item_lines[index]
        options = item.options if item.options is not None else survey.options
        n_options = len(options or [])
        if needs_options and n_options < 2:
            problems.append(SpecProblem(where[0], where[1],
                                        f"item {item.id!r} has {n_options} option(s); a {survey.kind} item needs at least 2",
                                        "add options to the item or shared 'options:' to the survey"))
            continue
        for t_index, template in enumerate(survey.templates):
            if template.option_texts is not None and len(template.option_texts) != n_options:
                problems.append(SpecProblem(path, locate.line(["templates", t_index, "option_texts"]),
                                            f"template {template.id!r} gives {len(template.option_texts)} option_texts "
                                            f"but item {item.id!r} has {n_options} options",
                                            "give one text per option, in canonical order"))
        if survey.kind == "mcq" and item.gold is None:
            problems.append(SpecProblem(where[0], where[1], f"mcq item {item.id!r} has no gold answer",
                                        "add 'gold: <0-based option index>'"))
        if item.gold is not None and not 0 <= item.gold < n_options:
            problems.append(SpecProblem(where[0], where[1], f"item {item.id!r}: gold {item.gold} is outside 0..{n_options - 1}",
                                        "use a 0-based index of an option"))
        for t_index, template in enumerate(survey.templates):
            scheme = template.labels if template.labels is not None else survey.labels
            issue = label_problem(scheme, n_options)
            if issue:
                where_labels: list[str | int] = ["templates", t_index, "labels"] if template.labels is not None else ["labels"]
                problems.append(SpecProblem(path, locate.line(where_labels),
                                            f"template {template.id!r}, item {item.id!r}: {issue[0]}", issue[1]))
        for variant_index, variant in enumerate([{}, *item.paraphrases]):
            fields = {**item.fields, **variant}
            for t_index, template in enumerate(survey.templates):
                texts = [template.user, template.system or survey.system or "", *[t.content for t in template.followups]]
                for text in texts:
                    try:
                        names = _placeholders(text)
                    except ValueError as exc:
                        problems.append(SpecProblem(path, locate.line(["templates", t_index]), f"template {template.id!r}: {exc}",
                                                    "write plain named placeholders such as {context} ({{ and }} for literal braces)"))
                        continue
                    for name in sorted(names):
                        if name in fields or name in survey.factors or name == "previous_answer":
                            continue
                        if is_builtin_placeholder(name, n_options):
                            continue
                        available = sorted({*fields, *survey.factors, "options", "labels", "labels_or"})
                        close = difflib.get_close_matches(name, available, n=1)
                        hint = f"did you mean {{{close[0]}}}?" if close else f"available: {', '.join('{' + a + '}' for a in available)}"
                        problems.append(SpecProblem(path, locate.line(["templates", t_index, "user"]),
                                                    f"template {template.id!r} uses {{{name}}}, which item {item.id!r}"
                                                    + (f" (paraphrase p{variant_index})" if variant_index else "") + " does not provide",
                                                    hint))
        if len(problems) > 50:
            break
    # Deduplicate (one bad placeholder would otherwise be reported once per item).
    unique: list[SpecProblem] = []
    keys: set[tuple[str, int, str]] = set()
    for problem in problems:
        key = (problem.path, problem.line, problem.message.split(", which item")[0])
        if key not in keys:
            keys.add(key)
            unique.append(problem)
    return unique


def load_survey(path: str | Path) -> Survey:
    """Load and validate a survey spec. Raises `SpecError` listing every problem as file:line — fix."""
    with paused_gc():  # a large spec makes ~10 objects per line; see probekit/survey/yamlfile.py
        return survey_from_yaml(read_yaml(path))


def survey_from_yaml(doc: YamlDocument) -> Survey:
    """Validate a parsed survey file (`read_yaml`); raises `SpecError` listing every problem as file:line — fix."""
    shown = doc.path
    locate = Locator(doc.root)
    problems = list(doc.duplicates)
    if not isinstance(doc.data, dict):
        raise SpecError([SpecProblem(shown, 1, "a survey file must be a YAML mapping", "start with 'id:', 'kind:', 'templates:' ...")])
    try:
        survey = Survey.model_validate(doc.data)
    except ValidationError as exc:
        listed = doc.data.get("analyses")
        names = listed if isinstance(listed, list) and all(isinstance(n, str) for n in listed) else []
        raise SpecError(problems + _pydantic_problems(exc, Survey, shown, locate)
                        + analysis_problems(names, shown, locate)) from None

    if survey.personas is not None:  # the persona file read, ids checked (probekit.survey.personas)
        personas, persona_problems = resolve_personas(survey.personas, shown, locate)
        problems.extend(persona_problems)
        survey = survey.model_copy(update={"personas": personas})
    problems.extend(analysis_problems(survey.analyses, shown, locate))
    item_lines = _item_lines(doc, len(survey.items))
    n_inline = len(survey.items)
    if survey.items_file:
        file_items, file_lines, file_problems = _load_items_file(Path(shown), survey.items_file, locate.line(["items_file"]))
        problems.extend(file_problems)
        item_lines.extend(file_lines)
        survey = survey.model_copy(update={"items": [*survey.items, *file_items]})
    problems.extend(check_survey(survey, shown, item_lines, locate))
    if not problems and (survey.human is not None or any(item.human for item in survey.items)):
        from probekit.survey.human import attach_human  # human reference distributions (docs/human-alignment.md)

        survey, human_problems = attach_human(survey, shown, locate, item_lines, n_inline)
        problems.extend(human_problems)
    if problems:
        raise SpecError(problems)
    return survey


def _item_lines(doc: YamlDocument, count: int) -> list[tuple[str, int]]:
    """(file, line) of each inline item: the line of its node under `items:`."""
    nodes: list[Any] = []
    if isinstance(doc.root, MappingNode):
        found = next((value for key, value in doc.root.value if key.value == "items"), None)
        if isinstance(found, SequenceNode):
            nodes = found.value
    return [(doc.path, nodes[index].start_mark.line + 1 if index < len(nodes) else 1) for index in range(count)]


def analysis_problems(names: Sequence[str], shown: str, locate: Locator, loc: Loc = ("analyses",)) -> list[SpecProblem]:
    """`analyses:` entries that name no analysis table (file:line — did you mean …); the names are read as data
    (probekit.tablenames), so validating a spec never imports the analysis layer."""
    from probekit.tablenames import unknown_names

    return [SpecProblem(shown, locate.line([*loc, index]), message, fix)
            for index, message, fix in unknown_names(names)]
