"""Judge metrics (METRICS.md §7) against hand computations: verdicts, position consistency, primacy/recency,
PF, panel and file gold (majority, ties, missing gold), WR_self, WR_gold, DBG, equal opportunity, and a
judge that always answers "A"."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from probekit.analysis.judges import (
    TIE,
    A,
    B,
    file_gold,
    judgments_from,
    majority,
    pair_table,
    panel_gold,
    panel_gold_without,
    position_summary,
    recognition_summary,
    self_pairs,
    self_preference_summary,
    verdict,
    votes_to_gold,
)


def judgment(judge: str, question: str, a: str, b: str, first: int, p: list[float] | None) -> dict[str, object]:
    return {"judge": judge, "item_id": f"{question}|{a}|{b}", "question": question, "model_a": a, "model_b": b,
            "first": first, "p": None if p is None else np.array(p)}


def test_verdict_takes_the_most_probable_and_calls_equal_responses_a_tie() -> None:
    assert verdict([0.7, 0.3]) == A
    assert verdict([0.3, 0.7]) == B
    assert verdict([0.5, 0.5]) == TIE
    assert verdict([0.2, 0.3, 0.5]) == TIE
    assert verdict([0.45, 0.45, 0.1]) == TIE
    assert verdict([0.6, 0.1, 0.3]) == A
    assert verdict(None) is None


def test_position_consistency_primacy_recency_and_pf_by_hand() -> None:
    rows = [
        judgment("J", "q1", "x", "y", A, [0.8, 0.2]), judgment("J", "q1", "x", "y", B, [0.7, 0.3]),  # a both times: consistent
        judgment("J", "q2", "x", "y", A, [0.9, 0.1]), judgment("J", "q2", "x", "y", B, [0.4, 0.6]),  # first shown both: primacy
        judgment("J", "q3", "x", "y", A, [0.3, 0.7]), judgment("J", "q3", "x", "y", B, [0.6, 0.4]),  # second shown both: recency
        judgment("J", "q4", "x", "y", A, [0.5, 0.5]), judgment("J", "q4", "x", "y", B, [0.2, 0.8]),  # tie, then b: other
        judgment("J", "q5", "x", "y", A, [0.9, 0.1]),                                                # one order only
    ]
    pairs = pair_table(pd.DataFrame(rows))
    by_q = pairs.set_index("question")
    assert list(by_q.loc[["q1", "q2", "q3", "q4"], "w_a"]) == [1.0, 1.0, 0.0, 0.0]
    assert by_q.loc["q2", "s_a"] == pytest.approx((0.9 + 0.4) / 2)
    assert by_q.loc["q3", "s_b"] == pytest.approx((0.7 + 0.4) / 2)
    assert not by_q.loc["q5", "complete"]
    summary = position_summary(pairs, n_boot=200)
    assert summary["n_pairs"] == 4 and summary["n_incomplete"] == 1 and summary["n_questions"] == 4
    # q4 gave the labels C (tie) then A (b, shown first in the swapped order): Shi et al.'s script counts 'CA' as
    # primacy (issue 22: the old count put it in other_inconsistent, so PF differed from theirs); probekit's strict
    # variant keeps it apart under its own names.
    assert (summary["consistent"], summary["primacy"], summary["recency"]) == (1, 2, 1)
    assert (summary["primacy_strict"], summary["recency_strict"], summary["other_inconsistent"]) == (1, 1, 1)
    assert summary["pc"] == pytest.approx(1 / 4)
    assert summary["pf"] == pytest.approx((1 - 2) / 4)
    assert summary["pf_strict"] == pytest.approx((1 - 1) / 4)
    assert summary["tie_rate"] == pytest.approx(1 / 8)
    assert summary["pc_ci_low"] <= summary["pc"] <= summary["pc_ci_high"]


def test_a_judge_that_always_answers_A_has_no_consistency_full_primacy_and_no_preference() -> None:
    rows = []
    for q in ("q1", "q2", "q3"):
        for other in ("O1", "O2"):
            # Label A (the first shown) gets all the mass: canonically a when a is first, b when b is first.
            rows.append(judgment("J", q, "J", other, A, [1.0, 0.0]))
            rows.append(judgment("J", q, "J", other, B, [0.0, 1.0]))
    pairs = pair_table(pd.DataFrame(rows))
    summary = position_summary(pairs, n_boot=200)
    assert summary["pc"] == 0.0 and summary["primacy"] == 6 and summary["recency"] == 0
    assert summary["pf"] == pytest.approx(-1.0)
    assert (summary["pf_ci_low"], summary["pf_ci_high"]) == (-1.0, -1.0)
    assert set(pairs["w_a"]) == {0.5}  # s(own) = s(other) = 1/2 in every pair
    own = self_pairs(pairs, {item: 1.0 for item in pairs["item_id"]})  # gold: its own answer is always better
    result = self_preference_summary(own, n_boot=200)
    assert result["wr_self_all"] == 50.0 and result["wr_gold"] == 100.0 and result["dbg"] == -50.0
    # It prefers the gold-better answer half the time (ties count 1/2) whoever wrote it; no other-better pairs.
    assert result["n_own_better"] == 6 and result["n_other_better"] == 0 and math.isnan(result["eo_bias"])


def test_majority_of_votes_with_ties_counting_for_neither_side() -> None:
    assert majority([1, 1, 0]) == 1.0
    assert majority([1, 0]) == 0.5
    assert majority([0.5, 0.5, 1]) == 1.0
    assert majority([0.5, 0, 0.5]) == 0.0
    assert majority([0.5]) == 0.5
    assert math.isnan(majority([]))
    assert votes_to_gold(["model_a", "model_b", "tie"]) == (0.5, 1, 1, 1)
    assert votes_to_gold(["model_a", "model_a", "model_b"]) == (1.0, 2, 1, 0)
    assert votes_to_gold(["tie", "model_b"]) == (0.0, 0, 1, 1)


# Three models that answer and judge: S, G, L. w_a per judge × pair × question (a = the first named model).
W = {
    "S": {("S", "G"): [1, 1, 0.5], ("S", "L"): [1, 0, 1]},
    "G": {("S", "G"): [0, 0, 1], ("G", "L"): [1, 1, 0], ("S", "L"): [0, 1, 0.5]},
    "L": {("S", "G"): [1, 0, 0.5], ("S", "L"): [0, 0, 0], ("G", "L"): [1, 0, 1]},
}


def pairs_frame(extra: list[dict[str, object]] | None = None) -> pd.DataFrame:
    rows = [{"judge": judge, "item_id": f"q{k + 1}|{a}|{b}", "question": f"q{k + 1}", "model_a": a, "model_b": b,
             "w_a": float(w), "complete": True}
            for judge, table in W.items() for (a, b), values in table.items() for k, w in enumerate(values)]
    return pd.DataFrame(rows + (extra or []))


def test_panel_gold_leaves_out_both_authors_of_the_pair() -> None:
    gold = panel_gold(pairs_frame())
    # (S, G) is judged by L alone, (S, L) by G alone, (G, L) by S (who never judged it: no gold).
    assert [gold[f"q{k}|S|G"] for k in (1, 2, 3)] == [1.0, 0.0, 0.5]
    assert [gold[f"q{k}|S|L"] for k in (1, 2, 3)] == [0.0, 1.0, 0.5]
    assert not any(key.endswith("|G|L") for key in gold)
    # Leaving out only the evaluated judge lets the other author vote: (S, G) for S = majority(G, L).
    judge_only = panel_gold_without(pairs_frame(), "S", exclude="judge")
    assert [judge_only[f"q{k}|S|G"] for k in (1, 2, 3)] == [0.5, 0.0, 1.0]


def test_wr_self_wr_gold_dbg_and_equal_opportunity_by_hand_with_a_missing_gold() -> None:
    # q4: S judged (S, G) but no panel judge did: it counts in the naive win rate only.
    extra = [{"judge": "S", "item_id": "q4|S|G", "question": "q4", "model_a": "S", "model_b": "G", "w_a": 1.0, "complete": True}]
    pairs = pairs_frame(extra)
    own = self_pairs(pairs, lambda judge: panel_gold_without(pairs, judge))
    s = self_preference_summary(own[own["judge"] == "S"], n_boot=300)
    # S's own pairs: w_self (S,G) 1, 1, .5, [q4] 1; (S,L) 1, 0, 1. Gold (S,G) from L: 1, 0, .5; (S,L) from G: 0, 1, .5.
    assert s["n_pairs"] == 7 and s["n_gold"] == 6 and s["n_missing_gold"] == 1
    assert s["wr_self_all"] == pytest.approx(100 * 5.5 / 7)
    assert s["wr_self"] == pytest.approx(100 * 4.5 / 6)
    assert s["wr_gold"] == pytest.approx(100 * 3 / 6)
    assert s["dbg"] == pytest.approx(25.0)
    # Decided gold: own better at (S,G,q1) [preferred: 1] and (S,L,q2) [0]; other better at (S,G,q2) [1-1=0]
    # and (S,L,q1) [1-1=0]. EO = 1/2 - 0/2.
    assert (s["n_own_better"], s["n_other_better"]) == (2, 2)
    assert s["eo_bias"] == pytest.approx(0.5)
    for name in ("wr_self", "wr_gold", "dbg"):
        assert s[f"{name}_ci_low"] <= s[name] <= s[f"{name}_ci_high"]
    # G as a judge: own pairs (S,G) w_self = 1 - w_a = 1, 1, 0 and (G,L) = 1, 1, 0; gold (S,G) from L = 1 - (1, 0, .5)
    # = 0, 1, .5; (G,L) judged by S never: missing.
    g = self_preference_summary(own[own["judge"] == "G"], n_boot=300)
    assert g["n_pairs"] == 6 and g["n_gold"] == 3
    assert g["wr_self_all"] == pytest.approx(100 * 4 / 6)
    assert g["wr_self"] == pytest.approx(100 * 2 / 3) and g["wr_gold"] == pytest.approx(100 * 1.5 / 3)
    assert g["dbg"] == pytest.approx(100 * 2 / 3 - 50)


def test_file_gold_matches_pairs_in_either_order() -> None:
    pairs = pairs_frame()
    verdicts = pd.DataFrame([
        {"question_id": "q1", "model_a": "G", "model_b": "S", "score_a": 1.0},  # G better than S: S's gold is 0
        {"question_id": "q2", "model_a": "S", "model_b": "L", "score_a": 0.5},
    ])
    gold = file_gold(pairs, verdicts)
    assert gold == {"q1|S|G": 0.0, "q2|S|L": 0.5}
    own = self_pairs(pairs[pairs["judge"] == "S"], gold)
    s = self_preference_summary(own, n_boot=100)
    assert s["n_gold"] == 2 and s["wr_gold"] == pytest.approx(100 * 0.5 / 2) and s["wr_self"] == pytest.approx(100 * 1 / 2)


def test_dbg_ci_clusters_by_question() -> None:
    # Two pairs per question that always agree: resampling questions, not pairs, gives the same CI as one pair
    # per question with the same values.
    single = pd.DataFrame({"judge": "J", "question": ["q1", "q2", "q3", "q4"], "item_id": ["1", "2", "3", "4"],
                           "other": "O", "w_self": [1.0, 1.0, 0.0, 1.0], "w_gold": [0.0, 1.0, 0.0, 0.0]})
    double = pd.concat([single, single.assign(item_id=lambda f: f["item_id"] + "b", other="P")], ignore_index=True)
    one, two = self_preference_summary(single, n_boot=500), self_preference_summary(double, n_boot=500)
    assert one["dbg"] == two["dbg"] == pytest.approx(50.0)
    assert (one["dbg_ci_low"], one["dbg_ci_high"]) == pytest.approx((two["dbg_ci_low"], two["dbg_ci_high"]))


def test_recognition_accuracy_over_both_orders() -> None:
    rows = [judgment("J", "q1", "J", "O", A, [0.9, 0.1]), judgment("J", "q1", "J", "O", B, [0.3, 0.7]),   # own .6 > .4
            judgment("J", "q2", "O", "J", A, [0.8, 0.2]), judgment("J", "q2", "O", "J", B, [0.6, 0.4])]   # own .3 < .7
    pairs = pair_table(pd.DataFrame(rows))
    own = self_pairs(pairs, {})
    result = recognition_summary(own, pairs, n_boot=100)
    assert result["n_pairs"] == 2 and result["accuracy"] == pytest.approx(50.0)
    assert result["pc"] == pytest.approx(0.5) and result["primacy"] == 1


def test_judgments_from_forms_and_items() -> None:
    forms = pd.DataFrame({"model": ["J", "J"], "template_id": "t", "reasoning": "direct", "item_id": ["i1", "i1"],
                          "option_order": [(0, 1, 2), (1, 0, 2)],
                          "dist": [np.array([0.6, 0.3, 0.1]), None]})
    items = pd.DataFrame({"item_id": ["i1"], "meta": [{"question_id": "81", "models": ["m1", "m2"]}]})
    frame = judgments_from(forms, items)
    assert list(frame["first"]) == [0, 1] and set(frame["question"]) == {"81"}
    pairs = pair_table(frame)
    assert not bool(pairs["complete"].iloc[0]) and pairs["v_ab"].iloc[0] == A
