"""probekit's generic JSONL import format (docs/import-format.md): one object per line with `survey`,
`item`, `model`, optional `form` and `sample`, and exactly one of `choice`, `distribution` or `status`."""

from __future__ import annotations

import math
from pathlib import Path

from probekit.importers.records import STATUSES, Parsed, Response, RowProblem
from probekit.jsonl import iter_jsonl

ALLOWED = {"survey", "item", "model", "form", "sample", "choice", "distribution", "status", "raw_text"}
ANSWERS = ("choice", "distribution", "status")


def parse_generic(path: Path) -> Parsed:
    """Parse every line; collect a problem per bad line instead of stopping at the first."""
    parsed = Parsed()
    shown = str(path)
    for number, data, json_error in iter_jsonl(path):
        if json_error is not None:
            parsed.problems.append(RowProblem(shown, number, f"invalid JSON ({json_error}); write one JSON object per line"))
            continue
        message = _check(data)
        if message:
            parsed.problems.append(RowProblem(shown, number, message))
            continue
        parsed.responses.append(Response(
            line=number, survey=data.get("survey"), item=str(data["item"]), model=data["model"],
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
    for name in ("item", "model"):
        if not isinstance(data.get(name), (str, int)) or data.get(name) == "":
            return f"missing or empty '{name}'"
    if "survey" in data and not isinstance(data["survey"], str):
        return "'survey' must be a survey id (string)"
    if not isinstance(data.get("form", {}), dict):
        return "'form' must be an object, e.g. {\"template\": \"ab\", \"order\": [1, 0]}"
    sample = data.get("sample", 0)
    if not isinstance(sample, int) or isinstance(sample, bool) or sample < 0:
        return "'sample' must be a whole number >= 0"
    given = [name for name in ANSWERS if name in data]
    if len(given) != 1:
        return f"give exactly one of choice, distribution or status (got {given or 'none'})"
    if "choice" in data and (not isinstance(data["choice"], int) or isinstance(data["choice"], bool) or data["choice"] < 0):
        return "'choice' must be a canonical 0-based option index"
    if "distribution" in data:
        dist = data["distribution"]
        if not isinstance(dist, list) or not dist or not all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in dist):
            return "'distribution' must be a list of probabilities in canonical option order"
        if any(p < 0 or not math.isfinite(p) for p in dist) or abs(sum(dist) - 1.0) > 1e-3:
            return f"'distribution' must be non-negative and sum to 1 (sums to {sum(dist):.4f})"
    if "status" in data and data["status"] not in STATUSES:
        return f"'status' must be one of {list(STATUSES)}"
    return None
