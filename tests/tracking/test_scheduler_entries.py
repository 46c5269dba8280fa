"""`probekit track cron` and `track systemd`: the printed entries parse, name an existing probekit and the
store, and actually run run-due; systemd units pass `systemd-analyze verify` where the machine has it."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from croniter import croniter
from typer.testing import CliRunner

from probekit.cli.main import app
from probekit.tracking.scheduler import cron_line, parse_unit, systemd_units


def _cron_output(store: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["track", "cron", "--store", str(store), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_cron_line_parses_and_runs_run_due(tmp_path: Path) -> None:
    store = tmp_path / "my store" / "probekit.duckdb"  # a space in the path must survive the shell
    lines = [line for line in _cron_output(store).splitlines() if line and not line.startswith("#")]
    assert len(lines) == 1
    fields = lines[0].split(None, 5)
    schedule, command = " ".join(fields[:5]), fields[5]
    assert croniter.is_valid(schedule) and schedule == "*/15 * * * *"
    assert "%" not in command.replace("\\%", "")
    words = shlex.split(command)
    probekit = words[words.index("&&") + 3]  # cd DIR && ENV1 ENV2 probekit ...
    assert Path(probekit).is_absolute() and os.access(probekit, os.X_OK)
    assert words[words.index("--store") + 1] == str(store.absolute())
    assert words[-3:] == [">>", str((store.parent / "track.log").absolute()), "2>&1"]
    # The line's command, as cron would run it (sh -c), reaches run-due and writes its log.
    store.parent.mkdir(parents=True)
    done = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "no tracking jobs" in (store.parent / "track.log").read_text()


def test_cron_line_options_and_errors(tmp_path: Path) -> None:
    line = cron_line(tmp_path / "s.duckdb", schedule="0 * * * *", log=tmp_path / "x%y.log", jobs=["daily"])
    assert line.startswith("0 * * * * ") and "--job daily" in line and "x\\%y.log" in line
    result = CliRunner().invoke(app, ["track", "cron", "--schedule", "every hour", "--store", str(tmp_path / "s.duckdb")])
    assert result.exit_code == 1 and "five-field" in result.output


def test_systemd_units_parse_and_name_the_command(tmp_path: Path) -> None:
    store = tmp_path / "probekit.duckdb"
    out = tmp_path / "units"
    result = CliRunner().invoke(app, ["track", "systemd", "--store", str(store), "--out", str(out),
                                      "--environment-file", "%h/.config/probekit/keys.env"])
    assert result.exit_code == 0, result.output
    assert "# ---- probekit-track.service ----" in result.output and "systemctl --user enable --now probekit-track.timer" in result.output
    service = parse_unit((out / "probekit-track.service").read_text())
    timer = parse_unit((out / "probekit-track.timer").read_text())
    assert service["Service"]["Type"] == ["oneshot"]
    exec_start = shlex.split(service["Service"]["ExecStart"][0])
    assert os.access(exec_start[0], os.X_OK) and exec_start[1:4] == ["track", "run-due", "--store"]
    assert exec_start[4] == str(store.absolute())
    assert "LITELLM_LOCAL_MODEL_COST_MAP=True" in service["Service"]["Environment"]
    assert service["Service"]["EnvironmentFile"] == ["-%h/.config/probekit/keys.env"]
    assert timer["Timer"] == {"OnCalendar": ["*:0/15"], "Persistent": ["true"], "Unit": ["probekit-track.service"]}
    assert timer["Install"]["WantedBy"] == ["timers.target"]
    # The printed text is the files' text.
    assert (out / "probekit-track.timer").read_text().strip() in result.output


def test_systemd_percent_and_spaces_are_escaped(tmp_path: Path) -> None:
    units = systemd_units(tmp_path / "a b%c" / "s.duckdb")
    exec_start = parse_unit(units.service)["Service"]["ExecStart"][0]
    assert '"' in exec_start and "b%%c" in exec_start


def test_parse_unit_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="line 1"):
        parse_unit("no section here\n")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    units = systemd_units(tmp_path / "probekit.duckdb", on_calendar="*-*-* 06:00:00")
    for name, text in units.files.items():
        (tmp_path / name).write_text(text)
    calendar = subprocess.run(["systemd-analyze", "calendar", "*-*-* 06:00:00"], capture_output=True, text=True)
    assert calendar.returncode == 0, calendar.stderr
    verify = subprocess.run(["systemd-analyze", "verify", *(str(tmp_path / n) for n in units.files)], capture_output=True, text=True)
    if verify.returncode != 0 and "Failed to initialize manager" in verify.stderr:
        pytest.skip(f"systemd-analyze cannot run here: {verify.stderr.strip()}")
    assert verify.returncode == 0, verify.stderr
    # And it does reject a broken unit, so the check above means something.
    (tmp_path / "broken.service").write_text("[Service]\nType=oneshot\nExecStart=relative/path run\n")
    broken = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "broken.service")], capture_output=True, text=True)
    assert broken.returncode != 0 or "relative" in broken.stderr.lower()
