"""Likert scores, keyed traits, Cronbach's α, Holm, prompt sensitivity and anchor symmetry."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probekit.analysis.likert import (
    cronbach_alpha,
    expected_score,
    form_scores,
    holm,
    item_scores,
    keyed_score,
    order_symmetry,
    prompt_sensitivity,
    trait_scores,
)

VALUES = np.array([1.0, 2.0, 3.0, 4.0, 5.0])


def test_expected_and_keyed_scores_by_hand() -> None:
    assert expected_score(np.array([0, 0, 0.5, 0.5, 0]), VALUES) == pytest.approx(3.5)
    assert keyed_score(3.5, -1, 1, 5) == pytest.approx(2.5)  # (5 + 1) − 3.5
    assert keyed_score(3.5, 1, 1, 5) == pytest.approx(3.5)
    # an option without a value (a refusal) is renormalised away: 0.5·2 / 0.5
    assert expected_score(np.array([0, 0.5, 0, 0, 0, 0.5]), np.append(VALUES, np.nan)) == pytest.approx(2.0)


def test_cronbach_alpha_by_hand() -> None:
    # items (1,2,3) var 1 and (2,3,3) var 1/3; totals (3,5,6) var 7/3 → α = 2·(1 − (4/3)/(7/3)) = 6/7
    assert cronbach_alpha(np.array([[1, 2], [2, 3], [3, 3]])) == pytest.approx(6 / 7)
    assert math.isnan(cronbach_alpha(np.array([[1, 2]])))
    assert math.isnan(cronbach_alpha(np.ones((4, 3))))


def test_holm_by_hand() -> None:
    # sorted 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → monotone: 0.06
    assert holm([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])
    out = holm([0.2, float("nan")])
    assert out[0] == pytest.approx(0.2) and math.isnan(out[1])


def _items(keyed: list[int], domains: list[str], values: np.ndarray = VALUES) -> pd.DataFrame:
    return pd.DataFrame({
        "item_id": [f"i{k}" for k in range(len(keyed))], "option_values": [values] * len(keyed), "keyed": keyed,
        "meta": [{"domain": d, "facet": f"{d}1"} for d in domains],
    })


def _forms(rows: list[tuple[str, str, str, list[float]]]) -> pd.DataFrame:
    """rows: (item_id, style, anchors, dist)."""
    return pd.DataFrame([{
        "run_id": "r", "model": "m", "reasoning": "direct", "item_id": item, "trial_id": f"{item}-{style}-{anchors}",
        "template_id": f"{style}_{anchors}", "template_group": style, "tmeta": {"anchors": anchors}, "paraphrase_id": "p0",
        "option_order": (0, 1, 2, 3, 4), "factors": {}, "dist": np.array(dist, dtype=float), "n_ok": 1,
    } for item, style, anchors, dist in rows])


def test_trait_score_by_hand() -> None:
    items = _items([1, -1], ["N", "N"])
    forms = _forms([("i0", "mpi", "original", [0, 0, 0.5, 0.5, 0]),   # E = 3.5, keyed +1 → 3.5
                    ("i1", "mpi", "original", [0, 1, 0, 0, 0])])      # E = 2, keyed −1 → 4
    table = trait_scores(form_scores(forms, items))
    assert table["score"].tolist() == pytest.approx([3.75])
    per_item = item_scores(form_scores(forms, items)).set_index("item_id")
    assert per_item["expected"].tolist() == pytest.approx([3.5, 2.0])
    assert per_item["score"].tolist() == pytest.approx([3.5, 4.0])
    assert table["n_items"].tolist() == [2]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1, -1]), st.lists(st.floats(0.01, 1.0), min_size=5, max_size=5)), min_size=1, max_size=6))
def test_reversing_scale_and_key_leaves_trait_scores_unchanged(spec: list[tuple[int, list[float]]]) -> None:
    keyed = [k for k, _ in spec]
    rows = [(f"i{n}", "mpi", "original", list(np.array(d) / sum(d))) for n, (_, d) in enumerate(spec)]
    forms = _forms(rows)
    plain = trait_scores(form_scores(forms, _items(keyed, ["E"] * len(spec))))
    # the same answers on a scale written backwards (value 5 … 1) with every key flipped
    flipped = trait_scores(form_scores(forms, _items([-k for k in keyed], ["E"] * len(spec), VALUES[::-1].copy())))
    assert flipped["score"].tolist() == pytest.approx(plain["score"].tolist())


def _scores(table: dict[str, dict[str, list[float]]]) -> pd.DataFrame:
    """style -> trait -> per-item keyed scores, as form_scores would give them."""
    rows = []
    for style, traits in table.items():
        anchors = "mirrored" if style.endswith("~m") else "original"
        for trait, values in traits.items():
            for n, v in enumerate(values):
                rows.append({"run_id": "r", "model": "m", "reasoning": "direct", "style": style.removesuffix("~m"),
                             "anchors": anchors, "domain": trait, "item_id": f"{trait}{n}", "score": v,
                             "template_id": style, "paraphrase_id": "p0", "option_order": "0,1,2,3,4", "factors": ""})
    return pd.DataFrame(rows)


def test_prompt_sensitivity_paired_test_by_hand() -> None:
    scores = _scores({"a": {"E": [4, 5, 6], "N": [2, 2, 2]}, "b": {"E": [3, 3, 3], "N": [2, 2, 2]}})
    table = prompt_sensitivity(scores).set_index("trait")
    # d = (1, 2, 3): mean 2, sd 1 → d_z = 2; t = 2/(1/√3) = 2√3, df = 2: p = 1 − t/√(t² + 2) = 1 − √12/√14
    assert table.loc["E", "cohen_dz"] == pytest.approx(2.0)
    assert table.loc["E", "p_ttest"] == pytest.approx(1 - math.sqrt(12 / 14))
    assert table.loc["E", "mean_diff"] == pytest.approx(2.0)
    assert table.loc["N", "mean_diff"] == 0.0
    # Holm over the two traits: the only finite p (E) times 2? N has p = 1 (no difference): m = 2
    assert table.loc["E", "p_holm"] == pytest.approx(2 * (1 - math.sqrt(12 / 14)))


def test_friedman_row_with_three_styles() -> None:
    scores = _scores({"a": {"E": [1, 2, 3, 4]}, "b": {"E": [2, 3, 4, 5]}, "c": {"E": [3, 4, 5, 6]}})
    table = prompt_sensitivity(scores)
    friedman = table[table["test"] == "friedman"]
    assert len(friedman) == 1 and friedman["p_ttest"].iloc[0] < 0.05
    assert len(table[table["test"] == "paired"]) == 3


def test_order_symmetry_difference_by_hand() -> None:
    scores = _scores({"mpi": {"A": [4, 4, 3]}, "mpi~m": {"A": [3, 4, 2]}})
    table = order_symmetry(scores)
    assert table["difference"].tolist() == pytest.approx([2 / 3])  # mean of (1, 0, 1)
    assert table["score_original"].tolist() == pytest.approx([11 / 3])
    assert table["difference_ci_low"].iloc[0] <= 2 / 3 <= table["difference_ci_high"].iloc[0]
    # d = (1, 0, 1): mean 2/3, sd 1/√3 → t = 2, df = 2 → p = 1 − 2/√6; one trait, so Holm leaves it
    assert table["p_ttest"].iloc[0] == pytest.approx(1 - 2 / math.sqrt(6))
    assert table["p_holm"].iloc[0] == pytest.approx(1 - 2 / math.sqrt(6))
