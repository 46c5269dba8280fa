"""Drift statistics (METRICS.md §8), each checked against scipy or a case computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from probekit.analysis import drift as D
from probekit.analysis.bootstrap import mean_ci


def _scipy_jsd(p, q) -> float:
    """JSD in bits by scipy (the square of its Jensen–Shannon distance). scipy returns NaN for identical
    distributions (the square root of a rounding error below 0): that is 0."""
    with np.errstate(invalid="ignore"):
        return float(np.nan_to_num(jensenshannon(p, q, base=2)) ** 2)


def _dist(k: int):
    return st.lists(st.floats(0.01, 1.0), min_size=k, max_size=k).map(lambda w: np.array(w) / sum(w))


# -- distances -------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(st.integers(2, 6).flatmap(lambda k: st.tuples(_dist(k), _dist(k))))
def test_jsd_matches_scipy(pair) -> None:
    p, q = pair
    assert D.jsd_bits(p, q) == pytest.approx(jensenshannon(p, q, base=2) ** 2, abs=1e-12)


def test_jsd_hand_case() -> None:
    # Disjoint supports: 1 bit. p = (1, 0), q = (½, ½): H(¾, ¼) − ½·1 = 0.311278 bits.
    assert D.jsd_bits([1, 0], [0, 1]) == pytest.approx(1.0)
    assert D.jsd_bits([1, 0], [0.5, 0.5]) == pytest.approx(-(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)) - 0.5)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 6).flatmap(lambda k: st.tuples(_dist(k), _dist(k), st.permutations(list(range(1, k + 1))))))
def test_wasserstein_matches_scipy_with_unsorted_values(case) -> None:
    p, q, values = case
    values = np.array(values, dtype=float) * 1.5
    assert D.wasserstein1(p, q, values) == pytest.approx(stats.wasserstein_distance(values, values, p, q), abs=1e-12)


def test_wasserstein_hand_case() -> None:
    # All mass moves from 1 to 5 on a 5-point scale: 4 units; half of it: 2 units.
    assert D.wasserstein1([1, 0, 0, 0, 0], [0, 0, 0, 0, 1], [1, 2, 3, 4, 5]) == pytest.approx(4.0)
    assert D.wasserstein1([1, 0, 0, 0, 0], [0.5, 0, 0, 0, 0.5], [1, 2, 3, 4, 5]) == pytest.approx(2.0)


# -- paired tests ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("b,c", [(0, 0), (1, 6), (5, 5), (3, 12), (30, 12), (0, 9)])
def test_mcnemar_exact_matches_scipy_binomial(b: int, c: int) -> None:
    expected = 1.0 if b + c == 0 else stats.binomtest(b, b + c, 0.5).pvalue
    assert D.mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_hand_case() -> None:
    # b = 1, c = 6: P = 2 · (C(7,0) + C(7,1)) / 2^7 = 16/128.
    assert D.mcnemar_exact(1, 6) == pytest.approx(0.125)


def test_stuart_maxwell_two_categories_is_mcnemar_chi_square() -> None:
    table = np.array([[20, 3], [11, 16]])
    chi2, df, p = D.stuart_maxwell(table)
    assert df == 1
    assert chi2 == pytest.approx((3 - 11) ** 2 / (3 + 11))
    assert p == pytest.approx(stats.chi2.sf((3 - 11) ** 2 / 14, 1))


def test_stuart_maxwell_three_categories_matches_fleiss_closed_form() -> None:
    # Fleiss, Statistical Methods for Rates and Proportions, the 3 × 3 closed form:
    # χ² = (n̄23 d1² + n̄13 d2² + n̄12 d3²) / (2 (n̄12 n̄23 + n̄12 n̄13 + n̄13 n̄23)), n̄ij = (nij + nji)/2, di = ni. − n.i
    n = np.array([[35, 5, 7], [15, 20, 3], [9, 11, 25]], dtype=float)
    d = n.sum(axis=1) - n.sum(axis=0)
    nb = (n + n.T) / 2
    expected = (nb[1, 2] * d[0] ** 2 + nb[0, 2] * d[1] ** 2 + nb[0, 1] * d[2] ** 2) / (
        2 * (nb[0, 1] * nb[1, 2] + nb[0, 1] * nb[0, 2] + nb[0, 2] * nb[1, 2]))
    chi2, df, p = D.stuart_maxwell(n)
    assert df == 2
    assert chi2 == pytest.approx(expected, rel=1e-12)
    assert p == pytest.approx(stats.chi2.sf(expected, 2), rel=1e-12)


def test_stuart_maxwell_without_discordance_is_not_significant() -> None:
    assert D.stuart_maxwell(np.diag([4, 5, 6])) == (0.0, 0, 1.0)
    # An unused category is dropped: the 2 × 2 remainder is McNemar.
    chi2, df, _ = D.stuart_maxwell(np.array([[5, 2, 0], [6, 3, 0], [0, 0, 0]]))
    assert (chi2, df) == (pytest.approx(16 / 8), 1)


def test_wilcoxon_hand_case_and_zero_differences() -> None:
    # Five positive differences: the exact two-sided p is 2 / 2^5.
    assert D.wilcoxon_p([1, 2, 3, 4, 5], [0, 0, 0, 0, 0]) == pytest.approx(2 / 32)
    # Zero differences are dropped (same p as without them); all zero: p = 1.
    assert D.wilcoxon_p([1, 2, 3, 4, 5, 7], [0, 0, 0, 0, 0, 7]) == pytest.approx(2 / 32)
    assert D.wilcoxon_p([1, 2], [1, 2]) == 1.0


def test_benjamini_hochberg_matches_scipy_and_hand_case() -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 0.2, size=40)
    assert np.allclose(D.benjamini_hochberg(p), stats.false_discovery_control(p, method="bh"))
    # By hand: p = (0.01, 0.04, 0.03, 0.2), m = 4: sorted 0.01·4/1 = 0.04, 0.03·4/2 = 0.06, 0.04·4/3 = 0.0533,
    # 0.2·4/4 = 0.2; the running minimum from the top: 0.04, 0.0533, 0.0533, 0.2.
    q = D.benjamini_hochberg([0.01, 0.04, 0.03, 0.2, math.nan])
    assert np.allclose(q[:4], [0.04, 0.16 / 3, 0.16 / 3, 0.2])
    assert math.isnan(q[4])


# -- bootstrap -------------------------------------------------------------------------------------------
def test_excess_ci_is_the_item_bootstrap_of_paired_differences() -> None:
    rng = np.random.default_rng(0)
    distance, noise = rng.uniform(0, 0.2, 25), rng.uniform(0, 0.05, 25)
    estimate, low, high = D.excess_ci(distance, noise, n_boot=2000, seed=7)
    # Independent computation: resample items with numpy (the same generator and draws), take percentiles.
    draws = np.random.default_rng(7).integers(0, 25, size=(2000, 25))
    replicates = (distance - noise)[draws].mean(axis=1)
    assert estimate == pytest.approx(float(np.mean(distance - noise)))
    assert (low, high) == (pytest.approx(np.percentile(replicates, 2.5)), pytest.approx(np.percentile(replicates, 97.5)))
    assert mean_ci(distance, n_boot=2000, seed=7)[1] == pytest.approx(np.percentile(distance[draws].mean(axis=1), 2.5))


# -- per-run summaries and comparisons -------------------------------------------------------------------
def _responses(rows: list[tuple[str, str, int, str, int | None, list[float] | None]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["item_id", "trial_id", "sample_index", "status", "choice", "dist"])
    frame["dist"] = [None if d is None else np.array(d, dtype=float) for d in frame["dist"]]
    return frame


def test_item_marginals_average_samples_then_forms_and_rates_count_refusals() -> None:
    frame = _responses([
        ("q1", "t1", 0, "ok", 0, [1, 0]), ("q1", "t1", 1, "ok", 1, [0, 1]), ("q1", "t1", 2, "refusal", None, None),
        ("q1", "t2", 0, "ok", 1, [0, 1]), ("q1", "t2", 1, "invalid", None, None),
        ("q2", "t3", 0, "error", None, None),
    ])
    marginals = D.item_marginals(frame)
    # t1: (½, ½) from its two valid samples; t2: (0, 1). Marginal: mean over forms = (¼, ¾). q2: no valid answer.
    assert set(marginals) == {"q1"}
    assert np.allclose(marginals["q1"], [0.25, 0.75])
    rates = D.item_rates(frame).set_index("item_id")
    assert rates.loc["q1", "refusal_rate"] == pytest.approx(1 / 5)
    assert rates.loc["q1", "invalid_rate"] == pytest.approx(1 / 5)
    assert rates.loc["q2", "answered"] == 0 and rates.loc["q2", "error"] == 1


def _run(run_id: str, p0: dict[str, float], forms: int = 4, samples: int = 20, seed: int = 0) -> D.RunData:
    """Sample-mode answers: each item's option 0 chosen with probability p0[item]."""
    rng = np.random.default_rng(seed)
    rows = []
    for item, p in p0.items():
        for f in range(forms):
            for s in range(samples):
                choice = int(rng.uniform() >= p)
                rows.append((item, f"{item}-f{f}", s, "ok", choice, [1.0 - choice, float(choice)]))
    return D.prepare(run_id, _responses(rows))


