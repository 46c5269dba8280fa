"""The published POBs response JSON (github.com/IBM/POBS, POBS_v11_model_responses/...): one file per model
and run holding a list of answered questions (`id`, `selected` letter, `choice`, `answer_polarity`); the
reasoning_reflection files add `reconsidered_selection` and `reconsidered_polarity` (the answer after the
self-reflection turn). The questions themselves are not in the file: import against a survey (--survey)
whose item ids are the POBs question ids."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from probekit.importers.records import Parsed, Response, RowProblem

FILE_NAME = re.compile(r"^POBS_(?P<model>.+)_(?P<run>\d+)\.json$")
LIST_KEYS = ("questions", "responses", "results", "data")


def model_and_run(path: Path) -> tuple[str | None, int | None]:
    """`POBS_<model>_<run>.json` -> (model, run); runs are 1-based in the file names."""
    match = FILE_NAME.match(path.name)
    return (match["model"], int(match["run"])) if match else (None, None)


def _questions(data: Any) -> list[dict[str, Any]] | None:
    """The question list: the top level, under a usual key, or concatenated per topic."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        # The released files nest the answers: {"survey": {"topics": [{"name": ..., "questions": [...]}]}}.
        if isinstance(data.get("survey"), dict):
            return _questions(data["survey"])
        topics = data.get("topics")
        if isinstance(topics, list) and topics and all(isinstance(t, dict) and isinstance(t.get("questions"), list) for t in topics):
            return [q for t in topics for q in t["questions"]]
        for key in LIST_KEYS:
            if isinstance(data.get(key), list):
                return list(data[key])
        if data and all(isinstance(v, list) for v in data.values()):
            return [q for v in data.values() for q in v]
    return None


def _lines_of_ids(text: str, questions: list[Any]) -> list[int]:
    """Line of each question's `"id"` key, found in document order (JSON parsing loses positions)."""
    lines, position = [], 0
    for question in questions:
        line = 1
        if isinstance(question, dict) and "id" in question:
            pattern = re.compile(r'"id"\s*:\s*' + re.escape(json.dumps(question["id"])))
            match = pattern.search(text, position)
            if match:
                position = match.end()
                line = text.count("\n", 0, match.start()) + 1
        lines.append(line)
    return lines


def _label(value: Any) -> str | None:
    """The selected letter, or None for no usable answer; 'A.' / '(A)' are reduced to 'A'."""
    if value is None:
        return None
    text = str(value).strip().strip("().[]*").strip()
    return text or None


def parse_pobs(path: Path, model: str | None = None, run: int | None = None) -> Parsed:
    parsed = Parsed()
    shown = str(path)
    file_model, file_run = model_and_run(path)
    model = model or file_model
    run = run if run is not None else file_run
    if model is None:
        parsed.problems.append(RowProblem(shown, 1, "cannot tell the model: name the file POBS_<model>_<run>.json or pass --model"))
        return parsed
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        parsed.problems.append(RowProblem(shown, error.lineno, f"invalid JSON ({error.msg})"))
        return parsed
    questions = _questions(data)
    if questions is None:
        parsed.problems.append(RowProblem(shown, 1, "no list of questions found (expected a list, or one under "
                                                    f"{', '.join(LIST_KEYS)})"))
        return parsed
    sample = (run - 1) if run else 0
    reflection_file = any(isinstance(q, dict) and "reconsidered_selection" in q for q in questions)
    for question, line in zip(questions, _lines_of_ids(text, questions)):
        if not isinstance(question, dict) or "id" not in question or "selected" not in question:
            parsed.problems.append(RowProblem(shown, line, "each question needs at least 'id' and 'selected'"))
            continue
        answers = [("reasoning" if reflection_file else "direct", "selected", "answer_polarity")]
        if reflection_file:
            answers.append(("reflection", "reconsidered_selection", "reconsidered_polarity"))
        for setup, selected_key, polarity_key in answers:
            response = Response(line=line, survey=None, item=str(question["id"]), model=model,
                                form={"setup": setup}, sample=sample, raw_text=str(question.get("choice", "")) or None)
            label = _label(question.get(selected_key))
            if label is None:
                response.status = "invalid"  # the source could not parse an answer: kept, never an option
            else:
                response.label = label
                polarity = question.get(polarity_key)
                if isinstance(polarity, (int, float)) and not isinstance(polarity, bool):
                    response.check_polarity = float(polarity)
            parsed.responses.append(response)
    return parsed
