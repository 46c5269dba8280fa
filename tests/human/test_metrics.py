"""Human-alignment metrics (issue 24, METRICS.md §9) against independent computations (scipy, numpy) to 1e-9:
non-integer ordinal positions, refusal options, a country not asked a question, a group with one question, ties
in Kendall's τ-b; and the tables computed from a store whose model distributions were imported from a JSONL file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy, kendalltau, linregress, wasserstein_distance

from probekit.analysis import human as hm
from probekit.analysis.bootstrap import mean_ci

TOL = 1e-9


def _wd(p: np.ndarray, q: np.ndarray, positions: list[float | None]) -> float:
    """OpinionQA's WD by scipy: refusal/unplaced options dropped, both renormalised, W1 / (max − min)."""
    on = [i for i, x in enumerate(positions) if x is not None]
    x = np.array([positions[i] for i in on], dtype=float)
    pp, qq = p[on] / p[on].sum(), q[on] / q[on].sum()
    return float(wasserstein_distance(x, x, pp, qq) / (x.max() - x.min()))


def test_pair_metrics_equal_scipy_on_random_and_tied_distributions() -> None:
    rng = np.random.default_rng(7)
    cases = []
    for k in (2, 3, 4, 5, 6):
        for _ in range(40):
            cases.append((rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k) * 0.7)))
    cases.append((np.array([0.1, 0.1, 0.8]), np.array([0.25, 0.25, 0.5])))  # ties in both: τ-b's correction
    cases.append((np.array([0.2, 0.2, 0.2, 0.4]), np.array([0.1, 0.3, 0.3, 0.3])))
    cases.append((np.array([0.5, 0.5]), np.array([0.3, 0.7])))  # a constant row: τ undefined
    width = 6
    P = np.vstack([np.pad(p, (0, width - p.size)) for p, _ in cases])
    Q = np.vstack([np.pad(q, (0, width - q.size)) for _, q in cases])
    mask = np.vstack([np.arange(width) < p.size for p, _ in cases])
    sim, bits, tv, tau = hm.similarity(P, Q), hm.jsd_bits(P, Q), hm.total_variation(P, Q), hm.kendall_tau_b(P, Q, mask)
    for row, (p, q) in enumerate(cases):
        assert sim[row] == pytest.approx(1 - jensenshannon(p, q), abs=TOL)
        assert bits[row] == pytest.approx(jensenshannon(p, q, base=2) ** 2, abs=TOL)
        assert tv[row] == pytest.approx(0.5 * np.abs(p - q).sum(), abs=TOL)
        expected = kendalltau(p, q, variant="b").statistic
        if np.isnan(expected):
            assert np.isnan(tau[row])
        else:
            assert tau[row] == pytest.approx(expected, abs=TOL)


def test_ordinal_wd_with_non_integer_positions_and_refusals_equals_scipy() -> None:
    rng = np.random.default_rng(3)
    layouts: list[list[float | None]] = [[1, 2, 1.5], [1, 2, 1.5, None], [1.0, 2.0, 3.0, 4.0, 2.5, None], [3, 1, 2],
                                         [0.0, 10.0], [1, 2, 3, None, None]]
    for positions in layouts:
        k = len(positions)
        pos = np.array([np.nan if x is None else x for x in positions], dtype=float)
        for _ in range(25):
            p, q = rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k))
            got = hm.ordinal_wd(p[None, :], q[None, :], pos[None, :])[0]
            assert got == pytest.approx(_wd(p, q, positions), abs=TOL)
            refusal = np.array([x is None for x in positions])
            mass = hm.refusal_mass(p[None, :], refusal[None, :])[0]
            assert (np.isnan(mass) if not refusal.any() else mass == pytest.approx(p[refusal].sum(), abs=TOL))
    # No scale (all positions equal, or fewer than two): no WD
    flat = np.array([[1.0, 1.0, 1.0]])
    assert np.isnan(hm.ordinal_wd(np.array([[0.2, 0.3, 0.5]]), np.array([[0.1, 0.1, 0.8]]), flat)[0])


