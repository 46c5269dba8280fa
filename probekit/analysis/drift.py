"""Longitudinal drift between two runs of one survey on one model (METRICS.md §8): pure functions.

Inputs are the stored answers of each run as a frame with one row per trial × sample (columns `item_id`,
`trial_id`, `sample_index`, `status`, `choice`, `dist`: what `AnalysisContext.responses()` returns):

- **per item**: a distance between the two runs' option distributions: JSD in bits (∈ [0, 1]), or
  Wasserstein-1 on the scale values when every option of the survey has one (ordinal Likert scales; in
  scale units). A form's distribution is the mean of its valid rows (p̂ in sample mode). Two levels:
  `form` (default): the mean over the item's forms (trials present in both runs) of the distance between
  the same form's distributions: the same prompt answered differently, position and wording effects
  included; `item`: the distance between the item marginals (the mean over its forms), i.e. a change of
  content preference only (with permuted orders, a change of position bias averages out);
- **per survey**: the mean distance over items with a 95 % bootstrap CI resampling items (all forms and
  samples of an item stay together);
- **noise floor**: the same distances between two runs of one snapshot; the *excess* of a pair is the
  per-item distance minus the per-item noise distance, averaged over items, with a bootstrap CI over items
  (the same resample for both terms). A pair has changed when the excess CI lies above 0;
- **paired tests per item** over the trials (forms × samples) both runs answered: McNemar (exact binomial)
  for two options, Stuart–Maxwell for k > 2 categories, Wilcoxon signed-rank on the per-form expected
  value for ordinal scales; p-values controlled for the false discovery rate across items by
  Benjamini–Hochberg;
- **refusal and format-failure rates** per run, and their difference with a bootstrap CI over items, kept
  apart from the answer distribution.

The store-facing side (which runs form which snapshot, loading) is probekit.analysis.snapshots.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from probekit.analysis.bootstrap import DEFAULT_RESAMPLES, mean_ci
from probekit.analysis.distributions import jsd

TOLERANCE = 1e-6
"""Distances below this are numerical noise (float sums in different batch layouts), not change."""
ALPHA = 0.05


# -- distances -------------------------------------------------------------------------------------------
def jsd_bits(p: ArrayLike, q: ArrayLike) -> float:
    """Jensen–Shannon divergence in bits between two distributions (∈ [0, 1])."""
    return float(jsd(np.asarray(p, dtype=float), np.asarray(q, dtype=float)))


def wasserstein1(p: ArrayLike, q: ArrayLike, values: ArrayLike) -> float:
    """Wasserstein-1 (earth mover's) distance between two distributions over the same scale values:
    ∫ |F_p − F_q| over the sorted values, in the scale's units."""
    v = np.asarray(values, dtype=float)
    order = np.argsort(v, kind="stable")
    v, p_sorted, q_sorted = v[order], np.asarray(p, dtype=float)[order], np.asarray(q, dtype=float)[order]
    cdf_gap = np.abs(np.cumsum(p_sorted) - np.cumsum(q_sorted))[:-1]
    return float((cdf_gap * np.diff(v)).sum())


# -- per run: forms, marginals, rates ----------------------------------------------------------------------
def trial_distributions(responses: pd.DataFrame) -> pd.DataFrame:
    """One row per trial: item_id, trial_id, dist (mean of the valid rows' distributions; None when no
    row is valid), n_rows, n_ok, n_refusal, n_invalid, n_error."""
    rows = []
    for (item_id, trial_id), group in responses.groupby(["item_id", "trial_id"], sort=True):
        valid = [np.asarray(d, dtype=float) for s, d in zip(group["status"], group["dist"]) if s == "ok" and d is not None]
        status = group["status"]
        rows.append({
            "item_id": item_id, "trial_id": trial_id, "dist": np.mean(valid, axis=0) if valid else None,
            "n_rows": len(group), "n_ok": len(valid), "n_refusal": int((status == "refusal").sum()),
            "n_invalid": int(((status == "invalid") | ((status == "ok") & group["dist"].isna())).sum()),
            "n_error": int((status == "error").sum()),
        })
    return pd.DataFrame(rows, columns=["item_id", "trial_id", "dist", "n_rows", "n_ok", "n_refusal", "n_invalid", "n_error"])


def item_marginals(responses: pd.DataFrame) -> dict[str, NDArray[np.float64]]:
    """item id → the mean over its forms (trials with a valid answer) of the form distributions."""
    trials = trial_distributions(responses)
    out: dict[str, NDArray[np.float64]] = {}
    for item_id, group in trials.groupby("item_id", sort=True):
        dists = [d for d in group["dist"] if d is not None]
        if dists:
            out[str(item_id)] = np.mean(np.vstack(dists), axis=0)
    return out


def item_rates(responses: pd.DataFrame) -> pd.DataFrame:
    """Per item: rows (errors excluded: an error is no answer of the model), refusals, invalid answers
    (format failures), errors, and the rates refusal / rows and invalid / rows."""
    status = responses["status"]
    frame = pd.DataFrame({
        "item_id": responses["item_id"].astype(str),
        "answered": (status != "error").astype(int),
        "refusal": (status == "refusal").astype(int),
        "invalid": ((status == "invalid") | ((status == "ok") & responses["dist"].isna())).astype(int),
        "error": (status == "error").astype(int),
    })
    per_item = frame.groupby("item_id", sort=True).sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        per_item["refusal_rate"] = per_item["refusal"] / per_item["answered"]
        per_item["invalid_rate"] = per_item["invalid"] / per_item["answered"]
    return per_item.reset_index()


def _distance(p: NDArray[np.float64], q: NDArray[np.float64], metric: str, values: NDArray[np.float64] | None) -> float:
    if metric == "w1":
        if values is None:
            raise ValueError("the w1 metric needs the scale values of every item")
        return wasserstein1(p, q, values)
    if metric == "jsd":
        return jsd_bits(p, q)
    raise ValueError(f"unknown distance {metric!r}: use jsd or w1")


def item_distances(a: dict[str, NDArray[np.float64]], b: dict[str, NDArray[np.float64]], metric: str = "jsd",
                   values: dict[str, NDArray[np.float64]] | None = None) -> pd.Series:
    """Distance between the item marginals, per item present in both runs (index: item id, sorted)."""
    common = sorted(set(a) & set(b))
    data = [_distance(a[i], b[i], metric, values[i] if values is not None else None) for i in common]
    return pd.Series(data, index=pd.Index(common, name="item_id"), dtype=float)


def form_distances(a: dict[str, tuple[str, NDArray[np.float64]]], b: dict[str, tuple[str, NDArray[np.float64]]], metric: str = "jsd",
                   values: dict[str, NDArray[np.float64]] | None = None) -> pd.Series:
    """Per item, the mean over its forms answered in both runs of the distance between the same form's
    distributions. `a`, `b`: trial id → (item id, form distribution) (`form_distributions`)."""
    per_item: dict[str, list[float]] = {}
    for trial_id in sorted(set(a) & set(b)):
        item_id, p = a[trial_id]
        per_item.setdefault(item_id, []).append(_distance(p, b[trial_id][1], metric, values[item_id] if values is not None else None))
    common = sorted(per_item)
    return pd.Series([float(np.mean(per_item[i])) for i in common], index=pd.Index(common, name="item_id"), dtype=float)


def form_distributions(responses: pd.DataFrame) -> dict[str, tuple[str, NDArray[np.float64]]]:
    """trial id → (item id, the form's distribution) for forms with a valid answer."""
    trials = trial_distributions(responses)
    return {str(t): (str(i), d) for t, i, d in zip(trials["trial_id"], trials["item_id"], trials["dist"]) if d is not None}


LEVELS = ("form", "item")


# -- paired tests ------------------------------------------------------------------------------------------
def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts b (0→1) and c (1→0): the binomial test
    of b successes in b + c trials with p = ½ (1 when there is no discordant pair)."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    return float(min(1.0, 2.0 * stats.binom.cdf(k, n, 0.5)))


def stuart_maxwell(table: ArrayLike) -> tuple[float, int, float]:
    """Stuart–Maxwell test of marginal homogeneity for a k × k table of paired categories (rows: run A,
    columns: run B). Returns (χ², degrees of freedom, p). d = row − column margins of the first k − 1
    categories, S their covariance (S_ii = n_i. + n_.i − 2 n_ii, S_ij = −(n_ij + n_ji)), χ² = dᵀ S⁻¹ d.
    Categories nobody chose in either run are dropped; a singular S (e.g. no discordant pairs) uses its
    pseudo-inverse with df = rank."""
    n = np.asarray(table, dtype=float)
    used = (n.sum(axis=0) + n.sum(axis=1)) > 0
    n = n[np.ix_(used, used)]
    k = n.shape[0]
    if k < 2:
        return (0.0, 0, 1.0)
    d = (n.sum(axis=1) - n.sum(axis=0))[: k - 1]
    s = -(n + n.T)
    np.fill_diagonal(s, n.sum(axis=1) + n.sum(axis=0) - 2 * np.diag(n))
    s = s[: k - 1, : k - 1]
    rank = int(np.linalg.matrix_rank(s))
    if rank == 0:
        return (0.0, 0, 1.0)
    chi2 = float(d @ np.linalg.pinv(s) @ d)
    return (chi2, rank, float(stats.chi2.sf(chi2, rank)))


def wilcoxon_p(x: ArrayLike, y: ArrayLike) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired values (zero differences dropped; 1 when every
    difference is zero)."""
    diff = np.asarray(x, dtype=float) - np.asarray(y, dtype=float)
    diff = diff[np.isfinite(diff)]
    if not np.any(np.abs(diff) > TOLERANCE):
        return 1.0
    return float(stats.wilcoxon(diff[np.abs(diff) > TOLERANCE]).pvalue)


def benjamini_hochberg(p_values: ArrayLike) -> NDArray[np.float64]:
    """Benjamini–Hochberg adjusted p-values (q-values): q_(i) = min_{j ≥ i} m p_(j) / j, capped at 1;
    NaN entries stay NaN and do not count in m."""
    p = np.asarray(p_values, dtype=float)
    q = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = finite.size
    if m == 0:
        return q
    order = finite[np.argsort(p[finite], kind="stable")]
    scaled = p[order] * m / np.arange(1, m + 1)
    q[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return q


def _paired_choices(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Rows answered validly in both runs, paired by trial and sample index: item_id, choice_a, choice_b."""
    keep = ["item_id", "trial_id", "sample_index", "choice"]
    left = a[(a["status"] == "ok") & a["choice"].notna()][keep]
    right = b[(b["status"] == "ok") & b["choice"].notna()][keep]
    merged = left.merge(right, on=["item_id", "trial_id", "sample_index"], suffixes=("_a", "_b"))
    return merged.astype({"choice_a": int, "choice_b": int})


def _paired_expectations(a: pd.DataFrame, b: pd.DataFrame, values: dict[str, NDArray[np.float64]]) -> pd.DataFrame:
    """Per trial answered in both runs: the expected scale value of its form distribution in each run."""
    ta, tb = trial_distributions(a), trial_distributions(b)
    merged = ta[ta["dist"].notna()].merge(tb[tb["dist"].notna()], on=["item_id", "trial_id"], suffixes=("_a", "_b"))
    merged["e_a"] = [float(np.dot(d, values[str(i)])) for i, d in zip(merged["item_id"], merged["dist_a"])]
    merged["e_b"] = [float(np.dot(d, values[str(i)])) for i, d in zip(merged["item_id"], merged["dist_b"])]
    return merged[["item_id", "trial_id", "e_a", "e_b"]]


def paired_tests(a: pd.DataFrame, b: pd.DataFrame, n_options: dict[str, int], metric: str = "jsd",
                 values: dict[str, NDArray[np.float64]] | None = None) -> pd.DataFrame:
    """Per item: the paired test of METRICS §8 between runs a and b. Columns item_id, test (mcnemar |
    stuart_maxwell | wilcoxon), n_pairs, statistic, p_value (NaN when no pair)."""
    rows: list[dict[str, Any]] = []
    if metric == "w1":
        assert values is not None
        pairs = _paired_expectations(a, b, values)
        for item_id in sorted(n_options):
            group = pairs[pairs["item_id"].astype(str) == item_id]
            diff = (group["e_a"] - group["e_b"]).to_numpy()
            rows.append({"item_id": item_id, "test": "wilcoxon", "n_pairs": len(group),
                         "statistic": float(np.mean(diff)) if len(group) else math.nan,
                         "p_value": wilcoxon_p(group["e_a"], group["e_b"]) if len(group) else math.nan})
        return pd.DataFrame(rows)
    pairs = _paired_choices(a, b)
    for item_id in sorted(n_options):
        group = pairs[pairs["item_id"].astype(str) == item_id]
        k = n_options[item_id]
        if group.empty:
            rows.append({"item_id": item_id, "test": "mcnemar" if k == 2 else "stuart_maxwell", "n_pairs": 0,
                         "statistic": math.nan, "p_value": math.nan})
            continue
        table = np.zeros((k, k))
        np.add.at(table, (group["choice_a"].to_numpy(), group["choice_b"].to_numpy()), 1)
        if k == 2:
            b01, c10 = int(table[0, 1]), int(table[1, 0])
            rows.append({"item_id": item_id, "test": "mcnemar", "n_pairs": len(group), "statistic": float(b01 - c10),
                         "p_value": mcnemar_exact(b01, c10)})
        else:
            chi2, _df, p = stuart_maxwell(table)
            rows.append({"item_id": item_id, "test": "stuart_maxwell", "n_pairs": len(group), "statistic": chi2, "p_value": p})
    return pd.DataFrame(rows)


# -- one comparison ----------------------------------------------------------------------------------------
@dataclass
class RunData:
    """What drift needs of one run: its answers and per-item summaries (built by `prepare`)."""

    run_id: str
    responses: pd.DataFrame
    marginals: dict[str, NDArray[np.float64]]
    rates: pd.DataFrame
    forms: dict[str, tuple[str, NDArray[np.float64]]] = field(default_factory=dict)

    def distances(self, other: RunData, level: str = "form", metric: str = "jsd",
                  values: dict[str, NDArray[np.float64]] | None = None) -> pd.Series:
        """Per-item distance from this run to `other` at `level` (form | item)."""
        if level == "form":
            return form_distances(self.forms, other.forms, metric, values)
        if level == "item":
            return item_distances(self.marginals, other.marginals, metric, values)
        raise ValueError(f"unknown level {level!r}: use form or item")


def prepare(run_id: str, responses: pd.DataFrame) -> RunData:
    """Form distributions, per-item marginals and rates of one run's answers."""
    return RunData(run_id, responses, item_marginals(responses), item_rates(responses), form_distributions(responses))


@dataclass
class Comparison:
    """Two runs compared: per-item table and survey-level numbers (see `compare`)."""

    items: pd.DataFrame
    """Per item: distance, noise, excess, moved, test, n_pairs, p_value, q_value, significant, marginals."""
    summary: dict[str, Any] = field(default_factory=dict)
    """distance, distance_ci_low/high, noise_floor (+ CI), excess (+ CI), n_items, n_moved, n_significant,
    verdict, changed, rates of both runs and their differences."""


def noise_distances(pairs: Sequence[tuple[RunData, RunData]], metric: str,
                    values: dict[str, NDArray[np.float64]] | None, level: str = "form") -> pd.Series:
    """Per item, the mean distance over the noise pairs (repeated runs of one snapshot) that have it."""
    if not pairs:
        return pd.Series(dtype=float)
    frames = [x.distances(y, level, metric, values) for x, y in pairs]
    return pd.concat(frames, axis=1).mean(axis=1, skipna=True)


def noise_threshold(pairs: Sequence[tuple[RunData, RunData]], metric: str,
                    values: dict[str, NDArray[np.float64]] | None, quantile: float = 0.95, level: str = "form") -> float:
    """The distance an item reaches by noise alone: this quantile of all per-item noise distances (over
    every noise pair), at least TOLERANCE."""
    if not pairs:
        return TOLERANCE
    pooled = np.concatenate([x.distances(y, level, metric, values).to_numpy() for x, y in pairs])
    pooled = pooled[np.isfinite(pooled)]
    return max(TOLERANCE, float(np.quantile(pooled, quantile))) if pooled.size else TOLERANCE


def _rate_summary(a: RunData, b: RunData, n_boot: int, seed: int) -> dict[str, Any]:
    """Refusal and format-failure rates of both runs and their per-item difference (b − a) with a CI over
    the items both runs asked (whether or not they got a valid answer)."""
    out: dict[str, Any] = {}
    ra, rb = a.rates.set_index("item_id"), b.rates.set_index("item_id")
    common = sorted(set(ra.index) & set(rb.index))
    for name in ("refusal_rate", "invalid_rate"):
        for tag, rates in (("a", ra), ("b", rb)):
            total = rates["answered"].sum()
            out[f"{name}_{tag}"] = float(rates[name.removesuffix("_rate")].sum() / total) if total else math.nan
        diff = (rb.reindex(common)[name] - ra.reindex(common)[name]).to_numpy(dtype=float)
        estimate, low, high = mean_ci(diff, n_boot=n_boot, seed=seed)
        out[f"{name}_diff"], out[f"{name}_diff_ci_low"], out[f"{name}_diff_ci_high"] = estimate, low, high
        out[f"{name}_changed"] = bool(np.isfinite(low) and (low > TOLERANCE or high < -TOLERANCE))
    return out


def excess_ci(distance: ArrayLike, noise: ArrayLike, *, n_boot: int = DEFAULT_RESAMPLES, seed: int = 0) -> tuple[float, float, float]:
    """mean(distance − noise) over items with a bootstrap CI resampling items (one resample for both)."""
    d = np.asarray(distance, dtype=float) - np.asarray(noise, dtype=float)
    return mean_ci(d, n_boot=n_boot, seed=seed)


def check_drift_settings(*, alpha: float = ALPHA, n_boot: int = DEFAULT_RESAMPLES, min_effect: float = 0.0) -> None:
    """ValueError naming the option when a drift setting cannot give a meaningful answer: the false discovery
    rate must be in (0, 1), at least one bootstrap resample is needed for a CI, and the smallest effect that
    counts is a finite distance >= 0."""
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise ValueError(f"--alpha {alpha}: the false discovery rate must be between 0 and 1 (exclusive), e.g. 0.05")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"--n-boot {n_boot}: the 95% CIs need at least 1 bootstrap resample (1000 is the default)")
    if not (isinstance(min_effect, (int, float)) and math.isfinite(min_effect) and min_effect >= 0):
        raise ValueError(f"--min-effect {min_effect}: the smallest excess distance that counts must be a number >= 0")


