"""Issue 23, scheduler entries: every value that reaches a crontab line or a systemd unit goes through one
function (`probekit.tracking.scheduler.entry_field`), which refuses what cannot be written (control
characters: a newline would start another crontab entry or another unit key) and escapes the rest for where
it goes. The cron line is run as cron runs it (`%` handling, then `sh -c`) and must hand the hostile path to
probekit unchanged; the units are read back by the systemd grammar and pass `systemd-analyze verify`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import STARTER, cli, refused

from probekit.tracking import scheduler
from probekit.tracking.names import JobNameError, check_job_name
from probekit.tracking.scheduler import EntryFieldError, cron_line, entry_field, parse_unit, systemd_units

NEWLINES = {
    "cron entry": "x\n* * * * * touch /tmp/probekit-pwned",
    "unit key": "x\nExecStartPre=/bin/touch /tmp/probekit-pwned",
    "carriage return": "x\rExecStartPost=/bin/true",
    "NUL": "x\x00y",
}
HOSTILE_TEXT = ["per%cent", "${HOME}", "$HOME", "$(touch PWNED)", "`touch PWNED`", "it's", 'say "hi"', "back\\slash",
                "semi;colon", "two  spaces", "a/b/../c"]


# -- the one function ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["cron-word", "cron-schedule", "exec-word", "unit-path", "unit-setting", "unit-name", "job"])
@pytest.mark.parametrize("case", sorted(NEWLINES))
def test_entry_field_refuses_control_characters_in_every_kind(kind: str, case: str) -> None:
    with pytest.raises(EntryFieldError, match="control character"):
        entry_field("/" + NEWLINES[case], "--opt", kind)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", HOSTILE_TEXT)
def test_entry_field_escapes_shell_and_systemd_syntax(text: str) -> None:
    cron = entry_field(text, "--store", "cron-word")
    assert "%" not in cron.replace("\\%", "")
    assert shlex_words(cron.replace("\\%", "%")) == [text]  # one sh word, the text itself
    word = entry_field(text, "--store", "exec-word")
    assert systemd_words(word) == [text]
    assert "$" not in word.replace("$$", "") and "%" not in word.replace("%%", "")


@pytest.mark.parametrize("name", ["../../escaped", "a/b", "/abs", ".hidden", "..", "", "two words", "x%i", "x$y"])
def test_entry_field_refuses_unit_names_that_are_paths_or_syntax(name: str) -> None:
    with pytest.raises(EntryFieldError, match="unit name"):
        entry_field(name, "--name", "unit-name")


@pytest.mark.parametrize("value", ["*-*-* 06:00:00 \\", " leading", "trailing ", ""])
def test_entry_field_refuses_unit_settings_that_continue_or_pad(value: str) -> None:
    with pytest.raises(EntryFieldError):
        entry_field(value, "--on-calendar", "unit-setting")


@pytest.mark.parametrize("name", ["daily\n", "daily\r", "a b", "../x", "-x", "x" * 65, "é", "daily\n; rm -rf ~"])
def test_job_names_are_matched_whole(name: str) -> None:
    with pytest.raises(JobNameError):
        check_job_name(name)
    assert check_job_name("mc-daily_2.v1") == "mc-daily_2.v1"


def test_track_add_refuses_a_job_name_with_a_trailing_newline(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    refused(cli("track", "add", "daily\n", "--survey", str(STARTER), "--models", "fake:a", "--every", "1d",
                "--store", str(store)), "job name", code=1)
    listed = cli("track", "list", "--store", str(store), "--format", "json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []


# -- through the commands -------------------------------------------------------------------------------------
CRON_OPTIONS = {"--store": "s.duckdb", "--job": "daily", "--log": "track.log", "--schedule": "0 * * * *"}
SYSTEMD_OPTIONS = {"--store": "s.duckdb", "--job": "daily", "--on-calendar": "*:0/15", "--environment-file": "/etc/keys.env",
                   "--name": "probekit-track"}


@pytest.mark.parametrize("case", sorted(NEWLINES))
@pytest.mark.parametrize("option", sorted(CRON_OPTIONS))
def test_track_cron_refuses_a_newline_in_any_option(tmp_path: Path, option: str, case: str) -> None:
    args = {**CRON_OPTIONS, "--store": str(tmp_path / "s.duckdb")}
    args[option] = args[option] + NEWLINES[case] if option != "--schedule" else "0\n* * * *"
    result = cli("track", "cron", *[w for pair in args.items() for w in pair])
    refused(result, option)  # exit 1 (ours) or 2 (a NUL in a path, refused by the option parser)
    assert "probekit-pwned" not in result.stdout and "run-due" not in result.stdout


@pytest.mark.parametrize("case", sorted(NEWLINES))
@pytest.mark.parametrize("option", sorted(SYSTEMD_OPTIONS))
def test_track_systemd_refuses_a_newline_in_any_option(tmp_path: Path, option: str, case: str) -> None:
    args = {**SYSTEMD_OPTIONS, "--store": str(tmp_path / "s.duckdb")}
    args[option] = args[option] + NEWLINES[case]
    result = cli("track", "systemd", "--out", str(tmp_path / "units"), *[w for pair in args.items() for w in pair])
    refused(result, option)  # exit 1 (ours) or 2 (a NUL in a path, refused by the option parser)
    assert "ExecStart" not in result.stdout and not (tmp_path / "units").exists()


def test_a_newline_in_the_working_directory_is_refused(tmp_path: Path) -> None:
    odd = tmp_path / "dir\n* * * * * touch pwned"
    with pytest.raises(EntryFieldError, match="working directory"):
        cron_line(tmp_path / "s.duckdb", workdir=odd)
    with pytest.raises(EntryFieldError, match="working directory"):
        systemd_units(tmp_path / "s.duckdb", workdir=odd)


@pytest.mark.parametrize("name", ["../../escaped", "sub/unit", "/tmp/abs"])
def test_systemd_name_cannot_write_outside_out(tmp_path: Path, name: str) -> None:
    out = tmp_path / "a" / "b" / "units"
    result = cli("track", "systemd", "--name", name, "--out", str(out), "--store", str(tmp_path / "s.duckdb"))
    refused(result, "--name", code=1)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written == [], written


# -- run as cron runs it ----------------------------------------------------------------------------------------
HOSTILE_DIR = "a b'c\"d$(touch PWNED)${HOME}%x`touch PWNED2`;e"


def _argv_printer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The entries' probekit command replaced by a script that prints the arguments it receives."""
    script = tmp_path / "printer.py"
    script.write_text("import json, os, sys\nprint(json.dumps({'argv': sys.argv[1:], 'cwd': os.getcwd()}))\n")
    monkeypatch.setattr(scheduler, "probekit_command", lambda: [sys.executable, str(script)])


