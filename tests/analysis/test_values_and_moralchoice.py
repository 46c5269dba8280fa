"""DailyDilemmas value scores and MoralChoice summaries on hand-computed cases."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from probekit.analysis.dailydilemmas import action_labels, choice_weights_from_items, value_scores
from probekit.analysis.moralchoice import model_agreement, moralchoice_summary


def _items(model: str, marginals: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"model": model, "reasoning": "direct", "item_id": i, "marginal": m, "argmax": int(np.argmax(m)),
                          "n_forms": 6, "valid_fraction": 1.0, "entropy": 0.5, "qf_e": 0.4, "gjsd": 0.1, "qf_c": 0.9}
                         for i, m in marginals.items()])


def test_value_scores_by_hand() -> None:
    labels = {
        # d1: to do = {Care, Care, Fairness}, not to do = {Loyalty}; the model chooses to do
        "d1": ({"mft": Counter({"Care": 2, "Fairness": 1})}, {"mft": Counter({"Loyalty": 1})}),
        # d2: to do = {Care}, not to do = {Fairness}; the model chooses not to do
        "d2": ({"mft": Counter({"Care": 1})}, {"mft": Counter({"Fairness": 1})}),
        # d3: a tie: each action counts half
        "d3": ({"mft": Counter({"Loyalty": 1})}, {"mft": Counter({"Care": 1})}),
    }
    weights = choice_weights_from_items(_items("m", {"d1": [0.8, 0.2], "d2": [0.3, 0.7], "d3": [0.5, 0.5]}))
    assert weights["w_do"].tolist() == [1.0, 0.0, 0.5]
    table = value_scores(weights, labels, n_boot=200).set_index("label")
    # Care: sel = 2 (d1) + 0.5 (d3) = 2.5, neg = 1 (d2) + 0.5 (d3) = 1.5 → 100·1/4 = 25
    assert table.loc["Care", "score"] == pytest.approx(25.0)
    assert (table.loc["Care", "selected"], table.loc["Care", "rejected"]) == (2.5, 1.5)
    # Fairness: sel = 1 (d1) + 1 (d2) = 2, neg = 0 → 100
    assert table.loc["Fairness", "score"] == pytest.approx(100.0)
    # Loyalty: sel = 0.5 (d3), neg = 1 (d1) + 0.5 (d3) = 1.5 → 100·(−1)/2 = −50
    assert table.loc["Loyalty", "score"] == pytest.approx(-50.0)
    assert table.loc["Loyalty", "n_items"] == 2


def test_action_labels_from_theories_or_values() -> None:
    from_theories = action_labels({"theories": {"mft": ["Care", "Care"], "wvs": []}})
    assert from_theories["mft"] == Counter({"Care": 2})
    from_values = action_labels({"values": ["honesty", "trust"]})  # values.csv: honesty → Fairness, trust → Loyalty (MFT)
    assert from_values["mft"] == Counter({"Fairness": 1, "Loyalty": 1})
    assert from_values["wvs"] == Counter({"Survival": 1})


def test_moralchoice_summary_and_agreement_by_hand() -> None:
    ambiguity = {"l1": "low", "l2": "low", "l3": "low", "h1": "high", "h2": "high"}
    a = _items("a", {"l1": [0.9, 0.1], "l2": [0.6, 0.4], "l3": [0.2, 0.8], "h1": [0.5, 0.5], "h2": [0.3, 0.7]})
    b = _items("b", {"l1": [0.7, 0.3], "l2": [0.4, 0.6], "l3": [0.1, 0.9], "h1": [0.6, 0.4], "h2": [0.2, 0.8]})
    summary = moralchoice_summary(pd.concat([a, b]), ambiguity, n_boot=200).set_index(["model", "ambiguity"])
    assert summary.loc[("a", "low"), "share_action1"] == pytest.approx(2 / 3)
    assert summary.loc[("a", "low"), "p_action1"] == pytest.approx((0.9 + 0.6 + 0.2) / 3)
    assert summary.loc[("a", "high"), "share_action1"] == 0.0  # 0.5 is not > 0.5
    assert summary.loc[("a", "low"), "n_items"] == 3
    agreement = model_agreement(pd.concat([a, b]), ambiguity, n_boot=200).set_index("ambiguity")
    # low: argmax a = (0, 0, 1), b = (0, 1, 1) → 2/3; high: a = (0 (tie → first), 1), b = (0, 1) → 1
    assert agreement.loc["low", "agreement"] == pytest.approx(2 / 3)
    assert agreement.loc["high", "agreement"] == pytest.approx(1.0)
    assert agreement.loc["low", "mean_abs_diff_p_action1"] == pytest.approx((0.2 + 0.2 + 0.1) / 3)
