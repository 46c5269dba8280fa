"""Line-numbered JSONL reading shared by survey item files and response imports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def iter_jsonl(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """(1-based line number, parsed value or None, JSON error message or None) for every non-blank line,
    so callers can report each bad line instead of stopping at the first."""
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                yield number, json.loads(raw), None
            except json.JSONDecodeError as error:
                yield number, None, error.msg
