"""Expansion: deterministic, content-hashed trials whose stored order recovers the canonical options."""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from probekit.scoring import distribution_fields
from probekit.survey.expand import axis_counts, expand
from probekit.survey.loader import load_survey
from probekit.survey.permutations import cyclic_orders, invert, orders_for, parse_policy, to_canonical

REPO = Path(__file__).resolve().parents[2]
STARTER = REPO / "surveys" / "moralchoice_starter.yaml"


def test_starter_counts_and_determinism() -> None:
    survey = load_survey(STARTER)
    first = expand(survey)
    second = expand(load_survey(STARTER))
    assert [t.trial_id for t in first] == [t.trial_id for t in second]
    assert len({t.trial_id for t in first}) == len(first) == 20 * 3 * 2
    assert axis_counts(survey, first) == {"items": 20, "templates": 3, "paraphrases": 1, "orders": 2,
                                           "reasoning_modes": 1, "trials": 120}


def test_shown_options_follow_the_order() -> None:
    survey = load_survey(STARTER)
    trials = [t for t in expand(survey) if t.template_id == "ab"]
    item = survey.items[0]
    identity, reversed_ = trials[0], trials[1]
    assert identity.order == (0, 1) and reversed_.order == (1, 0)
    assert identity.shown_options == (item.options[0].text, item.options[1].text)
    assert reversed_.shown_options == (item.options[1].text, item.options[0].text)
    # The rendered prompt shows option B = canonical action1 in the reversed form.
    assert f"B. {item.options[0].text}" in reversed_.messages[-1].content
    # Label A (shown position 0) of the reversed form maps back to canonical option 1.
    fields = distribution_fields([0.9, 0.1], reversed_.order)
    assert fields["distribution"] == [0.1, 0.9] and fields["choice"] == 1


def test_limit_policy_and_reasoning_overrides() -> None:
    survey = load_survey(STARTER)
    trials = expand(survey, policy="identity", reasoning_modes=["direct", "reasoning"], limit=2)
    assert len(trials) == 2 * 3 * 1 * 2
    reasoning = [t for t in trials if t.reasoning == "reasoning"]
    assert all("step by step" in t.messages[-1].content for t in reasoning)
    assert all(t.answer_prefix == "Answer:" for t in reasoning)


def test_trial_id_changes_with_the_prompt() -> None:
    survey = load_survey(STARTER)
    edited = survey.model_copy(deep=True)
    edited.templates[0].user = edited.templates[0].user.replace("Question:", "Q:")
    before = {t.trial_id for t in expand(survey) if t.template_id == "ab"}
    after = {t.trial_id for t in expand(edited) if t.template_id == "ab"}
    assert before.isdisjoint(after)


@given(st.integers(min_value=2, max_value=7))
def test_cyclic_puts_every_option_in_every_position(n: int) -> None:
    orders = cyclic_orders(n)
    assert len(orders) == n
    for position in range(n):
        assert sorted(order[position] for order in orders) == list(range(n))


@given(st.permutations(list(range(5))), st.lists(st.floats(0, 1), min_size=5, max_size=5))
def test_to_canonical_inverts_the_shown_order(order: list[int], values: list[float]) -> None:
    canonical = to_canonical(values, tuple(order))
    # canonical option c was shown at position invert(order)[c]
    inverse = invert(tuple(order))
    assert all(canonical[c] == values[inverse[c]] for c in range(5))


@given(st.integers(2, 5), st.sampled_from(["identity", "reversed", "cyclic", "all", "random:3"]), st.integers(0, 99))
def test_policies_give_valid_distinct_permutations(n: int, policy: str, seed: int) -> None:
    orders = orders_for(n, parse_policy(policy), seed=seed, item_id="x")
    assert orders[0] == tuple(range(n)), "the canonical order always comes first"
    assert len(set(orders)) == len(orders)
    assert all(sorted(o) == list(range(n)) for o in orders)
    expected = {"identity": 1, "reversed": 2, "cyclic": n, "all": len(list(itertools.permutations(range(n)))),
                "random:3": min(3, len(list(itertools.permutations(range(n)))))}[policy]
    assert len(orders) == expected
    assert orders == orders_for(n, parse_policy(policy), seed=seed, item_id="x"), "seeded: same orders again"


def test_position_dependent_items_are_never_permuted() -> None:
    assert orders_for(4, parse_policy("cyclic"), seed=0, item_id="x", fixed=True) == [(0, 1, 2, 3)]


def test_pride_runs_rotations_on_about_alpha_of_items() -> None:
    policy = parse_policy("pride:0.1")
    counts = [len(orders_for(4, policy, seed=7, item_id=f"item{i}")) for i in range(2000)]
    calibration = sum(1 for c in counts if c == 4)
    assert set(counts) == {1, 4}
    assert 150 < calibration < 250  # ~10 % of 2,000
