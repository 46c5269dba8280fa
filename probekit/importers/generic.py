"""probekit's generic JSONL import format (docs/import-format.md, docs/importing.md): one object per line with
`survey`, `item`, `model`, optional `form`, `sample` and `respondent`, and exactly one answer: `choice` (canonical
index), `label` (as shown: "A", "1" or the option's text, with the shown order), `distribution` or `status`.
Rows may also carry what the source showed: `item_text`, `shown` (option texts in shown order), `prompt` (the exact
prompt) or `prompt_template`. A first line `{"defaults": {...}}` gives fields every row has unless it says
otherwise (a file of one model, one survey, one prompt template)."""

from __future__ import annotations

import math
import re
from pathlib import Path

from probekit.importers.labels import clean_label
from probekit.importers.records import STATUSES, Parsed, Response, RowProblem
from probekit.jsonl import TextProblem, iter_jsonl
from probekit.survey.schema import template_placeholders

ALLOWED = {"survey", "item", "model", "form", "sample", "choice", "distribution", "status", "raw_text", "label",
           "respondent", "item_text", "shown", "prompt", "prompt_template"}
ANSWERS = ("choice", "label", "distribution", "status")
DEFAULTS_KEY = "defaults"
"""A first line {"defaults": {...}}: fields that apply to every row that does not give them (its form is merged)."""
DEFAULTABLE = ALLOWED - set(ANSWERS) - {"item", "item_text", "raw_text", "prompt"}
"""What defaults may set: the per-answer fields (item, answer, raw text, exact prompt) are the row's own."""
MAX_RESPONDENT = 256
MAX_INDEX = 2**31 - 1
"""Largest sample index (the store's column is a 32-bit integer)."""
SURVEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
"""What a survey id may be: no path separators, no leading dot (ids name bundled files surveys/<id>.yaml)."""
FORM_TEXT_KEYS = ("template", "reasoning", "setup")


def parse_generic(path: Path) -> Parsed:
    """Parse every line; collect a problem per bad line instead of stopping at the first."""
    parsed = Parsed()
    shown = str(path)
    defaults: dict[str, object] = {}
    first = True
    for number, data, json_error in iter_jsonl(path):
        if first and json_error is None and isinstance(data, dict) and DEFAULTS_KEY in data:
            first = False
            problem = _defaults_problem(data)
            if problem:
                parsed.problems.append(RowProblem(shown, number, problem, kind="bad defaults line"))
                return parsed  # every row depends on it: one clear problem instead of one per row
            defaults = dict(data[DEFAULTS_KEY])
            continue
        first = False
        if isinstance(data, dict) and defaults:
            data = _with_defaults(data, defaults)
        if isinstance(json_error, TextProblem):
            parsed.problems.append(RowProblem(shown, number, str(json_error), kind=str(json_error).split(" (")[0]))
            continue
        if json_error is not None:
            parsed.problems.append(RowProblem(shown, number, f"invalid JSON ({json_error}); write one JSON object per line",
                                              kind="invalid JSON"))
            continue
        message = _check(data)
        if message:
            parsed.problems.append(RowProblem(shown, number, message))
            continue
        parsed.responses.append(Response(
            line=number, survey=data.get("survey"), item=str(data.get("item") or ""), model=str(data["model"]).strip(),
            form=data.get("form") or {}, sample=data.get("sample", 0), choice=data.get("choice"),
            distribution=[float(p) for p in data["distribution"]] if "distribution" in data else None,
            status=data.get("status"), raw_text=data.get("raw_text"),
            label=clean_label(data["label"]) if "label" in data else None, answer_key="label",
            respondent=str(data.get("respondent", "")), item_text=data.get("item_text"), shown=data.get("shown"),
            prompt=data.get("prompt"), prompt_template=data.get("prompt_template"), label_needs_order=True,
        ))
    return parsed


def _defaults_problem(data: dict[str, object]) -> str | None:
    """Why a defaults line cannot be used (None when it can)."""
    defaults = data[DEFAULTS_KEY]
    if len(data) > 1 or not isinstance(defaults, dict):
        return 'a defaults line is {"defaults": {...}} and nothing else, e.g. {"defaults": {"survey": "ipip_neo_120"}}'
    unknown = sorted(set(defaults) - DEFAULTABLE)
    if unknown:
        return f"defaults cannot set {unknown}; they may set {sorted(DEFAULTABLE)} (answers and item texts are per row)"
    return None


def _with_defaults(data: dict[str, object], defaults: dict[str, object]) -> dict[str, object]:
    merged = {**defaults, **data}
    if isinstance(defaults.get("form"), dict) and isinstance(data.get("form"), dict):
        merged["form"] = {**defaults["form"], **data["form"]}  # type: ignore[dict-item]
    return merged


