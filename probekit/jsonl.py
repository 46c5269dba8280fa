"""Line-numbered JSONL reading shared by survey item files and response imports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class TextProblem(str):
    """An error message about the file's bytes (binary data, not UTF-8), not about one line's JSON: callers that
    prefix JSON errors with "invalid JSON" can tell it apart with isinstance."""


def iter_jsonl(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """(1-based line number, parsed value or None, error message or None) for every non-blank line, so callers
    can report each bad line instead of stopping at the first. UTF-8 (a UTF-8 or UTF-16 byte-order mark is
    honoured); a line that is not UTF-8 yields a TextProblem, a binary file one TextProblem for line 1 and
    nothing else."""
    with path.open("rb") as handle:
        head = handle.read(8192)
        handle.seek(0)
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            try:
                lines: Any = handle.read().decode("utf-16").splitlines(keepends=True)
            except UnicodeDecodeError:
                yield 1, None, TextProblem("starts with a UTF-16 byte-order mark but is not UTF-16 text; save it as UTF-8")
                return
        elif b"\x00" in head:
            yield 1, None, TextProblem("a binary file, not JSON lines (text); check the path")
            return
        else:
            lines = handle
        for number, raw in enumerate(lines, start=1):
            if isinstance(raw, bytes):
                try:
                    raw = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError as error:
                    yield number, None, TextProblem(f"not UTF-8 text (byte 0x{raw[error.start:error.start + 1].hex()} at "
                                                    f"column {error.start + 1}; Latin-1 or Windows-1252?); save the file as UTF-8")
                    continue
            if not raw.strip():
                continue
            try:
                yield number, json.loads(raw), None
            except json.JSONDecodeError as error:
                yield number, None, error.msg
