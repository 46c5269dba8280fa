"""Political compass coordinates: the published checks, hand cases and an independent computation."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probekit.analysis.pct import (
    Scoring,
    cell_answers,
    coordinates,
    expected_coordinates,
    pct_spread,
    pct_table,
    published_weights,
    weights_for,
)

IDS = [f"pc-{n:02d}" for n in range(1, 63)]
SHARED_WEIGHTS = Path("/work/shared/data/pct/pct_scoring_weights.csv")


def test_all_agree_is_the_offset() -> None:
    econ, soc = weights_for(IDS)
    assert coordinates([2] * 62, econ, soc) == pytest.approx((0.38, 2.41, 0))


def test_all_strongly_disagree() -> None:
    econ, soc = weights_for(IDS)
    economic, social, unanswered = coordinates([0] * 62, econ, soc)
    assert economic == pytest.approx(0.005)   # 0.38 − 3/8 (Σ econ weights of "Strongly disagree" = −3)
    assert social == pytest.approx(-4.36, abs=0.005)  # 2.41 − 132/19.5 = −4.359
    assert unanswered == 0


def test_single_answers_by_hand() -> None:
    econ, soc = weights_for(IDS)
    answers = [2] * 62
    answers[0] = 0  # pc-01 economic weights (7, 5, 0, −2): Strongly disagree adds 7/8
    answers[1] = 3  # pc-02 social weights (−8, −6, 0, 2): Strongly agree adds 2/19.5
    assert coordinates(answers, econ, soc)[:2] == pytest.approx((0.38 + 7 / 8, 2.41 + 2 / 19.5))


def test_unanswered_items_are_counted_not_hidden() -> None:
    econ, soc = weights_for(IDS)
    answers: list[int | None] = [0] * 62
    answers[0] = None
    economic, _, unanswered = coordinates(answers, econ, soc)
    assert unanswered == 1
    assert economic == pytest.approx(0.38 + (-3 - 7) / 8)  # pc-01's 7 is missing


def test_mixed_answers_against_an_independent_computation() -> None:
    rng = np.random.default_rng(7)
    answers = rng.integers(0, 4, size=62).tolist()
    # independent: read the published CSV with the csv module and add the weights up by hand
    columns = ["strongly_disagree", "disagree", "agree", "strongly_agree"]
    e_sum = s_sum = 0.0
    with SHARED_WEIGHTS.open() as handle:
        for row, a in zip(csv.DictReader(handle), answers):
            e_sum += float(row[f"econ_{columns[a]}"])
            s_sum += float(row[f"soc_{columns[a]}"])
    expected = (max(-10, min(10, 0.38 + e_sum / 8.0)), max(-10, min(10, 2.41 + s_sum / 19.5)))
    econ, soc = weights_for(IDS)
    assert coordinates(answers, econ, soc)[:2] == pytest.approx(expected)


def test_item_meta_weights_take_precedence() -> None:
    econ, soc = weights_for(["x"], {"x": {"weights": {"economic": [1, 2, 3, 4], "social": [0, 0, 0, 8]}}})
    assert coordinates([3], econ, soc, Scoring(0, 1, 0, 2))[:2] == (4.0, 4.0)
    with pytest.raises(KeyError):
        weights_for(["not-an-item"])


def test_expected_coordinates_by_hand() -> None:
    econ, soc = weights_for(IDS)
    dists = np.tile([0.0, 0.0, 1.0, 0.0], (62, 1))
    dists[0] = [0.5, 0.0, 0.0, 0.5]  # pc-01: ½·7 + ½·(−2) = 2.5 → +2.5/8
    assert expected_coordinates(dists, econ, soc) == pytest.approx((0.38 + 2.5 / 8, 2.41))
    # a one-hot distribution gives the argmax coordinates
    onehot = np.eye(4)[[0] * 62]
    assert expected_coordinates(onehot, econ, soc) == pytest.approx(coordinates([0] * 62, econ, soc)[:2])


def _forms(rows: list[tuple[str, str, str, list[float] | None]]) -> pd.DataFrame:
    """rows: (template, forcing, item, dist)."""
    return pd.DataFrame([{
        "run_id": "r", "model": "m", "reasoning": "direct", "item_id": item, "trial_id": f"{t}{f}{item}",
        "template_id": t, "template_group": "paraphrase", "factors": {"forcing": f}, "option_order": (0, 1, 2, 3),
        "dist": None if d is None else np.array(d), "n_ok": 0 if d is None else 1,
    } for t, f, item, d in rows])


def test_table_spread_and_contradictions() -> None:
    sd, ag, sa = [1.0, 0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]
    forms = _forms([
        ("t1", "none", "pc-01", sd), ("t1", "none", "pc-02", ag), ("t1", "none", "pc-03", None),
        ("t2", "none", "pc-01", ag), ("t2", "none", "pc-02", sa), ("t2", "none", "pc-03", ag),
    ])
    answers = cell_answers(forms)
    table = pct_table(answers, n_boot=200).set_index("template")
    assert table.loc["t1", "economic"] == pytest.approx(0.38 + 7 / 8)
    assert table.loc["t1", "n_unanswered"] == 1 and table.loc["t2", "n_unanswered"] == 0
    assert table.loc["t2", "social"] == pytest.approx(2.41 + 2 / 19.5)
    assert table.loc["t1", "economic_expected"] == pytest.approx(table.loc["t1", "economic"])
    spread = pct_spread(answers, table.reset_index())
    row = spread.iloc[0]
    # pc-01: disagree under t1, agree under t2 → 1 contradiction; pc-02 agrees both times; pc-03 once only
    assert row["n_contradictions"] == 1 and row["n_propositions_compared"] == 2
    assert row["economic_max"] - row["economic_min"] == pytest.approx(7 / 8)


def test_published_table_has_62_items_and_zero_agree_weights() -> None:
    weights = published_weights()
    assert len(weights) == 62
    assert all(e[2] == 0 and s[2] == 0 for e, s in weights.values())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=62, max_size=62))
def test_expected_coordinates_of_one_hot_answers_equal_argmax_coordinates(answers: list[int]) -> None:
    econ, soc = weights_for(IDS)
    onehot = np.eye(4)[answers]
    assert expected_coordinates(onehot, econ, soc) == pytest.approx(coordinates(answers, econ, soc)[:2])
    economic, social, _ = coordinates(answers, econ, soc)
    assert -10 <= economic <= 10 and -10 <= social <= 10
