"""The defaults every layer shares, written once: the model a run uses when none is named and the store file
a command uses when `--store` (or PROBEKIT_STORE) is not given. A leaf module (no imports), so the CLI can
read it without importing the run stack."""

from __future__ import annotations

from pathlib import Path

DEFAULT_MODEL = "smollm2"
"""The built-in offline model a run uses when neither the command line nor the spec names one."""
DEFAULT_STORE = Path("outputs/probekit.duckdb")
"""The DuckDB store of every command, relative to the working directory."""