ITEMS = {f"q{i:02d}": p for i, p in enumerate([0.9, 0.8, 0.7, 0.5, 0.3, 0.2, 0.85, 0.6, 0.4, 0.1, 0.95, 0.75])}
N_OPTIONS = {item: 2 for item in ITEMS}


def test_compare_same_model_is_no_change_and_a_moved_model_changed_with_its_items_named() -> None:
    v1a, v1b = _run("a", ITEMS, seed=1), _run("b", ITEMS, seed=2)
    noise = [(_run("n1", ITEMS, seed=3), _run("n2", ITEMS, seed=4))]
    same = D.compare(v1a, v1b, n_options=N_OPTIONS, noise_pairs=noise, n_boot=500)
    assert same.summary["verdict"] == "no change beyond noise"
    assert same.summary["excess_ci_low"] <= 0 <= same.summary["excess_ci_high"] or same.summary["excess_ci_low"] < 1e-6
    moved = dict(ITEMS, q03=0.98, q04=0.02, q09=0.99)  # three items flip strongly
    v2 = _run("c", moved, seed=5)
    changed = D.compare(v1a, v2, n_options=N_OPTIONS, noise_pairs=noise, n_boot=500)
    assert changed.summary["verdict"] == "changed" and changed.summary["changed"]
    top = list(changed.items["item_id"].head(3))
    assert set(top) == {"q03", "q04", "q09"}
    assert changed.items.set_index("item_id").loc[["q03", "q04", "q09"], "moved"].all()
    assert changed.items.set_index("item_id").loc[["q03", "q04", "q09"], "significant"].sum() >= 2  # 80 pairs per item
    # 80 answers per item. Survey-level numbers are the item means; the noise floor is the mean per-item noise distance. Form
    # level (default): per item, the mean over its forms of the JSD between the same form in both runs.
    def by_hand(x: D.RunData, y: D.RunData) -> pd.Series:
        per_form = pd.DataFrame([(x.forms[t][0], _scipy_jsd(x.forms[t][1], y.forms[t][1])) for t in x.forms],
                                columns=["item", "d"])
        return per_form.groupby("item")["d"].mean()

    distances, noise_d = by_hand(v1a, v2), by_hand(*noise[0])
    assert changed.summary["level"] == "form"
    assert changed.summary["distance"] == pytest.approx(distances.mean())
    assert changed.summary["noise_floor"] == pytest.approx(noise_d.mean())
    assert changed.summary["excess"] == pytest.approx((distances - noise_d).mean())
    # Item level: the distance between the item marginals.
    item_level = D.compare(v1a, v2, n_options=N_OPTIONS, noise_pairs=noise, level="item", n_boot=500)
    marginal_d = pd.Series({i: _scipy_jsd(v1a.marginals[i], v2.marginals[i]) for i in ITEMS})
    assert item_level.summary["distance"] == pytest.approx(marginal_d.mean())
    assert item_level.summary["verdict"] == "changed"


