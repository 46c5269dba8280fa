"""Analysis layer: pure functions over DataFrames, registered as tables per survey family.

    from probekit.analysis import analyze
    tables = analyze("outputs/probekit.duckdb", survey="moralchoice_starter")
    tables["uncertainty"]            # one DataFrame per applicable table

Modules: distributions (entropy, JSD, GJSD, QF-E/QF-C), uncertainty (per trial/item), moralchoice,
dailydilemmas, likert, pct, pobs, bootstrap (clustered CIs), loader (store → frames), registry (which
tables apply to which survey). See docs/analysis.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def analyze(
    store: str | Path,
    *,
    run: str | None = None,
    survey: str | None = None,
    models: Sequence[str] | None = None,
    tables: Sequence[str] | None = None,
    seed: int = 0,
    n_boot: int = 1000,
) -> dict[str, pd.DataFrame]:
    """All applicable tables for a run (default: the newest) or a survey id, like `probekit analyze`.
    With several surveys in a run, table names are prefixed `<survey_id>.`."""
    from probekit.analysis.loader import contexts
    from probekit.analysis.registry import build_tables

    scopes = contexts(store, run=run, survey=survey, models=models, seed=seed, n_boot=n_boot)
    out: dict[str, pd.DataFrame] = {}
    for ctx in scopes:
        prefix = f"{ctx.info.survey_id}." if len(scopes) > 1 else ""
        out.update({f"{prefix}{name}": frame for name, frame in build_tables(ctx, tables).items()})
    return out
