"""`probekit track ...` (scheduled runs), `probekit drift` and `probekit snapshots`: thin commands over
probekit.tracking and probekit.analysis.snapshots (docs/tracking.md). Heavy imports happen inside commands.

Exit codes of `probekit drift`: 0 no compared pair changed beyond noise, 3 some pair changed, 4 fewer than
two snapshots (nothing to compare), 1 an error (unknown survey or model, bad option).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

if TYPE_CHECKING:
    from probekit.analysis.snapshots import DriftReport

from probekit.defaults import DEFAULT_MODEL, DEFAULT_STORE  # noqa: E402  (a leaf module: no imports)

StoreOption = Annotated[Path, typer.Option("--store", help="DuckDB store file.", envvar="PROBEKIT_STORE")]
EXIT_ERROR = 1
EXIT_SPEC_ERROR = 2
EXIT_CHANGED = 3
EXIT_NOTHING_TO_COMPARE = 4

track_app = typer.Typer(
    help="Scheduled longitudinal runs: jobs in the store, `run-due` runs each due slot exactly once; "
         "`cron` / `systemd` print the scheduler entries that call it (docs/tracking.md).",
    no_args_is_help=True,
)


def _fail(message: str, code: int = EXIT_ERROR) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _when(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        _fail(f"{option} {text!r} is not an ISO date or time (e.g. 2025-06-01 or 2025-06-01T06:00:00+00:00)")
    return None


def _flag(parameter: str) -> str:
    return "--survey" if parameter == "surveys" else "--" + parameter.replace("_", "-")


def _split(values: list[str] | None) -> list[str]:
    return [v for entry in (values or []) for v in entry.split()]


# -- track add / list / remove / history ----------------------------------------------------------------
JOB_FIELDS = {"models": "models", "model_label": "model_label", "tz": "tz", "start": "anchor", "no_repeat": "noise_repeat",
              "max_attempts": "max_attempts", "surveys": "surveys", "every": "schedule"}
"""`track add` options stored on the job itself (the others are its run settings, JobOptions)."""


@track_app.command("add")
def track_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Job name (letters, digits, _ . -).")],
    surveys: Annotated[Optional[list[Path]], typer.Option(
        "--survey", "-s", help="Survey or experiment YAML (repeat "
            "for several). Required, except with --replace.")] = None,
    every: Annotated[Optional[str], typer.Option(
        "--every", help="Schedule: 30m, 6h, 1d, 1w (intervals) or a cron "
            "expression such as '0 6 * * *'. Required, except with --replace.")] = None,
    models: Annotated[Optional[list[str]], typer.Option(
        "--models", "-m", help=f"Model keys (repeat or space-separate). Default: {DEFAULT_MODEL}.")] = None,
    model_label: Annotated[Optional[str], typer.Option(
        "--model-label", help="Your name for the model version (recorded with every "
            "run; change it with --replace when you know the version changed).")] = None,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Only the first N items of each survey.")] = None,
    mode: Annotated[Optional[str], typer.Option(help="Scoring mode: logprob|sample|sequence|generate.")] = None,
    samples: Annotated[Optional[int], typer.Option(min=1, help="Samples per trial in sample mode.")] = None,
    temperature: Annotated[Optional[float], typer.Option(min=0.0, help="Sampling temperature.")] = None,
    orders: Annotated[Optional[str], typer.Option(help="Permutation policy: identity|reversed|cyclic|all|random:K|pride[:alpha].")] = None,
    reasoning: Annotated[Optional[list[str]], typer.Option(help="Reasoning modes: direct, reasoning (repeat or space-separate).")] = None,
    personas: Annotated[Optional[list[str]], typer.Option(
        "--personas", help="Only these persona ids of surveys with a personas: block (comma-separated or "
            "repeated); the default context stays when the spec includes it.")] = None,
    seed: Annotated[int, typer.Option(help="Base seed (each run derives its own from it unless --fixed-seed).")] = 0,
    fixed_seed: Annotated[bool, typer.Option(
        "--fixed-seed", help="Every run uses --seed as is (repeats of "
            "a deterministic model then measure no sampling noise).")] = False,
    tz: Annotated[str, typer.Option("--tz", help="Time zone of a cron schedule (IANA name).")] = "UTC",
    start: Annotated[Optional[str], typer.Option(
        "--start", help="First slot of an interval schedule (ISO "
            "time; default: now floored to the interval's unit).")] = None,
    no_repeat: Annotated[bool, typer.Option(
        "--no-repeat", help="Do not repeat the first run of a new "
            "version (drift then has no noise floor from this job).")] = False,
    max_attempts: Annotated[int, typer.Option("--max-attempts", min=1, help="Tries per slot before it is given up.")] = 3,
    models_config: Annotated[Optional[Path], typer.Option("--models-config", help="models.yaml for API models.")] = None,
    api_base: Annotated[Optional[str], typer.Option("--api-base", help="Base URL of an OpenAI-compatible server.")] = None,
    api_key_env: Annotated[Optional[str], typer.Option(
        "--api-key-env", help="NAME of the environment variable holding the API key.")] = None,
    concurrency: Annotated[Optional[int], typer.Option("--concurrency", min=1, help="Requests in flight per API model.")] = None,
    rpm: Annotated[Optional[float], typer.Option("--rpm", min=0.001, help="Requests-per-minute limit per API model.")] = None,
    tpm: Annotated[Optional[float], typer.Option("--tpm", min=0.001, help="Tokens-per-minute limit per API model.")] = None,
    timeout: Annotated[Optional[float], typer.Option(
        "--timeout", min=0.001, help="Seconds per API request before it is retried (default 60).")] = None,
    replace: Annotated[bool, typer.Option(
        "--replace", help="Update the job of this name (its history is kept): "
            "the options given replace the stored ones, the others are kept.")] = False,
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """Add a tracking job: run SURVEY(s) on MODEL(s) on a schedule (`probekit track run-due` runs it).

    Everything `probekit run` checks is checked here, before the job is stored (model keys, mode, orders,
    reasoning modes, models.yaml, the survey files). With --replace, options not given keep their stored
    values (`track remove` and `track add` start afresh)."""
    from pydantic import ValidationError

    from probekit.settings import SettingsError, plan_run, spec_kind
    from probekit.store.store import Store
    from probekit.survey.errors import SpecError
    from probekit.tracking.jobs import JobExistsError, JobNotFoundError, JobOptions, add_job, get_job, new_job
    from probekit.tracking.schedule import ScheduleError

    def given(parameter: str) -> bool:
        source = ctx.get_parameter_source(parameter)
        return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")

    stored = None
    if replace:
        try:
            stored = get_job(Store(store), name)
        except JobNotFoundError:
            stored = None  # --replace of a new name adds it
    if stored is None:
        missing = [option for option, value in (("--survey", surveys), ("--every", every)) if not value]
        if missing:
            _fail(f"{' and '.join(missing)} needed: a new job names its surveys and its schedule", EXIT_SPEC_ERROR)
    # The job's run settings: those given, on top of the stored job's (with --replace), else the defaults.
    flags = {"limit": limit, "mode": mode, "samples": samples, "temperature": temperature, "orders": orders,
             "reasoning": reasoning, "personas": personas, "seed": seed, "vary_seed": not fixed_seed,
             "models_config": models_config.absolute() if models_config else None, "api_base": api_base,
             "api_key_env": api_key_env, "concurrency": concurrency, "rpm": rpm, "tpm": tpm, "timeout": timeout}
    parameter_of = {"vary_seed": "fixed_seed"}
    values = {key: value for key, value in flags.items() if stored is None or given(parameter_of.get(key, key))}
    kept = sorted(parameter_of.get(key, key) for key in flags if key not in values and stored is not None
                  and getattr(stored.options, key) != JobOptions.model_fields[key].default)
    survey_paths = list(surveys) if surveys else [Path(p) for p in stored.surveys] if stored else []
    model_keys = _split(models) if models is not None else (list(stored.models) if stored is not None else [DEFAULT_MODEL])
    try:
        options = JobOptions.checked(**{**(stored.options.model_dump() if stored is not None else {}), **values})
        for path in survey_paths:
            if not path.is_file():
                _fail(f"no survey file {path}", EXIT_SPEC_ERROR)
        if spec_kind(survey_paths) == "judging":
            _fail("a judging experiment cannot be tracked yet: track its answer survey, or run it with `probekit run`",
                  EXIT_SPEC_ERROR)
        # What `probekit run` checks, before anything is stored (the API key is checked when the job runs: a
        # scheduler's environment is not this shell's).
        plan_run(survey_paths, options.request(model_keys), store=store, check_keys=False)
        schedule_text = every if every is not None else stored.schedule if stored is not None else ""
        job = new_job(name, survey_paths, model_keys, schedule_text,
                      tz=tz if stored is None or given("tz") else stored.tz,
                      start=_when(start, "--start") if stored is None or given("start") else stored.anchor,
                      options=options,
                      model_label=model_label if stored is None or given("model_label") else stored.model_label,
                      noise_repeat=not no_repeat if stored is None or given("no_repeat") else stored.noise_repeat,
                      max_attempts=max_attempts if stored is None or given("max_attempts") else stored.max_attempts)
        # A time zone only means something to a cron schedule, a start only to an interval: never dropped unseen.
        is_cron = job.parsed_schedule().is_cron
        if given("tz") and not is_cron:
            raise SettingsError(f"--tz applies to cron schedules; {schedule_text!r} is an interval, counted from --start "
                                "(an ISO time with its offset): drop --tz")
        if given("start") and is_cron:
            raise SettingsError(f"--start applies to interval schedules; the cron schedule {schedule_text!r} has fixed "
                                "times (use --tz for its time zone): drop --start")
        job = add_job(Store(store), job, replace=replace)
    except SpecError as error:
        _fail(str(error), EXIT_SPEC_ERROR)
    except ValidationError as error:  # the job itself (its name)
        _fail("; ".join(str(e["msg"]).removeprefix("Value error, ") for e in error.errors()))
    except (ScheduleError, SettingsError, JobExistsError) as error:
        _fail(str(error))
    schedule = job.parsed_schedule()
    now = datetime.now(timezone.utc)
    due = schedule.latest_slot(now)
    typer.echo(f"{'updated' if stored is not None else 'added'} job {job.name}: {', '.join(job.models)} on "
               f"{', '.join(Path(s).name for s in job.surveys)} every {job.schedule}"
               + (f" ({job.tz})" if schedule.is_cron else "") + (f", label {job.model_label!r}" if job.model_label else ""))
    if stored is not None:  # say what --replace kept, so nothing changes unseen
        kept_options = [_flag(p) for p in JOB_FIELDS if not given(p) and p not in ("start", "tz")] + [_flag(k) for k in kept]
        typer.echo(f"kept from the stored job (not restated): {', '.join(kept_options) or 'nothing'}")
    typer.echo(f"due now: slot {due.isoformat() if due else '-'}; next slot {schedule.next_slot(now).isoformat()}. "
               f"Install a scheduler entry: probekit track cron --store {store}  (or: probekit track systemd)")


@track_app.command("list")
def track_list(
    store: StoreOption = DEFAULT_STORE,
    format: Annotated[str, typer.Option("--format", "-f", help="table | json")] = "table",
) -> None:
    """The tracking jobs: schedule, models, surveys, label, last slot and its status, next slot."""
    from probekit.store.store import Store
    from probekit.tracking.jobs import list_jobs, slot_history

    st = Store(store)
    jobs = list_jobs(st)
    history = slot_history(st)
    now = datetime.now(timezone.utc)
    rows = []
    for job in jobs:
        mine = history[history["job"] == job.name]
        scheduled = mine[mine["kind"] == "scheduled"]
        last = scheduled.iloc[0] if len(scheduled) else None
        rows.append({
            "name": job.name, "schedule": job.schedule + (f" ({job.tz})" if job.parsed_schedule().is_cron and job.tz != "UTC" else ""),
            "models": " ".join(job.models), "surveys": " ".join(Path(s).name for s in job.surveys), "label": job.model_label or "",
            "last_slot": str(last["slot_at"]) if last is not None else "", "last_status": str(last["status"]) if last is not None else "",
            "runs": int((mine["status"] == "done").sum()), "next_slot": job.parsed_schedule().next_slot(now).isoformat(),
        })
    if format == "json":
        typer.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        typer.echo("no tracking jobs; add one: probekit track add NAME --survey FILE --models M --every 1d")
        return
    import pandas as pd

    with pd.option_context("display.width", 250, "display.max_colwidth", 50, "display.max_columns", 20):
        typer.echo(pd.DataFrame(rows).to_string(index=False))


@track_app.command("remove")
def track_remove(
    name: Annotated[str, typer.Argument(help="Job name.")],
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """Remove a job and its slot history (its runs stay in the store; their config names the job)."""
    from probekit.store.store import Store
    from probekit.tracking.jobs import JobNotFoundError, remove_job

    try:
        slots = remove_job(Store(store), name)
    except JobNotFoundError as error:
        _fail(str(error.args[0]))
    typer.echo(f"removed job {name} ({slots} slot row(s)); its runs are kept")


@track_app.command("label")
def track_label(
    run_id: Annotated[str, typer.Argument(help="Run id (see `probekit runs`).")],
    label: Annotated[str, typer.Argument(help="Your name for the model version that answered this run ('' clears it).")],
    models: Annotated[Optional[list[str]], typer.Option("--models", "-m", help="Only these models of the run (default: all).")] = None,
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """Label the model version of a stored run (runs made without a job, or labelled wrongly); drift and
    snapshots group by it."""
    from probekit.store.store import Store
    from probekit.tracking.jobs import label_run

    try:
        done = label_run(Store(store), run_id, label or None, _split(models) or None)
    except KeyError as error:
        _fail(str(error.args[0]))
    typer.echo(f"run {run_id}: {', '.join(done)} labelled {label!r}" if label else f"run {run_id}: label cleared for {', '.join(done)}")


@track_app.command("history")
def track_history(
    name: Annotated[Optional[str], typer.Argument(help="Job name (default: all jobs).")] = None,
    store: StoreOption = DEFAULT_STORE,
    format: Annotated[str, typer.Option("--format", "-f", help="table | csv | json")] = "table",
) -> None:
    """The slot history (track_slots): each slot's status, attempts, run and missed slots."""
    from probekit.store.store import Store
    from probekit.tracking.jobs import slot_history

    frame = slot_history(Store(store), name)
    columns = ["job", "slot_at", "kind", "status", "attempts", "run_id", "missed", "finished_at", "error"]
    frame = frame[columns]
    if format == "json":
        typer.echo(frame.to_json(orient="records", date_format="iso"))
    elif format == "csv":
        typer.echo(frame.to_csv(index=False), nl=False)
    else:
        typer.echo(frame.to_string(index=False) if len(frame) else "(no slots yet)")


