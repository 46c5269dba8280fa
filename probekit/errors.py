"""The one base of the errors probekit raises on purpose, and the exit code each ends a command with.

A `ProbekitError` is an expected failure with a message for the user that names the input and the fix (a bad
spec, a store file that is no store, a refused import, an unknown job ...); anything else reaching the command
line is a bug. Each subclass keeps the built-in base it had (`StoreFileError` is still a `RuntimeError`,
`JobNotFoundError` a `KeyError`), so existing `except` clauses keep catching them. The command line turns
every error into one line on stderr and an exit code through `exit_code` and `user_message`, here and
nowhere else.
"""

from __future__ import annotations

EXIT_ERROR = 1
"""A refused operation or a failure the message explains."""
EXIT_SPEC_ERROR = 2
"""Invalid input files (survey, experiment, judging experiment): every problem listed as file:line — fix."""
EXIT_INTERRUPTED = 130
"""Ctrl-C (128 + SIGINT); committed results are kept."""


class ProbekitError(Exception):
    """An expected failure with a message that says what to do. `exit_code` is the command's exit status."""

    exit_code: int = EXIT_ERROR


def exit_code(error: BaseException) -> int:
    """The exit status a command ends with for `error`: the error's own for a ProbekitError, 130 for Ctrl-C,
    1 for anything else."""
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(error, ProbekitError):
        return error.exit_code
    return EXIT_ERROR


def user_message(error: BaseException) -> str:
    """The error's message as one line for stderr (a KeyError's message without the quotes `str` adds)."""
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    return (text.strip().splitlines() or [type(error).__name__])[0]
