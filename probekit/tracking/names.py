"""The one rule for tracking job names. A job name is stored (`track add`), shown, and written into
scheduler entries (`track cron --job`, `track systemd --job`), so it is plain: letters, digits, `_`, `.`,
`-`, starting with a letter or digit, at most 64 characters, and nothing else (no trailing newline either:
the whole string must match, not a prefix of it)."""

from __future__ import annotations

import re

JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""Matched with `fullmatch` (`re.match` with `$` would let a trailing newline through)."""


class JobNameError(ValueError):
    """Not a valid tracking job name."""


def check_job_name(name: object) -> str:
    """`name` unchanged when it is a valid job name, else JobNameError saying what is allowed."""
    if not isinstance(name, str) or JOB_NAME.fullmatch(name) is None:
        raise JobNameError(f"job name {name!r}: use letters, digits, '_', '.', '-' (at most 64, starting with a "
                           "letter or digit; no spaces, newlines or other characters)")
    return name
