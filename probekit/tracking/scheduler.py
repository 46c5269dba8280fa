"""The scheduler entries that call `probekit track run-due`: a crontab line, or a systemd service + timer.

run-due decides itself which job slots are due and runs each once, so the scheduler only has to call it
often enough (every 15 minutes by default, finer than the finest job schedule) and may call it late,
twice, or from two machines sharing nothing but the store file.
"""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from probekit.tracking.names import check_job_name

DEFAULT_CRON = "*/15 * * * *"
DEFAULT_CALENDAR = "*:0/15"
DEFAULT_UNIT = "probekit-track"
ENVIRONMENT = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "TOKENIZERS_PARALLELISM": "false"}


class EntryFieldError(ValueError):
    """A value that cannot be written into a crontab line or a unit file."""


FieldKind = Literal["cron-word", "cron-schedule", "exec-word", "unit-path", "unit-setting", "unit-name", "job"]
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UNIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,200}")


def entry_field(value: str, what: str, kind: FieldKind) -> str:
    """Every value that reaches a crontab line or a unit file goes through here, and only here: refused when
    it cannot be written safely, else escaped for the place it goes. `what` names the option in the error.

    Every kind refuses control characters: a newline (or CR) ends a crontab entry or a unit-file line, and
    what follows it would be read as another entry (another command) or another key (`ExecStartPre=`).
    - `cron-word`: one word of the crontab command, which cron hands to `sh -c`: single-quoted, so `$(...)`,
      `${...}`, backticks, quotes, `;` and spaces are plain text; then every `%` is written `\\%` (a bare
      `%` is a newline to cron, the rest of the line the command's stdin).
    - `cron-schedule`: the five time fields (checked by `cron_line`), as given.
    - `exec-word`: one word of `ExecStart=`: double-quoted with `\\` and `"` escaped, `%` doubled (a
      specifier otherwise) and `$` doubled (systemd expands `$VAR` / `${VAR}` there).
    - `unit-path`: an absolute path as a whole setting value (`WorkingDirectory=`): `%` doubled; no quoting
      (the value is the rest of the line); leading or trailing spaces refused (systemd strips them).
    - `unit-setting`: a value the user writes in systemd's own syntax (`OnCalendar=`, `EnvironmentFile=`,
      where a specifier such as `%h` is meant): kept as written; a trailing backslash refused (it would
      join the next line to this one).
    - `unit-name`: a unit name, also a file name under `--out`: letters, digits, `_ . : @ -`, starting with a
      letter or digit; no `/`, so never a path out of the directory.
    - `job`: a tracking job name (`probekit.tracking.names.check_job_name`).
    """
    if not isinstance(value, str):
        raise EntryFieldError(f"{what}: expected text, got {type(value).__name__}")
    bad = _CONTROL.search(value)
    if bad:
        raise EntryFieldError(f"{what} {value!r}: contains a control character ({bad.group()!r}); a scheduler entry "
                              "is one line per setting, so it cannot hold newlines or other control characters")
    if kind == "cron-word":
        return shlex.quote(value).replace("%", "\\%")
    if kind == "cron-schedule":
        return value
    if kind == "exec-word":
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
        return f'"{escaped}"'
    if kind == "unit-path":
        if not value.startswith("/") or value != value.strip():
            raise EntryFieldError(f"{what} {value!r}: must be an absolute path without leading or trailing spaces")
        return value.replace("%", "%%")
    if kind == "unit-setting":
        if value != value.strip() or not value or value.endswith("\\"):
            raise EntryFieldError(f"{what} {value!r}: empty, with leading or trailing spaces, or ending in a backslash "
                                  "(which would continue the setting on the next line)")
        return value
    if kind == "unit-name":
        if _UNIT_NAME.fullmatch(value) is None:
            raise EntryFieldError(f"{what} {value!r}: a unit name is letters, digits, '_', '.', ':', '@', '-', starting "
                                  "with a letter or digit (no '/', so the unit files stay in --out)")
        return value
    if kind == "job":
        try:
            return check_job_name(value)
        except ValueError as error:
            raise EntryFieldError(f"{what}: {error}") from None
    raise ValueError(f"unknown entry field kind {kind!r}")


