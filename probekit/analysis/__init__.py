"""Analysis layer: pure functions over DataFrames, registered as tables per survey family.

    from probekit.analysis import analyze, write_tables
    tables = analyze("outputs/probekit.duckdb", survey="moralchoice_starter")
    tables["uncertainty"]            # one DataFrame per table
    write_tables(tables, "results/")  # CSV, Parquet and JSON per table

By default `analyze` builds the tables the run's experiment file or the survey spec lists under
`analyses:`, and every applicable table when neither lists any; `tables=[...]` names them explicitly,
`all_tables=True` builds every applicable one.

Every row of every table carries `flags`: the preconditions it fails (too few items, too little label mass,
a partly asked survey, a position-only judge ...; probekit.analysis.quality, docs/quality.md).

Modules: distributions (entropy, JSD, GJSD, QF-E/QF-C), uncertainty (per trial/item), moralchoice,
dailydilemmas, likert, pct, pobs, bootstrap (clustered CIs), loader (store → frames), registry (which
tables apply to which survey), export (JSON, CSV, Parquet). See docs/analysis.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probekit.analysis.export import tables_to_json, write_tables

if TYPE_CHECKING:
    import pandas as pd

    from probekit.analysis.loader import AnalysisContext
    from probekit.analysis.quality import Thresholds

__all__ = ["analyze", "listed_tables", "tables_to_json", "write_tables"]


def listed_tables(ctx: AnalysisContext) -> list[str] | None:
    """The tables shown by default for one survey in scope: the `analyses:` of the experiment its run(s)
    came from, else of the survey spec; None (every applicable table) when neither lists a table that
    applies to this survey. Names no longer registered (a spec stored by an older probekit) are ignored."""
    import json

    from probekit.analysis.registry import applicable

    names = {spec.name for spec in applicable(ctx.info)}
    candidates: list[list[str]] = []
    if ctx.run_ids:
        marks = ", ".join("?" for _ in ctx.run_ids)
        configs = ctx.store.query(f"SELECT config FROM runs WHERE run_id IN ({marks}) ORDER BY started_at", list(ctx.run_ids))
        experiment: list[str] = []
        for text in configs["config"]:
            config: dict[str, Any] = json.loads(text) if isinstance(text, str) else dict(text or {})
            for name in (config.get("experiment") or {}).get("analyses") or []:
                if name not in experiment:
                    experiment.append(str(name))
        candidates.append(experiment)
    candidates.append([str(name) for name in ctx.info.spec.get("analyses") or []])
    for listed in candidates:
        chosen = [name for name in listed if name in names]
        if chosen:
            return chosen
    return None


def analyze(
    store: str | Path,
    *,
    run: str | None = None,
    survey: str | None = None,
    models: Sequence[str] | None = None,
    tables: Sequence[str] | None = None,
    all_tables: bool = False,
    seed: int = 0,
    n_boot: int = 1000,
    strict: bool = False,
    thresholds: Thresholds | None = None,
    persona: str | None = "",
) -> dict[str, pd.DataFrame]:
    """The tables for a run (default: the newest finished run, `loader.default_run`) or a survey id, like
    `probekit analyze`: those named in `tables`, else every applicable one with `all_tables`, else those the
    run's experiment or the survey lists (`listed_tables`). With several surveys in a run, table names are
    prefixed `<survey_id>.`. Every row carries `flags` (probekit.analysis.quality); `strict` drops flagged rows;
    `thresholds` replaces the quality layer's defaults (and the judges' win margin). `persona`: the persona
    context the tables read ('' the default context, an id that persona, None all pooled); the human-alignment
    tables always compare every context."""
    from probekit.analysis.loader import contexts
    from probekit.analysis.quality import DEFAULT, drop_flagged
    from probekit.analysis.registry import build_tables, unknown_tables

    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1 (got {n_boot})")
    unknown = unknown_tables(list(tables or []))
    if unknown:
        raise ValueError("; ".join(f"{message} — {fix}" for _index, message, fix in unknown))
    scopes = contexts(store, run=run, survey=survey, models=models, seed=seed, n_boot=n_boot, thresholds=thresholds or DEFAULT,
                      persona=persona)
    if persona:  # a persona id: one that the surveys in scope have, else nothing would say why the tables are empty
        known = {str(p) for ctx in scopes if ctx._has_personas()
                 for p in ctx.store.query("SELECT DISTINCT persona_id FROM trials WHERE survey_id = ? AND persona_id <> ''",
                                          [ctx.info.survey_id])["persona_id"]}
        if persona not in known:
            raise ValueError(f"no persona {persona!r} in the surveys in scope: use one of {', '.join(sorted(known)) or '(none)'}, "
                             "'all', or leave --persona out for the default context")
    out: dict[str, pd.DataFrame] = {}
    for ctx in scopes:
        only = tables if tables is not None or all_tables else listed_tables(ctx)
        prefix = f"{ctx.info.survey_id}." if len(scopes) > 1 else ""
        out.update({f"{prefix}{name}": frame for name, frame in build_tables(ctx, only).items()})
    return drop_flagged(out) if strict else out
