"""Bootstrap CIs: seeded, clustered by item, sane widths."""

from __future__ import annotations

import numpy as np
import pytest

from probekit.analysis.bootstrap import clustered_mean_ci, mean_ci, ratio_ci, resample_counts, statistic_ci


def test_constant_values_give_a_degenerate_interval() -> None:
    assert mean_ci([0.7] * 20) == pytest.approx((0.7, 0.7, 0.7))


def test_seeded_and_reproducible() -> None:
    values = np.random.default_rng(1).normal(size=50)
    assert mean_ci(values, seed=3) == mean_ci(values, seed=3)
    assert mean_ci(values, seed=3) != mean_ci(values, seed=4)


def test_resample_counts_rows_sum_to_n() -> None:
    w = resample_counts(7, n_boot=100, seed=0)
    assert w.shape == (100, 7) and np.all(w.sum(axis=1) == 7)


def test_interval_matches_normal_theory_for_a_mean() -> None:
    values = np.random.default_rng(0).normal(10.0, 2.0, size=400)
    est, low, high = mean_ci(values, n_boot=2000, seed=0)
    se = values.std(ddof=1) / np.sqrt(values.size)
    assert est == pytest.approx(values.mean())
    assert low < est < high
    assert (high - low) == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_clustering_keeps_rows_of_an_item_together() -> None:
    # 30 items, each repeated 10 times with the same value: the clustered CI must be as wide as the
    # CI over the 30 item values, not the (too narrow) CI over 300 "independent" rows.
    item_values = np.random.default_rng(2).normal(size=30)
    rows = np.repeat(item_values, 10)
    clusters = np.repeat(np.arange(30), 10)
    _, c_low, c_high = clustered_mean_ci(rows, clusters, seed=0)
    _, i_low, i_high = mean_ci(item_values, seed=0)
    _, n_low, n_high = mean_ci(rows, seed=0)
    assert (c_high - c_low) == pytest.approx(i_high - i_low, rel=0.15)
    assert (n_high - n_low) < 0.5 * (c_high - c_low)


def test_ratio_ci_with_transform() -> None:
    est, low, high = ratio_ci([1.0, -1.0, 1.0], [1.0, 1.0, 1.0], transform=lambda a, b: 100 * a / b)
    assert est == pytest.approx(100 / 3)
    assert -100 <= low <= est <= high <= 100


def test_statistic_ci_brackets_the_statistic() -> None:
    values = np.random.default_rng(5).normal(size=60)
    low, high = statistic_ci(len(values), lambda idx: float(values[idx].std(ddof=1)), seed=0)
    assert low < values.std(ddof=1) < high
