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


def count_blocks(n_clusters: int, n_boot: int = DEFAULT_RESAMPLES, seed: int = 0, chunk_cells: int = 4_000_000):
    """Yield blocks of W (resamples × clusters): W[b, i] = times cluster i is drawn in resample b.

    Seeded; blocks bound the memory (≈ chunk_cells floats) however many items there are."""
    rng = np.random.default_rng(seed)
    per_block = max(1, chunk_cells // max(1, n_clusters))
    done = 0
    while done < n_boot:
        size = min(per_block, n_boot - done)
        idx = rng.integers(0, n_clusters, size=(size, n_clusters))
        flat = (idx + n_clusters * np.arange(size)[:, None]).ravel()
        yield np.bincount(flat, minlength=size * n_clusters).reshape(size, n_clusters).astype(float)
        done += size


def resample_counts(n_clusters: int, n_boot: int = DEFAULT_RESAMPLES, seed: int = 0) -> NDArray[np.float64]:
    """The whole W matrix (resamples × clusters; each row sums to n_clusters). For small tables."""
    if n_clusters == 0:
        return np.zeros((n_boot, 0))
    return np.vstack(list(count_blocks(n_clusters, n_boot, seed)))


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
        replicates = np.concatenate([f(w @ num, w @ den) for w in count_blocks(num.size, n_boot, seed)])
    low, high = percentile_interval(replicates)
    return (estimate, low, high)


def mean_cis(values: ArrayLike, *, n_boot: int = DEFAULT_RESAMPLES, seed: int = 0) -> NDArray[np.float64]:
    """Means of several per-item columns (items × columns, NaN = missing) with CIs from one shared set
    of item resamples. Returns columns × (estimate, low, high)."""
    arr = np.atleast_2d(np.asarray(values, dtype=float))
    if arr.shape[0] == 0:
        return np.full((arr.shape[1], 3), np.nan)
    finite = np.isfinite(arr)
    num, den = np.where(finite, arr, 0.0), finite.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        estimate = num.sum(axis=0) / den.sum(axis=0)
        reps = np.vstack([(w @ num) / (w @ den) for w in count_blocks(arr.shape[0], n_boot, seed)])
    out = np.empty((arr.shape[1], 3))
    for j in range(arr.shape[1]):
        out[j] = (estimate[j], *percentile_interval(reps[:, j]))
    return out


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
