"""`probekit import FILE...`: load responses collected elsewhere into the store (docs/import-format.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from probekit.defaults import DEFAULT_STORE

EXIT_BAD_ROWS = 1
EXIT_REFUSED = 2
SHOWN_PROBLEMS = 20
"""Bad rows listed one by one; the rest are summarised by kind."""


def import_command(
    files: Annotated[list[Path], typer.Argument(
        help="Responses files or directories (every .jsonl, .json and .csv file below it): generic "
            "JSONL, POBs response JSON or MoralChoice "
            "response CSV; or one `probekit export` directory.", metavar="FILE...")],
    format: Annotated[Optional[str], typer.Option(
        "--format", "-f", help="generic | pobs | moralchoice | judgments | answers | probekit "
            "(default: from the extension: .jsonl, .json, .csv; judgments and answers from a "
            ".jsonl's first line; a directory with a probekit export manifest).")] = None,
    survey: Annotated[Optional[Path], typer.Option(
        "--survey", help="Survey spec the responses answer "
            "(default: the store's spec with the id the rows name).")] = None,
    skip_bad: Annotated[bool, typer.Option(
        "--skip-bad", help="Import the good rows and skip the bad "
            "ones (default: import nothing if any row is bad).")] = False,
    store: Annotated[Path, typer.Option("--store", help="DuckDB store file.", envvar="PROBEKIT_STORE")] = DEFAULT_STORE,
    model: Annotated[Optional[str], typer.Option(
        "--model", help="Model name when the file does not say "
            "(POBs files not named POBS_<model>_<run>.json).")] = None,
    trust_spec_polarity: Annotated[bool, typer.Option(
        "--trust-spec-polarity", help="POBs: import answers whose recorded polarity "
            "differs from the survey's option with the survey's polarity (the published "
            "files code non-polar answers as ±0.5/±1 in some files and 1 in others).")] = False,
    new_run: Annotated[bool, typer.Option(
        "--new-run", help="Store every row as a new run, even rows an earlier import stored already "
            "(default: those are skipped, and the same key with another answer is a bad row).")] = False,
    match_items: Annotated[str, typer.Option(
        "--match-items", help="id: rows name the survey's item ids (a row's item_text must be that "
            "item's text); text: rows are matched to the item whose text their item_text is (a "
            "source numbered differently from the spec). "
            "Case, spacing and punctuation are ignored.", metavar="id|text")] = "id",
) -> None:
    """Import responses collected elsewhere; they become one run, analysed like probekit's own.

    Bad rows are listed as FILE:LINE: problem (the first 20, then a summary by kind). Without --skip-bad nothing
    is imported (exit 1). Importing rows already imported is a no-op."""
    from probekit.importers.probekit_export import is_probekit_export

    exports = [f for f in files if format == "probekit" or (format is None and is_probekit_export(f))]
    if exports:  # a `probekit export` directory: restore its runs
        if len(files) > 1:
            typer.echo(f"error: {exports[0]} is a probekit export: import it on its own", err=True)
            raise typer.Exit(EXIT_REFUSED)
        from probekit.cli.export import import_export_dir

        return import_export_dir(files[0], store, survey=survey, model=model, skip_bad=skip_bad)
    from probekit.importers import BadRows, ImportRefused, import_responses
    from probekit.importers.records import RowProblem
    from probekit.survey.errors import SpecError

    shown: list[RowProblem] = []

    def skipped(problem: RowProblem) -> None:
        shown.append(problem)
        if len(shown) <= SHOWN_PROBLEMS:
            typer.echo(f"skipped {problem}", err=True)

    try:
        summary = import_responses(files, fmt=format, survey_file=survey, skip_bad=skip_bad, store_path=store,
                                   model=model, on_problem=skipped, trust_spec_polarity=trust_spec_polarity,
                                   new_run=new_run, match_items=match_items)
    except BadRows as error:
        for problem in error.problems[:SHOWN_PROBLEMS]:
            typer.echo(str(problem), err=True)
        _summarise(error.problems)
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
    if len(shown) > SHOWN_PROBLEMS:
        _summarise(shown)
    where = files[0] if len(files) == 1 and summary.files == 1 else f"{summary.files} file(s)"
    if summary.ignored_files:
        typer.echo(f"ignored {len(summary.ignored_files)} file(s) that are not .jsonl/.json/.csv "
                   f"(e.g. {summary.ignored_files[0]})", err=True)
    if summary.polarity_overridden:
        typer.echo(f"{summary.polarity_overridden} answer(s) recorded a polarity other than the survey's; imported "
                   "with the survey's (--trust-spec-polarity)", err=True)
    if summary.already:
        typer.echo(f"{where}: all {summary.already_stored} row(s) were already imported (run {summary.run_id}); "
                   "nothing new to import.")
        return
    if summary.run_id is None:
        typer.echo("no rows to import.", err=True)
        raise typer.Exit(EXIT_BAD_ROWS)
    typer.echo(f"imported {summary.imported} response(s) of {', '.join(summary.models)} for "
               f"{', '.join(summary.surveys)} from {where} as run {summary.run_id} → {store}"
               + (f" ({summary.respondents} respondent(s))" if summary.respondents else "")
               + (f" ({len(summary.skipped)} bad row(s) skipped)" if summary.skipped else "")
               + (f" ({summary.already_stored} row(s) already imported before)" if summary.already_stored else "")
               + (f" ({summary.repeated} row(s) given twice, stored once)" if summary.repeated else ""))


def _summarise(problems: list) -> None:  # type: ignore[type-arg]
    """One line per kind of problem: how many rows, and the first of them."""
    if len(problems) <= SHOWN_PROBLEMS:
        return
    typer.echo(f"... {len(problems) - SHOWN_PROBLEMS} more. By kind:", err=True)
    groups: dict[str, list] = {}  # type: ignore[type-arg]
    for problem in problems:
        groups.setdefault(problem.group, []).append(problem)
    for kind, members in sorted(groups.items(), key=lambda item: -len(item[1])):
        typer.echo(f"  {len(members)} × {kind} (first at {members[0].path}:{members[0].line})", err=True)
