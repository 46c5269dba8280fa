"""The survey library: every spec validates, expansion counts match the published designs, and the content
agrees with the source files in ../shared/data (ids, keys, labels, weights, prompts)."""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from pathlib import Path

import pytest

from probekit.survey.expand import expand, item_options
from probekit.survey.loader import load_survey
from probekit.survey.schema import Survey

REPO = Path(__file__).resolve().parents[2]
SURVEYS = REPO / "surveys"
DATA = REPO.parent / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.exists(), reason="source datasets (../shared/data) not present")

# survey file -> (items, trials) of `probekit expand` with the spec's own settings
DESIGNS = {
    "moralchoice.yaml": (1367, 1367 * 3 * 2),        # 3 forms x 2 orders
    "dailydilemmas.yaml": (1360, 1360 * 2),          # both action orders
    "pct.yaml": (62, 62 * (10 * 5 + 1 * 5)),         # 10 intros x 5 forcing + reversed scale x 5 forcing
    "ipip_neo_120.yaml": (120, 120 * 6),             # 3 styles x 2 anchor orders
    "ipip_bigfive_50.yaml": (50, 50 * 6),
    "pobs.yaml": (142, 142 * 2 * 2),                 # direct/reflection templates x direct/reasoning modes
}


@pytest.fixture(scope="module")
def surveys() -> dict[str, Survey]:
    return {name: load_survey(SURVEYS / name) for name in DESIGNS}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_spec_validates_and_expands_to_the_design(name: str, surveys: dict[str, Survey]) -> None:
    survey = surveys[name]
    items, trials = DESIGNS[name]
    assert len(survey.items) == items
    expanded = expand(survey)
    assert len(expanded) == trials
    assert len({t.trial_id for t in expanded}) == trials, "every trial is distinct"
    assert survey.source.license and survey.source.citation, "attribution and license travel with the spec"
    assert (SURVEYS / name).read_text(encoding="utf-8").startswith("# "), "header comment with the source"


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_stored_order_is_canonical_and_shown_options_follow_it(name: str, surveys: dict[str, Survey]) -> None:
    survey = surveys[name]
    for trial in expand(survey, limit=3):
        template = next(t for t in survey.templates if t.id == trial.template_id)
        options = item_options(survey, next(i for i in survey.items if i.id == trial.item_id))
        texts = template.option_texts or [o.text for o in options]
        assert sorted(trial.order) == list(range(len(options)))
        assert list(trial.shown_options) == [texts[c] for c in trial.order]


@needs_data
def test_moralchoice_items_and_rule_labels_match_the_source(surveys: dict[str, Survey]) -> None:
    survey = surveys["moralchoice.yaml"]
    rows = {}
    for level in ("low", "high"):
        for row in read_csv(DATA / "moralchoice" / "scenarios" / f"moralchoice_{level}_ambiguity.csv"):
            rows[row["scenario_id"]] = row
    assert Counter(i.meta["ambiguity"] for i in survey.items) == {"low": 687, "high": 680}
    assert {i.id for i in survey.items} == set(rows)
    for item in survey.items:
        row = rows[item.id]
        assert item.options is not None
        assert [o.text for o in item.options] == [row["action1"], row["action2"]]
        assert item.options[0].meta["death"] == row["a1_death"] and item.options[1].meta["duty"] == row["a2_duty"]
    assert [t.id for t in survey.templates] == ["ab", "compare", "repeat"]
    refusals = (DATA / "moralchoice" / "response_templates" / "refusals.txt").read_text(encoding="utf-8").split("\n")
    assert len(survey.matcher.refusals) == len([r for r in refusals if r.strip()]) == 50
    for form in ("ab", "compare", "repeat"):
        source = json.loads((DATA / "moralchoice" / "response_templates" / f"{form}.json").read_text(encoding="utf-8"))
        first, second = survey.matcher.patterns[form]
        assert len(first) == len(source["responses_A"]) and len(second) == len(source["responses_B"])
        assert not any("optionA" in p or "optionB" in p for p in first + second)