def probekit_command() -> list[str]:
    """The absolute command that runs probekit in this installation: the `probekit` script beside the
    running interpreter, else the one on PATH, else `python -m probekit.cli.main`."""
    beside = Path(sys.executable).parent / "probekit"
    if beside.is_file():
        return [str(beside.absolute())]
    found = shutil.which("probekit")
    if found:
        return [str(Path(found).absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "probekit.cli.main"]


def run_due_command(store: Path, jobs: list[str] | None = None) -> list[str]:
    """The run-due command as words (unescaped); job names are checked here."""
    command = [*probekit_command(), "track", "run-due", "--store", str(store.absolute())]
    for job in jobs or []:
        command += ["--job", entry_field(job, "--job", "job")]
    return command


def cron_line(store: Path, *, schedule: str = DEFAULT_CRON, workdir: Path | None = None, log: Path | None = None,
              jobs: list[str] | None = None) -> str:
    """One crontab line: `SCHEDULE cd WORKDIR && ENV... probekit track run-due --store STORE >> LOG 2>&1`,
    every value passed through `entry_field`."""
    from croniter import croniter

    schedule = entry_field(schedule, "--schedule", "cron-schedule")
    if not croniter.is_valid(schedule) or len(schedule.split()) != 5:
        raise ValueError(f"cron schedule {schedule!r} is not a five-field cron expression (e.g. '*/15 * * * *')")
    workdir = (workdir or Path.cwd()).absolute()
    log = (log or store.absolute().parent / "track.log").absolute()
    env = " ".join(f"{key}={value}" for key, value in ENVIRONMENT.items())  # constants, no escaping needed
    words = " ".join(entry_field(word, "--store" if k else "the probekit command", "cron-word")
                     for k, word in enumerate(run_due_command(store, jobs)))
    command = (f"cd {entry_field(str(workdir), 'the working directory', 'cron-word')} && {env} {words} "
               f">> {entry_field(str(log), '--log', 'cron-word')} 2>&1")
    return f"{schedule} {command}"


@dataclass(frozen=True)
class SystemdUnits:
    """A oneshot service that runs run-due and the timer that starts it."""

    name: str
    service: str
    timer: str

    @property
    def files(self) -> dict[str, str]:
        return {f"{self.name}.service": self.service, f"{self.name}.timer": self.timer}


def systemd_units(store: Path, *, on_calendar: str = DEFAULT_CALENDAR, name: str = DEFAULT_UNIT, workdir: Path | None = None,
                  jobs: list[str] | None = None, environment_file: str | None = None) -> SystemdUnits:
    """The service and timer units, every value passed through `entry_field`. API keys belong in an
    EnvironmentFile (its path, never a key, is written here; systemd specifiers such as `%h` are kept);
    `Persistent=true` makes a timer that missed its time (machine off) fire at boot."""
    name = entry_field(name, "--name", "unit-name")
    on_calendar = entry_field(on_calendar, "--on-calendar", "unit-setting")
    workdir = (workdir or Path.cwd()).absolute()
    exec_start = " ".join(entry_field(word, "--store", "exec-word") for word in run_due_command(store, jobs))
    env_lines = "".join(f"Environment={key}={value}\n" for key, value in ENVIRONMENT.items())  # constants
    env_file = (f"EnvironmentFile=-{entry_field(environment_file, '--environment-file', 'unit-setting')}\n"
                if environment_file else "")
    service = (
        "[Unit]\n"
        "Description=probekit tracking: run the due survey slots (probekit track run-due)\n"
        "Wants=network-online.target\n"
        "After=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"WorkingDirectory={entry_field(str(workdir), 'the working directory', 'unit-path')}\n"
        f"{env_lines}{env_file}"
        f"ExecStart={exec_start}\n"
    )
    timer = (
        "[Unit]\n"
        f"Description=Start {name}.service on a schedule (probekit track run-due)\n"
        "\n"
        "[Timer]\n"
        f"OnCalendar={on_calendar}\n"
        "Persistent=true\n"
        f"Unit={name}.service\n"
        "\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )
    return SystemdUnits(name=name, service=service, timer=timer)


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit file as {section: {key: [values]}} (keys may repeat); raises ValueError on a line
    that is neither a section, a key=value, a comment nor blank."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            current = sections.setdefault(stripped[1:-1], {})
            continue
        key, sep, value = stripped.partition("=")
        if not sep or current is None or not key.strip():
            raise ValueError(f"line {number}: {line!r} is not 'Key=value' inside a [Section]")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections
