"""Helpers shared by the survey build scripts: write a spec (YAML with a provenance header) and its items
(JSONL, one item per line) the same way for every family, so regenerated files diff cleanly."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
SURVEYS = REPO / "surveys"
DEFAULT_DATA = REPO.parent / "shared" / "data"


def read_csv(path: Path) -> list[dict[str, str]]:
    """A source CSV as a list of rows keyed by its header."""
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_items(name: str, items: list[dict[str, Any]]) -> str:
    """Write surveys/data/<name>.jsonl and return the items_file path relative to the survey file."""
    out = SURVEYS / "data" / f"{name}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for item in items:
            handle.write(json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n")
    return f"data/{name}.jsonl"


def write_survey(name: str, header: str, survey: dict[str, Any]) -> Path:
    """Write surveys/<name>.yaml: the header comment (attribution, license, how it was made) then the spec."""
    out = SURVEYS / f"{name}.yaml"
    body = yaml.safe_dump(survey, sort_keys=False, allow_unicode=True, width=120)
    out.write_text(header.rstrip("\n") + "\n" + body, encoding="utf-8")
    return out