# -- a hand-built survey: three questions, three countries -----------------------------------------------------------
POSITIONS = {"q1": [1.0, 2.0, 1.5, None], "q2": [1.0, 2.0, 3.0], "q3": [None, None]}
REFUSAL = {"q1": [False, False, False, True], "q2": [False, False, False], "q3": [False, False]}
HUMAN = {  # Japan is asked q1 only (a group with one question); Peru is not asked q2
    ("q1", "Germany"): [0.2, 0.4, 0.3, 0.1], ("q1", "Japan"): [0.5, 0.2, 0.2, 0.1], ("q1", "Peru"): [0.25, 0.25, 0.25, 0.25],
    ("q2", "Germany"): [0.6, 0.3, 0.1],
    ("q3", "Germany"): [0.7, 0.3], ("q3", "Peru"): [0.5, 0.5],
}
MODEL = {"q1": [0.1, 0.1, 0.7, 0.1], "q2": [0.2, 0.2, 0.6], "q3": [0.9, 0.1]}


def _human_frame() -> pd.DataFrame:
    rows = []
    for (item, country), shares in HUMAN.items():
        rows.append({"item_id": item, "group_var": "country", "group_value": country, "shares": np.array(shares), "n": 100.0,
                     "positions": np.array([np.nan if x is None else x for x in POSITIONS[item]]),
                     "refusal": np.array(REFUSAL[item]), "options": [f"o{k}" for k in range(len(shares))]})
    return pd.DataFrame(rows)


def _model_frame(extra: dict[tuple[str, str, str], list[float]] | None = None) -> pd.DataFrame:
    rows = [{"model": "m", "persona_id": "", "persona_style": "", "item_id": item, "dist": np.array(d), "n_forms": 1,
             "valid_mass": 0.9} for item, d in MODEL.items()]
    for (style, persona, item), dist in (extra or {}).items():
        rows.append({"model": "m", "persona_id": persona, "persona_style": style, "item_id": item, "dist": np.array(dist),
                     "n_forms": 1, "valid_mass": 0.9})
    return pd.DataFrame(rows)


def _by_hand_similarity(country: str) -> list[float]:
    return [1 - jensenshannon(np.array(MODEL[item]), np.array(shares)) for (item, c), shares in HUMAN.items() if c == country]


def test_similarity_table_by_country_equals_scipy_and_the_project_bootstrap() -> None:
    pairs = hm.pair_frame(_model_frame(), _human_frame())
    table = hm.similarity_table(pairs, n_boot=500, seed=4).set_index("group_value")
    assert table.loc["Germany", "n_questions"] == 3 and table.loc["Japan", "n_questions"] == 1 and table.loc["Peru", "n_questions"] == 2
    for country in ("Germany", "Japan", "Peru"):
        values = _by_hand_similarity(country)
        assert table.loc[country, "similarity"] == pytest.approx(np.mean(values), abs=TOL)
        estimate, low, high = mean_ci(values, n_boot=500, seed=4)  # a group asked every question: the same resamples
        if country == "Germany":
            ci = (table.loc[country, "similarity_ci_low"], table.loc[country, "similarity_ci_high"])
            assert ci == pytest.approx((low, high), abs=TOL)
        bits = [jensenshannon(np.array(MODEL[i]), np.array(s), base=2) ** 2 for (i, c), s in HUMAN.items() if c == country]
        assert table.loc[country, "jsd_bits"] == pytest.approx(np.mean(bits), abs=TOL)
        taus = [kendalltau(MODEL[i], s).statistic for (i, c), s in HUMAN.items() if c == country]
        taus = [t for t in taus if np.isfinite(t)]
        assert table.loc[country, "n_tau"] == len(taus)
        if taus:
            assert table.loc[country, "kendall_tau_b"] == pytest.approx(np.mean(taus), abs=TOL)
        else:  # Peru's shares are uniform on both questions: τ is undefined, never 0
            assert np.isnan(table.loc[country, "kendall_tau_b"])
    assert "one_question" in table.loc["Japan", "flags"] and "few_questions" in table.loc["Germany", "flags"]
    assert list(table["similarity"]) == sorted(table["similarity"], reverse=True)


