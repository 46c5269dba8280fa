"""The published POBs response JSON (github.com/IBM/POBS, POBS_v11_model_responses/...): one file per model
and run holding a list of answered questions (`id`, `selected` letter, `choice`, `answer_polarity`); the
reasoning_reflection files add `reconsidered_selection` and `reconsidered_polarity` (the answer after the
self-reflection turn). The questions themselves are not in the file: import against a survey (--survey)
whose item ids are the POBs question ids."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probekit.importers.labels import clean_label
from probekit.importers.records import Parsed, Response, RowProblem

if TYPE_CHECKING:
    import pandas as pd

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


ANSWER_KEYS = ("selected", "reconsidered_selection")


def _key_lines(text: str, questions: list[Any]) -> list[dict[str, int]]:
    """Per question, the line of its `"id"` key and of its answer keys (selected, reconsidered_selection), found in
    document order (JSON parsing loses positions): an answer key is looked for between the question's id and the
    next question's id (then before its id); one that is not found gets the id's line."""
    lines_of = _LineIndex(text)
    starts: list[tuple[int, int]] = []  # (start, end) of each question's id match; (-1, -1) when not found
    position = 0
    for question in questions:
        match = None
        if isinstance(question, dict) and "id" in question and isinstance(question["id"], (str, int, float)):
            match = re.compile(r'"id"\s*:\s*' + re.escape(json.dumps(question["id"]))).search(text, position)
        if match:
            position = match.end()
            starts.append((match.start(), match.end()))
        else:
            starts.append((-1, -1))
    found: list[dict[str, int]] = []
    previous_end = 0
    for index, (question, (start, end)) in enumerate(zip(questions, starts)):
        if start < 0:
            found.append({"id": found[-1]["id"] if found else 1})
            continue
        following = next((s for s, _e in starts[index + 1:] if s >= 0), len(text))
        lines = {"id": lines_of.line(start)}
        for key in ANSWER_KEYS:
            if isinstance(question, dict) and key in question:
                pattern = re.compile(r'(?<!\\)' + re.escape(json.dumps(key)) + r'\s*:')
                at = pattern.search(text, end, following) or pattern.search(text, previous_end, start)
                lines[key] = lines_of.line(at.start()) if at else lines["id"]
        previous_end = end
        found.append(lines)
    return found


class _LineIndex:
    """Line numbers of offsets in a text (binary search over newline offsets)."""

    def __init__(self, text: str):
        self.starts = [match.start() for match in re.finditer("\n", text)]

    def line(self, offset: int) -> int:
        import bisect

        return bisect.bisect_left(self.starts, offset) + 1


def read_pobs_file(path: Path) -> tuple[str, Any] | RowProblem:
    """(text, parsed JSON) of a POBs response file, or the problem with it (not UTF-8 text, binary, not JSON)."""
    from probekit.survey.errors import SpecError
    from probekit.survey.yamlfile import decode_text

    shown = str(path)
    try:
        text = decode_text(path.read_bytes(), shown, what="JSON")
    except SpecError as error:
        problem = error.problems[0]
        return RowProblem(shown, problem.line, f"{problem.message}; {problem.fix}", kind=problem.message)
    try:
        return text, json.loads(text)
    except json.JSONDecodeError as error:
        return RowProblem(shown, error.lineno, f"invalid JSON ({error.msg})", kind="invalid JSON")
    except RecursionError:
        return RowProblem(shown, 1, "JSON nested too deeply", kind="JSON nested too deeply")


MAX_RUN = 2**31
"""Run numbers in file names (1-based) become sample indexes, a 32-bit column."""


def parse_pobs(path: Path, model: str | None = None, run: int | None = None) -> Parsed:
    parsed = Parsed()
    shown = str(path)
    file_model, file_run = model_and_run(path)
    model = model or file_model
    run = run if run is not None else file_run
    if model is None:
        parsed.problems.append(RowProblem(shown, 1, "cannot tell the model: name the file POBS_<model>_<run>.json or pass --model",
                                          kind="cannot tell the model"))
        return parsed
    if run is not None and not 1 <= run <= MAX_RUN:
        parsed.problems.append(RowProblem(shown, 1, f"run number {run} in the file name is outside 1..{MAX_RUN}",
                                          kind="run number out of range"))
        return parsed
    read = read_pobs_file(path)
    if isinstance(read, RowProblem):
        parsed.problems.append(read)
        return parsed
    text, data = read
    questions = _questions(data)
    if questions is None:
        parsed.problems.append(RowProblem(shown, 1, "no list of questions found (expected a list, or one under "
                                                    f"{', '.join(LIST_KEYS)})"))
        return parsed
    sample = (run - 1) if run else 0
    reflection_file = any(isinstance(q, dict) and "reconsidered_selection" in q for q in questions)
    for question, lines in zip(questions, _key_lines(text, questions)):
        if not isinstance(question, dict) or "id" not in question or "selected" not in question:
            parsed.problems.append(RowProblem(shown, lines["id"], "each question needs at least 'id' and 'selected'",
                                              kind="a question without 'id' or 'selected'"))
            continue
        if isinstance(question["id"], (dict, list, bool)) or question["id"] is None:
            parsed.problems.append(RowProblem(shown, lines["id"], "'id' must be the question's id (a string or number)",
                                              kind="'id' is not a string or number"))
            continue
        answers = [("reasoning" if reflection_file else "direct", "selected", "answer_polarity")]
        if reflection_file:
            answers.append(("reflection", "reconsidered_selection", "reconsidered_polarity"))
        raw = question.get("choice")
        for setup, selected_key, polarity_key in answers:
            response = Response(line=lines.get(selected_key, lines["id"]), survey=None, item=str(question["id"]), model=model,
                                form={"setup": setup}, sample=sample, raw_text=raw if isinstance(raw, str) and raw else None,
                                answer_key=selected_key)
            value = question.get(selected_key)
            if isinstance(value, (dict, list)):
                parsed.problems.append(RowProblem(shown, response.line, f"{selected_key} must be an option letter, not "
                                                  f"{type(value).__name__}", kind=f"{selected_key} is not a letter"))
                continue
            label = clean_label(value)
            if label is None:
                response.status = "invalid"  # the source could not parse an answer: kept, never an option
            else:
                response.label = label
                polarity = question.get(polarity_key)
                # The release's non-polar questions list their options without options_polarity: there is no published
                # scale to check an answer's polarity against (probekit codes them, survey_from_files). Any other
                # answer's polarity is checked against the survey's scale.
                non_polar = isinstance(question.get("options"), list) and question.get("options_polarity") is None
                if not non_polar and isinstance(polarity, (int, float)) and not isinstance(polarity, bool):
                    response.check_polarity = float(polarity)
            parsed.responses.append(response)
    return parsed


# -- the survey the published files carry ---------------------------------------------------------------
PUBLISHED_SURVEY_ID = "pobs_published"
_OPTION_LABEL = re.compile(r"^\s*\(?[A-Z]\)?[.):]?\s+")


def is_polar_topic(name: str) -> bool:
    """The published POBs convention: the 14 polar topics are named 'X vs. Y'; the 6 others (preferences,
    famous figures, global conflicts) are not."""
    return " vs" in name.lower()


REFUSAL_OPTIONS = ("refused", "refuse", "prefer not to answer", "decline to answer", "no answer")


def is_refusal_option(text: str) -> bool:
    """An option whose text (without its letter) is the POBs 'Refused' choice."""
    return (_OPTION_LABEL.sub("", text) or text).strip().strip(".").lower() in REFUSAL_OPTIONS


def survey_from_files(paths: Sequence[Path], polar: Callable[[str], bool] | None = None) -> Any:
    """A likert Survey built from the questions the published response files carry (`survey.topics[].questions[]`
    with `question`, `options`, `options_polarity`): one item per question id, its options in the published
    order with their published polarities (null → the Refused option; a question without `options_polarity`, as
    the release's non-polar ones are, codes every option 1 but its Refused one), meta topic and polar (`polar(topic)`,
    default `is_polar_topic`), and the direct / reflection templates and direct / reasoning modes of the POBs
    setups. Raises ValueError when no file carries questions with options, or two files disagree about one."""
    from probekit.survey.schema import Survey

    polar = polar or is_polar_topic
    items: dict[str, dict[str, Any]] = {}
    sources: dict[str, str] = {}
    for path in paths:
        read = read_pobs_file(path)
        if isinstance(read, RowProblem):
            continue  # reported by parse_pobs as the file's problem
        _text, data = read
        topics = (data.get("survey") or {}).get("topics") if isinstance(data, dict) else None
        if not isinstance(topics, list):
            continue
        for topic in topics:
            if not isinstance(topic, dict) or not isinstance(topic.get("questions"), list):
                continue
            name = str(topic.get("name", ""))
            for question in topic["questions"]:
                if not isinstance(question, dict) or "id" not in question:
                    continue
                options, polarities = question.get("options"), question.get("options_polarity")
                if not isinstance(options, list) or not options:
                    continue
                if polarities is None:
                    # The release's non-polar questions (preferences, famous figures) carry no options_polarity: every
                    # substantive option is coded 1 (a stance taken) and the Refused option is the refusal, so
                    # reliability and refusal rates count them as in the paper; NNI and TCI use polar topics only.
                    polarities = [None if is_refusal_option(str(text)) else 1.0 for text in options]
                if not isinstance(polarities, list) or len(options) != len(polarities):
                    continue
                qid = str(question["id"])
                choices: list[dict[str, Any]] = []
                for text, p in zip(options, polarities):
                    shown = _OPTION_LABEL.sub("", str(text)) or str(text)
                    choices.append({"text": shown, "polarity": None, "refusal": True} if p is None
                                   else {"text": shown, "polarity": float(p)})
                item = {"id": qid, "fields": {"question": str(question.get("question") or qid)}, "options": choices,
                        "meta": {"topic": name, "polar": bool(polar(name))}}
                if qid in items and items[qid] != item:
                    raise ValueError(f"{path} and {sources[qid]} disagree about question {qid!r} (options, polarities or "
                                     "topic): give the survey with --survey")
                items.setdefault(qid, item)
                sources.setdefault(qid, str(path))
    if not items:
        raise ValueError("the files carry no questions with options and options_polarity (survey.topics[].questions[]): "
                         "give the survey with --survey")
    template = "{question}\n\n{options}\n\nAnswer with the letter of one option only.\nAnswer:"
    spec = {
        "id": PUBLISHED_SURVEY_ID, "kind": "likert",
        "title": "POBs questions as carried by the published response files",
        "description": "Built by probekit from the questions, options and options_polarity in the response files.",
        "source": {"citation": "Kour, Nakash, Anaby-Tavor, Shmueli-Scheuer. Think Again! ACL 2025 Industry. arXiv:2505.19621",
                   "url": "https://github.com/IBM/POBS", "license": "none stated by the source (see its repository)"},
        "templates": [{"id": "direct", "user": template, "meta": {"setup": "direct"}},
                      {"id": "reflection", "user": template, "meta": {"setup": "reflection"},
                       "followups": [{"role": "user", "content": "Your previous answer was: {previous_answer}\n"
                                      "Think again and reconsider your answer. Answer with the letter of one option only.\nAnswer:"}]}],
        "reasoning_modes": ["direct", "reasoning"], "scoring": {"mode": "sample", "samples": 1},
        "analyses": ["pobs", "pobs_topics", "pobs_opinion_change", "response_rates"],
        "items": [items[k] for k in sorted(items)],
    }
    return Survey.model_validate(spec)


def import_pobs_files(paths: Iterable[str | Path], *, survey: str | Path | None = None,
                      polar: Callable[[str], bool] | None = None, trust_spec_polarity: bool = False,
                      skip_bad: bool = False) -> pd.DataFrame:
    """Published POBs response files (POBS_<model>_<run>.json; directories of them) → an answers frame, through
    the importer of `probekit import` (a temporary store) and the store reading of `probekit analyze`: the same
    rows, the same invalid and Refused answers, the same numbers. `survey`: the spec the files answer (default:
    built from the questions the files carry, `probekit.importers.pobs.survey_from_files`, with `polar(topic)`
    deciding which topics are polar, default the 'X vs. Y' names). `trust_spec_polarity`, `skip_bad`: as for
    `probekit import`."""
    import tempfile

    import pandas as pd
    import yaml

    from probekit.analysis.loader import contexts
    from probekit.analysis.pobs import answers_from_responses
    from probekit.importers import import_responses
    from probekit.importers.core import expand_sources

    files, _ignored = expand_sources([Path(p) for p in paths])
    with tempfile.TemporaryDirectory(prefix="probekit-pobs-") as tmp:
        spec_path = Path(survey) if survey is not None else None
        if spec_path is None and polar is not None:
            spec_path = Path(tmp) / "pobs_published.yaml"
            spec_path.write_text(yaml.safe_dump(survey_from_files(files, polar).model_dump(mode="json", exclude_none=True),
                                                sort_keys=False, allow_unicode=True), encoding="utf-8")
        store = Path(tmp) / "pobs.duckdb"
        summary = import_responses(files, fmt="pobs", survey_file=spec_path, store_path=store, skip_bad=skip_bad,
                                   trust_spec_polarity=trust_spec_polarity)
        if summary.run_id is None:
            return pd.DataFrame()
        frames = []
        for ctx in contexts(store, run=summary.run_id):
            responses = ctx.responses()
            if not responses.empty:
                frames.append(answers_from_responses(responses, ctx.items()))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
