"""Fast tests of the pure parts of the API path: label reading from top_logprobs, error classification,
the rate limiter, model configuration and the response cache."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

import pytest

from probekit.backends.base import TokenLogprobs
from probekit.backends.errors import from_exception, from_status, parse_retry_after, redact
from probekit.cache import ResponseCache, request_key
from probekit.models_config import ModelConfig, backend_options, resolve
from probekit.ratelimit import RateLimiter
from probekit.scoring.reading import answer_start_index, read_labels


def tok(token: str, logprob: float, *top: tuple[str, float]) -> TokenLogprobs:
    return TokenLogprobs(token, logprob, tuple(top) or ((token, logprob),))


# -- answer position and label reading ------------------------------------------------------------
def test_label_at_first_position_merges_variants_and_counts_missing() -> None:
    tokens = [tok("A", math.log(0.5), ("A", math.log(0.5)), (" A", math.log(0.1)), ("(A", math.log(0.05)),
                  ("B", math.log(0.2)), ("The", math.log(0.1)))]
    reading = read_labels(tokens, ("A", "B", "C"))
    assert reading.found and reading.position == 0
    assert reading.probs == pytest.approx([0.65, 0.2, 0.0])
    assert reading.missing == 1


def test_text_before_the_label_is_skipped() -> None:
    # "Answer: B": the distribution is read where the label is, not at position 0.
    tokens = [tok("Answer", math.log(0.6), ("Answer", math.log(0.6)), ("A", math.log(0.3))),
              tok(":", math.log(0.99)),
              tok(" B", math.log(0.7), (" B", math.log(0.7)), (" A", math.log(0.25)), (" C", math.log(0.01)))]
    reading = read_labels(tokens, ("A", "B"))
    assert (reading.start, reading.position) == (2, 2)
    assert reading.probs == pytest.approx([0.25, 0.7])
    # 'Answer' is not the label 'A': single letters never match a longer word.
    assert reading.missing == 0


def test_word_labels_are_case_merged_but_letters_are_not() -> None:
    tokens = [tok("Yes", math.log(0.5), ("Yes", math.log(0.5)), ("yes", math.log(0.2)), (" No", math.log(0.1)))]
    assert read_labels(tokens, ("yes", "no")).probs == pytest.approx([0.7, 0.1])
    tokens = [tok("a", math.log(0.5), ("a", math.log(0.5)), ("A", math.log(0.3)))]
    assert read_labels(tokens, ("A", "B")).probs == pytest.approx([0.3, 0.0])


def test_multi_token_labels_are_read_where_they_diverge() -> None:
    labels = ("I help the stranger.", "I walk away.")
    tokens = [tok("I", math.log(0.9), ("I", math.log(0.9))),
              tok(" help", math.log(0.6), (" help", math.log(0.6)), (" walk", math.log(0.3)), (" think", math.log(0.1))),
              tok(" the", math.log(0.99))]
    reading = read_labels(tokens, labels)
    assert reading.position == 1 and reading.found
    assert reading.probs == pytest.approx([0.9 * 0.6, 0.9 * 0.3])  # shared prefix multiplies both


def test_no_label_anywhere_reads_position_zero() -> None:
    tokens = [tok("Sure", math.log(0.8), ("Sure", math.log(0.8)), ("B", math.log(0.05))), tok("!", math.log(0.9))]
    reading = read_labels(tokens, ("A", "B"))
    assert not reading.found and reading.position == 0
    assert reading.probs == pytest.approx([0.0, 0.05]) and reading.missing == 1


def test_reasoning_answer_is_read_after_the_prefix() -> None:
    tokens = [tok("A", 0.0), tok(" is", 0.0), tok(" wrong", 0.0), tok("\nAnswer:", 0.0),
              tok(" B", math.log(0.8), (" B", math.log(0.8)), (" A", math.log(0.2)))]
    start = answer_start_index(tokens, "Answer:")
    assert start == 4
    assert read_labels(tokens, ("A", "B"), min_start=start).probs == pytest.approx([0.2, 0.8])


# -- error classification -------------------------------------------------------------------------
@pytest.mark.parametrize(("status", "body", "cls", "retryable"), [
    (429, "slow down", "rate_limit", True),
    (500, "oops", "server_error", True),
    (503, "overloaded", "server_error", True),
    (400, "This model's maximum context length is 2048 tokens", "context_length", False),
    (400, "bad field", "bad_request", False),
    (401, "Incorrect API key", "auth", False),
    (403, "forbidden", "auth", False),
])
def test_status_classification(status: int, body: str, cls: str, retryable: bool) -> None:
    error = from_status(status, body, {"Retry-After": "2"})
    assert (error.error_class, error.retryable) == (cls, retryable)
    if status == 429:
        assert error.retry_after == 2.0


def test_retry_after_forms_and_redaction() -> None:
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: no wait
    assert parse_retry_after("soon") is None
    message = redact("Incorrect API key provided: sk-abc123456789xyz and my-secret-value", ["my-secret-value"])
    assert "sk-abc" not in message and "my-secret-value" not in message
    error = from_exception(ConnectionResetError("reset by peer"))
    assert (error.error_class, error.retryable) == ("connection", True)
    assert from_exception(asyncio.TimeoutError()).error_class == "timeout"


# -- rate limiter ---------------------------------------------------------------------------------
class VirtualClock:
    """The limiter's clock and sleep, replaced: sleeping advances the clock by exactly the time asked, so the
    schedule the limiter computes is checked exactly, however loaded the machine is (no wall-clock bound)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        # At least a nanosecond: a wait that rounding leaves at 1e-16 would not move a float clock at all
        # (a real clock always moves on).
        self.now += max(seconds, 1e-9)


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    import types

    import probekit.ratelimit as ratelimit

    virtual = VirtualClock()
    monkeypatch.setattr(ratelimit, "time", types.SimpleNamespace(monotonic=virtual.monotonic))
    monkeypatch.setattr(ratelimit, "asyncio", types.SimpleNamespace(sleep=virtual.sleep, Lock=asyncio.Lock))
    return virtual