def test_representativeness_and_refusals_equal_scipy() -> None:
    pairs = hm.pair_frame(_model_frame(), _human_frame())
    table = hm.representativeness_table(pairs, n_boot=200, seed=0).set_index("group_value")
    for country in ("Germany", "Japan", "Peru"):
        wds = [_wd(np.array(MODEL[i]), np.array(s), POSITIONS[i]) for (i, c), s in HUMAN.items() if c == country and i != "q3"]
        assert table.loc[country, "n_questions"] == len(wds)  # q3 is nominal: no WD
        assert table.loc[country, "representativeness"] == pytest.approx(1 - np.mean(wds), abs=TOL)
    assert table.loc["Germany", "model_refusal_mass"] == pytest.approx(0.1, abs=TOL)
    assert table.loc["Peru", "human_refusal_rate"] == pytest.approx(0.25, abs=TOL)
    assert table.loc["Germany", "n_refusal_questions"] == 1


def test_human_baselines_against_the_population_and_the_mean_of_groups() -> None:
    human = _human_frame()
    table = hm.baselines_table(human, ("country", "Germany"), n_boot=100)
    rows = table.set_index("group_value")
    for country in ("Japan", "Peru"):
        sims = [1 - jensenshannon(np.array(HUMAN[(i, "Germany")]), np.array(s)) for (i, c), s in HUMAN.items() if c == country]
        assert rows.loc[country, "similarity"] == pytest.approx(np.mean(sims), abs=TOL)
    assert rows.loc["(average)", "similarity"] == pytest.approx(rows.loc[["Japan", "Peru"], "similarity"].mean(), abs=TOL)
    assert rows.loc["(worst)", "similarity"] == pytest.approx(rows.loc[["Japan", "Peru"], "similarity"].min(), abs=TOL)
    wd = _wd(np.array(HUMAN[("q1", "Germany")]), np.array(HUMAN[("q1", "Japan")]), POSITIONS["q1"])
    assert rows.loc["Japan", "representativeness"] == pytest.approx(1 - wd, abs=TOL)
    pooled = hm.baselines_table(human, None, n_boot=100).set_index("group_value")
    mean_q2 = np.array(HUMAN[("q2", "Germany")])  # asked of Germany only: the pooled reference is Germany itself
    assert pooled.loc["Germany", "n_questions"] == 3
    q1_mean = np.mean([HUMAN[("q1", c)] for c in ("Germany", "Japan", "Peru")], axis=0)
    q3_mean = np.mean([HUMAN[("q3", c)] for c in ("Germany", "Peru")], axis=0)
    expected = np.mean([1 - jensenshannon(q1_mean, HUMAN[("q1", "Germany")]), 1 - jensenshannon(mean_q2, mean_q2),
                        1 - jensenshannon(q3_mean, HUMAN[("q3", "Germany")])])
    assert pooled.loc["Germany", "similarity"] == pytest.approx(expected, abs=TOL)


def test_steerability_best_persona_lift_and_slope() -> None:
    steered = {("bio", "p-de", "q1"): [0.2, 0.4, 0.3, 0.1], ("qa", "p-de", "q1"): [0.3, 0.3, 0.3, 0.1],
               ("bio", "p-de", "q2"): [0.5, 0.4, 0.1], ("qa", "p-de", "q2"): [0.1, 0.1, 0.8],
               ("bio", "p-jp", "q1"): [0.25, 0.25, 0.25, 0.25], ("qa", "p-jp", "q1"): [0.5, 0.2, 0.2, 0.1],
               ("bio", "p-pe", "q1"): [0.4, 0.3, 0.2, 0.1]}
    personas = pd.DataFrame({"persona_id": ["p-de", "p-jp", "p-pe"], "group_var": "country",
                             "group_value": ["Germany", "Japan", "Peru"]})
    model = _model_frame(steered)
    table = hm.steerability_table(model, _human_frame(), personas, metric="representativeness", n_boot=200).set_index("group_value")

    def rep(dists: dict[str, list[float]], country: str) -> float:
        wds = [_wd(np.array(dists[i]), np.array(HUMAN[(i, country)]), POSITIONS[i])
               for i in dists if (i, country) in HUMAN and i != "q3"]
        return 1 - float(np.mean(wds))

    for country, persona in (("Germany", "p-de"), ("Japan", "p-jp"), ("Peru", "p-pe")):
        default = rep({i: MODEL[i] for i in MODEL}, country)
        contexts = {style: {i: d for (s, p, i), d in steered.items() if s == style and p == persona} for style in ("bio", "qa")}
        best = max(rep(c, country) for c in contexts.values() if c)
        assert table.loc[country, "rep_default"] == pytest.approx(default, abs=TOL)
        assert table.loc[country, "rep_best"] == pytest.approx(best, abs=TOL)
        assert table.loc[country, "lift"] == pytest.approx(best - default, abs=TOL)
    fit = linregress(table["rep_default"], table["rep_best"])
    assert table["slope"].iloc[0] == pytest.approx(fit.slope, abs=1e-9)
    assert table["intercept"].iloc[0] == pytest.approx(fit.intercept, abs=1e-9)
    assert table.loc["Germany", "best_style"] == "bio" and table.loc["Germany", "best_persona"] == "p-de"
    assert table.loc["Germany", "rep_best_ci_low"] <= table.loc["Germany", "rep_best"] <= table.loc["Germany", "rep_best_ci_high"]
    assert "one_question" in table.loc["Japan", "flags"]


