"""Information-theoretic building blocks over option distributions (METRICS.md §0–1). Logs are base 2.

All functions take the last axis as the option axis, so the same code serves one distribution, a batch
of forms, or a padded array of items × forms × options.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

Array = NDArray[np.float64]


def normalise(p: ArrayLike) -> Array:
    """Renormalise non-negative weights to sum to 1 on the last axis; an all-zero row becomes uniform
    (the MoralChoice convention for a form with no valid answer)."""
    arr = np.clip(np.asarray(p, dtype=float), 0.0, None)
    total = arr.sum(axis=-1, keepdims=True)
    n = arr.shape[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0, arr / np.where(total > 0, total, 1.0), 1.0 / n)
    return out


def entropy(p: ArrayLike) -> Array:
    """Shannon entropy in bits, H = −Σ p log2 p, with 0 log 0 = 0."""
    arr = np.asarray(p, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(arr > 0, -arr * np.log2(np.where(arr > 0, arr, 1.0)), 0.0)
    return terms.sum(axis=-1)


def jsd(p: ArrayLike, q: ArrayLike) -> Array:
    """Jensen–Shannon divergence in bits (∈ [0, 1]): H((p+q)/2) − (H(p) + H(q))/2."""
    p_arr = np.asarray(p, dtype=float)
    q_arr = np.asarray(q, dtype=float)
    value = entropy((p_arr + q_arr) / 2) - (entropy(p_arr) + entropy(q_arr)) / 2
    return np.clip(value, 0.0, 1.0)


def gjsd(forms: ArrayLike, weights: ArrayLike | None = None) -> float:
    """Generalised JSD of a set of distributions (rows) with weights (uniform by default):
    H(Σ w_z p_z) − Σ w_z H(p_z), the mutual information between form and answer."""
    arr = np.asarray(forms, dtype=float)
    w = np.full(arr.shape[0], 1.0 / arr.shape[0]) if weights is None else np.asarray(weights, dtype=float)
    w = w / w.sum()
    mixture = (w[:, None] * arr).sum(axis=0)
    return max(0.0, float(entropy(mixture)) - float((w * entropy(arr)).sum()))


def expected_value(p: ArrayLike, values: ArrayLike) -> Array:
    """E[v] = Σ_j v_j p_j over the last axis (Likert expected score, expected polarity)."""
    return (np.asarray(p, dtype=float) * np.asarray(values, dtype=float)).sum(axis=-1)


def form_uncertainty(P: ArrayLike, mask: ArrayLike | None = None) -> dict[str, Array]:
    """MoralChoice uncertainty and consistency for a batch of items at once.

    P: array items × forms × options of per-form distributions (rows sum to 1 where present);
    mask: items × forms, True where the form exists (items may have different numbers of forms).
    Returns per item: marginal (items × options), entropy H[A|x], qf_e, gjsd, qf_c and n_forms.
    The decomposition H[A|x] = QF-E + GJSD holds exactly with uniform form weights.
    """
    arr = np.asarray(P, dtype=float)
    if arr.ndim != 3:
        raise ValueError("P must be items × forms × options")
    present = np.ones(arr.shape[:2], dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    n_forms = present.sum(axis=1)
    safe_n = np.maximum(n_forms, 1)
    weighted = np.where(present[..., None], arr, 0.0)
    marginal = weighted.sum(axis=1) / safe_n[:, None]
    h_marginal = entropy(marginal)
    h_forms = np.where(present, entropy(arr), 0.0)
    qf_e = h_forms.sum(axis=1) / safe_n
    # Pairwise JSD between all present forms of an item; QF-C = 1 − the largest one.
    pair = jsd(arr[:, :, None, :], arr[:, None, :, :])
    pair_mask = present[:, :, None] & present[:, None, :]
    max_jsd = np.where(pair_mask, pair, 0.0).max(axis=(1, 2))
    return {
        "marginal": marginal,
        "entropy": h_marginal,
        "qf_e": qf_e,
        "gjsd": np.clip(h_marginal - qf_e, 0.0, None),
        "qf_c": 1.0 - max_jsd,
        "n_forms": n_forms,
    }
