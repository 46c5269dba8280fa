"""`probekit analyze`: print or write the analysis tables that apply to a run's (or a survey's) kind.

The JSON output is a stable interface (docs/analysis.md): one object mapping table names to lists of
rows with snake_case columns. With several surveys in scope, table names are prefixed `<survey_id>.`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

DEFAULT_STORE = Path("outputs/probekit.duckdb")


def _plain(value: Any) -> Any:
    """JSON-safe scalars: NaN/inf → null, numpy types → Python, arrays → lists."""
    import numpy as np

    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    if value is None:
        return None
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def tables_to_json(tables: dict[str, Any]) -> str:
    """{table: [row, ...]} with NaN as null. pandas writes each table (fast for large ones); numpy values
    inside list columns are made plain first."""
    parts = []
    for name, frame in tables.items():
        ready = frame.copy()
        for column in ready.columns:
            if ready[column].dtype == object:
                ready[column] = [_plain(v) for v in ready[column]]
        parts.append(f"{json.dumps(name)}: {ready.to_json(orient='records', double_precision=15, date_format='iso', default_handler=str)}")
    return "{" + ", ".join(parts) + "}"


def _csv_ready(frame):  # type: ignore[no-untyped-def]
    """Lists and dicts as JSON text so CSV and Parquet writers accept them."""
    out = frame.copy()
    for column in out.columns:
        if out[column].map(lambda v: isinstance(v, (list, tuple, dict)) or hasattr(v, "tolist")).any():
            out[column] = [json.dumps(_plain(v)) for v in out[column]]
    return out


def analyze(
    run: Annotated[Optional[str], typer.Option("--run", help="Run id (default: the newest run).")] = None,
    survey: Annotated[Optional[str], typer.Option("--survey", help="Survey id: pool every run that asked it.")] = None,
    models: Annotated[Optional[list[str]], typer.Option("--models", "-m", help="Only these models (repeat or space-separate).")] = None,
    tables: Annotated[Optional[str], typer.Option("--tables", help="Comma-separated table names (also detail tables such as 'trials').")] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="table | csv | json")] = "table",
    out: Annotated[Optional[Path], typer.Option("--out", help="Write each table to DIR/<name>.csv and .parquet.")] = None,
    store: Annotated[Path, typer.Option("--store", help="DuckDB store file.", envvar="PROBEKIT_STORE")] = DEFAULT_STORE,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap resamples for the 95% CIs.")] = 1000,
    limit: Annotated[int, typer.Option(help="Max rows per table in table format.")] = 40,
) -> None:
    """Analysis tables for a run or survey: uncertainty/consistency, Likert traits, political compass,
    POBs, value preferences … (whatever applies to the survey's kind), with 95 % bootstrap CIs and n."""
    from probekit.analysis import analyze as analyze_tables

    if format not in {"table", "csv", "json"}:
        typer.echo(f"error: unknown format {format!r}: use table, csv or json", err=True)
        raise typer.Exit(1)
    model_list = [m for entry in (models or []) for m in entry.split()] or None
    only = [t.strip() for t in tables.split(",") if t.strip()] if tables else None
    try:
        result: dict[str, Any] = analyze_tables(store, run=run, survey=survey, models=model_list, tables=only,
                                                seed=seed, n_boot=n_boot)
    except (KeyError, FileNotFoundError) as error:
        typer.echo(f"error: {error.args[0] if error.args else error}", err=True)
        raise typer.Exit(1) from None
    if not result:
        typer.echo("error: no analysis table applies to the results in scope (no valid answers?)", err=True)
        raise typer.Exit(1)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for name, frame in result.items():
            ready = _csv_ready(frame)
            ready.to_csv(out / f"{name}.csv", index=False)
            ready.to_parquet(out / f"{name}.parquet", index=False)
    if format == "json":
        typer.echo(tables_to_json(result))
    elif format == "csv":
        for name, frame in result.items():
            typer.echo(f"# {name}")
            typer.echo(_csv_ready(frame).to_csv(index=False), nl=False)
    else:
        import pandas as pd

        with pd.option_context("display.max_columns", 60, "display.width", 250, "display.max_colwidth", 40,
                               "display.float_format", "{:.4g}".format):
            for name, frame in result.items():
                typer.echo(f"== {name} ({len(frame)} rows)")
                typer.echo(frame.head(limit).to_string(index=False) if len(frame) else "(no rows)")
                if len(frame) > limit:
                    typer.echo(f"... {len(frame) - limit} more rows (use --format csv/json or --out DIR)")
                typer.echo("")
