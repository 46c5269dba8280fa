"""The scoring modes, written once over the backend primitives, run on three engines: the scripted fake
backend, the transformers backend on the real SmolLM2 (exact next-token logprobs) and the litellm backend
against the real llama.cpp server (top-k logprobs of generated tokens). The same assertions hold on each."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from probekit.backends.base import BackendError
from probekit.scoring import ScoringSettings
from probekit.scoring.sync import score_sync
from probekit.survey.expand import Trial, expand
from probekit.survey.loader import load_survey

SPEC = (Path(__file__).with_name("modes.yaml")).read_text(encoding="utf-8")

ENGINES = [
    pytest.param("fake", id="fake"),
    pytest.param("smollm2", id="transformers-smollm2", marks=pytest.mark.slow),
    pytest.param("llama", id="litellm-llama.cpp", marks=pytest.mark.slow),
]


@pytest.fixture(scope="module")
def trials(tmp_path_factory: pytest.TempPathFactory) -> list[Trial]:
    path = tmp_path_factory.mktemp("spec") / "modes.yaml"
    path.write_text(SPEC)
    return expand(load_survey(path))


def pick(trials: list[Trial], template: str, reasoning: str = "direct") -> list[Trial]:
    return [t for t in trials if t.template_id == template and t.reasoning == reasoning]


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> Any:
    name = request.param
    if name == "fake":
        from probekit.backends.fake import FakeBackend

        return FakeBackend("fake:modes?prior=3,1")
    if name == "smollm2":
        return request.getfixturevalue("smollm2")
    from probekit.backends.litellm_backend import LiteLLMBackend

    server = request.getfixturevalue("llama_server")
    key = request.getfixturevalue("dummy_key")
    return LiteLLMBackend(server.model, api_base=server.api_base, api_key_env=key, timeout=120)


def assert_distribution(row: Any, trial: Trial) -> None:
    """The stored distribution is the shown label probabilities renormalised and put in canonical order."""
    assert row["status"] == "ok", row
    assert math.isclose(sum(row["distribution"]), 1.0, abs_tol=1e-9)
    assert row["choice"] == max(range(trial.n_options), key=lambda k: row["distribution"][k])
    shown = [math.exp(x) if x is not None else 0.0 for x in row["label_logprobs"]]
    assert math.isclose(sum(shown), row["valid_mass"], rel_tol=1e-6)
    for position, canonical in enumerate(trial.order):
        assert math.isclose(row["distribution"][canonical], shown[position] / sum(shown), rel_tol=1e-6)


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_logprob_mode_maps_labels_back_to_canonical_order(engine: Any, trials: list[Trial]) -> None:
    ab = pick(trials, "ab")
    assert [t.order for t in ab] == [(0, 1), (1, 0)]
    rows = score_sync(engine, ab, ScoringSettings())
    for trial, (row,) in zip(ab, rows):
        assert row["mode"] == "logprob" and row["trial_id"] == trial.trial_id
        assert_distribution(row, trial)
        assert row["top_logprobs"], "the evidence the distribution was read from is kept"


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_sample_mode_parses_each_generation(engine: Any, trials: list[Trial]) -> None:
    ab = pick(trials, "ab")
    settings = ScoringSettings(mode="sample", samples=3, temperature=1.0, max_tokens=8, seed=1)
    rows = score_sync(engine, ab, settings)
    for samples in rows:
        assert [r["sample_index"] for r in samples] == [0, 1, 2]
        for row in samples:
            assert row["mode"] == "sample" and row["raw_text"] is not None
            assert row["status"] in {"ok", "refusal", "invalid"}
            if row["status"] == "ok":
                assert row["distribution"] == [1.0 if k == row["choice"] else 0.0 for k in range(2)]
            else:
                assert row["choice"] is None and row["distribution"] is None
    if not engine.model.startswith("openai/"):  # a seeded local engine repeats itself exactly
        again = score_sync(engine, ab, settings)
        assert [[r["raw_text"] for r in t] for t in rows] == [[r["raw_text"] for r in t] for t in again]


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_reasoning_mode_reads_the_label_after_the_reasoning(engine: Any, trials: list[Trial]) -> None:
    thinking = pick(trials, "ab", "reasoning")[:1]
    (row,), = score_sync(engine, thinking, ScoringSettings(reasoning_max_tokens=24))
    assert row["mode"] == "logprob" and row["raw_text"], "the reasoning is stored"
    if row["status"] == "ok":  # an API model may not reach the answer within 24 tokens: then invalid, no answer
        assert math.isclose(sum(row["distribution"]), 1.0, abs_tol=1e-9)
    else:
        assert row["status"] == "invalid" and row["distribution"] is None


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_followup_turns_carry_the_models_first_answer(engine: Any, trials: list[Trial]) -> None:
    reflect = pick(trials, "reflect")[:1]
    (row,), = score_sync(engine, reflect, ScoringSettings(max_tokens=8))
    assert row["raw_text"].startswith("[first answer] ")
    assert row["status"] in {"ok", "invalid"}
    if row["status"] == "ok":
        assert_distribution(row, reflect[0])


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_sequence_mode_needs_continuation_loglikelihoods(engine: Any, trials: list[Trial]) -> None:
    repeat = pick(trials, "repeat")
    settings = ScoringSettings(mode="sequence")
    if engine.model.startswith("openai/"):
        with pytest.raises(BackendError) as caught:
            score_sync(engine, repeat, settings)
        assert caught.value.error_class == "unsupported_mode" and not caught.value.retryable
        return
    rows = score_sync(engine, repeat, settings)
    for _trial, (row,) in zip(repeat, rows):
        assert row["mode"] == "sequence"
        assert all(s < 0 for s in row["seq_logprob_sum"])
        assert all(s <= m < 0 for s, m in zip(row["seq_logprob_sum"], row["seq_logprob_mean"]))
        assert row["choice"] == max(range(2), key=lambda k: row["seq_logprob_sum"][k])


@pytest.mark.slow
def test_option_text_labels_follow_content_on_the_real_model(smollm2: Any, trials: list[Trial]) -> None:
    """Content, not position: 'Paris' (canonical 0) wins in both orders on the real model."""
    repeat = pick(trials, "repeat")
    for (row,) in score_sync(smollm2, repeat, ScoringSettings()):
        assert row["choice"] == 0 and row["distribution"][0] > 0.9

