"""The runner with the scriptable fake backend: retries, error rows, resume without duplicates."""

from __future__ import annotations

from pathlib import Path

import pytest

from probekit.pipeline import run
from probekit.runner import RunOptions
from probekit.store.store import Store

REPO = Path(__file__).resolve().parents[1]
STARTER = REPO / "surveys" / "moralchoice_starter.yaml"


def options(store: Path, model: str, **kwargs: object) -> RunOptions:
    return RunOptions(models=[model], store=store, backoff_base=0.001, **kwargs)  # type: ignore[arg-type]


def answers(store: Path, run_id: str) -> dict[tuple[str, int], tuple[int, tuple[float, ...]]]:
    frame = Store(store).query("SELECT trial_id, sample_index, choice, distribution FROM results "
                               "WHERE run_id = ? AND status = 'ok'", [run_id])
    return {(r.trial_id, r.sample_index): (r.choice, tuple(round(x, 12) for x in r.distribution)) for r in frame.itertuples()}


def test_transient_faults_are_retried_and_answers_match_a_clean_run(tmp_path: Path) -> None:
    clean = run([STARTER], options(tmp_path / "clean.duckdb", "fake:a?batch=1"))
    faulty = run([STARTER], options(tmp_path / "faulty.duckdb", "fake:a?batch=1&fail=0.3", max_attempts=8))
    assert faulty.models[0].error == 0 and faulty.models[0].ok == 120
    assert answers(tmp_path / "faulty.duckdb", faulty.run_id) == answers(tmp_path / "clean.duckdb", clean.run_id)
    dupes = Store(tmp_path / "faulty.duckdb").query(
        "SELECT count(*) - count(DISTINCT (trial_id, model, sample_index)) AS d FROM results")
    assert int(dupes["d"][0]) == 0
    attempts = Store(tmp_path / "faulty.duckdb").query("SELECT max(attempts) AS a FROM results")
    assert int(attempts["a"][0]) > 1, "some calls needed retries"


def test_faults_beyond_the_retry_budget_are_errors_not_answers(store_path: Path) -> None:
    summary = run([STARTER], options(store_path, "fake:a?batch=1&fail5xx=0.5", max_attempts=2))
    frame = Store(store_path).query("SELECT status, choice, distribution, error_class FROM results")
    errors = frame[frame.status == "error"]
    assert summary.models[0].error == len(errors) > 0
    assert errors["choice"].isna().all() and errors["distribution"].isna().all()
    assert set(errors["error_class"]) == {"server_error"}
    assert Store(store_path).query("SELECT status FROM runs")["status"][0] == "completed_with_errors"


def test_non_retryable_faults_are_not_retried(store_path: Path) -> None:
    summary = run([STARTER], options(store_path, "fake:a?batch=1&fatal=0.2", limit=5))
    frame = Store(store_path).query("SELECT attempts, error_class FROM results WHERE status = 'error'")
    assert summary.models[0].error == len(frame) > 0
    assert set(frame["attempts"]) == {1} and set(frame["error_class"]) == {"bad_request"}


def test_resume_sends_only_failed_or_missing_trials(store_path: Path) -> None:
    first = run([STARTER], options(store_path, "fake:a?batch=1&fail5xx=0.5", max_attempts=1))
    failed = first.models[0].error
    assert failed > 0
    # Same model name, faults switched off ('fake:a' names the model; the query only scripts faults).
    second = run([STARTER], options(store_path, "fake:a?batch=1", resume=first.run_id))
    assert second.run_id == first.run_id and second.resumed
    assert second.models[0].skipped == 120 - failed
    assert second.models[0].ok == failed
    counts = Store(store_path).query("SELECT status, count(*) AS n FROM results GROUP BY status")
    assert counts.set_index("status")["n"].to_dict() == {"ok": 120}
    again = run([STARTER], options(store_path, "fake:a?batch=1&fail5xx=0.5", max_attempts=1))
    assert again.already_complete and again.run_id == first.run_id and again.models == [], "a finished command is a no-op"


def test_an_unfinished_run_is_resumed_automatically(store_path: Path) -> None:
    first = run([STARTER], options(store_path, "fake:a?batch=1&fail5xx=0.5", max_attempts=1))
    second = run([STARTER], options(store_path, "fake:a?batch=1&fail5xx=0.5", max_attempts=10))
    assert second.run_id == first.run_id and second.resumed and second.models[0].error == 0


def test_sample_mode_rows_per_sample(store_path: Path) -> None:
    summary = run([STARTER], options(store_path, "fake:a", mode="sample", samples=3, limit=2))
    frame = Store(store_path).query("SELECT trial_id, sample_index, mode, distribution FROM results")
    assert summary.models[0].ok == 2 * 6 * 3
    assert sorted(set(frame["sample_index"])) == [0, 1, 2] and set(frame["mode"]) == {"sample"}
    assert all(sorted(d) == [0.0, 1.0] for d in frame["distribution"])


def test_models_without_logprobs_fall_back_to_sampling_recorded_per_row(store_path: Path) -> None:
    run([STARTER], options(store_path, "fake:a?nologprobs=1", limit=1))
    frame = Store(store_path).query("SELECT DISTINCT mode FROM results")
    assert frame["mode"].tolist() == ["sample"]
    assert bool(Store(store_path).query("SELECT logprobs_supported FROM models")["logprobs_supported"][0]) is False


def test_views_give_one_row_per_trial_and_item_marginals(store_path: Path) -> None:
    summary = run([STARTER], options(store_path, "fake:a", limit=3))
    store = Store(store_path)
    assert len(store.results(summary.run_id)) == 3 * 6
    marginals = store.query("SELECT item_id, sum(marginal) AS total, max(n_rows) AS forms FROM item_marginals GROUP BY item_id")
    assert len(marginals) == 3
    assert marginals["total"].round(9).tolist() == [1.0, 1.0, 1.0]
    assert set(marginals["forms"]) == {6}


def test_spec_errors_stop_before_any_model_call(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(STARTER.read_text().replace("{context}", "{contxt}", 1))
    from probekit.survey.errors import SpecError

    with pytest.raises(SpecError):
        run([bad], options(tmp_path / "s.duckdb", "fake:a"))
    assert not (tmp_path / "s.duckdb").exists()


def test_api_endpoint_is_part_of_the_run_configuration() -> None:
    from probekit.pipeline import run_config
    from probekit.survey.loader import load_survey

    survey = load_survey(STARTER)
    a = run_config([(survey, "h")], RunOptions(models=["openai/x"], backend_options={"openai/x": {"api_base": "http://a/v1", "rpm": 10}}))
    b = run_config([(survey, "h")], RunOptions(models=["openai/x"], backend_options={"openai/x": {"api_base": "http://b/v1", "rpm": 10}}))
    plain = run_config([(survey, "h")], RunOptions(models=["smollm2"], backend_options={"smollm2": {"max_batch": 4}}))
    assert a["endpoints"] == {"openai/x": {"api_base": "http://a/v1"}} and a != b
    assert "endpoints" not in plain, "local batch sizes do not change the configuration"
