"""probekit's generic JSONL import format (docs/import-format.md): one object per line with `survey`,
`item`, `model`, optional `form` and `sample`, and exactly one of `choice`, `distribution` or `status`."""

from __future__ import annotations

import math
import re
from pathlib import Path

from probekit.importers.records import STATUSES, Parsed, Response, RowProblem
from probekit.jsonl import TextProblem, iter_jsonl

ALLOWED = {"survey", "item", "model", "form", "sample", "choice", "distribution", "status", "raw_text"}
ANSWERS = ("choice", "distribution", "status")
MAX_INDEX = 2**31 - 1
"""Largest sample index (the store's column is a 32-bit integer)."""
SURVEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
"""What a survey id may be: no path separators, no leading dot (ids name bundled files surveys/<id>.yaml)."""
FORM_TEXT_KEYS = ("template", "reasoning", "setup")


def parse_generic(path: Path) -> Parsed:
    """Parse every line; collect a problem per bad line instead of stopping at the first."""
    parsed = Parsed()
    shown = str(path)
    for number, data, json_error in iter_jsonl(path):
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
            line=number, survey=data.get("survey"), item=str(data["item"]), model=str(data["model"]).strip(),
            form=data.get("form") or {}, sample=data.get("sample", 0), choice=data.get("choice"),
            distribution=[float(p) for p in data["distribution"]] if "distribution" in data else None,
            status=data.get("status"), raw_text=data.get("raw_text"),
        ))
    return parsed


def _check(data: object) -> str | None:
    """Why a parsed line is not a valid record (None when it is). Survey-dependent checks come later."""
    if not isinstance(data, dict):
        return "each line must be a JSON object"
    unknown = sorted(set(data) - ALLOWED)
    if unknown:
        return f"unknown field(s) {unknown}; allowed: {sorted(ALLOWED)}"
    item, model = data.get("item"), data.get("model")
    if item is None or item == "":
        return "missing or empty 'item'"
    if isinstance(item, bool) or not isinstance(item, (str, int)):
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
    given = [name for name in ANSWERS if name in data]
    if len(given) != 1:
        return f"give exactly one of choice, distribution or status (got {given or 'none'})"
    if "choice" in data and (not isinstance(data["choice"], int) or isinstance(data["choice"], bool) or not 0 <= data["choice"] <= MAX_INDEX):
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