@track_app.command("run-due")
def track_run_due(
    jobs: Annotated[Optional[list[str]], typer.Option("--job", "-j", help="Only this job (repeat for several).")] = None,
    now: Annotated[Optional[str], typer.Option(
        "--now", help="Decide which slots are due as if it were this time (ISO; for tests and catch-up).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only slots that ran or failed.")] = False,
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """Run every job whose slot is due, exactly once per job × slot however often or late it is called
    (safe to run from cron and systemd at once). Exit 1 when a slot failed (the next call retries it)."""
    from probekit.tracking.jobs import JobNotFoundError
    from probekit.tracking.rundue import SlotOutcome, run_due

    def show(outcome: SlotOutcome) -> None:
        if not quiet or outcome.action in ("ran", "failed", "abandoned"):
            typer.echo(f"{datetime.now().astimezone().isoformat(timespec='seconds')} {outcome.line()}")

    try:
        outcomes = run_due(store, now=_when(now, "--now"), jobs=jobs or None, on_outcome=show)
    except JobNotFoundError as error:
        _fail(str(error.args[0]))
    if not outcomes and not quiet:
        typer.echo("no tracking jobs; add one: probekit track add NAME --survey FILE --models M --every 1d")
    if any(o.action in ("failed", "abandoned") for o in outcomes):
        raise typer.Exit(EXIT_ERROR)


@track_app.command("cron")
def track_cron(
    schedule: Annotated[str, typer.Option("--schedule", help="When cron calls run-due (five-field cron expression).")] = "*/15 * * * *",
    log: Annotated[Optional[Path], typer.Option(
        "--log", help="Append run-due's output here (default: track.log beside the store).")] = None,
    jobs: Annotated[Optional[list[str]], typer.Option("--job", "-j", help="Only this job.")] = None,
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """Print the crontab line that calls `probekit track run-due` (install with `crontab -e`)."""
    from probekit.tracking.scheduler import cron_line

    try:
        line = cron_line(store, schedule=schedule, log=log, jobs=jobs)
    except ValueError as error:
        _fail(str(error))
    typer.echo("# probekit tracking: add this line with `crontab -e`. API keys: set them in the crontab "
               "(KEY=value lines above it) or source a file in the command; never in the store.")
    typer.echo(line)


@track_app.command("systemd")
def track_systemd(
    on_calendar: Annotated[str, typer.Option("--on-calendar", help="Timer schedule (systemd OnCalendar syntax).")] = "*:0/15",
    name: Annotated[str, typer.Option("--name", help="Unit name (NAME.service, NAME.timer).")] = "probekit-track",
    out: Annotated[Optional[Path], typer.Option("--out", help="Also write the two unit files into this directory.")] = None,
    environment_file: Annotated[Optional[str], typer.Option(
        "--environment-file", help="EnvironmentFile= with API keys (a path; keys never go into the unit).")] = None,
    jobs: Annotated[Optional[list[str]], typer.Option("--job", "-j", help="Only this job.")] = None,
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """Print a systemd service + timer that call `probekit track run-due` (user units: copy them to
    ~/.config/systemd/user/, then `systemctl --user enable --now NAME.timer`)."""
    from probekit.tracking.scheduler import systemd_units

    try:
        units = systemd_units(store, on_calendar=on_calendar, name=name, jobs=jobs, environment_file=environment_file)
    except ValueError as error:
        _fail(str(error))
    for filename, text in units.files.items():
        typer.echo(f"# ---- {filename} ----")
        typer.echo(text)
        if out is not None:
            target = out / filename
            if target.resolve().parent != out.resolve():  # unit names hold no '/'; this keeps it so
                _fail(f"--name {name!r}: the unit file would be written outside {out}")
            try:
                out.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
            except OSError as error:
                _fail(f"cannot write {target}: {error.strerror or error}; pass --out a writable directory")
    typer.echo(f"# install: cp {name}.service {name}.timer ~/.config/systemd/user/ && systemctl --user daemon-reload "
               f"&& systemctl --user enable --now {name}.timer")


# -- drift ---------------------------------------------------------------------------------------------
def _fmt(value: Any, digits: int = 4) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "nan" if number != number else f"{number:.{digits}f}"


def _ci(summary: dict[str, Any], key: str) -> str:
    return f"{_fmt(summary[key])} [{_fmt(summary[key + '_ci_low'])}, {_fmt(summary[key + '_ci_high'])}]"


def _pct(value: Any) -> str:
    number = float(value)
    return "nan" if number != number else f"{100 * number:.1f}%"


def render_drift(report: DriftReport, top: int) -> str:
    """The text report of `probekit drift`."""
    unit = "JSD, bits" if report.metric == "jsd" else "Wasserstein-1, scale units"
    per = "per item: mean over its forms (same prompts)" if report.level == "form" else "per item: between item marginals"
    lines = [f"drift of survey {report.survey} on {report.model}: {len(report.snapshots)} snapshot(s) by {report.by}; "
             f"distance = {unit}, {per}; noise floor from {len(report.noise_pairs)} pair(s) of repeated runs ({report.noise_source})"]
    lines += [f"note: {note}" for note in report.notes]
    for row in report.snapshot_table.to_dict("records"):
        lines.append(f"  {row['snapshot']}  {row['started_at']:%Y-%m-%d %H:%M}  {row['version']}  runs {row['n_runs']}  "
                     f"refusals {_pct(row['refusal_rate'])}  format failures {_pct(row['invalid_rate'])}  errors {row['n_errors']}")
    for pair in report.pairs:
        s = pair.summary
        head = f"{pair.a.label} → {pair.b.label}" + (" (vs first)" if pair.relation == "first" else "")
        text = f"{head}: {s['verdict']} — mean distance {_ci(s, 'distance')} over {s['n_items']} items"
        if s["n_noise_pairs"]:
            text += f"; noise floor {_ci(s, 'noise_floor')}; excess {_ci(s, 'excess')}"
        text += f"; {s['n_moved']} item(s) moved, {s['n_significant']} significant (paired tests, BH q < {s['alpha']})"
        lines.append(text)
        if pair.noise_note:
            lines.append(f"    ({pair.noise_note})")
        if pair.changed:
            items = pair.comparison.items
            shown = items[items["moved"]] if items["moved"].any() else items
            for row in shown.head(top).to_dict("records"):
                marg_a = ", ".join(f"{x:.2f}" for x in row["marginal_a"]) if row["marginal_a"] is not None else "-"
                marg_b = ", ".join(f"{x:.2f}" for x in row["marginal_b"]) if row["marginal_b"] is not None else "-"
                lines.append(f"    moved: {row['item_id']}  distance {_fmt(row['distance'])} (noise {_fmt(row['noise'])})  "
                             f"marginal [{marg_a}] → [{marg_b}]  {row['test']} p={_fmt(row['p_value'], 3)} q={_fmt(row['q_value'], 3)}")
        for rate, label in (("refusal_rate", "refusals"), ("invalid_rate", "format failures")):
            if s[f"{rate}_changed"] or s[f"{rate}_a"] or s[f"{rate}_b"]:
                lines.append(f"    {label}: {_pct(s[f'{rate}_a'])} → {_pct(s[f'{rate}_b'])} (difference {_ci(s, f'{rate}_diff')}"
                             + (", changed" if s[f"{rate}_changed"] else "") + ")")
    return "\n".join(lines)


ON_CHANGE_TIMEOUT = 120.0
"""Seconds an --on-change command may run before it (and every process it started) is stopped."""


def _stop_group(process: Any) -> None:
    """Stop a command run in its own session and everything it started: SIGTERM, then SIGKILL after 5 s."""
    import signal
    import subprocess

    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _on_change(command: str, report: DriftReport, payload: str, timeout: float = ON_CHANGE_TIMEOUT) -> None:
    """Run the hook through the shell with the report on stdin; a hook still running after `timeout` seconds
    is stopped with everything it started (it runs in its own session), so a hung webhook never hangs drift."""
    import subprocess
    import tempfile

    changed = [f"{p.a.label}->{p.b.label}" for p in report.pairs if p.changed]
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="probekit-drift-", delete=False) as handle:
        handle.write(payload + "\n")
    env = {**os.environ, "PROBEKIT_DRIFT_JSON": handle.name, "PROBEKIT_DRIFT_SURVEY": report.survey,
           "PROBEKIT_DRIFT_MODEL": report.model, "PROBEKIT_DRIFT_CHANGED": " ".join(changed)}
    try:
        process = subprocess.Popen(command, shell=True, stdin=subprocess.PIPE, text=True, env=env, start_new_session=True)
        try:
            process.communicate(payload + "\n", timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop_group(process)
            typer.echo(f"warning: --on-change command still running after {timeout:g}s; stopped it "
                       "(--on-change-timeout sets the limit)", err=True)
            return
        except BaseException:  # Ctrl-C: the hook is in its own session, so stop it here
            _stop_group(process)
            raise
    finally:
        os.unlink(handle.name)
    if process.returncode:
        typer.echo(f"warning: --on-change command exited {process.returncode}", err=True)


def _plot_problem(plot: Path) -> str | None:
    """Why PATH.png / PATH.svg cannot be written, found before any work: a parent that is a file or device
    (e.g. /dev/null/x), or a directory that is not writable."""
    parent = plot.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"--plot {plot}: {parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"--plot {plot}: {parent} is not writable"
    return None


def drift_command(
    survey: Annotated[str, typer.Option("--survey", help="Survey id.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model key as requested (see `probekit runs`).")],
    since: Annotated[Optional[str], typer.Option(
        "--since", help="Only snapshots from runs started at or after this date/time (ISO).")] = None,
    by: Annotated[str, typer.Option("--by", help="Snapshot axis: version | fingerprint | run | day.")] = "version",
    job: Annotated[Optional[str], typer.Option("--job", help="Only the runs of this tracking job.")] = None,
    metric: Annotated[str, typer.Option("--metric", help="Distance: auto (W1 on ordinal Likert scales, else JSD) | jsd | w1.")] = "auto",
    level: Annotated[str, typer.Option(
        "--level", help="form: the same prompts' answers compared form by form "
            "(default); item: the item marginals (content preference only).")] = "form",
    min_effect: Annotated[float, typer.Option(
        "--min-effect", help="Smallest mean excess distance over noise "
            "that counts as a change (default 0: any change beyond noise).")] = 0.0,
    latest: Annotated[bool, typer.Option("--latest", help="Only the newest snapshot against the one before and the first.")] = False,
    alpha: Annotated[float, typer.Option("--alpha", help="False discovery rate of the per-item paired tests (Benjamini–Hochberg).")] = 0.05,
    top: Annotated[int, typer.Option("--top", help="Moved items listed per changed pair.")] = 5,
    format: Annotated[str, typer.Option("--format", "-f", help="table | json")] = "table",
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Write the distance-from-first timeline as PATH.png and PATH.svg.")] = None,
    on_change: Annotated[Optional[str], typer.Option(
        "--on-change", help="Shell command run once when a pair changed "
            "(report JSON on stdin and in $PROBEKIT_DRIFT_JSON).")] = None,
    on_change_timeout: Annotated[float, typer.Option(
        "--on-change-timeout", help="Seconds the --on-change command may run; then "
            "it is stopped with what it started (a warning; the exit code stays 3).")] = ON_CHANGE_TIMEOUT,
    n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap resamples for the 95% CIs.")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """Change of a model's answers across snapshots (versions) against the noise floor of repeated runs
    (METRICS.md §8). Exit 0: no change beyond noise; 3: changed; 4: fewer than two snapshots; 1: error."""
    from probekit.analysis.snapshots import BY_CHOICES, drift

    if by not in BY_CHOICES:
        _fail(f"--by {by!r}: use one of {', '.join(BY_CHOICES)}")
    if format not in ("table", "json"):
        _fail(f"unknown format {format!r}: use table or json")
    from probekit.analysis.drift import check_drift_settings

    try:
        check_drift_settings(alpha=alpha, n_boot=n_boot, min_effect=min_effect)
    except ValueError as error:
        _fail(str(error))
    if not on_change_timeout > 0:
        _fail(f"--on-change-timeout {on_change_timeout}: give a number of seconds > 0")
    if plot is not None and (problem := _plot_problem(plot)):
        _fail(f"{problem}; pass --plot a path in a writable directory")
    try:
        report = drift(store, survey=survey, model=model, by=by, since=_when(since, "--since"), job=job, metric=metric, level=level,
                       alpha=alpha, min_effect=min_effect, n_boot=n_boot, seed=seed, latest_only=latest)
    except (KeyError, FileNotFoundError) as error:
        _fail(str(error.args[0] if error.args else error))
    except ValueError as error:
        _fail(str(error))
    payload = json.dumps(report.to_dict(top=top), default=str)
    if format == "json":
        typer.echo(payload)
    else:
        typer.echo(render_drift(report, top))
    if plot is not None and report.snapshots:
        from probekit.tracking.plot import plot_drift

        try:
            paths = plot_drift(report, plot)
        except OSError as error:
            _fail(f"--plot {plot}: cannot write {error.filename or plot}: {error.strerror or error}")
        typer.echo(f"plot: {', '.join(map(str, paths))}", err=format == "json")
    if len(report.snapshots) < 2:
        typer.echo(f"only {len(report.snapshots)} snapshot(s): nothing to compare yet", err=True)
        raise typer.Exit(EXIT_NOTHING_TO_COMPARE)
    if report.changed:
        if on_change:
            _on_change(on_change, report, payload, on_change_timeout)
        raise typer.Exit(EXIT_CHANGED)


def snapshots_command(
    survey: Annotated[str, typer.Option("--survey", help="Survey id.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model key as requested.")],
    by: Annotated[str, typer.Option("--by", help="Snapshot axis: version | fingerprint | run | day.")] = "version",
    since: Annotated[Optional[str], typer.Option("--since", help="Only runs started at or after this date/time (ISO).")] = None,
    job: Annotated[Optional[str], typer.Option("--job", help="Only the runs of this tracking job.")] = None,
    tables: Annotated[Optional[str], typer.Option("--tables", help="Comma-separated table names (as in `probekit analyze`).")] = None,
    all_tables: Annotated[bool, typer.Option("--all", help="Every applicable table.")] = False,
    format: Annotated[str, typer.Option("--format", "-f", help="table | csv | json")] = "table",
    out: Annotated[Optional[Path], typer.Option("--out", help="Write each table to DIR/<name>.csv, .parquet and .json.")] = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Timeline of --metric as PATH.png and PATH.svg.")] = None,
    metric: Annotated[Optional[str], typer.Option("--metric", help="TABLE.COLUMN to plot, e.g. uncertainty_summary.entropy.")] = None,
    n_boot: Annotated[int, typer.Option("--n-boot", help="Bootstrap resamples for the 95% CIs.")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    limit: Annotated[int, typer.Option(help="Max rows per table in table format.")] = 40,
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """Analysis tables per snapshot (model version, run or day) instead of pooled: `probekit analyze` with
    a snapshot axis, and a timeline plot of one metric with its CIs."""
    from probekit.analysis.export import write_tables
    from probekit.analysis.snapshots import BY_CHOICES, analyze_snapshots

    if by not in BY_CHOICES:
        _fail(f"--by {by!r}: use one of {', '.join(BY_CHOICES)}")
    if plot is not None and metric is None:
        _fail("--plot needs --metric TABLE.COLUMN, e.g. --metric uncertainty_summary.entropy")
    only = [t.strip() for t in tables.split(",") if t.strip()] if tables else None
    if metric and only is not None and metric.partition(".")[0] not in only:
        only.append(metric.partition(".")[0])
    try:
        result = analyze_snapshots(store, survey=survey, model=model, by=by, tables=only, all_tables=all_tables, job=job,
                                   since=_when(since, "--since"), seed=seed, n_boot=n_boot)
    except (KeyError, FileNotFoundError) as error:
        _fail(str(error.args[0] if error.args else error))
    if not result:
        _fail(f"no table for {model} on {survey} (no finished run, or no valid answers)")
    if out is not None:
        write_tables(result, out)
    from probekit.cli.display import echo_tables

    echo_tables({name: frame.drop(columns=["run_ids"], errors="ignore") if format == "table" else frame
                 for name, frame in result.items()}, format, limit=limit)
    if plot is not None and metric is not None:
        from probekit.tracking.plot import metric_series, plot_metric

        try:
            series = metric_series(result, metric)
        except (KeyError, ValueError) as error:
            _fail(str(error.args[0] if error.args else error))
        paths = plot_metric(series, plot, title=f"{survey} on {model}: {metric} per snapshot (95% CI)", ylabel=metric)
        typer.echo(f"plot: {', '.join(map(str, paths))}", err=format != "table")


def register(app: typer.Typer) -> None:
    """Add `track`, `drift` and `snapshots` to the probekit command."""
    app.add_typer(track_app, name="track")
    app.command("drift")(drift_command)
    app.command("snapshots")(snapshots_command)
