"""The transformers backend on the real embedded models (SmolLM2-135M-Instruct, Gemma-3-270M)."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest

from probekit.scoring import ScoringSettings, trial_prompt
from probekit.scoring.sync import score_sync
from probekit.survey.expand import expand
from probekit.survey.loader import load_survey

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
STARTER = REPO / "surveys" / "moralchoice_starter.yaml"

CLEAR = textwrap.dedent("""
    id: clear
    kind: choice
    templates:
      - id: repeat
        user: "{question} Reply with one of: {labels}."
        labels: option_text
      - id: ab
        user: "{question}\\n{options}\\nAnswer with {labels_or} only."
      - id: reflect
        user: "{question}\\n{options}\\nAnswer with {labels_or} only."
        followups:
          - role: user
            content: "You answered '{previous_answer}'. Reconsider, then answer with {labels_or} only."
    permutations: {policy: reversed}
    items:
      - id: capital
        fields: {question: "What is the capital of France?"}
        options: [{text: "Paris"}, {text: "Berlin"}]
""")


@pytest.fixture(scope="module")
def clear_trials(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("spec") / "clear.yaml"
    path.write_text(CLEAR)
    return expand(load_survey(path))


def test_distributions_sum_to_one_and_valid_mass_is_recorded(smollm2) -> None:
    trials = expand(load_survey(STARTER), limit=2)
    rows = score_sync(smollm2, trials, ScoringSettings())
    for _trial, (row,) in zip(trials, rows):
        assert row["status"] == "ok" and row["mode"] == "logprob"
        assert math.isclose(sum(row["distribution"]), 1.0, abs_tol=1e-9)
        assert 0 < row["valid_mass"] <= 1.0
        assert row["choice"] == max(range(2), key=lambda k: row["distribution"][k])
        assert len(row["top_logprobs"] or []) in (0, 20)
        assert row["prompt_tokens"] > 50


def test_canonical_mapping_follows_content_not_position(smollm2, clear_trials) -> None:
    """'Paris' is canonical option 0; shown first or second, the stored distribution must favour it."""
    repeat = [t for t in clear_trials if t.template_id == "repeat"]
    assert [t.order for t in repeat] == [(0, 1), (1, 0)]
    rows = score_sync(smollm2, repeat, ScoringSettings())
    for trial, (row,) in zip(repeat, rows):
        assert row["choice"] == 0, (trial.shown_options, row["distribution"])
        assert row["distribution"][0] > 0.9


def test_letter_labels_map_back_through_the_stored_order(smollm2, clear_trials) -> None:
    ab = [t for t in clear_trials if t.template_id == "ab"]
    rows = score_sync(smollm2, ab, ScoringSettings())
    for trial, (row,) in zip(ab, rows):
        shown = [math.exp(x) for x in row["label_logprobs"]]
        assert math.isclose(sum(shown), row["valid_mass"], rel_tol=1e-6)
        for position, canonical in enumerate(trial.order):
            assert math.isclose(row["distribution"][canonical], shown[position] / sum(shown), rel_tol=1e-6)


def test_results_do_not_depend_on_batch_size(smollm2) -> None:
    trials = expand(load_survey(STARTER), limit=2)  # 12 prompts of different lengths, incl. multi-token labels
    original = smollm2.token_budget
    try:
        smollm2.token_budget = 1  # every prompt alone
        alone = score_sync(smollm2, trials, ScoringSettings())
        smollm2.token_budget = 1_000_000  # everything in one left-padded batch
        together = score_sync(smollm2, trials, ScoringSettings())
    finally:
        smollm2.token_budget = original
    worst = max(abs(a - b) for (ra,), (rb,) in zip(alone, together) for a, b in zip(ra["distribution"], rb["distribution"]))
    mass = max(abs(ra["valid_mass"] - rb["valid_mass"]) / ra["valid_mass"] for (ra,), (rb,) in zip(alone, together))
    assert worst < 1e-4 and mass < 1e-4, (worst, mass)


def test_sample_mode_parses_each_generation(smollm2, clear_trials) -> None:
    ab = [t for t in clear_trials if t.template_id == "ab"]
    settings = ScoringSettings(mode="sample", samples=3, temperature=1.0, max_tokens=8, seed=1)
    rows = score_sync(smollm2, ab, settings)
    again = score_sync(smollm2, ab, settings)
    assert [[r["raw_text"] for r in t] for t in rows] == [[r["raw_text"] for r in t] for t in again], "seeded per trial"
    for _trial, samples in zip(ab, rows):
        assert [r["sample_index"] for r in samples] == [0, 1, 2]
        for row in samples:
            assert row["mode"] == "sample" and row["raw_text"]
            assert row["status"] in {"ok", "refusal", "invalid"}
            if row["status"] == "ok":
                assert row["distribution"] == [1.0 if k == row["choice"] else 0.0 for k in range(2)]
            else:
                assert row["choice"] is None and row["distribution"] is None


def test_sequence_mode_stores_sum_and_mean_loglikelihoods(smollm2, clear_trials) -> None:
    repeat = [t for t in clear_trials if t.template_id == "repeat"]
    rows = score_sync(smollm2, repeat, ScoringSettings(mode="sequence"))
    for (row,) in rows:
        assert row["mode"] == "sequence"
        assert all(s < 0 for s in row["seq_logprob_sum"])
        assert all(s <= m < 0 for s, m in zip(row["seq_logprob_sum"], row["seq_logprob_mean"]))
        assert row["choice"] == 0


def test_reasoning_mode_generates_then_reads_the_label(smollm2, clear_trials) -> None:
    ab = [t for t in expand(load_survey(STARTER), limit=1, reasoning_modes=["reasoning"]) if t.template_id == "ab"][:1]
    (row,), = score_sync(smollm2, ab, ScoringSettings(reasoning_max_tokens=24))
    assert row["raw_text"], "the reasoning is stored"
    assert math.isclose(sum(row["distribution"]), 1.0, abs_tol=1e-9)


def test_followup_turns_use_the_models_first_answer(smollm2, clear_trials) -> None:
    reflect = [t for t in clear_trials if t.template_id == "reflect"][:1]
    (row,), = score_sync(smollm2, reflect, ScoringSettings(max_tokens=8))
    assert row["raw_text"].startswith("[first answer] ")
    assert math.isclose(sum(row["distribution"]), 1.0, abs_tol=1e-9)


def test_gemma_without_chat_template_uses_the_completion_prompt(gemma3) -> None:
    trials = [t for t in expand(load_survey(STARTER), limit=1) if t.template_id == "ab"]
    assert not gemma3.is_chat
    assert gemma3.prompt_text(trial_prompt(trials[0])) == trials[0].completion_prompt
    assert trials[0].completion_prompt.endswith("Answer:")
    rows = score_sync(gemma3, trials, ScoringSettings())
    for (row,) in rows:
        assert math.isclose(sum(row["distribution"]), 1.0, abs_tol=1e-9) and row["valid_mass"] > 0.1


def test_dequantized_weights_are_cached(smollm2) -> None:
    from probekit.backends.hf import HFBackend

    again = HFBackend("smollm2").load()
    assert again.details["cache"] == "hit"
    assert (Path(again.details["cache_dir"]) / "model.safetensors").exists()
    assert again.weights_sha256 and len(again.weights_sha256) == 64


def test_generation_returns_top_k_logprobs_equal_to_teacher_forcing(smollm2, clear_trials) -> None:
    """`generate` with top_logprobs: every generated token carries its logprob and the top k, best first;
    greedy picks the top token, and its logprobs equal the teacher-forced logprobs of the same ids."""
    from probekit.backends.base import GenerateRequest

    prompt = trial_prompt([t for t in clear_trials if t.template_id == "ab"][0])
    request = GenerateRequest(prompt, max_tokens=6, top_logprobs=5)
    ids = smollm2.encode_prompt(smollm2.prompt_text(prompt))
    (made,), = smollm2.generate_ids([ids], [request])
    assert made.tokens is not None and len(made.tokens) == len(made.token_ids) > 0
    for token in made.tokens:
        assert len(token.top) == 5 and token.top[0] == (token.token, token.logprob), "greedy: the chosen token ranks first"
        assert [lp for _t, lp in token.top] == sorted((lp for _t, lp in token.top), reverse=True)
    (forced,) = smollm2.continuation_logprobs_ids([(ids, made.token_ids)])
    assert forced == pytest.approx([t.logprob for t in made.tokens], abs=1e-4)
    (generation,), = smollm2.generate_sync([request])  # through the primitive: what the runtime gets
    assert generation.text == made.text and [t.token for t in generation.tokens or []] == [t.token for t in made.tokens]
    sampled = GenerateRequest(prompt, max_tokens=4, temperature=1.0, seed=3, n=2, top_logprobs=3)
    for output in smollm2.generate_sync([sampled])[0]:
        assert output.tokens and all(len(t.top) == 3 and t.logprob <= t.top[0][1] for t in output.tokens)


def test_single_token_reading_equals_teacher_forcing_of_the_same_forms(smollm2, clear_trials) -> None:
    """The two ways the base reads P(label) agree on forms that are single tokens: one next-token position,
    or each form teacher-forced as a continuation."""
    from probekit.backends.base import LabelRequest

    prompt = trial_prompt([t for t in clear_trials if t.template_id == "ab"][0])
    forms = (("A", " A"), ("B", " B"))
    tokens = smollm2.label_tokens(forms)
    assert tokens.single is not None and all(len(ids) == 2 for ids in tokens.single)
    (read,) = smollm2.label_logprobs_sync([LabelRequest(prompt, ("A", "B"), forms)])
    forced = smollm2.teacher_forced_label_probs([tokens], [smollm2.encode_prompt(smollm2.prompt_text(prompt))])[0]
    assert forced == pytest.approx(read.probs, rel=1e-4)