def test_a_position_bias_change_moves_forms_but_not_item_marginals() -> None:
    # Two orders per item. P(option 0) ∝ content × (first_shown if option 0 is shown first, else 1 − first_shown).
    # v1: no position preference; v2: 0.9 for whatever is shown first. Same content preference (0.5), so the
    # item marginals (mean over both orders) are (0.5, 0.5) in both; each form moves from 0.5 to 0.9 / 0.1.
    def run(run_id: str, first_shown: float, content: float) -> D.RunData:
        rows = []
        for i in range(6):
            # order (0, 1): option 0 shown first; order (1, 0): option 1 shown first
            p01 = content * first_shown / (content * first_shown + (1 - content) * (1 - first_shown))
            p10 = content * (1 - first_shown) / (content * (1 - first_shown) + (1 - content) * first_shown)
            rows.append((f"q{i}", f"q{i}-01", 0, "ok", 0, [p01, 1 - p01]))
            rows.append((f"q{i}", f"q{i}-10", 0, "ok", 1, [p10, 1 - p10]))
        return D.prepare(run_id, _responses(rows))

    v1, v2 = run("a", 0.5, 0.5), run("b", 0.9, 0.5)  # same content preference, v2 now strongly position-biased
    n_opts = {f"q{i}": 2 for i in range(6)}
    noise = [(run("n1", 0.5, 0.5), run("n2", 0.5, 0.5))]
    assert D.compare(v1, v2, n_options=n_opts, noise_pairs=noise, level="item", n_boot=200).summary["verdict"] == "no change beyond noise"
    form = D.compare(v1, v2, n_options=n_opts, noise_pairs=noise, level="form", n_boot=200)
    assert form.summary["verdict"] == "changed"
    assert form.summary["distance"] == pytest.approx(_scipy_jsd([0.5, 0.5], [0.9, 0.1]))


