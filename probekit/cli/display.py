"""Printing DataFrames in a terminal: fit 100 columns by default (long cells cut, wide tables wrapped into
blocks of columns), every column at full width with --wide."""

from __future__ import annotations

from typing import Any

WIDTH = 100
"""Default line width of table output."""
CELL = 40
"""Default widest cell (longer text is cut with '...')."""


def frame_text(frame: Any, *, wide: bool = False, limit: int | None = None, float_format: str | None = None) -> str:
    """`frame` as aligned text: at most WIDTH characters a line (columns wrapped into blocks, cells cut to
    CELL characters), or with `wide` one line per row with every cell whole."""
    import pandas as pd

    shown = frame.head(limit) if limit is not None else frame
    if not len(shown):
        return "(no rows)"
    formatter = float_format.format if float_format else None
    text_columns = [c for c in shown.columns if shown[c].dtype == object]
    if text_columns:  # one line per row: line breaks inside cells (prompts, messages) are shown as \n
        shown = shown.copy()
        for column in text_columns:
            shown[column] = [v.replace("\r", "").replace("\n", "\\n") if isinstance(v, str) else v for v in shown[column]]
    if wide:
        with pd.option_context("display.max_colwidth", None, "display.float_format", formatter):
            return str(shown.to_string(index=False))
    with pd.option_context("display.max_colwidth", CELL, "display.float_format", formatter):
        text = str(shown.to_string(index=False, line_width=WIDTH, max_colwidth=CELL))
    return "\n".join(line if len(line) <= WIDTH else line[:WIDTH - 3] + "..." for line in text.splitlines())


def echo_tables(tables: dict[str, Any], format: str, *, wide: bool = False, limit: int = 40) -> None:
    """Print analysis tables as `table` (100 columns unless `wide`), `csv` (one block per table) or `json`
    (the contract of docs/analysis.md)."""
    import typer

    from probekit.analysis.export import tables_to_json, to_csv_text

    if format == "json":
        typer.echo(tables_to_json(tables))
    elif format == "csv":
        for name, frame in tables.items():
            typer.echo(f"# {name}")
            typer.echo(to_csv_text(frame), nl=False)
    else:
        for name, frame in tables.items():
            typer.echo(f"== {name} ({len(frame)} rows)")
            typer.echo(frame_text(frame, wide=wide, limit=limit, float_format="{:.4g}"))
            if len(frame) > limit:
                typer.echo(f"... {len(frame) - limit} more rows (use --format csv/json or --out DIR)")
            typer.echo("")
