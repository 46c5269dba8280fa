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


def tables_text(tables: dict[str, Any], *, wide: bool = False, limit: int = 40, more_hint: str | None = None) -> str:
    """Analysis tables as text: `== name (N rows)`, the first `limit` rows, how many more."""
    blocks = []
    for name, frame in tables.items():
        lines = [f"== {name} ({len(frame)} rows)", frame_text(frame, wide=wide, limit=limit, float_format="{:.4g}")]
        if len(frame) > limit:
            how = more_hint.format(name=name) if more_hint else "use --format csv/json or --out DIR"
            lines.append(f"... {len(frame) - limit} more rows ({how})")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def tables_summary(tables: dict[str, Any], width: int = WIDTH) -> str:
    """One line per table (name, rows, columns), then how to see the tables themselves."""
    prefixed = any("." in name for name in tables)
    lines = [f"{len(tables)} tables; print some: --tables NAME[,NAME]"
             + (" (the name after the survey id; --survey ID for one survey)" if prefixed else "")
             + ", up to --limit rows each; every one: --all; every row: --format csv|json or --out DIR."]
    for name, frame in tables.items():
        line = f"== {name} ({len(frame)} rows): {', '.join(map(str, frame.columns))}"
        lines.append(line if len(line) <= width else line[: width - 1] + "…")
    return "\n".join(wrap(line, width, "  ") if k == 0 else line for k, line in enumerate(lines))


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
        typer.echo(tables_text(tables, wide=wide, limit=limit))

def wrap(text: str, width: int = WIDTH, indent: str = "") -> str:
    """A message as lines of at most `width` characters, broken at spaces only (ids, paths and commands
    are never cut; a single word longer than the line keeps its own line)."""
    import textwrap

    return "\n".join(textwrap.fill(paragraph, width=width, subsequent_indent=indent, break_long_words=False,
                                   break_on_hyphens=False) for paragraph in text.splitlines())


RUN_COLUMNS = (("run", "left"), ("started", "left"), ("status", "left"), ("surveys", "left"), ("models", "left"),
               ("trials", "right"), ("answered", "right"), ("errors", "right"))


def runs_text(frame: Any, width: int = WIDTH) -> str:
    """`probekit runs` as a table of at most `width` columns in which run ids, survey ids and model keys are
    never broken inside a word: the surveys and models cells wrap between words, each column at least as
    wide as its longest word. When even that does not fit, each run is printed as a short block instead."""
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    rows = []
    for row in frame.itertuples():
        started = row.started_at.strftime("%m-%d %H:%M") if row.started_at is not None else ""
        rows.append([str(row.run_id), started, str(row.status), str(row.surveys or ""), str(row.models or ""),
                     str(row.trials), str(row.answered), str(row.errors)])
    if not rows:
        return "(no runs)"
    wraps = ("started", "surveys", "models")  # between words: the date and the time, survey ids, model keys
    longest_word = [max(len(word) for cells in ([name], *(r[k].split() or [""] for r in rows)) for word in cells)
                    for k, (name, _) in enumerate(RUN_COLUMNS)]
    if sum(longest_word) + len(RUN_COLUMNS) - 1 > width:  # words alone overflow the line: one block per run
        blocks = []
        for r in rows:
            head = f"{r[0]}  {r[1]}  {r[2]}  trials {r[5]}  answered {r[6]}  errors {r[7]}"
            blocks.append("\n".join([wrap(head, width), wrap(f"  surveys: {r[3]}", width, "    "),
                                     wrap(f"  models: {r[4]}", width, "    ")]))
        return "\n".join(blocks)
    table = Table(box=None, pad_edge=False, show_edge=False, padding=(0, 1, 0, 0))
    for k, (column, justify) in enumerate(RUN_COLUMNS):
        table.add_column(column, justify=justify, min_width=longest_word[k], overflow="fold",  # type: ignore[arg-type]
                         no_wrap=column not in wraps)
    for r in rows:
        table.add_row(*r)
    out = StringIO()
    Console(file=out, width=width, soft_wrap=False, color_system=None, force_terminal=False).print(table)
    return "\n".join(line.rstrip() for line in out.getvalue().rstrip("\n").splitlines())


def unwrap_help(text: str) -> str:
    """A docstring as `--help` should show it: the lines of each paragraph joined (the terminal wraps them at
    its width; kept as written, a source line break cuts a sentence in the middle of the screen). List items
    (`- `, `* `) and lines after a colon keep their own line; blank lines still separate paragraphs."""
    import inspect

    paragraphs = []
    for paragraph in inspect.cleandoc(text).split("\n\n"):
        out = ""
        for line in paragraph.splitlines():
            keep = line.lstrip().startswith(("- ", "* ", "$ ")) or out.endswith(":") or not out
            out += ("\n" if keep and out else " " if out else "") + (line if keep else line.strip())
        paragraphs.append(out)
    return "\n\n".join(paragraphs)


def unwrap_command_help(app: Any) -> None:
    """Give every command of a Typer app (and of its sub-apps) its docstring unwrapped (`unwrap_help`) as help."""
    import inspect

    for info in getattr(app, "registered_commands", []):
        if info.help is None and info.callback is not None and info.callback.__doc__:
            info.help = unwrap_help(inspect.getdoc(info.callback) or "")
    for group in getattr(app, "registered_groups", []):
        sub = group.typer_instance
        if sub is not None:
            unwrap_command_help(sub)
