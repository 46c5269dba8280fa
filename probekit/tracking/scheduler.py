"""The scheduler entries that call `probekit track run-due`: a crontab line, or a systemd service + timer.

run-due decides itself which job slots are due and runs each once, so the scheduler only has to call it
often enough (every 15 minutes by default, finer than the finest job schedule) and may call it late,
twice, or from two machines sharing nothing but the store file.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CRON = "*/15 * * * *"
DEFAULT_CALENDAR = "*:0/15"
DEFAULT_UNIT = "probekit-track"
ENVIRONMENT = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "TOKENIZERS_PARALLELISM": "false"}


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
    command = [*probekit_command(), "track", "run-due", "--store", str(store.absolute())]
    for job in jobs or []:
        command += ["--job", job]
    return command


def cron_line(store: Path, *, schedule: str = DEFAULT_CRON, workdir: Path | None = None, log: Path | None = None,
              jobs: list[str] | None = None) -> str:
    """One crontab line: `SCHEDULE cd WORKDIR && ENV... probekit track run-due --store STORE >> LOG 2>&1`.
    `%` (a newline to cron) is escaped."""
    from croniter import croniter

    if not croniter.is_valid(schedule) or len(schedule.split()) != 5:
        raise ValueError(f"cron schedule {schedule!r} is not a five-field cron expression (e.g. '*/15 * * * *')")
    workdir = (workdir or Path.cwd()).absolute()
    log = (log or store.absolute().parent / "track.log").absolute()
    env = " ".join(f"{key}={value}" for key, value in ENVIRONMENT.items())
    command = (f"cd {shlex.quote(str(workdir))} && {env} {shlex.join(run_due_command(store, jobs))} "
               f">> {shlex.quote(str(log))} 2>&1")
    return f"{schedule} {command.replace('%', chr(92) + '%')}"


def _systemd_arg(word: str) -> str:
    """One ExecStart word: `%` doubled (a specifier otherwise), quoted when it has spaces or quotes."""
    word = word.replace("%", "%%")
    if any(c in word for c in " \t\"'\\;$"):
        return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return word


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
    """The service and timer units. API keys belong in an EnvironmentFile (its path, never a key, is
    written here); `Persistent=true` makes a timer that missed its time (machine off) fire at boot."""
    workdir = (workdir or Path.cwd()).absolute()
    exec_start = " ".join(_systemd_arg(word) for word in run_due_command(store, jobs))
    env_lines = "".join(f"Environment={key}={value}\n" for key, value in ENVIRONMENT.items())
    env_file = f"EnvironmentFile=-{environment_file}\n" if environment_file else ""
    service = (
        "[Unit]\n"
        "Description=probekit tracking: run the due survey slots (probekit track run-due)\n"
        "Wants=network-online.target\n"
        "After=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"WorkingDirectory={_systemd_arg(str(workdir))}\n"
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
