"""`probekit track add` checks what `probekit run` checks before a job is stored, and `--replace` keeps what
is not restated (issue 21; issue 23's `--every 99999999999999d` and `--replace` items). In process, real store."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from probekit.cli.main import app, expand_multi_value_options
from probekit.store.store import Store
from probekit.tracking.jobs import get_job, list_jobs

REPO = Path(__file__).resolve().parents[2]
STARTER = REPO / "surveys" / "moralchoice_starter.yaml"


def track_add(store: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, expand_multi_value_options(
        ["track", "add", "job1", "--survey", str(STARTER), "--every", "1d", "--store", str(store), *args]))
    return result.exit_code, result.output


def no_job_stored(store: Path) -> bool:
    return not store.exists() or not list_jobs(Store(store))


MISTAKES = [
    (["--models", "smollm3"], "did you mean 'smollm2'"),
    (["--models", "openia/gpt-4o-mini"], "did you mean openai/gpt-4o-mini"),
    (["--models", "fake:a", "--mode", "logprobs"], "unknown scoring mode 'logprobs'"),
    (["--models", "fake:a", "--orders", "cyclc"], "unknown permutation policy 'cyclc'"),
    (["--models", "fake:a", "--orders", "random:0"], "random:K"),
    (["--models", "fake:a", "--reasoning", "direct", "resoning"], "unknown reasoning mode(s) 'resoning'"),
    (["--models", "openai/gpt-4o-mini", "--mode", "sequence"], "cannot run sequence mode"),
    (["--models", "fake:a", "--api-base", "http://127.0.0.1:9/v1"], "--api-base applies to API models"),
    (["--models", "openai/x", "--api-key-env", "sk-abcdefghijklmnopqrstuvwxyz123456"], "NAME of an environment variable"),
    (["--models", "fake:a", "--every", "99999999999999d"], "too long"),
    (["--models", "fake:a", "--tz", "Europe/Berlin"], "--tz applies to cron schedules"),
    (["--models", "fake:a", "--limit", "0"], "--limit"),
]


@pytest.mark.parametrize(("args", "message"), MISTAKES, ids=[" ".join(a) for a, _ in MISTAKES])
def test_a_mistake_exits_non_zero_and_stores_no_job(store_path: Path, args: list[str], message: str) -> None:
    code, output = track_add(store_path, *args)
    assert code != 0 and message in output, output
    assert "Traceback" not in output and no_job_stored(store_path)


def test_a_judging_experiment_is_refused_not_stored(store_path: Path, tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(REPO / "tests" / "judging"))
    from selfpref_helpers import write_experiment

    judging = write_experiment(tmp_path)
    result = CliRunner().invoke(app, ["track", "add", "j", "--survey", str(judging), "--every", "1d", "--store", str(store_path)])
    assert result.exit_code == 2 and "judging experiment cannot be tracked" in result.output
    assert no_job_stored(store_path)


def test_replace_keeps_what_is_not_restated_and_says_so(store_path: Path) -> None:
    code, output = track_add(store_path, "--models", "fake:a", "fake:b", "--limit", "3", "--mode", "sample", "--samples", "4",
                             "--orders", "reversed", "--model-label", "v1", "--fixed-seed", "--max-attempts", "5")
    assert code == 0, output
    before = get_job(Store(store_path), "job1")
    result = CliRunner().invoke(app, ["track", "add", "job1", "--every", "2d", "--limit", "5", "--replace", "--store", str(store_path)])
    assert result.exit_code == 0, result.output
    after = get_job(Store(store_path), "job1")
    assert (after.schedule, after.options.limit) == ("2d", 5)  # restated: replaced
    assert after.models == ["fake:a", "fake:b"] and after.surveys == before.surveys and after.model_label == "v1"
    assert (after.options.mode, after.options.samples, after.options.orders, after.options.vary_seed, after.max_attempts) == \
        ("sample", 4, "reversed", False, 5)
    assert after.created_at == before.created_at
    assert "kept from the stored job" in result.output and "--mode" in result.output and "--model-label" in result.output


def test_replace_still_checks_what_it_stores(store_path: Path) -> None:
    assert track_add(store_path, "--models", "fake:a", "--limit", "3")[0] == 0
    result = CliRunner().invoke(app, ["track", "add", "job1", "--mode", "bogus", "--replace", "--store", str(store_path)])
    assert result.exit_code == 1 and "unknown scoring mode" in result.output
    assert get_job(Store(store_path), "job1").options.mode is None


def test_a_new_job_needs_surveys_and_a_schedule(store_path: Path) -> None:
    result = CliRunner().invoke(app, ["track", "add", "job1", "--models", "fake:a", "--store", str(store_path)])
    assert result.exit_code == 2 and "--survey and --every needed" in result.output and no_job_stored(store_path)


def test_the_job_runs_with_every_stored_setting(store_path: Path) -> None:
    """run-due builds the run through the same settings builder: rpm, tpm and timeout reach the API engine
    (they used to be dropped)."""
    from probekit.tracking.jobs import JobOptions, new_job
    from probekit.tracking.rundue import SlotRun, _options

    job = new_job("api", [STARTER], ["openai/x"], "1d", options=JobOptions(api_base="http://127.0.0.1:9/v1", rpm=60, tpm=600,
                                                                            timeout=9, concurrency=2, limit=2))
    slot = SlotRun(job="api", slot_at=job.created_at, kind="scheduled", claim_id="c", attempt=1, resume_run=None, missed=0,
                   store=store_path)
    options = _options(job, slot, None)
    assert options.backend_options["openai/x"] == {"api_base": "http://127.0.0.1:9/v1", "concurrency": 2, "rpm": 60.0,
                                                   "tpm": 600.0, "timeout": 9.0}
    assert (options.limit, options.new_run) == (2, True)


def test_track_add_personas_are_checked_stored_and_run(tmp_path: Path) -> None:
    """--personas: an id the survey lacks stores no job; a known one is stored and reaches the job's runs."""
    from datetime import datetime, timezone

    from probekit.tracking import run_due

    survey = tmp_path / "personas.yaml"
    survey.write_text(
        "id: p\nkind: choice\ntemplates:\n  - id: ab\n    user: \"{context}\\n{options}\\nAnswer with {labels_or}.\"\n"
        "personas:\n  people:\n    - {id: japan, attributes: {country: Japan}}\n    - {id: chile, attributes: {country: Chile}}\n"
        "  styles: [portray]\n"
        "items:\n  - id: q1\n    fields: {context: \"A wallet.\"}\n    options: [{text: Return it.}, {text: Keep it.}]\n")
    store = tmp_path / "s.duckdb"
    runner = CliRunner()
    bad = runner.invoke(app, ["track", "add", "j", "--survey", str(survey), "--every", "1d", "--models", "fake:a",
                              "--personas", "mars", "--store", str(store)])
    assert bad.exit_code != 0 and "no persona(s) ['mars']" in bad.output
    assert not store.exists() or not list_jobs(Store(store))
    good = runner.invoke(app, ["track", "add", "j", "--survey", str(survey), "--every", "1d", "--models", "fake:a",
                               "--personas", "japan", "--store", str(store)])
    assert good.exit_code == 0, good.output
    assert get_job(Store(store), "j").options.personas == ("japan",)
    run_due(store, now=datetime.now(timezone.utc))
    respondents = set(Store(store).query("SELECT DISTINCT respondent FROM results")["respondent"])
    assert respondents == {"", "japan"}  # the default context and the one persona asked for