def compare(a: RunData, b: RunData, *, n_options: dict[str, int], metric: str = "jsd", level: str = "form",
            values: dict[str, NDArray[np.float64]] | None = None, noise_pairs: Sequence[tuple[RunData, RunData]] = (),
            alpha: float = ALPHA, min_effect: float = 0.0, n_boot: int = DEFAULT_RESAMPLES, seed: int = 0) -> Comparison:
    """Compare run b with run a. The verdict:

    - with a noise floor (≥ 1 pair of repeated runs of one snapshot): "changed" when the lower end of the
      95 % CI of the mean excess distance (distance − noise, per item) is above `min_effect` (at least
      TOLERANCE); else "no change beyond noise";
    - without one: "changed" when some item's paired test is significant after Benjamini–Hochberg at
      `alpha`, else "no change detected"; both marked "(no noise floor)".

    Items *moved* when their distance exceeds what noise reaches (`noise_threshold`: the 95th percentile
    of the per-item noise distances, and at least `min_effect`) and their marginal distribution moved by more
    than TOLERANCE (and `min_effect`), or, without a noise floor, when their test
    is significant."""
    check_drift_settings(alpha=alpha, n_boot=n_boot, min_effect=min_effect)
    distance = a.distances(b, level, metric, values)
    common = list(distance.index)
    noise = noise_distances(noise_pairs, metric, values, level).reindex(common) if noise_pairs else pd.Series(np.nan, index=distance.index)
    threshold = max(noise_threshold(noise_pairs, metric, values, level=level), min_effect)
    tests = paired_tests(a.responses, b.responses, {i: n_options[i] for i in common if i in n_options}, metric, values)
    items = pd.DataFrame({"item_id": common, "distance": distance.to_numpy(), "noise": noise.to_numpy()})
    items["excess"] = items["distance"] - items["noise"]
    if not tests.empty:
        items = items.merge(tests, on="item_id", how="left")
        items["q_value"] = benjamini_hochberg(items["p_value"].to_numpy(dtype=float))
    else:
        items["test"], items["n_pairs"], items["statistic"], items["p_value"], items["q_value"] = None, 0, np.nan, np.nan, np.nan
    items["significant"] = items["q_value"] < alpha
    has_noise = bool(noise_pairs) and bool(np.isfinite(items["noise"]).any())
    # An item moved only when its answer distribution (the marginal a reader sees, "from [..] to [..]") moved too: with
    # a deterministic model the noise floor is exactly 0, and per-form differences that cancel in the marginal (or a
    # float wobble) would otherwise list items "moved" from [0.50, 0.50] to [0.50, 0.50] with p = 1.
    marginal = (a.distances(b, "item", metric, values).reindex(common).to_numpy(dtype=float) if level == "form"
                else items["distance"].to_numpy(dtype=float))
    marginal_moved = np.nan_to_num(marginal, nan=0.0) > max(TOLERANCE, min_effect)
    items["moved"] = ((items["distance"] > threshold) & marginal_moved) if has_noise else items["significant"]
    items["marginal_a"] = [a.marginals.get(i) for i in common]
    items["marginal_b"] = [b.marginals.get(i) for i in common]
    items = items.sort_values(["moved", "excess" if has_noise else "distance"], ascending=False, kind="stable").reset_index(drop=True)

    dist_est, dist_low, dist_high = mean_ci(items["distance"], n_boot=n_boot, seed=seed)
    summary: dict[str, Any] = {"metric": metric, "level": level, "min_effect": min_effect, "n_items": len(common), "distance": dist_est,
                               "distance_ci_low": dist_low, "distance_ci_high": dist_high,
                               "n_noise_pairs": len(noise_pairs), "noise_threshold": threshold if has_noise else math.nan}
    n_significant = int(items["significant"].sum())
    if has_noise:
        noise_est, noise_low, noise_high = mean_ci(items["noise"], n_boot=n_boot, seed=seed)
        ex, ex_low, ex_high = excess_ci(items["distance"], items["noise"], n_boot=n_boot, seed=seed)
        changed = bool(np.isfinite(ex_low) and ex_low > max(TOLERANCE, min_effect))
        verdict = "changed" if changed else "no change beyond noise"
    else:
        noise_est = noise_low = noise_high = ex = ex_low = ex_high = math.nan
        changed = n_significant > 0
        verdict = ("changed" if changed else "no change detected") + " (no noise floor)"
    summary.update({"noise_floor": noise_est, "noise_floor_ci_low": noise_low, "noise_floor_ci_high": noise_high,
                    "excess": ex, "excess_ci_low": ex_low, "excess_ci_high": ex_high,
                    "n_moved": int(items["moved"].sum()), "n_significant": n_significant, "alpha": alpha,
                    "changed": changed, "verdict": verdict})
    summary.update(_rate_summary(a, b, n_boot, seed))
    return Comparison(items=items, summary=summary)

