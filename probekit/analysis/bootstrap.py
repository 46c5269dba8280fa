"""Seeded bootstrap confidence intervals, clustered by item (METRICS.md §9).

Rows of one item (its forms, samples or runs) are not independent, so the unit resampled is the item.
Most headline numbers are ratios of per-item sums (a mean over rows, a share, a difference over a
total), so the bootstrap draws one matrix of item multiplicities W (resamples × items) and evaluates
every resample as W @ per-item sums: 1,000 resamples cost one matrix product, not 1,000 group-bys.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

DEFAULT_RESAMPLES = 1000
LEVEL = 0.95


def resample_counts(n_clusters: int, n_boot: int = DEFAULT_RESAMPLES, seed: int = 0) -> NDArray[np.float64]:
    """W[b, i] = how many times cluster i is drawn in resample b (each row sums to n_clusters)."""
    rng = np.random.default_rng(seed)
    if n_clusters == 0:
        return np.zeros((n_boot, 0))
    return rng.multinomial(n_clusters, np.full(n_clusters, 1.0 / n_clusters), size=n_boot).astype(float)


def percentile_interval(samples: ArrayLike, level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates, ignoring replicates that are undefined (NaN)."""
    arr = np.asarray(samples, dtype=float)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return (float("nan"), float("nan"))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(arr, [tail, 100 - tail])
    return (float(low), float(high))


def ratio_ci(
    numerators: ArrayLike,
    denominators: ArrayLike,
    *,
    n_boot: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    transform: Callable[[NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]] | None = None,
) -> tuple[float, float, float]:
    """Estimate and CI of Σ num / Σ den with items (entries) as clusters.

    A mean over items is ratio_ci(values, ones); a mean over rows with several rows per item is
    ratio_ci(per-item sums, per-item counts). `transform(num_sums, den_sums)` replaces the ratio for
    statistics such as 100 · (sel − neg) / (sel + neg) (then pass sel − neg and sel + neg).
    """
    num = np.asarray(numerators, dtype=float)
    den = np.asarray(denominators, dtype=float)
    f = transform or (lambda a, b: a / b)
    with np.errstate(invalid="ignore", divide="ignore"):
        estimate = float(f(np.array([num.sum()]), np.array([den.sum()]))[0]) if den.size else float("nan")
        if num.size == 0:
            return (estimate, float("nan"), float("nan"))
        weights = resample_counts(num.size, n_boot, seed)
        replicates = f(weights @ num, weights @ den)
    low, high = percentile_interval(replicates)
    return (estimate, low, high)


def mean_ci(values: ArrayLike, *, n_boot: int = DEFAULT_RESAMPLES, seed: int = 0) -> tuple[float, float, float]:
    """Mean of per-item values (NaN entries dropped) with a bootstrap CI over items."""
    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return (float("nan"), float("nan"), float("nan"))
    return ratio_ci(arr, np.ones_like(arr), n_boot=n_boot, seed=seed)


def clustered_mean_ci(
    values: ArrayLike, clusters: Sequence[object] | ArrayLike, *, n_boot: int = DEFAULT_RESAMPLES, seed: int = 0
) -> tuple[float, float, float]:
    """Mean over rows, resampling whole clusters (items): several rows per item stay together."""
    arr = np.asarray(values, dtype=float)
    keys = np.asarray(clusters, dtype=object)
    keep = np.isfinite(arr)
    arr, keys = arr[keep], keys[keep]
    if arr.size == 0:
        return (float("nan"), float("nan"), float("nan"))
    _, codes = np.unique(keys.astype(str), return_inverse=True)
    sums = np.bincount(codes, weights=arr)
    counts = np.bincount(codes).astype(float)
    return ratio_ci(sums, counts, n_boot=n_boot, seed=seed)


def statistic_ci(
    n_clusters: int,
    statistic: Callable[[NDArray[np.int64]], float],
    *,
    n_boot: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """CI of any statistic of a cluster resample: `statistic(indices)` gets the drawn cluster indices
    (with repeats). For non-linear statistics (Cronbach's α, a standard deviation) on small tables."""
    if n_clusters == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    replicates = np.array([statistic(rng.integers(0, n_clusters, n_clusters)) for _ in range(n_boot)], dtype=float)
    return percentile_interval(replicates)