def _check(data: object) -> str | None:
    """Why a parsed line is not a valid record (None when it is). Survey-dependent checks come later."""
    if not isinstance(data, dict):
        return "each line must be a JSON object"
    unknown = sorted(set(data) - ALLOWED)
    if unknown:
        return f"unknown field(s) {unknown}; allowed: {sorted(ALLOWED)}"
    item, model = data.get("item"), data.get("model")
    if (item is None or item == "") and not isinstance(data.get("item_text"), str):
        return "missing or empty 'item' (give the item id, or its text as item_text with --match-items text)"
    if item is not None and (isinstance(item, bool) or not isinstance(item, (str, int))):
        return f"'item' must be an item id (a string or whole number), not {type(item).__name__}"
    if model is None or (isinstance(model, str) and not model.strip()):
        return "missing or empty 'model'"
    if not isinstance(model, str):
        return f"'model' must be the model's name as a string (e.g. \"gpt-4o\"), not {type(model).__name__} {model!r}"
    if "survey" in data and not isinstance(data["survey"], str):
        return "'survey' must be a survey id (string)"
    if "survey" in data and not SURVEY_ID.fullmatch(data["survey"]):
        return (f"'survey' {data['survey'][:60]!r} is not a survey id (letters, digits, _ . -; no path): name the "
                "survey's id and give its file with --survey")
    form = data.get("form", {})
    if not isinstance(form, dict):
        return "'form' must be an object, e.g. {\"template\": \"ab\", \"order\": [1, 0]}"
    form_problem = _form_problem(form)
    if form_problem:
        return form_problem
    sample = data.get("sample", 0)
    if not isinstance(sample, int) or isinstance(sample, bool) or not 0 <= sample <= MAX_INDEX:
        return f"'sample' must be a whole number from 0 to {MAX_INDEX}"
    if data.get("raw_text") is not None and not isinstance(data["raw_text"], str):
        return f"'raw_text' must be the answer's text (a string) or null, not {type(data['raw_text']).__name__}"
    shown_problem = _shown_problem(data)
    if shown_problem:
        return shown_problem
    given = [name for name in ANSWERS if name in data]
    if len(given) != 1:
        return f"give exactly one of choice, distribution or status, or the answer as shown as label (got {given or 'none'})"
    if "label" in data and (isinstance(data["label"], bool) or not isinstance(data["label"], (str, int))
                            or clean_label(data["label"]) is None):
        return ("'label' must be the answer as shown: a label (\"A\", \"1\", 1) or an option's text (\"Strongly agree\"); "
                "an unparsed answer is \"status\": \"invalid\"")
    if "choice" in data and (not isinstance(data["choice"], int) or isinstance(data["choice"], bool)
                             or not 0 <= data["choice"] <= MAX_INDEX):
        return "'choice' must be a canonical 0-based option index (a whole number)"
    if "distribution" in data:
        dist = data["distribution"]
        if not isinstance(dist, list) or not dist or not all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in dist):
            return "'distribution' must be a list of probabilities in canonical option order"
        if any(p < 0 or not math.isfinite(p) for p in dist) or abs(sum(dist) - 1.0) > 1e-3:
            return f"'distribution' must be non-negative and sum to 1 (sums to {sum(dist):.4f})"
    if "status" in data and data["status"] not in STATUSES:
        return f"'status' must be one of {list(STATUSES)}"
    return None


def _shown_problem(data: dict[str, object]) -> str | None:
    """Why the fields describing what the source showed (respondent, item text, shown options, prompt) are not
    usable (None when they are)."""
    respondent = data.get("respondent")
    if respondent is not None and (isinstance(respondent, bool) or not isinstance(respondent, (str, int))
                                   or not str(respondent).strip() or len(str(respondent)) > MAX_RESPONDENT):
        return (f"'respondent' must name who answered (a string or whole number, 1..{MAX_RESPONDENT} characters), e.g. "
                "\"p017\" or \"persona-3\"")
    if "item_text" in data and (not isinstance(data["item_text"], str) or not data["item_text"].strip()):
        return "'item_text' must be the item's text as the source showed it (a non-empty string)"
    shown = data.get("shown")
    if shown is not None and (not isinstance(shown, list) or not shown or not all(isinstance(t, str) for t in shown)):
        return "'shown' must list the option texts in the order the source showed them, e.g. [\"Agree\", \"Disagree\"]"
    prompt = data.get("prompt")
    if prompt is not None and not (isinstance(prompt, str) and prompt.strip()) and not (
            isinstance(prompt, list) and prompt and all(
                isinstance(m, dict) and set(m) == {"role", "content"} and m["role"] in ("system", "user", "assistant")
                and isinstance(m["content"], str) for m in prompt)):
        return ("'prompt' must be the exact prompt the source sent: its text, or its messages as "
                "[{\"role\": \"system\"|\"user\"|\"assistant\", \"content\": \"...\"}]")
    template = data.get("prompt_template")
    if template is not None:
        if prompt is not None:
            return "give 'prompt' (the exact text) or 'prompt_template' (rendered per item), not both"
        if not isinstance(template, str) or not template.strip():
            return "'prompt_template' must be the source's prompt with the survey's placeholders, e.g. \"{statement}\""
        try:
            template_placeholders(template)
        except ValueError as error:
            return f"'prompt_template': {error}"
    return None


def _form_problem(form: dict[str, object]) -> str | None:
    """Why a `form` object's values cannot name a form (None when they can)."""
    for key, value in form.items():
        if key == "order":
            if not isinstance(value, list) or not all(isinstance(k, int) and not isinstance(k, bool) for k in value):
                return "form.order must be a list of whole numbers: canonical option indices in shown order, e.g. [1, 0]"
        elif key == "paraphrase":
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                return "form.paraphrase must be a paraphrase id ('p0', 'p1' ...) or its number"
        elif key in FORM_TEXT_KEYS:
            if not isinstance(value, str):
                return f"form.{key} must be a string, not {type(value).__name__}"
        elif not isinstance(value, (str, int, float, bool)) or value is None:
            return f"form.{key} must be a factor level (a string or number), not {type(value).__name__}"
    return None