@needs_data
def test_dailydilemmas_ids_orders_and_values(surveys: dict[str, Survey]) -> None:
    survey = surveys["dailydilemmas.yaml"]
    source = read_csv(DATA / "dailydilemmas" / "dilemma.csv")
    assert [i.id for i in survey.items] == [r["idx"] for r in source]
    item = next(i for i in survey.items if i.id == "55")
    assert item.options is not None and [o.id for o in item.options] == ["to_do", "not_to_do"]
    assert item.meta["has_values"] is True
    assert "honesty" in item.options[0].meta["values"]
    # Theory labels come from values.csv: honesty -> MFT Fairness, Virtue Truthfulness.
    assert "Truthfulness" in item.options[0].meta["theories"]["virtue"]
    assert "Fairness" in item.options[0].meta["theories"]["mft"]
    orders = {t.order for t in expand(survey, limit=1)}
    assert orders == {(0, 1), (1, 0)}


@needs_data
def test_pct_weights_pages_and_published_prompts(surveys: dict[str, Survey]) -> None:
    survey = surveys["pct.yaml"]
    weights = {r["pct_id"]: r for r in read_csv(DATA / "pct" / "pct_scoring_weights.csv")}
    assert [i.id for i in survey.items] == [f"pc-{n:02d}" for n in range(1, 63)]
    for item in survey.items:
        row = weights[item.id]
        answers = ("strongly_disagree", "disagree", "agree", "strongly_agree")
        assert item.meta["weights"]["economic"] == [float(row[f"econ_{c}"]) for c in answers]
        assert item.meta["weights"]["social"] == [float(row[f"soc_{c}"]) for c in answers]
        assert item.meta["page"] == row["pct_note"]
    assert [o.text for o in survey.options or []] == ["Strongly disagree", "Disagree", "Agree", "Strongly agree"]
    assert [o.value for o in survey.options or []] == [0, 1, 2, 3]
    # All "Agree" scores (0.38, 2.41): the weights and constants reproduce the known check.
    econ = survey.meta["scoring"]["economic"]["offset"] + sum(i.meta["weights"]["economic"][2] for i in survey.items) / 8.0
    assert math.isclose(econ, 0.38)
    # The paper's paraphrase prompt set (templ-01..10 x jail-04) is rendered exactly.
    published = read_csv(DATA / "pct" / "prompts" / "explicit_paraphrase_experiments_240124.csv")
    trials = {(t.item_id, t.template_id): t for t in expand(survey) if t.factors["forcing"] == "job"}
    for row in published:
        trial = trials[(row["pct_id"], row["templ_id"])]
        assert trial.messages[-1].content == row["full_prompt"]
    # Reversed scale: shown as ans-08, stored order names canonical options.
    answers = {r["ans_id"]: r["ans_prompt"] for r in read_csv(DATA / "pct" / "templates" / "answer_options.csv")}
    reversed_trial = next(t for t in expand(survey, limit=1) if t.template_id == "templ-01-rev")
    assert reversed_trial.order == (3, 2, 1, 0)
    assert answers["ans-08"] in reversed_trial.messages[-1].content


@needs_data
def test_ipip_keys_facets_and_mirrored_anchors(surveys: dict[str, Survey]) -> None:
    neo = surveys["ipip_neo_120.yaml"]
    assert sum(i.keyed == -1 for i in neo.items) == 55
    for item in neo.items:
        n = int(item.id)
        assert item.meta["domain"] == "NEOAC"[(n - 1) % 5]
        assert item.meta["facet"] == f"{item.meta['domain']}{((n - 1) % 30) // 5 + 1}"
        assert item.fields["statement"].startswith("I ")
    source = read_csv(DATA / "personality" / "ipip_neo_120.csv")
    assert {i.id: i.keyed for i in neo.items} == {r["item_num_120"]: int(r["key"]) for r in source}
    markers = surveys["ipip_bigfive_50.yaml"]
    assert len(markers.items) == 50
    assert Counter(i.meta["domain"] for i in markers.items) == {d: 10 for d in "ENOAC"}
    assert [o.value for o in neo.options or []] == [1, 2, 3, 4, 5]
    groups = Counter((t.group, t.meta["anchors"]) for t in neo.templates)
    assert groups == {(g, a): 1 for g in ("mpi", "numeric", "likeme") for a in ("original", "mirrored")}
    by_template = {t.template_id: t for t in expand(neo, limit=1)}
    # Original MPI: label A = Very Accurate = canonical value 5; mirrored: label A = Very Inaccurate = value 1.
    assert by_template["mpi_original"].order[0] == 4 and by_template["mpi_original"].shown_options[0] == "Very Accurate"
    assert by_template["mpi_mirrored"].order[0] == 0 and by_template["mpi_mirrored"].shown_options[0] == "Very Inaccurate"
    assert "1 being agree and 5 being disagree" in by_template["numeric_original"].messages[-1].content
    assert "1 being disagree and 5 being agree" in by_template["numeric_mirrored"].messages[-1].content
    assert "1 = Very much like me" in by_template["likeme_original"].messages[-1].content


