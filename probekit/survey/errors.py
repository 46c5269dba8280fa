"""Spec errors that point at a file and line and say how to fix the problem."""

from __future__ import annotations

from dataclasses import dataclass

from probekit.errors import EXIT_SPEC_ERROR, ProbekitError


@dataclass(frozen=True)
class SpecProblem:
    """One problem in a spec file."""

    path: str
    line: int
    message: str
    fix: str = ""

    def __str__(self) -> str:
        text = f"{self.path}:{self.line}: {self.message}"
        return f"{text} — {self.fix}" if self.fix else text


class SpecError(ProbekitError):
    """A survey spec (or its item file) is invalid; carries every problem found."""

    exit_code = EXIT_SPEC_ERROR

    def __init__(self, problems: list[SpecProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
