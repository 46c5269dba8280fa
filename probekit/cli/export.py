"""`probekit export`: runs (or the analysis tables) out of the store as Parquet, CSV or JSON lines, with a
manifest (docs/export.md); and the `probekit import DIR` of such an export (called from cli/importing.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from probekit.defaults import DEFAULT_STORE


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            break
    return f"{value:.1f} {unit}"


def export_command(
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Directory to write (new or empty): one file per table, manifest.json, README.md.")],
    run: Annotated[Optional[list[str]], typer.Option(
        "--run", help="Run id (repeat for several). Default: every run (with --analysis: the newest).")] = None,
    survey: Annotated[Optional[str], typer.Option("--survey", help="Survey id: the runs that asked it, only its rows.")] = None,
    models: Annotated[Optional[list[str]], typer.Option(
        "--models", "-m", help="Only these models' rows (repeat or space-separate).")] = None,
    tables: Annotated[str, typer.Option(
        "--tables", help="Comma-separated: runs, models, surveys, items, trials, run_trials, "
            "results, position_priors, or all. With --analysis: analysis table names.")] = "all",
    format: Annotated[str, typer.Option("--format", "-f", help="parquet | csv | jsonl")] = "parquet",
    partition: Annotated[bool, typer.Option(
        "--partition", help="Hive-partition each table by survey_id and model "
            "(the columns it has): TABLE/survey_id=S/model=M/data_0.parquet.")] = False,
    analysis: Annotated[bool, typer.Option(
        "--analysis", help="Export the tables of `probekit analyze` instead of the store tables.")] = False,
    all_tables: Annotated[bool, typer.Option("--all", help="With --analysis: every applicable analysis table.")] = False,
    seed: Annotated[int, typer.Option(help="With --analysis: bootstrap seed.")] = 0,
    n_boot: Annotated[int, typer.Option("--n-boot", help="With --analysis: bootstrap resamples for the 95% CIs.")] = 1000,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace an earlier export in --out (only a directory holding a manifest.json).")] = False,
    store: Annotated[Path, typer.Option("--store", help="DuckDB store file.", envvar="PROBEKIT_STORE")] = DEFAULT_STORE,
) -> None:
    """Export runs to Parquet, CSV or JSON lines with a manifest (row counts, versions, each run's
    configuration, every survey's license). Works while a run writes to the store.

    `probekit import DIR --store OTHER.duckdb` restores the runs into another store (ids and rows unchanged)."""
    from probekit.exporting import ExportError, export

    model_list = [m for entry in (models or []) for m in entry.split()] or None
    table_arg = None if analysis and tables == "all" else tables
    try:
        summary = export(out, store=store, run=run or None, survey=survey, models=model_list, tables=table_arg,
                         format=format, partition=partition, analysis=analysis, all_tables=all_tables, seed=seed,
                         n_boot=n_boot, overwrite=overwrite)
    except (ExportError, FileNotFoundError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    what = "analysis tables" if analysis else "tables"
    counts = ", ".join(f"{name} {rows}" for name, rows in summary.tables.items())
    typer.echo(f"exported {len(summary.runs)} run(s) to {summary.out_dir} ({summary.format}, {_size(summary.bytes)}, "
               f"{summary.seconds:.2f}s; store held {summary.held_seconds * 1000:.0f} ms)")
    typer.echo(f"  {what}: {counts}")
    licenses = sorted({f"{s['survey_id']}: {s['license'] or 'license not stated'}" for s in summary.manifest["surveys"]})
    if licenses:
        typer.echo(f"  surveys: {'; '.join(licenses)} (see manifest.json / README.md for attribution)")
    if summary.unfinished:
        typer.echo(f"note: run(s) {', '.join(summary.unfinished)} had not finished when exported; "
                   "export again when they have.", err=True)


def import_export_dir(file: Path, store: Path, *, survey: Path | None = None, model: str | None = None,
                      skip_bad: bool = False) -> None:
    """`probekit import DIR`: restore the runs of a probekit export into the store."""
    from probekit.importers.probekit_export import ExportImportRefused, import_export

    if survey is not None or model is not None or skip_bad:
        typer.echo("error: --survey, --model and --skip-bad do not apply to a probekit export", err=True)
        raise typer.Exit(2)
    try:
        summary = import_export(file, store_path=store)
    except (ExportImportRefused, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    runs = ", ".join(summary.runs)
    if summary.already:
        typer.echo(f"{file}: every row of run(s) {runs} is already in {store}; nothing new to import.")
    else:
        counts = ", ".join(f"{t} {n}" for t, n in summary.inserted.items() if n)
        typer.echo(f"restored run(s) {runs} from {file} → {store}: {counts} new row(s)")
    if summary.differing:
        typer.echo("note: rows with the same key were already stored with other values and were kept as stored: "
                   + ", ".join(f"{t} {n}" for t, n in summary.differing.items())
                   + " (a run exported before it finished? probekit.importers.probekit_export.import_export(..., "
                   "replace=True) takes the export's values)", err=True)
