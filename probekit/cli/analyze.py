"""`probekit analyze`: print or write the analysis tables of a run (or a survey).

By default the tables the run's experiment file or the survey spec lists under `analyses:` (every
applicable table when neither lists any); `--tables` names them, `--all` shows every applicable one.
Every row carries `flags`, the preconditions it fails (docs/quality.md); `--strict` drops flagged rows.
The JSON output is a stable interface (docs/analysis.md, written by probekit.analysis.export): one
object mapping table names to lists of rows with snake_case columns. With several surveys in scope,
table names are prefixed `<survey_id>.`.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from probekit.analysis.export import tables_to_json, write_tables

__all__ = ["analyze", "tables_to_json"]

from probekit.defaults import DEFAULT_STORE

TABLE_ROWS = 40
"""Rows per table printed with --tables / --all."""
SUMMARY_LINES = 150
"""Default output longer than this many lines is replaced by a summary (one line per table)."""


def analyze(
    run: Annotated[Optional[str], typer.Option("--run", help="Run id (default: the newest run).")] = None,
    survey: Annotated[Optional[str], typer.Option("--survey", help="Survey id: pool every run that asked it.")] = None,
    models: Annotated[Optional[list[str]], typer.Option("--models", "-m", help="Only these models (repeat or space-separate).")] = None,
    tables: Annotated[Optional[str], typer.Option(
        "--tables", help="Comma-separated table names (also detail tables such as 'trials').")] = None,
    all_tables: Annotated[bool, typer.Option(
        "--all", help="Every applicable table, not only those the surveys' or experiment's `analyses:` list.")] = False,
    format: Annotated[str, typer.Option("--format", "-f", help="table | csv | json")] = "table",
    out: Annotated[Optional[Path], typer.Option("--out", help="Write each table to DIR/<name>.csv, .parquet and .json.")] = None,
    store: Annotated[Path, typer.Option("--store", help="DuckDB store file.", envvar="PROBEKIT_STORE")] = DEFAULT_STORE,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    n_boot: Annotated[int, typer.Option("--n-boot", min=1, help="Bootstrap resamples for the 95% CIs.")] = 1000,
    limit: Annotated[Optional[int], typer.Option(
        min=1, help="Max rows per table in table format (default 40). Without --tables, "
            "--all or --limit, output longer than 150 lines is a summary: one line per table.")] = None,
    wide: Annotated[bool, typer.Option("--wide", help="Every column at full width (default: fit 100 columns).")] = False,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Drop the rows whose `flags` name a failed precondition (too few items, "
            "low label mass, partly asked survey, position-only judge ...; docs/quality.md).")] = False,
    judge_margin: Annotated[Optional[float], typer.Option(
        "--judge-margin", min=0.0, max=1.0, help="A response wins a judged pair only when its "
            "two-order score beats the other's by more than this (default 0.05; docs/judges.md).")] = None,
    persona: Annotated[Optional[str], typer.Option(
        "--persona", help="The persona context the tables read: a persona id (all its styles), or 'all' "
            "to pool every context. Default: the default context (no persona); the human-alignment tables always "
            "compare every context (docs/personas.md).")] = None,
) -> None:
    """Analysis tables for a run or survey: uncertainty/consistency, Likert traits, political compass,
    POBs, value preferences … with 95 % bootstrap CIs and n. By default the tables the surveys (or the
    run's experiment file) list under `analyses:`; every applicable one when none are listed, or with --all."""
    from probekit.analysis import analyze as analyze_tables

    if format not in {"table", "csv", "json"}:
        typer.echo(f"error: unknown format {format!r}: use table, csv or json", err=True)
        raise typer.Exit(1)
    model_list = [m for entry in (models or []) for m in entry.split()] or None
    only = [t.strip() for t in tables.split(",") if t.strip()] if tables is not None else None
    if only is not None:
        from probekit.analysis.registry import unknown_tables

        if not only:
            typer.echo("error: --tables names no table; give comma-separated names (docs/analysis.md), or leave it out", err=True)
            raise typer.Exit(1)
        unknown = unknown_tables(only)
        if unknown:
            for _index, message, fix in unknown:
                typer.echo(f"error: {message} — {fix}", err=True)
            raise typer.Exit(1)
    from probekit.analysis.quality import DEFAULT, Thresholds

    thresholds = Thresholds(judge_margin=judge_margin) if judge_margin is not None else DEFAULT
    picked = ""
    try:
        if run is None and survey is None and store.exists():
            from probekit.analysis.loader import default_run
            from probekit.store.store import Store

            run, picked = default_run(Store(store))
        result: dict[str, Any] = analyze_tables(store, run=run, survey=survey, models=model_list, tables=only,
                                                all_tables=all_tables, seed=seed, n_boot=n_boot, strict=strict,
                                                thresholds=thresholds,
                                                persona=None if persona == "all" else (persona or ""))
    except (KeyError, ValueError, FileNotFoundError) as error:
        typer.echo(f"error: {error.args[0] if error.args else error}", err=True)
        raise typer.Exit(1) from None
    if picked and format == "table":
        typer.echo(f"analysing {picked}", err=True)
    if not result:
        typer.echo(f"error: {_why_empty(store, run, model_list, only, picked)}", err=True)
        raise typer.Exit(1)
    if out is not None:
        try:
            write_tables(result, out)
        except OSError as error:
            typer.echo(f"error: cannot write the tables to {out}: {error.strerror or error}; pass --out a writable "
                       "directory", err=True)
            raise typer.Exit(1) from None
    from probekit.cli.display import echo_tables, tables_summary, tables_text

    if format == "table" and only is None and not all_tables and limit is None and not wide:
        text = tables_text(result, wide=wide, limit=TABLE_ROWS, more_hint="--tables {name} --limit N")
        # Small results print whole; longer ones (a run of several survey families: hundreds of lines) as a
        # summary, one line per table, the tables themselves on request.
        typer.echo(text if text.count("\n") <= SUMMARY_LINES else tables_summary(result))
        _echo_flags(result, thresholds)
        return
    echo_tables(result, format, wide=wide, limit=limit or TABLE_ROWS)
    if format == "table":
        _echo_flags(result, thresholds)


def _echo_flags(tables: dict[str, Any], thresholds: Any) -> None:
    """Under table output, what each flag code in the tables means (docs/quality.md)."""
    from probekit.analysis.quality import describe, flags_present

    present = flags_present(tables)
    if present:
        typer.echo("flags (a flagged row is not a finding; --strict drops them; docs/quality.md):")
        for code in present:  # wrapped to the 100 columns the tables fit
            typer.echo(textwrap.fill(f"{code}: {describe(code, thresholds)}", width=100, initial_indent="  ",
                                     subsequent_indent="    "))


def _why_empty(store: Path, run: str | None, models: list[str] | None, only: list[str] | None, picked: str = "") -> str:
    """Why no table came out: models that have no results in the store, tables that do not apply, or no
    valid answers."""
    from probekit.store.store import Store

    if models:
        stored = Store(store).query("SELECT DISTINCT model FROM results ORDER BY 1" if run is None else
                                    "SELECT DISTINCT model FROM results WHERE run_id = ? ORDER BY 1", [run] if run else [])
        known = [str(m) for m in stored["model"]]
        missing = [m for m in models if m not in known]
        if missing:
            return (f"no results of model(s) {', '.join(missing)}" + (f" in run {run}" if run else "")
                    + f"; models with results: {', '.join(known) or 'none'}")
    if only:
        return (f"no rows in table(s) {', '.join(only)} for the results in scope: a table applies to its survey family "
                "only (docs/analysis.md); --all builds every table that applies")
    where = f" of {picked}" if picked else (f" of run {run}" if run else "")
    return f"no analysis table applies to the results{where} (no valid answers?); `probekit runs` lists the runs, --run picks one"
