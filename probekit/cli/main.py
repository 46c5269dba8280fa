"""The `probekit` command: a thin layer over the Python API. Heavy imports happen inside commands so
`--help`, `validate`, `expand` and `query` start fast."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm otherwise fetches a price list at import

app = typer.Typer(
    help="Survey and bias-probing experiments on LLMs: YAML surveys → permuted trials → models → DuckDB → metrics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

from probekit.defaults import DEFAULT_MODEL, DEFAULT_STORE  # noqa: E402  (a leaf module: no imports)

StoreOption = Annotated[Path, typer.Option("--store", help="DuckDB store file.", envvar="PROBEKIT_STORE")]
EXIT_SPEC_ERROR = 2


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _load_or_exit(path: Path):  # type: ignore[no-untyped-def]
    from probekit.survey.errors import SpecError
    from probekit.survey.loader import load_survey

    try:
        return load_survey(path)
    except SpecError as error:
        for problem in error.problems:
            typer.echo(str(problem), err=True)
        typer.echo(f"{len(error.problems)} problem(s) in {path}; nothing was run.", err=True)
        raise typer.Exit(EXIT_SPEC_ERROR) from None


def _load_experiment_or_exit(path: Path):  # type: ignore[no-untyped-def]
    from probekit.experiment import load_experiment
    from probekit.survey.errors import SpecError

    try:
        return load_experiment(path)
    except SpecError as error:
        for problem in error.problems:
            typer.echo(str(problem), err=True)
        typer.echo(f"{len(error.problems)} problem(s) in {path}; nothing was run.", err=True)
        raise typer.Exit(EXIT_SPEC_ERROR) from None


@app.command()
def validate(surveys: Annotated[list[Path], typer.Argument(help="Survey YAML files.")]) -> None:
    """Check survey specs without calling any model (exit 2 on problems, listed as file:line: what — fix)."""
    from probekit.experiment import is_experiment_file
    from probekit.judging.spec import is_judging_file

    for path in surveys:
        if is_judging_file(path):  # a two-stage judging experiment (probekit.judging)
            from probekit.judging.cli import validate_command

            validate_command(path)
            continue
        if is_experiment_file(path):
            experiment, loaded = _load_experiment_or_exit(path)
            typer.echo(f"{path}: ok (experiment {experiment.id}: {', '.join(s.id for s in loaded)})")
            continue
        survey = _load_or_exit(path)
        typer.echo(f"{path}: ok ({survey.kind}, {len(survey.items)} items, {len(survey.templates)} templates)")


@app.command()
def expand(
    survey_path: Annotated[Path, typer.Argument(help="Survey, experiment or judging experiment YAML file.", metavar="SURVEY")],
    show: Annotated[int, typer.Option("--show", min=0, help="Print N example prompts (a judging experiment: of stage 1).")] = 0,
    orders: Annotated[Optional[str], typer.Option(
        help="Override the permutation policy (not for a judging "
            "experiment: pairs are judged in both orders).")] = None,
    reasoning: Annotated[Optional[list[str]], typer.Option(
        help="Reasoning modes: direct, reasoning (repeat or "
            "space-separate; a judging experiment: the judge stage).")] = None,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Only the first N items (a judging experiment: questions).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed for random orders (not for a judging experiment).")] = None,
    personas: Annotated[Optional[list[str]], typer.Option(
        "--personas", help="Only these persona ids (comma-separated or "
            "repeated); the default context stays when the spec includes it.")] = None,
) -> None:
    """Dry run: count trials per axis and show example prompts. No model is called."""
    from probekit.settings import RunFlags, SettingsError, spec_kind
    from probekit.survey.personas import check_persona_subset

    try:  # parsed at the edge, with the messages `probekit run` gives
        flags = RunFlags.checked(orders=orders, reasoning=reasoning, limit=limit, personas=personas)
    except SettingsError as error:
        _fail(str(error))
    persona_ids = list(flags.personas) if flags.personas is not None else None
    from probekit.survey.expand import axis_counts
    from probekit.survey.expand import expand as expand_trials

    policy, modes = flags.orders, list(flags.reasoning) if flags.reasoning else None
    if spec_kind([survey_path]) == "judging":  # a two-stage judging experiment: stage 1 trials, stage 2 pairs
        from probekit.judging.cli import expand_command

        for name, value, why in (("--orders", orders, "each pair is judged in both orders"),
                                 ("--seed", seed, "its trials do not depend on a seed (pairs are shown in both orders)"),
                                 ("--personas", personas, "its surveys are not expanded over personas")):
            if value is not None:
                _fail(f"{name} does not apply to a judging experiment: {why}. Drop it")
        return expand_command(survey_path, None, limit, reasoning=modes, show=show)
    if spec_kind([survey_path]) == "experiment":
        # An experiment: the counts of each survey as the design runs it, then the total.
        experiment, loaded = _load_experiment_or_exit(survey_path)
        try:
            check_persona_subset(loaded, persona_ids)
        except ValueError as error:
            _fail(str(error), EXIT_SPEC_ERROR)
        total = 0
        for one in loaded:
            try:
                one_subset = ([i for i in persona_ids if any(p.id == i for p in one.personas.people)]
                              if persona_ids is not None and one.personas is not None else None)
                one_trials = expand_trials(one, policy=policy, reasoning_modes=modes, limit=limit, seed=seed,
                                           personas=one_subset)
            except ValueError as error:
                _fail(str(error), EXIT_SPEC_ERROR)
            typer.echo(f"[{one.id}]")
            for axis, count in axis_counts(one, one_trials).items():
                typer.echo(f"{axis:>16}: {count}")
            _show_trials(one_trials, show)
            total += len(one_trials)
        typer.echo(f"experiment {experiment.id}: {total} trials per model")
        return
    survey = _load_or_exit(survey_path)
    try:
        check_persona_subset([survey], persona_ids)
        trials = expand_trials(survey, policy=policy, reasoning_modes=modes, limit=limit, seed=seed,
                               personas=persona_ids)
    except ValueError as error:
        _fail(str(error), EXIT_SPEC_ERROR)
    for axis, count in axis_counts(survey, trials).items():
        typer.echo(f"{axis:>16}: {count}")
    _show_trials(trials, show)


def _show_trials(trials: list[Any], show: int) -> None:
    """N example prompts spread over the trials."""
    if not show:
        return
    step = max(1, len(trials) // show)
    for trial in trials[::step][:show]:
        typer.echo(f"\n--- trial {trial.trial_id}  item={trial.item_id} template={trial.template_id} "
                   f"paraphrase={trial.paraphrase_id} order={list(trial.order)} reasoning={trial.reasoning}"
                   + (f" persona={trial.persona_id} ({trial.persona_style})" if trial.persona_id else ""))
        for message in trial.messages:
            typer.echo(f"[{message.role}]\n{message.content}")


@app.command()
def run(
    surveys: Annotated[list[Path], typer.Argument(help="Survey or experiment YAML files, or one judging experiment file.")],
    models: Annotated[Optional[list[str]], typer.Option(
        "--models", "-m", help="Model keys (repeat or space-separate): smollm2, gemma3-270m, "
            f"hf:<path>, openai/<name> ... Default: the spec's, else {DEFAULT_MODEL}.")] = None,
    store: StoreOption = DEFAULT_STORE,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Only the first N items of each survey.")] = None,
    orders: Annotated[Optional[str], typer.Option(help="Permutation policy: identity|reversed|cyclic|all|random:K|pride[:alpha].")] = None,
    mode: Annotated[Optional[str], typer.Option(help="Scoring mode: logprob|sample|sequence|generate.")] = None,
    samples: Annotated[Optional[int], typer.Option(min=1, help="Samples per trial in sample mode.")] = None,
    temperature: Annotated[Optional[float], typer.Option(min=0.0, help="Sampling temperature.")] = None,
    reasoning: Annotated[Optional[list[str]], typer.Option(help="Reasoning modes: direct, reasoning (repeat or space-separate).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for orders and sampling.")] = 0,
    resume: Annotated[Optional[str], typer.Option(help="Resume this run id (re-sends only missing or failed trials).")] = None,
    new_run: Annotated[bool, typer.Option(
        "--new-run", help="Start a new run even if one with the same configuration exists "
            "(finished: the command is otherwise a no-op; unfinished: it is otherwise resumed).")] = False,
    prior_from: Annotated[Optional[str], typer.Option(
        "--prior-from", help="PriDe: reuse the position prior stored "
            "with this run (same models); every item is then asked once.")] = None,
    models_config: Annotated[Optional[Path], typer.Option(
        "--models-config", help="models.yaml: api_base, api_key_env "
            "(the variable's NAME), limits per API model.", envvar="PROBEKIT_MODELS_CONFIG")] = None,
    api_base: Annotated[Optional[str], typer.Option(
        "--api-base", help="Base URL of an OpenAI-compatible server "
            "for the API models (e.g. http://127.0.0.1:8000/v1).")] = None,
    api_key_env: Annotated[Optional[str], typer.Option(
        "--api-key-env", help="NAME of the environment variable holding the API key.")] = None,
    concurrency: Annotated[Optional[int], typer.Option(
        "--concurrency", min=1, help="Requests in flight per API model (default 16).")] = None,
    rpm: Annotated[Optional[float], typer.Option("--rpm", min=0.001, help="Requests-per-minute limit per API model.")] = None,
    tpm: Annotated[Optional[float], typer.Option("--tpm", min=0.001, help="Tokens-per-minute limit per API model.")] = None,
    timeout: Annotated[Optional[float], typer.Option(
        "--timeout", min=0.001, help="Seconds per API request before it is retried (default 60).")] = None,
    max_rate_limit_wait: Annotated[float, typer.Option(
        "--max-rate-limit-wait", min=0.0, help="Seconds one request may wait out rate limits (429s; Retry-After "
            "honoured) before it is stored as an error. Rate "
            "limits do not use up the retries of other faults.")] = 600.0,
    batch_size: Annotated[Optional[int], typer.Option(
        "--batch-size", min=1, help="Trials per backend call for local models (default 64).")] = None,
    executor: Annotated[Optional[str], typer.Option(
        "--executor", help="Where local models score: local (this process) or ray (sharded over Ray "
            "actors; API models stay here). Default: the experiment file's executor, else local.")] = None,
    ray_address: Annotated[Optional[str], typer.Option(
        "--ray-address", help="Ray cluster to join (host:6379, "
            "ray://host:10001, auto). Default: start a local Ray instance.")] = None,
    ray_actors: Annotated[Optional[int], typer.Option(
        "--ray-actors", min=1, help="Ray actors per local model, "
            "each with its own copy of the model (default 1).")] = None,
    ray_gpus: Annotated[Optional[float], typer.Option(
        "--ray-gpus", min=0.0, help="GPUs per Ray actor (default: 1, or the "
            "engine's tensor_parallel_size, when the cluster has GPUs; else 0).")] = None,
    ray_cpus: Annotated[Optional[float], typer.Option("--ray-cpus", min=0.001, help="CPUs per Ray actor (default 1).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    personas: Annotated[Optional[list[str]], typer.Option(
        "--personas", help="Only these persona ids of surveys with personas (comma-separated "
            "or repeated); the default context stays when the spec includes it.")] = None,
) -> None:
    """Run surveys on models and store every prompt, response and distribution.

    An unfinished run with the same surveys, models and settings is resumed automatically. A judging
    experiment runs both stages (options that do not apply to it are refused)."""
    from probekit.settings import RunRequest, SettingsError, plan_run
    from probekit.survey.errors import SpecError

    try:  # every setting parsed and checked here, before anything is stored (probekit.settings)
        request = RunRequest.checked(
            models=tuple(models) if models is not None else None, limit=limit, orders=orders, mode=mode, samples=samples,
            temperature=temperature, reasoning=reasoning, seed=seed, resume=resume, new_run=new_run, prior_from=prior_from,
            models_config=models_config, api_base=api_base, api_key_env=api_key_env, concurrency=concurrency, rpm=rpm,
            tpm=tpm, timeout=timeout, max_rate_limit_wait=max_rate_limit_wait, batch_size=batch_size, executor=executor,
            ray_address=ray_address, ray_actors=ray_actors, ray_gpus=ray_gpus, ray_cpus=ray_cpus, personas=personas)
        plan = plan_run(surveys, request, store=store)
    except SpecError as error:
        for problem in error.problems:
            typer.echo(str(problem), err=True)
        typer.echo(f"{len(error.problems)} problem(s); nothing was run.", err=True)
        raise typer.Exit(EXIT_SPEC_ERROR) from None
    except SettingsError as error:
        _fail(str(error), error.exit_code)
    if quiet or not sys.stderr.isatty():  # no weight-loading bars (transformers, huggingface_hub, tqdm) either
        for variable, value in (("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("TRANSFORMERS_VERBOSITY", "error"),
                                ("TQDM_DISABLE", "1")):
            os.environ.setdefault(variable, value)
    progress = _progress_reporter(quiet)
    if plan.judging is not None:  # a two-stage judging experiment (probekit.judging)
        from probekit.judging.cli import run_command

        return run_command(plan, progress=progress, quiet=quiet)
    _run_surveys(plan, progress, quiet)


def _run_surveys(plan: Any, progress: _Progress | None, quiet: bool) -> None:
    import asyncio

    from probekit.pipeline import run_async
    from probekit.survey.errors import SpecError

    options = plan.settings.run_options(progress=progress.update if progress else None,
                                        notice=lambda message: typer.echo(message, err=True))
    store = plan.settings.store
    try:
        if progress:
            with progress:
                summary = asyncio.run(run_async(plan.inputs, options))
        else:
            summary = asyncio.run(run_async(plan.inputs, options))
    except SpecError as error:
        _fail(str(error), EXIT_SPEC_ERROR)
    except KeyboardInterrupt:
        _fail("interrupted; committed results are kept. Run the same command again to resume.", 130)
    except KeyError as error:
        _fail(str(error.args[0]) if error.args else str(error))
    except (ValueError, RuntimeError, FileNotFoundError, ImportError) as error:
        _fail(str(error))
    if summary.already_complete:
        if quiet:  # scripts read the run id, done or not
            typer.echo(summary.run_id)
            return
        from probekit.cli.display import wrap

        typer.echo(wrap(f"Nothing to do: run {summary.run_id} already holds these results ({summary.trials} trials per "
                        "model; same surveys, models and settings).\n"
                        f"  Look at them: probekit analyze --run {summary.run_id} --store {store}\n"
                        "  Repeat it on purpose with --new-run.", indent="    "))
        return
    _print_summary(summary, quiet)
    if summary.errors:
        typer.echo(
            f"{summary.errors} trial(s) failed after retries and are stored as errors (not answers). "
            f"Retry them with: probekit run ... --resume {summary.run_id}", err=True)
        raise typer.Exit(1)


def _ray_options(executor: str | None, from_experiment: Any, **flags: Any) -> Any:
    """RayOptions from the experiment's executor block with the --ray-* flags given on top (None: not Ray);
    the rule is probekit.settings' (this is its command-line face: a mistake exits 1 with the message)."""
    from probekit.settings import RAY_OPTIONS, RunRequest, SettingsError, ray_settings

    names = {field: name for name, field in RAY_OPTIONS.items()}
    try:
        request = RunRequest.checked(executor=executor, **{names[field]: value for field, value in flags.items()})
        return ray_settings(request, from_experiment)[1]
    except SettingsError as error:
        _fail(str(error))


