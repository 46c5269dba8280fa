"""Calibration of multiple-choice predictions against gold answers (METRICS.md §3, last point).

- ECE: expected calibration error with 10 equal-width confidence bins over [0, 1]; confidence = the
  probability of the predicted (argmax) option; ECE = Σ_b (n_b / N) · |accuracy_b − mean confidence_b|.
  A confidence of exactly 1.0 falls in the last bin.
- Brier score: the multi-class form of Brier (1950), mean over predictions of Σ_k (p_k − y_k)², in [0, 2];
  lower is better. (The one-number "confidence vs correct" variant is not used because it ignores how the
  remaining mass is spread.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

N_BINS = 10


@dataclass(frozen=True)
class Calibration:
    """Calibration summary of a set of predictions."""

    n: int
    accuracy: float
    mean_confidence: float
    ece: float
    brier: float


def ece(confidence: Sequence[float], correct: Sequence[bool], n_bins: int = N_BINS) -> float:
    """Expected calibration error with `n_bins` equal-width bins (confidence in [0, 1])."""
    conf = np.asarray(confidence, dtype=float)
    hit = np.asarray(correct, dtype=float)
    if conf.size == 0:
        return float("nan")
    # Bin b holds (b/n, (b+1)/n]; the first also holds 0 and the last 1.0.
    bins = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            total += mask.sum() / conf.size * abs(hit[mask].mean() - conf[mask].mean())
    return float(total)


def brier(distributions: Sequence[np.ndarray], gold: Sequence[int]) -> float:
    """Multi-class Brier score: mean Σ_k (p_k − 1[k = gold])²."""
    if len(distributions) == 0:
        return float("nan")
    scores = []
    for dist, g in zip(distributions, gold):
        p = np.asarray(dist, dtype=float)
        target = np.zeros_like(p)
        target[int(g)] = 1.0
        scores.append(float(np.sum((p - target) ** 2)))
    return float(np.mean(scores))


def calibration(distributions: Sequence[np.ndarray], gold: Sequence[int], n_bins: int = N_BINS) -> Calibration:
    """Accuracy, mean confidence, ECE and Brier of canonical distributions against gold indices."""
    dists = [np.asarray(d, dtype=float) for d in distributions]
    confidence = [float(d.max()) for d in dists]
    correct = [int(np.argmax(d)) == int(g) for d, g in zip(dists, gold)]
    return Calibration(
        n=len(dists),
        accuracy=float(np.mean(correct)) if dists else float("nan"),
        mean_confidence=float(np.mean(confidence)) if dists else float("nan"),
        ece=ece(confidence, correct, n_bins),
        brier=brier(dists, gold),
    )