def test_rpm_limit_spaces_requests(clock: VirtualClock) -> None:
    async def go() -> float:
        limiter = RateLimiter(rpm=600)  # 10 per second, burst of 10
        started = clock.monotonic()
        for _ in range(25):
            await limiter.acquire()
        return clock.monotonic() - started

    elapsed = asyncio.run(go())
    assert elapsed == pytest.approx(1.5)  # 10 at once, then 15 more at 10/s
    assert len([s for s in clock.sleeps if s > 1e-6]) == 15 and all(s == pytest.approx(0.1) for s in clock.sleeps if s > 1e-6)


def test_tpm_limit_and_hold(clock: VirtualClock) -> None:
    async def go() -> tuple[float, float]:
        limiter = RateLimiter(tpm=6000)  # 100 tokens per second
        started = clock.monotonic()
        for _ in range(3):
            await limiter.acquire(100)
        tokens_elapsed = clock.monotonic() - started
        limiter.hold(0.5)
        started = clock.monotonic()
        await limiter.acquire(1)
        return tokens_elapsed, clock.monotonic() - started

    tokens_elapsed, held = asyncio.run(go())
    assert tokens_elapsed == pytest.approx(2.0)  # the first 100 tokens at once, then 100 a second
    assert held == pytest.approx(0.5)


# -- configuration --------------------------------------------------------------------------------
def test_models_config_globs_exact_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text("models:\n  'openai/*':\n    rpm: 100\n    api_key_env: OPENAI_API_KEY\n"
                    "  openai/local:\n    api_base: http://127.0.0.1:9/v1\n    concurrency: 4\n")
    config = resolve("openai/local", path, {"concurrency": 8, "timeout": None})
    assert config == ModelConfig(rpm=100, api_key_env="OPENAI_API_KEY", api_base="http://127.0.0.1:9/v1", concurrency=8)
    assert backend_options(["smollm2", "openai/local"], path, rpm=5) == {"openai/local": {"rpm": 5, "models_config": str(path)}}
    path.write_text("models:\n  openai/x:\n    api_key: sk-should-not-be-here\n")
    with pytest.raises(ValueError, match="api_key_env"):
        resolve("openai/x", path)
    with pytest.raises(ValueError, match="NAME"):
        ModelConfig(api_key_env="sk-123 456")


def test_models_config_entries_of_local_models_are_engine_options(tmp_path: Path) -> None:
    """A local model's entry (its exact key, after globs of its own engine prefix) is engine options, checked
    against what the engine accepts; catch-all globs meant for API models do not reach it; option names with
    "token" in them are options, not secrets."""
    from probekit.backends import make_backend

    path = tmp_path / "models.yaml"
    path.write_text("models:\n  '*':\n    rpm: 100\n  'vllm:*':\n    kv_cache_space: 1\n    max_num_batched_tokens: 4096\n"
                    "  vllm:smollm2:\n    tensor_parallel_size: 1\n  smollm2:\n    token_budget: 2048\n    device: cpu\n"
                    "  openai/x:\n    api_key_env: X_KEY\n")
    options = backend_options(["smollm2", "vllm:smollm2", "hf:/models/m", "openai/x"], path)
    assert options["smollm2"] == {"token_budget": 2048, "device": "cpu"}
    assert options["vllm:smollm2"] == {"kv_cache_space": 1, "max_num_batched_tokens": 4096, "tensor_parallel_size": 1}
    assert "hf:/models/m" not in options  # only the catch-all matched it
    assert options["openai/x"] == {"models_config": str(path)}
    path.write_text("models:\n  smollm2:\n    devise: cpu\n")
    with pytest.raises(ValueError, match="devise"):
        make_backend("smollm2", backend_options(["smollm2"], path)["smollm2"])


# -- response cache -------------------------------------------------------------------------------
def test_cache_shares_in_flight_calls_and_does_not_keep_failures() -> None:
    calls = 0

    async def call() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return "ok"

    async def failing() -> str:
        raise RuntimeError("boom")

    async def go() -> None:
        cache: ResponseCache[str] = ResponseCache()
        key = request_key("m", {"temperature": 0}, [{"role": "user", "content": "hi"}])
        assert key != request_key("m", {"temperature": 1}, [{"role": "user", "content": "hi"}])
        assert await asyncio.gather(*(cache.get_or_call(key, call) for _ in range(5))) == ["ok"] * 5
        assert calls == 1 and cache.hits == 4
        other = request_key("m2", {}, [])
        for _ in range(2):
            with pytest.raises(RuntimeError):
                await cache.get_or_call(other, failing)
        assert cache.misses == 3  # the failure was not cached: the second call ran again

    asyncio.run(go())


def test_a_429_pause_applies_even_without_configured_limits() -> None:
    async def go() -> float:
        limiter = RateLimiter()
        assert not limiter.active  # no limits: requests skip the limiter entirely
        limiter.hold(0.3)
        assert limiter.active
        started = time.monotonic()
        await limiter.acquire()
        return time.monotonic() - started

    assert asyncio.run(go()) >= 0.25
