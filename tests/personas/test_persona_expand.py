"""The persona axis in expansion: counts, exact rendered contexts, unchanged trial ids without personas, subsets."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from persona_helpers import SURVEY, write

import probekit
from probekit.provenance import survey_hash
from probekit.survey.expand import axis_counts, expand
from probekit.survey.loader import load_survey

REPO = Path(__file__).resolve().parents[2]


def _by(trials, item="q1", template="plain", persona="", style="", order=None):  # type: ignore[no-untyped-def]
    found = [t for t in trials if t.item_id == item and t.template_id == template and t.persona_id == persona
             and t.persona_style == style and (order is None or t.order == order)]
    assert found, (item, template, persona, style)
    return found[0]


def test_counts_cross_personas_styles_templates_orders(tmp_path: Path) -> None:
    survey = load_survey(write(tmp_path))
    # 2 templates x (1 default + 3 personas x 3 styles) contexts x (3 + 2) cyclic orders (q1 has 3 options, q2 2).
    trials = expand(survey, policy="cyclic")
    assert len(trials) == 2 * (1 + 3 * 3) * (3 + 2) == 100
    assert len({t.trial_id for t in trials}) == 100, "every context is its own trial"
    counts = axis_counts(survey, trials)
    assert counts["personas"] == 3 and counts["persona_contexts"] == 10 and counts["trials"] == 100
    assert len(expand(survey, policy="cyclic", reasoning_modes=["direct", "reasoning"])) == 200
    # Without the default context; with one style; a subset of personas.
    no_default = survey.model_copy(update={"personas": survey.personas.model_copy(update={"include_default": False})})
    assert len(expand(no_default, policy="cyclic")) == 2 * 9 * 5
    assert {t.persona_id for t in expand(no_default)} == {"japan", "nurse", "elder"}
    one_style = survey.model_copy(update={"personas": survey.personas.model_copy(update={"styles": ["portray"]})})
    assert len(expand(one_style, policy="cyclic")) == 2 * (1 + 3) * 5
    subset = expand(survey, policy="cyclic", personas=["japan"])
    assert len(subset) == 2 * (1 + 3) * 5
    assert {(t.persona_id, t.persona_style) for t in subset} == {("", ""), ("japan", "qa"), ("japan", "bio"), ("japan", "portray")}


def test_include_default_false_in_the_spec(tmp_path: Path) -> None:
    survey = load_survey(write(tmp_path, SURVEY.replace("  styles: [qa, bio, portray]\n", "  include_default: false\n")))
    assert survey.personas is not None and survey.personas.styles == ["qa", "bio", "portray"], "all three by default"
    trials = expand(survey)
    assert "" not in {t.persona_id for t in trials} and len(trials) == 2 * 9 * 2


def test_qa_context_is_a_prior_exchange(tmp_path: Path) -> None:
    trials = expand(load_survey(write(tmp_path)))
    trial = _by(trials, template="polite", persona="japan", style="qa")
    assert [(m.role, m.content) for m in trial.messages] == [
        ("system", "You answer survey questions."),
        ("user", "What is your country?"),
        ("assistant", "Japan"),
        ("user", "Please answer.\nIs it fine?\nA. Yes\nB. No\nC. Maybe\nAnswer:"),
    ]
    assert trial.completion_prompt == ("You answer survey questions.\n\nQuestion: What is your country?\nAnswer: Japan\n\n"
                                       "Please answer.\nIs it fine?\nA. Yes\nB. No\nC. Maybe\nAnswer:")
    elder = _by(trials, persona="elder", style="qa")
    assert [(m.role, m.content) for m in elder.messages][:6] == [
        ("user", "What is your country?"), ("assistant", "Brazil"), ("user", "What is your age?"), ("assistant", "70"),
        ("user", "What is your religion?"), ("assistant", "Catholic")]
    nurse = _by(trials, persona="nurse", style="qa")
    assert [(m.role, m.content) for m in nurse.messages] == [
        ("user", "Please describe yourself."), ("assistant", "I am a retired nurse from Ohio."),
        ("user", "Question: Is it fine?\nA. Yes\nB. No\nC. Maybe\nAnswer:")]


BIO = "Below you will be asked to provide a short description of yourself and then answer some questions.\n\nDescription: "
QUESTION = "Question: Is it fine?\nA. Yes\nB. No\nC. Maybe\nAnswer:"


def test_bio_context_is_a_first_person_description(tmp_path: Path) -> None:
    trials = expand(load_survey(write(tmp_path)))
    expected = {
        "japan": "I am from Japan.",
        "elder": "I am from Brazil. I am 70 years old. My religion is Catholic.",
        "nurse": "I am a retired nurse from Ohio.",
    }
    for persona, bio in expected.items():
        trial = _by(trials, persona=persona, style="bio")
        assert [(m.role, m.content) for m in trial.messages] == [("user", f"{BIO}{bio}\n\n{QUESTION}")]
        assert trial.completion_prompt == f"{BIO}{bio}\n\n{QUESTION}"
    polite = _by(trials, template="polite", persona="japan", style="bio")
    assert polite.completion_prompt == (f"You answer survey questions.\n\n{BIO}I am from Japan.\n\n"
                                        "Please answer.\nIs it fine?\nA. Yes\nB. No\nC. Maybe\nAnswer:")


def test_portray_context_asks_to_answer_as_the_person(tmp_path: Path) -> None:
    trials = expand(load_survey(write(tmp_path)))
    expected = {
        "japan": "Answer the following question as if you were a person who lives in Japan.",
        "elder": ("Answer the following question as if you were a person who lives in Brazil, who is 70 years old and "
                  "whose religion is Catholic."),
        "nurse": ("Answer the following question as if you were the person who describes themselves as follows: "
                  "I am a retired nurse from Ohio."),
    }
    for persona, text in expected.items():
        trial = _by(trials, persona=persona, style="portray")
        assert [(m.role, m.content) for m in trial.messages] == [("user", f"{text}\n\n{QUESTION}")]


def test_contexts_in_reasoning_mode_and_every_order(tmp_path: Path) -> None:
    survey = load_survey(write(tmp_path))
    trials = expand(survey, policy="cyclic", reasoning_modes=["reasoning"])
    trial = _by(trials, persona="japan", style="portray", order=(1, 2, 0))
    user = trial.messages[-1].content
    assert user.startswith("Answer the following question as if you were a person who lives in Japan.\n\n"
                           "Question: Is it fine?\nA. No\nB. Maybe\nC. Yes")
    assert user.endswith(survey.reasoning.instruction) and trial.answer_prefix == survey.reasoning.answer_prefix


def test_phrasing_overrides(tmp_path: Path) -> None:
    text = SURVEY.replace("  styles: [qa, bio, portray]\n", "  styles: [qa, bio, portray]\n  phrasing:\n"
                          "    country: {question: 'Where do you live?', portray: 'who was born in {value}'}\n"
                          "    religion: {bio: 'I am {value}.'}\n")
    trials = expand(load_survey(write(tmp_path, text)))
    assert _by(trials, persona="japan", style="qa").messages[0].content == "Where do you live?"
    assert _by(trials, persona="japan", style="portray").messages[0].content.startswith(
        "Answer the following question as if you were a person who was born in Japan.\n\n")
    japan_bio = _by(trials, persona="japan", style="bio").messages[0].content
    assert japan_bio.startswith(f"{BIO}I am from Japan.\n\n"), "unset parts keep the built-in"
    assert f"{BIO}I am from Brazil. I am 70 years old. I am Catholic.\n\n" in _by(trials, persona="elder", style="bio").messages[0].content


def test_default_context_trials_keep_their_ids(tmp_path: Path) -> None:
    """The default context of a survey with personas is the survey without personas, trial for trial."""
    with_personas = expand(load_survey(write(tmp_path)), policy="cyclic")
    plain = load_survey(write(tmp_path, SURVEY.split("personas:")[0] + "items:" + SURVEY.split("items:")[1], "plain.yaml"))
    assert plain.personas is None
    defaults = [t for t in with_personas if not t.persona_id]
    assert [t.trial_id for t in defaults] == [t.trial_id for t in expand(plain, policy="cyclic")]
    assert all(t.persona_style == "" for t in defaults)


# Computed on main at 2c416f1 (before personas): sha256 of the newline-joined trial ids of
# probekit.expand(survey, policy="cyclic", reasoning_modes=["direct", "reasoning"]), and the survey hash.
# A change to one of these bundled surveys changes its line here too (recompute it on the commit before).
MAIN_FINGERPRINTS = {
    "pobs": ("a81ec91f2dd71c948ad5ea43ff6e85fb52967419da5f8e806d45168317852fa6", 3408, "994d8653a57cec2f4d5910c22187d607"),
    "ipip_bigfive_50": ("6585c86ffbb647bf4ea0647afe4a91662c7cf7c4434f034a553fadbc722f9c41", 3000, "f64133c1579b590df85da5f55a04a8b8"),
    "moralchoice_starter": ("9b8e7d60806623fbc0139138237bd69b54fef90d69e0fe344cc4eef59f377288", 240, "d9eb22a69cf4ec97e504b69706649008"),
    "mmlu_5shot": ("05f51f09ebed87ca239b1fa729f0415cde519ce45da861a0b93efed26dca1943", 6582, "1195422f37f3a4839d41841a37028661"),
    "mtbench_judge": ("e88bc5fc796a78cac9fd0061b2448816b88b7cca762e4144f6ef5818bd0904e6", 640, "0f1cdedd18e9ecef264182ddc32328cb"),
}


@pytest.mark.parametrize("name", sorted(MAIN_FINGERPRINTS))
def test_surveys_without_personas_expand_to_the_ids_of_main(name: str) -> None:
    survey = load_survey(REPO / "surveys" / f"{name}.yaml")
    trials = expand(survey, policy="cyclic", reasoning_modes=["direct", "reasoning"])
    ids = [t.trial_id for t in trials]
    digest, count, fingerprint = MAIN_FINGERPRINTS[name]
    assert survey_hash(survey) == digest, "the stored spec (and its hash) of a survey without personas is unchanged"
    assert (len(ids), hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32]) == (count, fingerprint)
    assert all(t.persona_id == "" and t.persona_style == "" for t in trials)
    assert "persona_id" not in trials[0].form() and "persona_style" not in trials[0].form()


def test_form_has_the_persona_columns_when_set(tmp_path: Path) -> None:
    trials = expand(load_survey(write(tmp_path)))
    form = _by(trials, persona="nurse", style="bio").form()
    assert form["persona_id"] == "nurse" and form["persona_style"] == "bio"
    assert set(_by(trials).form()) == {"template_id", "paraphrase_id", "order", "reasoning"}


def test_python_api_subset_and_its_errors(tmp_path: Path) -> None:
    survey = probekit.load_survey(write(tmp_path))
    assert {t.persona_id for t in probekit.expand(survey, personas=["nurse", "elder"])} == {"", "nurse", "elder"}
    assert {t.persona_id for t in probekit.expand(survey, personas=[])} == {""}, "an empty subset: the default context only"
    with pytest.raises(ValueError, match=r"no persona\(s\) \['nobody'\]: the survey has japan, nurse, elder"):
        probekit.expand(survey, personas=["nobody"])
    plain = probekit.load_survey(REPO / "surveys" / "moralchoice_starter.yaml")
    with pytest.raises(ValueError, match="has no personas"):
        probekit.expand(plain, personas=["japan"])
