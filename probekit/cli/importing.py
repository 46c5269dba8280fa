"""`probekit import FILE`: load responses collected elsewhere into the store (docs/import-format.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

EXIT_BAD_ROWS = 1
EXIT_REFUSED = 2


def import_command(
    file: Annotated[Path, typer.Argument(help="Responses file: generic JSONL, POBs response JSON or MoralChoice response CSV; or a `probekit export` directory.")],
    format: Annotated[Optional[str], typer.Option("--format", "-f", help="generic | pobs | moralchoice | judgments | answers | probekit (default: from the extension: .jsonl, .json, .csv; judgments and answers from a .jsonl's first line; a directory with a probekit export manifest).")] = None,
    survey: Annotated[Optional[Path], typer.Option("--survey", help="Survey spec the responses answer (default: the store's spec with the id the rows name).")] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Import the good rows and skip the bad ones (default: import nothing if any row is bad).")] = False,
    store: Annotated[Path, typer.Option("--store", help="DuckDB store file.", envvar="PROBEKIT_STORE")] = Path("outputs/probekit.duckdb"),
    model: Annotated[Optional[str], typer.Option("--model", help="Model name when the file does not say (POBs files not named POBS_<model>_<run>.json).")] = None,
) -> None:
    """Import responses collected elsewhere; they become one run, analysed like probekit's own.

    Bad rows are listed as FILE:LINE: problem. Without --skip-bad nothing is imported (exit 1)."""
    from probekit.importers.probekit_export import is_probekit_export

    if format == "probekit" or (format is None and is_probekit_export(file)):  # a `probekit export` directory: restore its runs
        from probekit.cli.export import import_export_dir

        return import_export_dir(file, store, survey=survey, model=model, skip_bad=skip_bad)
    from probekit.importers import BadRows, ImportRefused, import_responses
    from probekit.survey.errors import SpecError

    def skipped(problem: object) -> None:
        typer.echo(f"skipped {problem}", err=True)

    try:
        summary = import_responses(file, fmt=format, survey_file=survey, skip_bad=skip_bad, store_path=store,
                                   model=model, on_problem=skipped)
    except BadRows as error:
        for problem in error.problems:
            typer.echo(str(problem), err=True)
        typer.echo(f"{len(error.problems)} bad row(s); nothing was imported. Fix them, or pass --skip-bad to "
                   "import the other rows.", err=True)
        raise typer.Exit(EXIT_BAD_ROWS) from None
    except SpecError as error:
        for spec_problem in error.problems:
            typer.echo(str(spec_problem), err=True)
        raise typer.Exit(EXIT_REFUSED) from None
    except ImportRefused as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(EXIT_REFUSED) from None
    if summary.already:
        typer.echo(f"{file} was already imported as run {summary.run_id}; nothing new to import.")
        return
    if summary.run_id is None:
        typer.echo("no rows to import.", err=True)
        raise typer.Exit(EXIT_BAD_ROWS)
    typer.echo(f"imported {summary.imported} response(s) of {', '.join(summary.models)} for "
               f"{', '.join(summary.surveys)} as run {summary.run_id} → {store}"
               + (f" ({len(summary.skipped)} bad row(s) skipped)" if summary.skipped else ""))
