"""`probekit report`: one self-contained HTML file with the papers' plots, and the same tables as Markdown
(probekit.report; docs/report.md). Imports of pandas/matplotlib happen inside the command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from probekit.defaults import DEFAULT_STORE

DEFAULT_OUT = Path("outputs/report.html")
DRIFT_AXES = ("version", "fingerprint", "run", "day")


def report_command(
    run: Annotated[Optional[list[str]], typer.Option("--run", help="Run id (repeat for several; default: the newest run).")] = None,
    survey: Annotated[Optional[list[str]], typer.Option(
        "--survey", help="Survey id: every run that asked it, pooled (repeatable).")] = None,
    models: Annotated[Optional[list[str]], typer.Option("--models", "-m", help="Only these models (repeat or space-separate).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")] = DEFAULT_OUT,
    markdown: Annotated[Optional[Path], typer.Option("--markdown", help="The Markdown file (default: the HTML path with .md).")] = None,
    title: Annotated[Optional[str], typer.Option("--title", help="Heading of the report.")] = None,
    store: Annotated[Path, typer.Option("--store", help="DuckDB store file.", envvar="PROBEKIT_STORE")] = DEFAULT_STORE,
    n_boot: Annotated[int, typer.Option("--n-boot", min=1, help="Bootstrap resamples for the 95% CIs.")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    drift_by: Annotated[str, typer.Option(
        "--drift-by", help="Snapshot axis of the drift timeline: version | fingerprint | run | day.")] = "version",
    no_drift: Annotated[bool, typer.Option(
        "--no-drift", help="Leave out the drift timeline (it reads every run of each survey × model).")] = False,
) -> None:
    """One self-contained HTML report (plots embedded, no network needed to view it) and the same tables as
    Markdown: run summary, moral dilemmas, political compass, personality, POBs, selection bias, judges, drift.
    Each section appears when its data are in scope."""
    if drift_by not in DRIFT_AXES:
        typer.echo(f"error: unknown --drift-by {drift_by!r}: use one of {', '.join(DRIFT_AXES)}", err=True)
        raise typer.Exit(1)
    if out.exists() and out.is_dir():
        typer.echo(f"error: --out {out} is a directory; name the HTML file, e.g. {out / 'report.html'}", err=True)
        raise typer.Exit(1)
    from probekit.report import report

    model_list = [m for entry in (models or []) for m in entry.split()] or None
    try:
        written = report(store, out, run=run or None, survey=survey or None, models=model_list, markdown=markdown, title=title,
                         n_boot=n_boot, seed=seed, drift_by=drift_by, with_drift=not no_drift)
    except (KeyError, ValueError, FileNotFoundError) as error:
        typer.echo(f"error: {error.args[0] if error.args else error}", err=True)
        raise typer.Exit(1) from None
    except OSError as error:
        typer.echo(f"error: cannot write the report: {error.strerror or error} ({error.filename}); pass --out a writable path",
                   err=True)
        raise typer.Exit(1) from None
    typer.echo(f"wrote {written.html} ({written.figures} figures; sections: {', '.join(written.sections)}) and {written.markdown}")
    for section, why in written.omitted:
        typer.echo(f"  not in the report: {section} ({why})")
