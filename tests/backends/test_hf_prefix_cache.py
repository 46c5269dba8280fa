"""Shared-prefix key/value caching in the transformers backend: the option orders of one item share their
prompt up to the first option; computing that prefix once must give the same numbers as computing every
prompt whole (within 1e-4), on both real models (chat template and plain completion prompts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from probekit.scoring import ScoringSettings, trial_prompt
from probekit.scoring.sync import score_sync
from probekit.survey.expand import expand
from probekit.survey.loader import load_survey

MMLU = Path(__file__).resolve().parents[2] / "surveys" / "mmlu.yaml"


@pytest.fixture(scope="module")
def trials():
    survey = load_survey(MMLU)
    # two items in 4 cyclic orders, plus one position-dependent item (a lone prompt in its group)
    chosen = [i for i in survey.items if i.id in {"mmlu/anatomy/test/0", "mmlu/astronomy/test/3"}]
    fixed = next(i for i in survey.items if i.position_dependent)
    return expand(survey.model_copy(update={"items": [*chosen, fixed]}))


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["smollm2", "gemma3"])
def test_shared_prefix_equals_unshared(request, trials, fixture) -> None:
    backend = request.getfixturevalue(fixture)
    assert len(trials) == 9
    encoded = [backend.encode_prompt(backend.prompt_text(trial_prompt(t))) for t in trials]
    groups = [t.item_id for t in trials]
    shared, singles = backend._prefix_plan(encoded, groups)
    # the two permuted items share a prefix (the stem, and the chat preamble for smollm2); the fixed one not
    assert sorted(len(members) for _length, members in shared) == [4, 4] and len(singles) == 1
    assert all(length >= 20 for length, _members in shared)
    whole = backend.next_token_logprobs(encoded)
    reused = backend.next_token_logprobs(encoded, groups)
    assert float((whole - reused).abs().max()) < 1e-4
    assert whole.argmax(-1).tolist() == reused.argmax(-1).tolist()


@pytest.mark.slow
def test_score_rows_identical_with_and_without_sharing(smollm2, trials) -> None:
    settings = ScoringSettings(mode="logprob")
    smollm2.share_prefix = False
    try:
        plain = score_sync(smollm2, trials, settings)
    finally:
        smollm2.share_prefix = True
    shared = score_sync(smollm2, trials, settings)
    for a, b in zip(plain, shared):
        assert a[0]["choice"] == b[0]["choice"]
        assert a[0]["distribution"] == pytest.approx(b[0]["distribution"], abs=1e-4)
        assert a[0]["valid_mass"] == pytest.approx(b[0]["valid_mass"], rel=1e-3)


def test_tight_batches_bound_padding_and_budget() -> None:
    from probekit.backends.hf import HFBackend

    backend = HFBackend("smollm2")  # not loaded: batching is pure bookkeeping
    backend.token_budget = 1000
    lengths = [10, 400, 12, 11, 390, 100, 95, 13]
    batches = backend._tight_batches(lengths)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        widths = [lengths[i] for i in batch]
        assert len(batch) * max(widths) <= 1000 or len(batch) == 1
        assert sum(widths) >= (1 - backend.MAX_PADDING) * len(batch) * max(widths)
    # short prompts never share a batch with the long ones
    assert [sorted(lengths[i] for i in b) for b in batches] == [[10, 11, 12, 13], [95, 100], [390, 400]]


@pytest.mark.slow
def test_continuations_sharing_their_prompt_equal_unshared(smollm2, trials) -> None:
    """Sequence mode and teacher-forced labels score several continuations of one prompt: the prompt's
    key/value cache is computed once and shared; the numbers equal scoring each pair whole."""
    prompts = [smollm2.encode_prompt(smollm2.prompt_text(trial_prompt(t))) for t in trials[:3]]
    pairs = [(p, smollm2.encode_text(text)) for p in prompts for text in (" Paris", " (B", "PARIS is far", "A")]
    shared, singles = smollm2._prefix_plan([list(p) + list(c) for p, c in pairs], [tuple(p) for p, _c in pairs],
                                           [len(c) + 1 for _p, c in pairs])
    assert sorted(len(members) for _length, members in shared) == [4, 4, 4] and not singles
    assert all(length == len(pairs[members[0]][0]) - 1 for length, members in shared), "each member keeps its last prompt token"
    smollm2.share_prefix = False
    try:
        whole = smollm2.continuation_logprobs_ids(pairs)
    finally:
        smollm2.share_prefix = True
    reused = smollm2.continuation_logprobs_ids(pairs)
    assert [len(v) for v in reused] == [len(c) for _p, c in pairs]
    assert max(abs(a - b) for x, y in zip(whole, reused) for a, b in zip(x, y)) < 1e-4
