"""The `generate` and `pairwise` survey kinds: validation, expansion (both orders, a fixed tie), generate scoring
on the fake engine (exact and API-like), and the MT-Bench surveys and their builder."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from selfpref_helpers import SELFPREF, SURVEYS

from probekit.backends.fake import FakeBackend
from probekit.pipeline import scoring_settings
from probekit.provenance import survey_hash
from probekit.runner import RunOptions
from probekit.scoring.sync import score_sync
from probekit.survey.expand import expand, item_options
from probekit.survey.loader import load_survey
from probekit.survey.schema import Survey


def generate_survey(**scoring: object) -> Survey:
    return Survey.model_validate({
        "id": "g", "kind": "generate", "templates": [{"id": "t", "user": "{question}"}],
        **({"scoring": scoring} if scoring else {}),
        "items": [{"id": "q1", "fields": {"question": "Why?"}}, {"id": "q2", "fields": {"question": "How?"}}]})


def pairwise_survey(tie: bool = False, policy: str = "identity", **extra: object) -> Survey:
    return Survey.model_validate({
        "id": "p", "kind": "pairwise", "permutations": {"policy": policy}, "pairwise": {"tie": tie},
        "templates": [{"id": "t", "user": "{question}\nA: {option_1}\nB: {option_2}\nWhich is better?"}],
        "items": [{"id": "x", "fields": {"question": "Q?"}, "options": [{"text": "one"}, {"text": "two"}]}], **extra})


def test_generate_surveys_are_scored_in_generate_mode_only() -> None:
    assert generate_survey().scoring.mode == "generate"
    assert generate_survey(mode="generate", samples=3).scoring.samples == 3
    with pytest.raises(ValidationError, match="generate survey is scored with mode 'generate'"):
        generate_survey(mode="logprob")
    with pytest.raises(ValidationError, match="'generate' is for generate surveys"):
        pairwise_survey(scoring={"mode": "generate"})


def test_pairwise_settings_leave_other_surveys_hashes_alone() -> None:
    survey = load_survey(SURVEYS / "moralchoice_starter.yaml")
    assert "pairwise" not in survey.model_dump_json()
    assert survey.judging.tie is False and survey.judging.task == "judge"
    judged = pairwise_survey(tie=True)
    assert '"pairwise":{"tie":true' in judged.model_dump_json()
    assert survey_hash(judged) != survey_hash(pairwise_survey())


@pytest.mark.parametrize("policy", ["identity", "reversed", "cyclic"])
def test_every_pair_is_shown_in_both_orders_and_the_tie_stays_last(policy: str) -> None:
    trials = expand(pairwise_survey(tie=True, policy=policy))
    assert [t.order for t in trials] == [(0, 1, 2), (1, 0, 2)]
    assert [t.labels for t in trials] == [("A", "B", "C")] * 2
    assert [t.shown_options for t in trials] == [("one", "two", "Tie"), ("two", "one", "Tie")]
    assert "A: two\nB: one" in trials[1].messages[-1].content
    assert [o.meta for o in item_options(pairwise_survey(tie=True), pairwise_survey().items[0])][-1] == {"tie": True}
    assert [t.order for t in expand(pairwise_survey(policy=policy))] == [(0, 1), (1, 0)]


def test_a_pairwise_item_needs_two_responses() -> None:
    survey = Survey.model_validate({
        "id": "p", "kind": "pairwise", "templates": [{"id": "t", "user": "{option_1} {option_2}"}],
        "items": [{"id": "x", "options": [{"text": "a"}, {"text": "b"}, {"text": "c"}]}]})
    with pytest.raises(ValueError, match="has 3 responses: give exactly 2 options"):
        expand(survey)


@pytest.mark.parametrize("engine", ["fake:w", "fake:w?engine=api"])
def test_generate_mode_stores_each_answer_as_a_result_row(engine: str) -> None:
    survey = generate_survey(samples=2, temperature=0.7, max_tokens=12)
    trials = expand(survey)
    rows = score_sync(FakeBackend(engine), trials, scoring_settings(survey, RunOptions()))
    assert [len(r) for r in rows] == [2, 2]
    for trial, samples in zip(trials, rows):
        assert [r.sample_index for r in samples] == [0, 1]
        for row in samples:
            assert (row.trial_id, row.mode, row.status, row.choice, row.distribution) == (trial.trial_id, "generate", "ok", None, None)
            assert row.raw_text.startswith("[answer of fake:w | quality") and trial.item_id in row.raw_text
            assert row.resolved_model == "fake/w"
    assert rows[0][0].raw_text != rows[0][1].raw_text  # seeded samples differ


def test_the_fake_judge_prefers_quality_and_its_own_answers() -> None:
    survey = Survey.model_validate({
        "id": "p", "kind": "pairwise", "templates": [{"id": "t", "user": "{option_1} / {option_2}"}],
        "items": [{"id": "x", "options": [{"text": "[answer of fake:j | quality 0.30] mine"},
                                          {"text": "[answer of fake:o | quality 0.60] theirs"}]}]})
    trials = expand(survey)
    fair = score_sync(FakeBackend("fake:j"), trials, scoring_settings(survey, RunOptions()))
    biased = score_sync(FakeBackend("fake:j?self=4"), trials, scoring_settings(survey, RunOptions()))
    assert fair[0][0].distribution == pytest.approx([1 / 3, 2 / 3])
    assert biased[0][0].distribution == pytest.approx([1.2 / 1.8, 0.6 / 1.8])


def test_shipped_mtbench_surveys() -> None:
    answers = load_survey(SURVEYS / "mtbench.yaml")
    assert answers.kind == "generate" and len(answers.items) == 80
    assert {item.meta["category"] for item in answers.items[:8]} == {
        "writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities"}
    judge = load_survey(SURVEYS / "mtbench_judge.yaml")
    assert judge.judging.tie and judge.judging.task == "judge" and len(judge.items) == 80
    verbatim = next(t for t in judge.templates if t.id == "pair_v2")
    assert verbatim.system is not None and verbatim.system.endswith('"[[A]]" if assistant A is better, "[[B]]" if assistant B '
                                                                    'is better, and "[[C]]" for a tie.')
    assert "Apache" in judge.source.license and "MIT" in judge.source.license
    recognition = load_survey(SURVEYS / "mtbench_recognition.yaml")
    assert recognition.judging.task == "self_recognition" and not recognition.judging.tie


@pytest.mark.skipif(not SELFPREF.is_dir(), reason="needs ../shared/data/selfpref")
def test_the_builder_regenerates_the_surveys_byte_for_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    sys.path.insert(0, str(SURVEYS / "build"))
    import _common
    import mtbench

    monkeypatch.setattr(_common, "SURVEYS", tmp_path)
    monkeypatch.setattr(mtbench, "write_items", lambda name, items: _common.write_items(name, items))
    mtbench.build(SELFPREF)
    for name in ("mtbench.yaml", "mtbench_judge.yaml", "mtbench_recognition.yaml", "data/mtbench_pairs.jsonl"):
        assert (tmp_path / name).read_bytes() == (SURVEYS / name).read_bytes(), name


def test_sampled_verdicts_in_the_fastchat_format_are_parsed() -> None:
    from probekit.scoring.answers import match_answer

    first, swapped = expand(pairwise_survey(tie=True))
    explained = "Assistant A is vague while assistant B answers the question.\n\nFinal verdict: [[B]]"
    assert match_answer(explained, first, {}, []) == ("ok", 1)
    assert match_answer(explained, swapped, {}, []) == ("ok", 0)  # B is canonical response 0 when swapped
    assert match_answer("Both are equally good. [[C]]", swapped, {}, []) == ("ok", 2)  # the tie never moves
    assert match_answer("Between [[A]] and [[B]], hard to say.", first, {}, [])[0] == "invalid"
