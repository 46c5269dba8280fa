"""Selection-bias metrics against hand-computed values, and the analyze tables end to end on a synthetic
model with a known position prior (FakeBackend) through the real runner, store and registry."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from probekit.analysis.calibration import brier, calibration, ece
from probekit.analysis.selection import (
    cyclic_pick_rates,
    recall_per_position,
    rstd,
    selection_summary,
)
from probekit.survey.permutations import cyclic_orders
from probekit.survey.schema import Item, Option, Survey, Template


def test_recall_and_rstd_by_hand() -> None:
    # gold positions 0,0,1,1,2,2,3,3; the model hits 2/2, 1/2, 0/2, 1/2 -> recalls 1, .5, 0, .5
    gold = [0, 0, 1, 1, 2, 2, 3, 3]
    pred = [0, 0, 1, 0, 0, 0, 3, 0]
    recalls = recall_per_position(gold, pred, 4)
    assert recalls.tolist() == [1.0, 0.5, 0.0, 0.5]
    # mean .5, squared deviations .25, 0, .25, 0 -> population variance .125 -> std .35355 -> x100
    assert rstd(recalls) == pytest.approx(100 * math.sqrt(0.125))
    # a position where gold never appears is left out, not counted as recall 0
    assert np.isnan(recall_per_position([0, 1], [0, 1], 3)[2])
    assert rstd(recall_per_position([0, 1], [0, 1], 3)) == 0.0


def test_ece_and_brier_by_hand() -> None:
    # two bins used: (0.9, 1.0] holds conf .95 (correct) and .92 (wrong); (0.6, 0.7] holds .65 (correct)
    conf = [0.95, 0.92, 0.65]
    hit = [True, False, True]
    expected = 2 / 3 * abs(0.5 - (0.95 + 0.92) / 2) + 1 / 3 * abs(1 - 0.65)
    assert ece(conf, hit) == pytest.approx(expected)
    assert ece([1.0, 0.0], [True, False]) == pytest.approx(0.0)  # 1.0 lands in the last bin, 0.0 in the first
    # Brier: (0.7-1)^2 + 0.2^2 + 0.1^2 = 0.14 ; (0.5-0)^2 + (0.5-1)^2 = 0.5
    assert brier([np.array([0.7, 0.2, 0.1]), np.array([0.5, 0.5])], [0, 1]) == pytest.approx((0.14 + 0.5) / 2)
    summary = calibration([np.array([0.7, 0.2, 0.1]), np.array([0.2, 0.8, 0.0])], [0, 0])
    assert summary.accuracy == 0.5 and summary.mean_confidence == pytest.approx(0.75)


def _frame(rows: list[tuple[str, tuple[int, ...], list[float]]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["item_id", "option_order", "dist"])
    frame["dist"] = [np.asarray(d) for d in frame["dist"]]
    frame["n_options"] = [len(o) for o in frame["option_order"]]
    return frame


def test_pick_rates_average_over_rotations_by_hand() -> None:
    # A model that always answers the first shown position with p=.7 and splits the rest evenly:
    # whatever the content, the cyclic average per displayed position is (.7, .1, .1, .1).
    rows = []
    for item in ("q1", "q2"):
        for order in cyclic_orders(4):
            shown = [0.7, 0.1, 0.1, 0.1]
            canonical = [0.0] * 4
            for position, c in enumerate(order):
                canonical[c] = shown[position]
            rows.append((item, order, canonical))
    probs, picks, n_items = cyclic_pick_rates(_frame(rows))
    assert n_items == 2
    assert probs == pytest.approx([0.7, 0.1, 0.1, 0.1])
    assert picks == pytest.approx([1.0, 0.0, 0.0, 0.0])
    summary = selection_summary(_frame(rows), {"q1": 0, "q2": 2})
    # every trial picks position 1: recall is 1 there and 0 elsewhere -> RStd = std(1,0,0,0) = 43.30
    assert summary["rstd"] == pytest.approx(100 * np.std([1, 0, 0, 0]))
    assert summary["prompts_cyclic"] == 8 and summary["prompts_identity"] == 2
    # a pure position preference carries no content: cyclic averaging gives a uniform tie, PriDe too
    assert summary["pride_prior"] == pytest.approx([0.7, 0.1, 0.1, 0.1], abs=1e-3)


def _synthetic_survey(n_items: int) -> Survey:
    items = [Item(id=f"q{k:03d}", fields={"question": f"Question {k}?"}, gold=k % 4,
                  options=[Option(text=f"option {k}-{j}") for j in range(4)]) for k in range(n_items)]
    items.append(Item(id="fixed", fields={"question": "Which?"}, gold=3, position_dependent=True,
                      options=[Option(text="A and B"), Option(text="x"), Option(text="y"), Option(text="all of the above")]))
    return Survey(id="synthetic_mcq", kind="mcq", templates=[Template(id="t", user="{question}\n{options}\nAnswer:")],
                  items=items)


def test_analyze_tables_on_the_fake_model_through_the_store(store_path) -> None:
    from probekit.analysis.loader import contexts
    from probekit.analysis.registry import build_tables
    from probekit.pipeline import run
    from probekit.runner import RunOptions

    survey = _synthetic_survey(40)
    summary = run([survey], RunOptions(models=["fake:m?prior=4,2,1,1"], store=store_path, orders="cyclic"))
    assert summary.errors == 0 and summary.trials == 40 * 4 + 1
    (ctx,) = contexts(store_path, run=summary.run_id)
    tables = build_tables(ctx)
    for name in ("position_bias", "position_prior", "selection_bias", "mcq_calibration", "confidence_by_correctness"):
        assert name in tables, name
    prior = tables["position_prior"].iloc[0]
    # P_obs ∝ prior · content: the content term cancels over rotations, so the prior is recovered exactly
    assert prior["prior"] == pytest.approx([0.5, 0.25, 0.125, 0.125], abs=1e-4)
    # KL((.5,.25,.125,.125) || uniform) = 2 - H = 2 - 1.75 = 0.25 bits
    assert prior["kl_prior_bits"] == pytest.approx(0.25, abs=1e-3)
    rates = tables["position_bias"].sort_values("position")
    assert rates["pick_rate"].iloc[0] > 0.3 > rates["pick_rate"].iloc[3]
    selection = tables["selection_bias"].iloc[0]
    assert selection["prompts_cyclic"] == 40 * 4 + 1 and selection["prompts_identity"] == 41
    assert selection["prompts_pride"] == 2 * 4 + 39  # alpha 0.05 of 41 items -> 2 calibration items
    calib = tables["mcq_calibration"]
    assert set(calib["prediction"]) == {"identity", "every_order", "cyclic_average", "pride"}
    assert ((calib["ece"] >= 0) & (calib["ece"] <= 1) & (calib["brier"] >= 0) & (calib["brier"] <= 2)).all()


def test_position_bias_for_a_survey_without_gold(store_path) -> None:
    """A two-option `choice` survey in both orders (= its cyclic rotations) gets the position-bias tables
    but none of the mcq ones."""
    from probekit.analysis.loader import contexts
    from probekit.analysis.registry import build_tables
    from probekit.pipeline import run
    from probekit.runner import RunOptions

    survey = Survey(id="dilemmas", kind="choice", templates=[Template(id="ab", user="{context}\n{options}\nAnswer:")],
                    items=[Item(id=f"d{k}", fields={"context": f"Dilemma {k}."},
                                options=[Option(text=f"do {k}"), Option(text=f"do not {k}")]) for k in range(10)])
    summary = run([survey], RunOptions(models=["fake:m?prior=3,1"], store=store_path, orders="reversed"))
    (ctx,) = contexts(store_path, run=summary.run_id)
    tables = build_tables(ctx)
    assert "selection_bias" not in tables and "mcq_calibration" not in tables
    assert tables["position_prior"]["prior"].iloc[0] == pytest.approx([0.75, 0.25], abs=1e-4)
    assert tables["position_bias"]["pick_rate"].iloc[0] > 0.5


def test_confidence_split_by_correctness_by_hand() -> None:
    from probekit.analysis.selection import confidence_rows

    frame = _frame([("a", (0, 1), [0.9, 0.1]), ("b", (0, 1), [0.6, 0.4]), ("c", (1, 0), [0.2, 0.8])])
    rows = {r["answer"]: r for r in confidence_rows(frame, {"a": 0, "b": 1, "c": 1})}
    # a: right with .9, c: right with .8; b: wrong with .6
    assert rows["correct"]["n"] == 2 and rows["correct"]["mean_confidence"] == pytest.approx(0.85)
    assert rows["incorrect"]["n"] == 1 and rows["incorrect"]["mean_confidence"] == pytest.approx(0.6)
