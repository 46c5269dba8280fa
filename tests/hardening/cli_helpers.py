"""Helpers for the hardening tables (issue 10): every bad input ends in one clear message and a non-zero exit,
never a traceback. CLI cases run the real command in a subprocess."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STARTER = REPO / "surveys" / "moralchoice_starter.yaml"
ENV = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "TOKENIZERS_PARALLELISM": "false"}
ENV.pop("PROBEKIT_DEBUG", None)
ENV.pop("PROBEKIT_STORE", None)


def cli_subprocess(*args: str, timeout: float = 120, env: dict[str, str] | None = None,
                   cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`probekit ARGS` through the console entry point, in a subprocess."""
    return subprocess.run([sys.executable, "-c", "from probekit.cli.main import main; main()", *args], capture_output=True,
                          text=True, env={**ENV, **(env or {})}, timeout=timeout, cwd=cwd)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`probekit ARGS` through the same entry point (`main()`, with its last-resort error handler) in this
    process: the big tables run here in milliseconds a case; each class also has subprocess cases."""
    from probekit.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["probekit", *args]
    code: int | str | None = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exit_:
                code = exit_.code
    finally:
        sys.argv = argv
    if isinstance(code, str):
        err.write(code)
        code = 1
    return subprocess.CompletedProcess(["probekit", *args], int(code or 0), out.getvalue(), err.getvalue())


def refused(result: subprocess.CompletedProcess[str], *needles: str, code: int | None = None) -> str:
    """Assert a clean refusal: non-zero exit (or exactly `code`), no traceback, each needle in the output.
    Returns the first error line (what the user reads)."""
    said = result.stdout + result.stderr
    assert "Traceback" not in said, said
    assert result.returncode != 0, said
    if code is not None:
        assert result.returncode == code, (result.returncode, said)
    for needle in needles:
        assert needle.lower() in said.lower(), (needle, said)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return lines[0] if lines else said.strip().splitlines()[0]


def digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
