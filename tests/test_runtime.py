"""The runtime around every backend (cache, sample splitting, response checks, retries, probes) and the
runner's concurrency across models, on the scriptable fake backend (fast unit tests)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from probekit.backends import make_backend
from probekit.backends.base import BackendError, Capabilities, GenerateRequest, Generation, ModelInfo, Prompt
from probekit.backends.fake import FakeBackend
from probekit.pipeline import run
from probekit.runner import RunOptions
from probekit.runtime import ModelRuntime, RetryPolicy
from probekit.store.store import Store

REPO = Path(__file__).resolve().parents[1]
STARTER = REPO / "surveys" / "moralchoice_starter.yaml"
PROMPT = Prompt((("user", "Pick A or B."),), "Pick A or B.")


class ScriptedGenerator(FakeBackend):
    """Answers generate() with a script of outcomes: 'ok', 'nologprobs' or a BackendError."""

    def __init__(self, script: list[Any], *, api: bool = True):
        super().__init__("fake:scripted?engine=api" if api else "fake:scripted")
        self.script = list(script)
        self.sent: list[GenerateRequest] = []

    async def generate(self, requests: list[GenerateRequest]) -> list[list[Generation]]:
        self.sent.extend(requests)
        outcome = self.script.pop(0) if self.script else "ok"
        if isinstance(outcome, BaseException):
            raise outcome
        from probekit.backends.base import TokenLogprobs

        tokens = None if outcome == "nologprobs" else [TokenLogprobs("A", -0.1, (("A", -0.1), ("B", -2.0)))]
        return [[Generation(f"A (seed {r.seed})", tokens)] * r.n for r in requests]


def runtime_for(backend: Any, **policy: Any) -> ModelRuntime:
    runtime = ModelRuntime(backend, RetryPolicy(**{"max_attempts": 3, "backoff_base": 0.0, "backoff_max": 0.0, **policy}))
    runtime.capabilities = Capabilities(top_logprobs=20, generate=True)
    return runtime


def test_identical_requests_are_answered_once() -> None:
    backend = ScriptedGenerator([])
    runtime = runtime_for(backend)

    async def go() -> None:
        request = GenerateRequest(PROMPT, 4)
        await asyncio.gather(*(runtime.generate([request]) for _ in range(3)))
        await runtime.generate([request, request])
        await runtime.generate([GenerateRequest(PROMPT, 5)])  # another parameter: another request

    asyncio.run(go())
    assert len(backend.sent) == 2 and runtime.calls == 2
    assert runtime.cache.hits == 4


def test_samples_become_seeded_requests_and_a_retry_resends_only_the_failed_one() -> None:
    fault = BackendError("server_error", "503", retryable=True)
    backend = ScriptedGenerator(["ok", fault, "ok", "ok"])
    runtime = runtime_for(backend)
    request = GenerateRequest(PROMPT, 4, temperature=1.0, seed=10, n=3)
    (outputs,) = asyncio.run(runtime.generate([request]))
    assert [g.text for g in outputs] == ["A (seed 10)", "A (seed 11)", "A (seed 12)"]
    # sent concurrently: seeds 10, 11, 12, then the failed one (the second sent) again
    assert sorted(r.seed for r in backend.sent) == [10, 11, 11, 12] and backend.sent[1].seed == backend.sent[3].seed
    assert sorted(r.sample for r in backend.sent) == [0, 1, 1, 2]
    assert [g.provenance.attempts for g in outputs] == [1, 2, 1]


def test_a_response_without_the_logprobs_asked_for_is_retried_and_never_cached() -> None:
    backend = ScriptedGenerator(["nologprobs", "ok"])
    runtime = runtime_for(backend)
    request = GenerateRequest(PROMPT, 4, top_logprobs=20)
    (outputs,) = asyncio.run(runtime.generate([request]))
    assert outputs[0].tokens is not None and outputs[0].provenance.attempts == 2

    always = ScriptedGenerator(["nologprobs"] * 10)
    runtime = runtime_for(always)
    with pytest.raises(BackendError) as caught:
        asyncio.run(runtime.generate([request]))
    assert caught.value.error_class == "missing_logprobs" and caught.value.attempts == 3
    assert len(always.sent) == 3


def test_non_retryable_faults_are_not_retried() -> None:
    backend = ScriptedGenerator([BackendError("auth", "401", retryable=False), "ok"])
    runtime = runtime_for(backend)
    with pytest.raises(BackendError):
        asyncio.run(runtime.generate([GenerateRequest(PROMPT, 4)]))
    assert len(backend.sent) == 1


def test_the_probe_settles_an_api_models_logprob_capability() -> None:
    with_logprobs = ModelRuntime(FakeBackend("fake:p?engine=api"))
    info: ModelInfo = asyncio.run(with_logprobs.start())
    assert info.capabilities.top_logprobs == 20 and info.logprobs_supported is True
    assert "top_logprobs" in info.details["probe"]
    without = ModelRuntime(FakeBackend("fake:p?engine=api&nologprobs=1"))
    assert asyncio.run(without.start()).logprobs_supported is False


def test_a_model_without_logprobs_falls_back_to_sampling_on_every_row(store_path: Path) -> None:
    summary = run([STARTER], models=["fake:nolp?engine=api&nologprobs=1"], store=store_path, limit=2, samples=2)
    frame = Store(store_path).query("SELECT mode, count(*) AS n FROM results GROUP BY mode")
    assert frame["mode"].tolist() == ["sample"] and int(frame["n"][0]) == summary.trials * 2


def test_an_api_like_engine_reads_labels_from_generated_top_logprobs(store_path: Path) -> None:
    summary = run([STARTER], models=["fake:api?engine=api&prior=3,1"], store=store_path, limit=2)
    rows = Store(store_path).query("SELECT status, mode, distribution, top_logprobs FROM results")
    assert summary.errors == 0 and len(rows) == summary.trials
    assert (rows["mode"] == "logprob").all() and (rows["status"] == "ok").all()


def test_options_an_engine_does_not_take_are_errors() -> None:
    with pytest.raises(ValueError, match="accepts: chat_template, device, max_batch, share_prefix, token_budget"):
        make_backend("smollm2", {"token_budgt": 1})
    with pytest.raises(ValueError, match="no option"):
        make_backend("fake:x", {"device": "cpu"})


def test_the_models_of_one_run_proceed_concurrently(store_path: Path) -> None:
    """Two models, each one call at a time with a delay: their activity windows overlap (models are not run
    one after another)."""
    seen: dict[str, list[float]] = {}

    def progress(model: str, done: int, total: int, errors: int) -> None:
        seen.setdefault(model, []).append(time.monotonic())

    models = ["fake:a?delay=0.05&concurrency=1&batch=2", "fake:b?delay=0.05&concurrency=1&batch=2"]
    options = RunOptions(models=models, store=store_path, limit=4, progress=progress)
    summary = run([STARTER], options)
    assert summary.errors == 0 and len(summary.models) == 2
    (a_start, a_end), (b_start, b_end) = [(min(t), max(t)) for t in seen.values()]
    assert a_start < b_end and b_start < a_end, seen
    assert min(a_end, b_end) - max(a_start, b_start) > 0.5 * min(a_end - a_start, b_end - b_start)
