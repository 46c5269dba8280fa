"""`probekit run|validate|expand` of a judging experiment file (probekit.cli.main hands such a file here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

EXIT_SPEC_ERROR = 2


def _load_or_exit(path: Path) -> Any:
    from probekit.judging.spec import load_judging
    from probekit.survey.errors import SpecError

    try:
        return load_judging(path)
    except SpecError as error:
        for problem in error.problems:
            typer.echo(str(problem), err=True)
        typer.echo(f"{len(error.problems)} problem(s) in {path}; nothing was run.", err=True)
        raise typer.Exit(EXIT_SPEC_ERROR) from None


def validate_command(path: Path) -> None:
    loaded = _load_or_exit(path)
    parts = [f"answer {loaded.answer.id}", f"judge {loaded.judge.id}"] + (
        [f"self-recognition {loaded.recognition.id}"] if loaded.recognition is not None else [])
    typer.echo(f"{path}: ok (judging experiment {loaded.spec.id}: {', '.join(parts)})")


def expand_command(path: Path, models: list[str] | None, limit: int | None, *, reasoning: list[str] | None = None,
                   show: int = 0) -> None:
    """Stage 1's trials per model and the most stage 2 can ask (pairs depend on the answers stored).
    `reasoning`: the judge stage's reasoning modes (as `probekit run --reasoning` sets them); `show`: print
    that many example prompts of stage 1 (stage 2's prompts quote the answers, which do not exist yet)."""
    from probekit.judging.pairs import plan_pairs
    from probekit.survey.expand import expand

    loaded = _load_or_exit(path)
    spec = loaded.spec
    answer_models = list(dict.fromkeys(models or spec.models))
    judges = list(dict.fromkeys(spec.judges or answer_models))  # as run_judging_async chooses them
    questions = len(loaded.answer.items[:limit] if limit else loaded.answer.items)
    stage1 = expand(loaded.answer.model_copy(update={"items": loaded.answer.items[:questions]}))
    typer.echo(f"[answer: {loaded.answer.id}] {len(stage1)} trials per model ({questions} questions), "
               f"{loaded.answer.scoring.samples} answer(s) each, max {loaded.answer.scoring.max_tokens} tokens")
    planned = plan_pairs([*answer_models, *spec.judge.others], judges, mode=spec.judge.pairs, panel=spec.gold.panel,
                         panel_gold=spec.gold.file is None, exclude=spec.gold.exclude)
    forms = len(loaded.judge.templates) * len(reasoning or loaded.judge.reasoning_modes)
    for judge in judges:
        own = sum(1 for pair in planned[judge] if judge in pair)
        recognition = own * questions * 2 if loaded.recognition is not None else 0
        typer.echo(f"[judge: {judge}] {len(planned[judge])} pairs ({own} with its own answer) × {questions} questions × "
                   f"2 orders × {forms} form(s) = {len(planned[judge]) * questions * 2 * forms} trials"
                   + (f"; self-recognition {recognition}" if recognition else ""))
    if show:
        from probekit.cli.main import _show_trials

        typer.echo(f"example prompts of stage 1 (answer: {loaded.answer.id}):")
        _show_trials(stage1, show)


def run_command(plan: Any, *, progress: Any, quiet: bool) -> None:
    """Run both stages of `plan` (probekit.settings.RunPlan of a judging experiment: its settings already
    checked), print what each sent and the judge tables. The judge stage takes the run's mode, samples,
    temperature and reasoning modes; stage 1 answers with the answer survey's own settings."""
    import asyncio

    from probekit.judging.flow import judging_tables, run_judging_async

    settings = plan.settings
    store = settings.store
    options = settings.run_options(progress=progress.update if progress else None,
                                   notice=lambda message: typer.echo(message, err=True))
    try:
        if progress:
            with progress:
                summary = asyncio.run(run_judging_async(plan.judging, models=list(settings.models), store=store,
                                                        limit=settings.limit, options=options))
        else:
            summary = asyncio.run(run_judging_async(plan.judging, models=list(settings.models), store=store,
                                                    limit=settings.limit, options=options))
    except KeyboardInterrupt:
        typer.echo("error: interrupted; committed results are kept. Run the same command again to resume.", err=True)
        raise typer.Exit(130) from None
    except (ValueError, KeyError, RuntimeError, FileNotFoundError, ImportError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    if quiet:
        typer.echo(" ".join(s.run_id for s in summary.stages if s.run_id))
    else:
        for stage in summary.stages:
            what = ("already stored: nothing sent" if stage.skipped else
                    f"{stage.ok} ok, {stage.invalid} invalid, {stage.refusal} refusal, {stage.errors} error in {stage.seconds:.1f}s")
            typer.echo(f"{stage.stage:>6} {stage.model}: {stage.trials} trials, {what} (run {stage.run_id})")
        if summary.missing_answers:
            typer.echo(f"{len(summary.missing_answers)} answer(s) missing (no stored text): their pairs were left out", err=True)
        import pandas as pd

        with pd.option_context("display.max_columns", 40, "display.width", 250, "display.float_format", "{:.3g}".format):
            for name, frame in judging_tables(summary).items():
                typer.echo(f"== {name}")
                typer.echo(frame.to_string(index=False))
        typer.echo(f"Tables: probekit analyze --survey {summary.judge_survey} --store {store}")
    if summary.errors:
        typer.echo(f"{summary.errors} trial(s) failed after retries and are stored as errors; run the same command "
                   "again to retry them.", err=True)
        raise typer.Exit(1)