def test_consistency_across_topics() -> None:
    topics = {"q1": "economy", "q2": "economy", "q3": "society"}
    pairs = hm.pair_frame(_model_frame(), _human_frame())
    table = hm.consistency_table(pairs, topics, metric="similarity").iloc[0]
    overall = {c: np.mean(_by_hand_similarity(c)) for c in ("Germany", "Japan", "Peru")}
    best = max(overall, key=lambda c: overall[c])
    per_topic = {}
    for topic in ("economy", "society"):
        scores = {}
        for c in ("Germany", "Japan", "Peru"):
            values = [1 - jensenshannon(np.array(MODEL[i]), np.array(s)) for (i, cc), s in HUMAN.items()
                      if cc == c and topics[i] == topic]
            if values:
                scores[c] = np.mean(values)
        per_topic[topic] = max(scores, key=lambda c: scores[c])
    assert table["best_group"] == best
    assert json.loads(table["topic_best_groups"]) == per_topic
    assert table["consistency"] == pytest.approx(np.mean([per_topic[t] == best for t in per_topic]), abs=TOL)


def test_diversity_and_the_correct_answer_effect() -> None:
    steered = {("bio", "p-de", "q1"): [0.2, 0.4, 0.3, 0.1], ("bio", "p-jp", "q1"): [0.05, 0.05, 0.85, 0.05],
               ("bio", "p-de", "q3"): [0.99, 0.01], ("bio", "p-jp", "q3"): [0.95, 0.05]}
    items = hm.diversity_items(_model_frame(steered), _human_frame(), tau=0.9).set_index("item_id")
    q1 = np.array([MODEL["q1"], steered[("bio", "p-de", "q1")], steered[("bio", "p-jp", "q1")]])
    pooled = q1.mean(axis=0)
    assert items.loc["q1", "modal_share"] == pytest.approx(pooled.max(), abs=TOL)
    assert items.loc["q1", "normalised_entropy"] == pytest.approx(entropy(pooled) / np.log(4), abs=TOL)
    x = np.array([1.0, 2.0, 1.5])

    def mean_var(d: np.ndarray) -> tuple[float, float]:
        w = d[:3] / d[:3].sum()
        m = float((w * x).sum())
        return m, float((w * (x - m) ** 2).sum())

    assert items.loc["q1", "model_position_var"] == pytest.approx(mean_var(pooled)[1], abs=TOL)
    assert items.loc["q1", "model_between_context_var"] == pytest.approx(np.var([mean_var(d)[0] for d in q1]), abs=TOL)
    groups = [np.array(HUMAN[("q1", c)]) for c in ("Germany", "Japan", "Peru")]
    between = np.var([mean_var(g)[0] for g in groups])
    assert items.loc["q1", "human_between_group_var"] == pytest.approx(between, abs=TOL)
    assert items.loc["q1", "variance_ratio"] == pytest.approx(np.var([mean_var(d)[0] for d in q1]) / between, abs=TOL)
    # q3: modal share (0.9 + 0.99 + 0.95) / 3 ≥ 0.9 while Germany's 0.7 and Peru's 0.5 stay below: the effect
    assert bool(items.loc["q3", "correct_answer"]) and not bool(items.loc["q1", "correct_answer"])
    assert np.isnan(items.loc["q3", "variance_ratio"]) if "variance_ratio" in items else True
    summary = hm.diversity_table(items.reset_index(), n_boot=100).iloc[0]
    assert summary["correct_answer_share"] == pytest.approx(1 / 3, abs=TOL) and summary["n_questions"] == 3