def _as_cron_runs_it(line: str) -> str:
    """The command cron hands to sh: after the five time fields, `\\%` becomes `%` and a bare `%` would end
    the command (asserted absent)."""
    command = line.split(None, 5)[5]
    assert re.search(r"(?<!\\)%", command) is None, command
    return command.replace("\\%", "%")


def test_cron_line_hands_hostile_paths_to_probekit_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _argv_printer(tmp_path, monkeypatch)
    odd = tmp_path / HOSTILE_DIR
    odd.mkdir()
    store, log = odd / "s%1.duckdb", odd / "log $(x).txt"
    line = cron_line(store, workdir=odd, log=log, jobs=["daily.v1"])
    assert line.count("\n") == 0
    done = subprocess.run(["/bin/sh", "-c", _as_cron_runs_it(line)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    seen = json.loads(log.read_text())
    assert seen["argv"] == ["track", "run-due", "--store", str(store), "--job", "daily.v1"]
    assert seen["cwd"] == str(odd)
    assert not list(tmp_path.rglob("PWNED*"))


# -- read back by the systemd grammar, and by systemd ------------------------------------------------------------
def shlex_words(text: str) -> list[str]:
    import shlex

    return shlex.split(text)


def systemd_words(text: str) -> list[str]:
    """ExecStart= words as systemd reads them (systemd.service(5), "Command lines"): quoted words with C
    escapes, `%%` a literal %, `$$` a literal $; an unescaped `$` or `%` would be expanded (asserted absent)."""
    words, i = [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        word = ""
        quote = text[i] if text[i] in "\"'" else None
        i += 1 if quote else 0
        while i < len(text) and (quote or not text[i].isspace()):
            char = text[i]
            if quote and char == quote:
                i += 1
                break
            if char == "\\":
                word += text[i + 1]
                i += 2
                continue
            if char in "%$":
                assert text[i + 1] == char, f"unescaped {char} in {text!r}"
                word += char
                i += 2
                continue
            word += char
            i += 1
        words.append(word)
    return words


def test_systemd_units_carry_hostile_values_as_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _argv_printer(tmp_path, monkeypatch)
    odd = tmp_path / HOSTILE_DIR
    odd.mkdir()
    store = odd / "s%1${HOME}.duckdb"
    units = systemd_units(store, workdir=odd, jobs=["daily"], environment_file="%h/.config/probekit/keys.env",
                          on_calendar="*-*-* 06:00:00")
    service = parse_unit(units.service)["Service"]
    assert systemd_words(service["ExecStart"][0])[2:] == ["track", "run-due", "--store", str(store), "--job", "daily"]
    assert service["WorkingDirectory"] == [str(odd).replace("%", "%%")]
    assert service["EnvironmentFile"] == ["-%h/.config/probekit/keys.env"]  # the user's specifier, kept
    assert set(service) == {"Type", "WorkingDirectory", "Environment", "EnvironmentFile", "ExecStart"}
    assert set(parse_unit(units.timer)["Timer"]) == {"OnCalendar", "Persistent", "Unit"}


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_hostile_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    odd = tmp_path / HOSTILE_DIR
    odd.mkdir()
    units = systemd_units(odd / "s%1${HOME}.duckdb", workdir=odd, jobs=["daily"], environment_file="/etc/probekit keys.env",
                          name="probekit-track")
    for name, text in units.files.items():
        (tmp_path / name).write_text(text)
    verify = subprocess.run(["systemd-analyze", "verify", *(str(tmp_path / n) for n in units.files)],
                            capture_output=True, text=True, timeout=120)
    if verify.returncode != 0 and "Failed to initialize manager" in verify.stderr:
        pytest.skip(f"systemd-analyze cannot run here: {verify.stderr.strip()}")
    assert verify.returncode == 0, verify.stderr
    assert "not absolute" not in verify.stderr and "Unbalanced" not in verify.stderr, verify.stderr