def test_pobs_topics_keying_and_options(surveys: dict[str, Survey]) -> None:
    survey = surveys["pobs.yaml"]
    statements = [i for i in survey.items if not i.meta["declarative"]]
    polar_topics = Counter(i.meta["topic"] for i in statements if i.meta["polar"])
    assert len(polar_topics) >= 12 and min(polar_topics.values()) >= 10
    assert any(not i.meta["polar"] for i in statements), "the non-polar personal-preference kind is present"
    for topic in {i.meta["topic"] for i in statements}:
        keys = Counter(i.keyed for i in statements if i.meta["topic"] == topic)
        assert keys[1] == keys[-1], f"{topic}: half the items reverse-keyed"
    for item in survey.items:
        options = item_options(survey, item)
        assert sum(o.refusal for o in options) == 1
        assert sum(o.polarity == 0 for o in options) == 1, f"{item.id}: exactly one neutral option"
        refusal = next(o for o in options if o.refusal)
        assert refusal.polarity is None
        polarities = [o.polarity for o in options if not o.refusal]
        assert sorted(polarities) == [-1.0, -0.5, 0.0, 0.5, 1.0]
        if not item.meta["declarative"]:
            # keyed +1: agreeing (the last scale points) moves towards +1 (favours Y).
            assert polarities[-1] == float(item.keyed)
    declarative = [i for i in survey.items if i.meta["declarative"]]
    assert sorted(i.meta["topic"] for i in declarative) == sorted(polar_topics)
    setups = {t.id: t.meta["setup"] for t in survey.templates}
    assert setups == {"direct": "direct", "reflection": "reflection"}
    reflection = next(t for t in survey.templates if t.id == "reflection")
    assert "{previous_answer}" in reflection.followups[0].content
    assert survey.reasoning_modes == ["direct", "reasoning"]


def test_moralchoice_matcher_data_parses_free_text_answers(surveys: dict[str, Survey]) -> None:
    """Sample mode reads free text with the published answer patterns and refusal list (METRICS.md §1)."""
    from probekit.scoring import match_answer

    survey = surveys["moralchoice.yaml"]
    trials = {(t.template_id, t.order): t for t in expand(survey, limit=1)}
    patterns, refusals = survey.matcher.patterns, survey.matcher.refusals
    reversed_ab = trials[("ab", (1, 0))]
    assert match_answer("I would choose A.", reversed_ab, patterns, refusals) == ("ok", 1)  # A shows action2
    assert match_answer("Answer: B", reversed_ab, patterns, refusals) == ("ok", 0)
    compare = trials[("compare", (0, 1))]
    assert match_answer("I prefer \"" + compare.shown_options[1].rstrip(".") + "\"", compare, patterns, refusals) == ("ok", 1)
    repeat = trials[("repeat", (1, 0))]
    assert match_answer("- " + repeat.shown_options[0], repeat, patterns, refusals) == ("ok", 1)
    assert match_answer("I cannot provide personal opinions on this.", repeat, patterns, refusals)[0] == "refusal"
    assert match_answer("The weather is nice today", repeat, patterns, refusals) == ("invalid", None)
