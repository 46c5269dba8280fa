"""The API path end to end against a real OpenAI-compatible server (llama-cpp-python serving SmolLM2 with
real top_logprobs), through both transports: litellm and probekit's direct client."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fault_proxy import FAULT_KINDS, FaultProxy

from probekit.backends.base import BackendError, GenerateRequest, Prompt
from probekit.backends.errors import RETRYABLE_CLASSES
from probekit.backends.litellm_backend import LiteLLMBackend
from probekit.pipeline import run_async
from probekit.runner import RunOptions, RunSummary
from probekit.runtime import ModelRuntime, RetryPolicy
from probekit.scoring import score_trials
from probekit.store.store import Store

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
STARTER = REPO / "surveys" / "moralchoice_starter.yaml"


def _null(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def run_survey(store: Path, model: str, options: dict[str, Any], **run: Any) -> tuple[RunSummary, pd.DataFrame]:
    summary = asyncio.run(run_async([STARTER], RunOptions(models=[model], store=store, backend_options={model: options}, **run)))
    frame = Store(store).query("SELECT r.*, t.template_id FROM results r JOIN trials t USING (trial_id) WHERE run_id = ? "
                               "ORDER BY trial_id, sample_index", [summary.run_id])
    return summary, frame


def test_survey_in_logprob_and_sample_modes(llama_server: Any, dummy_key: str, tmp_path: Path) -> None:
    """A survey through litellm and through the direct client: same rows, same numbers."""
    distributions = {}
    for transport in ("litellm", "direct"):
        options = {"api_base": llama_server.api_base, "api_key_env": dummy_key, "transport": transport, "concurrency": 4}
        summary, rows = run_survey(tmp_path / f"logprob-{transport}.duckdb", llama_server.model, options, limit=2)
        assert summary.errors == 0 and len(rows) == summary.trials == 12
        assert set(rows["mode"]) == {"logprob"}
        letters = rows[rows["template_id"] != "repeat"]
        assert (letters["status"] == "ok").all()
        for distribution in letters["distribution"]:
            assert sum(distribution) == pytest.approx(1.0)
        assert set(rows["resolved_model"]) == {"smollm2"}
        assert rows["missing_labels"].notna().all() and rows["prompt_tokens"].gt(0).all()
        model = Store(tmp_path / f"logprob-{transport}.duckdb").query("SELECT * FROM models WHERE run_id = ?", [summary.run_id]).iloc[0]
        assert model["logprobs_supported"] and model["backend"] == "litellm" and model["resolved_name"] == "smollm2"
        assert f'"transport": "{transport}"' in model["details"]
        distributions[transport] = [list(d) for d in letters["distribution"]]

        summary, samples = run_survey(tmp_path / f"sample-{transport}.duckdb", llama_server.model, options, limit=1,
                                      mode="sample", samples=2)
        assert summary.errors == 0 and len(samples) == summary.trials * 2
        assert set(samples["mode"]) == {"sample"} and samples["raw_text"].str.len().gt(0).all()
        assert set(samples["status"]) <= {"ok", "invalid", "refusal"}
    for a, b in zip(distributions["litellm"], distributions["direct"]):
        assert a == pytest.approx(b, abs=1e-9)


@pytest.mark.parametrize("kind", ["nologprobs", "rejectlogprobs"])
def test_no_logprobs_falls_back_to_sampling(llama_server: Any, dummy_key: str, tmp_path: Path, kind: str) -> None:
    """A server that never returns logprobs (or rejects the parameter): the probe finds out once and the
    rows say 'sample'."""
    proxy = FaultProxy(upstream=llama_server.api_base.removesuffix("/v1"), rate=1.0, kinds=(kind,)).start()
    try:
        options = {"api_base": proxy.api_base, "api_key_env": dummy_key, "concurrency": 2}
        summary, rows = run_survey(tmp_path / "s.duckdb", llama_server.model, options, limit=1, samples=2)
    finally:
        proxy.stop()
    assert summary.errors == 0 and len(rows) == summary.trials * 2
    assert set(rows["mode"]) == {"sample"}
    model = Store(tmp_path / "s.duckdb").query("SELECT logprobs_supported FROM models").iloc[0]
    assert model["logprobs_supported"] == False  # noqa: E712 (numpy bool)


@pytest.mark.parametrize(("kind", "error_class"), [
    ("429", "rate_limit"), ("500", "server_error"), ("503", "server_error"), ("slow", "timeout"),
    ("drop", "connection"), ("malformed", "malformed_response"), ("nologprobs", "missing_logprobs"),
])
def test_each_fault_is_classified_retryable(llama_server: Any, dummy_key: str, kind: str, error_class: str) -> None:
    from probekit.pipeline import scoring_settings
    from probekit.survey.expand import expand
    from probekit.survey.loader import load_survey

    survey = load_survey(STARTER)
    trial = expand(survey, limit=1)[0]
    proxy = FaultProxy(upstream=llama_server.api_base.removesuffix("/v1"), rate=1.0, kinds=(kind,), slow_seconds=1.5).start()

    async def go() -> BackendError:
        backend = LiteLLMBackend(llama_server.model, api_base=proxy.api_base, api_key_env=dummy_key,
                                 timeout=1.0 if kind == "slow" else 30.0, logprobs=True)
        # No retries and no waiting out rate limits: the first fault comes out (a 429 would otherwise be waited
        # out up to 200 times).
        runtime = ModelRuntime(backend, RetryPolicy(max_attempts=1, max_rate_limit_wait=0.0))
        await runtime.start()
        try:
            with pytest.raises(BackendError) as caught:
                await score_trials(runtime, [trial], scoring_settings(survey, RunOptions()))
            return caught.value
        finally:
            await runtime.close()

    try:
        error = asyncio.run(go())
    finally:
        proxy.stop()
    assert (error.error_class, error.retryable) == (error_class, True), str(error)
    if kind == "429":
        assert error.retry_after == 1.0


def test_context_length_is_not_retried(llama_server: Any, dummy_key: str) -> None:
    async def go() -> BackendError:
        backend = LiteLLMBackend(llama_server.model, api_base=llama_server.api_base, api_key_env=dummy_key)
        try:
            with pytest.raises(BackendError) as caught:
                await backend.generate([GenerateRequest(Prompt((("user", "hello " * 4000),), ""), 1)])
            return caught.value
        finally:
            await backend.close()

    error = asyncio.run(go())
    assert (error.error_class, error.retryable) == ("context_length", False)


def test_identical_requests_are_sent_once(llama_server: Any, dummy_key: str) -> None:
    proxy = FaultProxy(upstream=llama_server.api_base.removesuffix("/v1")).start()

    async def go() -> None:
        runtime = ModelRuntime(LiteLLMBackend(llama_server.model, api_base=proxy.api_base, api_key_env=dummy_key, logprobs=False))
        await runtime.start()
        prompt = Prompt((("user", "Say A."),), "Say A.")
        try:
            first = await asyncio.gather(*(runtime.generate([GenerateRequest(prompt, 2)]) for _ in range(3)))
            await runtime.generate([GenerateRequest(prompt, 2)])
            await runtime.generate([GenerateRequest(prompt, 3)])  # another parameter: another request
        finally:
            await runtime.close()
        assert len({outputs[0][0].text for outputs in first}) == 1

    try:
        asyncio.run(go())
    finally:
        proxy.stop()
    assert proxy.stats["forwarded"] == 2


def test_thirty_percent_faults(deterministic_llama_server: Any, dummy_key: str, tmp_path: Path) -> None:
    """Every trial ends answered or stored as an error; no duplicates; answers equal a fault-free run.
    (Against the one-token-per-batch server: see the fixture for why the default server cannot promise
    identical answers to a retried request.)"""
    llama_server = deterministic_llama_server
    # The server computes one request at a time: a timeout well above its latency, and "slow" faults
    # held longer than that timeout.
    base = {"api_key_env": dummy_key, "concurrency": 2, "timeout": 8.0}
    clean_summary, clean = run_survey(tmp_path / "clean.duckdb", llama_server.model,
                                      {**base, "api_base": llama_server.api_base}, limit=4)
    assert clean_summary.errors == 0
    proxy = FaultProxy(upstream=llama_server.api_base.removesuffix("/v1"), rate=0.3, seed=7, slow_seconds=9.0).start()
    store = tmp_path / "faulty.duckdb"
    try:
        summary, faulty = run_survey(store, llama_server.model, {**base, "api_base": proxy.api_base}, limit=4,
                                     max_attempts=6, backoff_base=0.2)
        first_pass_errors = summary.errors
        # A trial stored as an error in the first pass used up its retries, on retryable faults only.
        first = Store(store).query("SELECT error_class, attempts FROM results WHERE status = 'error'")
        assert (first["attempts"] == 6).all(), first
        assert set(first["error_class"]) <= RETRYABLE_CLASSES, first
        resumed, faulty = run_survey(store, llama_server.model, {**base, "api_base": proxy.api_base}, limit=4,
                                     max_attempts=6, backoff_base=0.2, resume=summary.run_id)
    finally:
        proxy.stop()
    injected = {kind: proxy.stats[kind] for kind in FAULT_KINDS}
    print(f"\nfault run: {proxy.stats['requests']} requests, injected {sum(injected.values())} faults {injected}; "
          f"trials={summary.trials} first-pass errors={first_pass_errors} after resume={resumed.errors}")
    assert sum(injected.values()) >= 0.15 * proxy.stats["requests"], proxy.stats
    assert all(injected.values()), injected  # every kind of fault happened
    # every trial exactly once, answered or an error with a retryable class
    assert len(faulty) == summary.trials, (len(faulty), summary.trials)
    assert not faulty.duplicated(["trial_id", "sample_index"]).any()
    errors = faulty[faulty["status"] == "error"]
    assert set(errors["error_class"]) <= RETRYABLE_CLASSES, errors[["error_class", "error_message"]]
    answered = faulty[faulty["status"] != "error"].set_index("trial_id")
    reference = clean.set_index("trial_id").loc[answered.index]
    differ = answered.index[(answered["choice"].fillna(-1) != reference["choice"].fillna(-1)) | (answered["status"] != reference["status"])]
    for trial_id in differ:
        shown = ['status', 'choice', 'distribution', 'raw_text', 'attempts', 'top_logprobs']
        print(f"DIFF {trial_id}: faulty {answered.loc[trial_id, shown].tolist()}"
              f"\n     clean {reference.loc[trial_id, shown].tolist()}")
    assert (answered["status"] == reference["status"]).all(), (answered["status"], reference["status"])
    assert (answered["choice"].fillna(-1) == reference["choice"].fillna(-1)).all(), (answered["choice"], reference["choice"])
    for got, want in zip(answered["distribution"], reference["distribution"]):
        if _null(want):
            assert _null(got)
        else:
            assert list(got) == pytest.approx(list(want), abs=1e-6)
    assert (answered["attempts"] >= 1).all()
