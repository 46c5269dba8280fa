"""One error base: every error probekit raises on purpose is a ProbekitError (keeping the built-in base it had,
so existing `except` clauses still catch it), and the command line turns any of them into one line on stderr
and the error's exit code, in one place (probekit.errors)."""

from __future__ import annotations

import pytest

import probekit.cli.main as cli_main
from probekit.backends.base import BackendError
from probekit.backends.hf_loader import ModelNotFoundError
from probekit.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_SPEC_ERROR, ProbekitError, exit_code, user_message
from probekit.exporting import ExportError
from probekit.importers.core import BadRows, ImportRefused
from probekit.importers.probekit_export import ExportImportRefused
from probekit.store.store import StoreFileError, StoreLockedError
from probekit.survey.errors import SpecError, SpecProblem
from probekit.survey.yamlfile import YamlLimitError
from probekit.tracking.jobs import JobExistsError, JobNotFoundError
from probekit.tracking.schedule import ScheduleError

KEPT_BASES = [(StoreFileError, RuntimeError), (StoreLockedError, RuntimeError), (ExportError, ValueError),
              (ExportImportRefused, ValueError), (JobExistsError, ValueError), (JobNotFoundError, KeyError),
              (ScheduleError, ValueError), (ModelNotFoundError, RuntimeError), (YamlLimitError, ValueError),
              (SpecError, Exception), (ImportRefused, Exception), (BadRows, Exception), (BackendError, Exception)]


@pytest.mark.parametrize(("error", "builtin"), KEPT_BASES, ids=[e.__name__ for e, _ in KEPT_BASES])
def test_every_error_class_is_a_probekit_error_and_keeps_its_base(error: type[Exception], builtin: type[Exception]) -> None:
    assert issubclass(error, ProbekitError) and issubclass(error, builtin)


def test_exit_codes_and_messages() -> None:
    spec = SpecError([SpecProblem("s.yaml", 3, "unknown key 'tempalte'", "did you mean 'templates'?")])
    assert exit_code(spec) == EXIT_SPEC_ERROR == 2
    assert exit_code(StoreLockedError("held")) == EXIT_ERROR == 1
    assert exit_code(ValueError("x")) == 1 and exit_code(KeyboardInterrupt()) == EXIT_INTERRUPTED == 130
    assert user_message(JobNotFoundError("no tracking job 'x'")) == "no tracking job 'x'"  # not "'no tracking ...'"
    assert user_message(spec) == "s.yaml:3: unknown key 'tempalte' — did you mean 'templates'?"
    assert user_message(RuntimeError("first line\nsecond line")) == "first line"


def _main_with(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: Exception) -> tuple[int, str]:
    def failing_app(**kwargs: object) -> None:
        raise error

    monkeypatch.setattr(cli_main, "app", failing_app)
    monkeypatch.delenv("PROBEKIT_DEBUG", raising=False)
    with pytest.raises(SystemExit) as ended:
        cli_main.main()
    return int(ended.value.code or 0), capsys.readouterr().err


def test_the_cli_maps_every_probekit_error_to_its_exit_code(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, said = _main_with(monkeypatch, capsys, StoreFileError("s.duckdb is a directory, not a store file"))
    assert code == 1 and said == "error: s.duckdb is a directory, not a store file\n"
    code, said = _main_with(monkeypatch, capsys, SpecError([SpecProblem("e.yaml", 1, "not a mapping")]))
    assert code == 2 and said == "error: e.yaml:1: not a mapping\n"
    code, said = _main_with(monkeypatch, capsys, ZeroDivisionError("division by zero"))
    assert code == 1 and said.startswith("error: ZeroDivisionError: division by zero (unexpected: please report it")