def test_min_effect_raises_the_bar() -> None:
    v1a = _run("a", ITEMS, seed=1)
    noise = [(_run("n1", ITEMS, seed=3), _run("n2", ITEMS, seed=4))]
    v2 = _run("c", dict(ITEMS, q03=0.98, q04=0.02, q09=0.99), seed=5)
    result = D.compare(v1a, v2, n_options=N_OPTIONS, noise_pairs=noise, n_boot=300)
    assert result.summary["changed"]
    strict = D.compare(v1a, v2, n_options=N_OPTIONS, noise_pairs=noise, min_effect=result.summary["excess_ci_low"] + 0.01, n_boot=300)
    assert not strict.summary["changed"] and strict.summary["n_moved"] <= result.summary["n_moved"]


def test_compare_without_noise_floor_uses_the_paired_tests() -> None:
    v1a, v1b = _run("a", ITEMS, seed=1), _run("b", ITEMS, seed=2)
    assert D.compare(v1a, v1b, n_options=N_OPTIONS, n_boot=200).summary["verdict"] == "no change detected (no noise floor)"
    v2 = _run("c", dict(ITEMS, q03=0.98, q04=0.02), seed=5)
    result = D.compare(v1a, v2, n_options=N_OPTIONS, n_boot=200)
    assert result.summary["verdict"] == "changed (no noise floor)"
    moved = set(result.items[result.items["moved"]]["item_id"])
    assert moved <= set(ITEMS) and "q03" in moved


def test_identical_deterministic_runs_are_unchanged_even_with_a_zero_noise_floor() -> None:
    run = _run("a", ITEMS, seed=1)
    copy = D.prepare("b", run.responses.copy())
    result = D.compare(run, copy, n_options=N_OPTIONS, noise_pairs=[(run, copy)], n_boot=200)
    assert result.summary["distance"] == 0 and result.summary["verdict"] == "no change beyond noise"


def test_paired_tests_choose_mcnemar_stuart_maxwell_and_wilcoxon() -> None:
    a = _responses([("q", "t1", 0, "ok", 0, [1, 0, 0]), ("q", "t2", 0, "ok", 1, [0, 1, 0]), ("q", "t3", 0, "ok", 2, [0, 0, 1])])
    b = _responses([("q", "t1", 0, "ok", 1, [0, 1, 0]), ("q", "t2", 0, "ok", 2, [0, 0, 1]), ("q", "t3", 0, "ok", 2, [0, 0, 1])])
    sm = D.paired_tests(a, b, {"q": 3})
    assert sm["test"][0] == "stuart_maxwell" and sm["n_pairs"][0] == 3
    table = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 1]])
    assert sm["p_value"][0] == pytest.approx(D.stuart_maxwell(table)[2])
    values = {"q": np.array([1.0, 2.0, 3.0])}
    wx = D.paired_tests(a, b, {"q": 3}, metric="w1", values=values)
    assert wx["test"][0] == "wilcoxon"
    assert wx["p_value"][0] == pytest.approx(stats.wilcoxon([-1.0, -1.0]).pvalue)


def test_refusal_rate_series_is_kept_apart_from_the_answers() -> None:
    rows_a = [(f"q{i}", f"t{i}", 0, "ok", 0, [1.0, 0.0]) for i in range(10)]
    rows_b = [(f"q{i}", f"t{i}", 0, "refusal" if i < 5 else "ok", None if i < 5 else 0, None if i < 5 else [1.0, 0.0]) for i in range(10)]
    result = D.compare(D.prepare("a", _responses(rows_a)), D.prepare("b", _responses(rows_b)), n_options={f"q{i}": 2 for i in range(10)},
                       n_boot=300)
    s = result.summary
    assert s["n_items"] == 5 and s["distance"] == 0  # the answers of the answered items did not move
    assert (s["refusal_rate_a"], s["refusal_rate_b"]) == (0.0, 0.5)
    assert s["refusal_rate_diff"] == pytest.approx(0.5) and s["refusal_rate_diff_ci_low"] > 0 and s["refusal_rate_changed"]
    assert not s["invalid_rate_changed"]