class _Progress:
    """A rich progress bar per model: done/total, rate, ETA and error count."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]:.1f}/s"), TimeElapsedColumn(), TextColumn("ETA"),
                            TimeRemainingColumn(), TextColumn("errors: {task.fields[errors]}"), transient=False)
        self.tasks: dict[str, Any] = {}  # model -> rich TaskID
        self.started: dict[str, tuple[float, int]] = {}

    def __enter__(self) -> _Progress:
        self.bar.__enter__()
        return self

    def __exit__(self, *args: object) -> None:
        self.bar.__exit__(*args)  # type: ignore[arg-type]

    def update(self, model: str, done: int, total: int, errors: int) -> None:
        import time

        if model not in self.tasks:
            self.tasks[model] = self.bar.add_task(model, total=total, rate=0.0, errors=0)
            self.started[model] = (time.monotonic(), done)
        start, first = self.started[model]
        elapsed = max(1e-6, time.monotonic() - start)
        self.bar.update(self.tasks[model], completed=done, total=total, rate=(done - first) / elapsed, errors=errors)


def _progress_reporter(quiet: bool) -> _Progress | None:
    if quiet or not sys.stderr.isatty():
        return None
    return _Progress()


def _print_summary(summary, quiet: bool) -> None:  # type: ignore[no-untyped-def]
    if quiet:
        typer.echo(summary.run_id)
        return
    verb = "resumed" if summary.resumed else "run"
    typer.echo(f"{verb} {summary.run_id}: {summary.trials} trials per model → {summary.store}")
    for model in summary.models:
        line = (f"  {model.model}: {model.ok} ok, {model.refusal} refusal, {model.invalid} invalid, {model.error} error"
                f" ({model.skipped} already stored) in {model.seconds:.1f}s")
        if model.errors_by_class:
            line += "  errors: " + ", ".join(f"{k}={v}" for k, v in model.errors_by_class.items())
        typer.echo(line)
    typer.echo(f"Explore: probekit query \"SELECT * FROM item_marginals WHERE run_id = '{summary.run_id}'\" --store {summary.store}")


@app.command()
def query(
    sql: Annotated[str, typer.Argument(
        help="SQL (read-only) over the store: tables runs, models, surveys, "
            "items, trials, results; views trial_results, item_marginals.")],
    store: StoreOption = DEFAULT_STORE,
    format: Annotated[str, typer.Option("--format", "-f", help="table | csv | json")] = "table",
    limit: Annotated[int, typer.Option(min=1, help="Max rows printed in table format.")] = 50,
    wide: Annotated[bool, typer.Option("--wide", help="Every column at full width (default: fit 100 columns).")] = False,
) -> None:
    """Read-only SQL over the result store (one statement; no files are read or written). Works while a run
    is writing."""
    import duckdb

    from probekit.store.store import Store

    if format not in ("table", "csv", "json"):
        _fail(f"unknown format {format!r}: use table, csv or json")
    try:
        frame = Store(store).user_query(sql)
    except (FileNotFoundError, ValueError) as error:
        _fail(str(error))
    except duckdb.Error as error:
        _fail(f"SQL error: {str(error).strip()}")
    _print_frame(frame, format, limit, wide)


def _print_frame(frame, format: str, limit: int, wide: bool = False) -> None:  # type: ignore[no-untyped-def]
    if format == "csv":
        typer.echo(frame.to_csv(index=False), nl=False)
    elif format == "json":
        typer.echo(frame.to_json(orient="records", date_format="iso", default_handler=str))
    elif format == "table":
        from probekit.cli.display import frame_text

        typer.echo(frame_text(frame, wide=wide, limit=limit))
        if len(frame) > limit:
            typer.echo(f"... {len(frame) - limit} more rows (use --limit or --format csv)")
    else:
        _fail(f"unknown format {format!r}: use table, csv or json")


@app.command()
def runs(
    store: StoreOption = DEFAULT_STORE,
    format: Annotated[str, typer.Option("--format", "-f", help="table | csv | json")] = "table",
    wide: Annotated[bool, typer.Option("--wide", help="Every column at full width (default: fit 100 columns).")] = False,
) -> None:
    """List runs: what each asked (surveys, models, trials) and how it went (status, answered, errors)."""
    from probekit.store.store import Store

    try:
        frame = Store(store).runs()
    except FileNotFoundError as error:
        _fail(str(error))
    if format != "table" or wide:
        _print_frame(frame, format, 1000)
        return
    from probekit.cli.display import runs_text

    typer.echo(runs_text(frame))


@app.command()
def status(
    run_id: Annotated[str, typer.Argument(help="Run id (see `probekit runs`).")],
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """What a run has done so far, per model and status (works while it runs)."""
    from probekit.store.store import Store

    try:
        Store(store).run_config(run_id)  # KeyError when the store has no such run
        frame = Store(store).run_progress(run_id)
        total = Store(store).run_trial_count(run_id)
    except FileNotFoundError as error:
        _fail(str(error))
    except KeyError as error:
        _fail(str(error.args[0]))
    typer.echo(f"run {run_id}: {total} trials per model")
    _print_frame(frame, "table", 1000)


@app.command()
def models() -> None:
    """List the built-in offline models."""
    from probekit.backends.hf_loader import BUILTIN_MODELS

    for name, description in BUILTIN_MODELS.items():
        typer.echo(f"{name:<14} {description}")
    typer.echo("Also: hf:<dir-or-hub-id>, hf:<dir>/<file>.gguf, and any litellm model string (openai/<name>, anthropic/<name> ...).")


from probekit.cli.importing import import_command  # noqa: E402  (import's heavy work happens inside the command)

app.command("import")(import_command)

from probekit.cli.analyze import analyze  # noqa: E402  (analysis imports happen inside the command)

app.command()(analyze)

from probekit.cli.track import register as register_tracking  # noqa: E402  (track, drift, snapshots; imports inside)

register_tracking(app)

app.command("export")(__import__("probekit.cli.export", fromlist=["export_command"]).export_command)
app.command("report")(__import__("probekit.cli.report", fromlist=["report_command"]).report_command)


def _unwrap_help() -> None:
    """Docstring line breaks would show in --help as breaks mid-sentence (probekit.cli.display.unwrap_help)."""
    from probekit.cli.display import unwrap_command_help

    unwrap_command_help(app)


MULTI_VALUE_OPTIONS = ("--models", "-m", "--reasoning")
"""Options that take several values after one flag (README: `--reasoning direct reasoning`)."""


def expand_multi_value_options(argv: list[str], flags: tuple[str, ...] = MULTI_VALUE_OPTIONS) -> list[str]:
    """Let `--models a b c` mean `--models a --models b --models c` (click options take one value each), and
    the same for `--reasoning`. Values run until the next option; a token ending in .yaml/.yml is a survey
    path, not a value."""
    out: list[str] = []
    index = 0
    while index < len(argv):
        token = argv[index]
        out.append(token)
        index += 1
        if token in flags:
            first = True
            while index < len(argv) and not argv[index].startswith("-") and not argv[index].endswith((".yaml", ".yml")):
                if not first:
                    out.append(token)
                out.append(argv[index])
                first = False
                index += 1
    return out


def main() -> None:
    """The console entry point. An error that no command turned into a message still ends as one line on stderr
    (exit 1), never a traceback; PROBEKIT_DEBUG=1 shows the traceback."""
    try:
        _unwrap_help()
        app(args=expand_multi_value_options(sys.argv[1:]), prog_name="probekit")
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as error:
        if os.environ.get("PROBEKIT_DEBUG"):
            raise
        from probekit.backends.errors import redact
        from probekit.errors import ProbekitError, exit_code, user_message

        message = redact(user_message(error))
        if isinstance(error, ProbekitError):  # expected: its message says what to do
            typer.echo(f"error: {message}", err=True)
        else:
            typer.echo(f"error: {type(error).__name__}: {message} (unexpected: please report it; PROBEKIT_DEBUG=1 "
                       "shows where it happened)", err=True)
        raise SystemExit(exit_code(error)) from None


if __name__ == "__main__":
    main()
