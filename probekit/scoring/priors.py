"""PriDe position priors: estimating an option-position prior from cyclic rotations and debiasing with it
(Zheng et al., ICLR 2024; METRICS.md §3). Pure functions over distributions, plus the two steps a run takes
(probekit.pipeline): the prior of a finished permuted run, estimated from its stored results, and the prior a
`--prior-from RUN` run copies. Both only compute: the run records the rows through its recorder. The
analysis tables over these functions are probekit.analysis.pride and probekit.analysis.selection.

Model: P_obs(position i | q, order) ∝ P_prior(i) · P_content(option shown at i).
1. On a calibration fraction α of the items, every cyclic rotation is run; per item
   P_prior(i | q) = softmax_i( mean over rotations of log P_obs(i | q, rotation) )
   (the content term cancels because every option visits every position once).
2. The global prior is the mean of the per-item priors.
3. Every other item is asked once; pred = argmax_i [ log P_obs(i) − log P_prior(i) ].

All functions work in *shown-position* space: `shown[k]` is the probability of the label at position k.
The store keeps distributions in canonical order, so `shown = dist[order]` (see `to_shown`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from probekit.backends import stored_model_name
from probekit.survey.permutations import _stable_unit, cyclic_orders

if TYPE_CHECKING:
    from probekit.store.store import Store

EPS = 1e-12  # floor for log of a probability the model gave (almost) none: keeps logs finite
DEFAULT_ALPHA = 0.05


def to_shown(dist_canonical: np.ndarray, order: Sequence[int]) -> np.ndarray:
    """Canonical distribution → probabilities per shown position (order[k] is shown at k)."""
    return np.asarray(dist_canonical, dtype=float)[list(order)]


def to_canonical(shown: np.ndarray, order: Sequence[int]) -> np.ndarray:
    """Per-position values → canonical option order."""
    canonical = np.empty(len(order), dtype=float)
    canonical[list(order)] = shown
    return canonical


def _log(p: np.ndarray) -> np.ndarray:
    return np.log(np.clip(np.asarray(p, dtype=float), EPS, None))


def softmax(x: np.ndarray) -> np.ndarray:
    z = np.asarray(x, dtype=float) - np.max(x)
    e = np.exp(z)
    return np.asarray(e / e.sum())


def item_prior(shown_rotations: np.ndarray) -> np.ndarray:
    """Per-item prior from all cyclic rotations: softmax over positions of the mean log-probability.

    `shown_rotations[r, i]` = P_obs(position i | rotation r). Rows need not sum to one: a per-row constant
    cancels in the softmax, so raw label probabilities and renormalised ones give the same prior.
    """
    logs = _log(shown_rotations)
    return softmax(logs.mean(axis=0))


def global_prior(item_priors: Iterable[np.ndarray]) -> np.ndarray:
    """Mean of the per-item priors (METRICS.md §3 step 2)."""
    stacked = np.vstack(list(item_priors))
    prior = stacked.mean(axis=0)
    return np.asarray(prior / prior.sum())


def debias(shown: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Debiased distribution over shown positions: softmax(log P_obs − log prior). Its argmax is PriDe's
    prediction; the whole distribution is what calibration metrics read."""
    return softmax(_log(shown) - _log(prior))


def kl_from_uniform(p: np.ndarray) -> float:
    """KL(p ‖ uniform) in bits = log2 n − H(p): 0 for no position preference."""
    q = np.asarray(p, dtype=float)
    q = q / q.sum()
    nz = q[q > 0]
    return float(math.log2(len(q)) + np.sum(nz * np.log2(nz)))


# -- working on frames of trials ---------------------------------------------------------------------------
# A "trial frame" has one row per trial (form) with columns item_id, option_order (tuple of canonical
# indices in shown order) and dist (canonical np.ndarray, or None when the trial gave no valid answer).


def complete_cyclic_items(frame: pd.DataFrame) -> dict[str, dict[tuple[int, ...], np.ndarray]]:
    """Items that were asked in every cyclic rotation: item id → {rotation: canonical dist}."""
    by_item: dict[str, dict[tuple[int, ...], np.ndarray]] = {}
    for item_id, order, dist in zip(frame["item_id"], frame["option_order"], frame["dist"]):
        if dist is None:
            continue
        by_item.setdefault(str(item_id), {})[tuple(order)] = np.asarray(dist, dtype=float)
    complete: dict[str, dict[tuple[int, ...], np.ndarray]] = {}
    for item_id, orders in by_item.items():
        n = len(next(iter(orders)))
        rotations = cyclic_orders(n)
        if n >= 2 and all(r in orders for r in rotations):
            complete[item_id] = {r: orders[r] for r in rotations}
    return complete


def prior_from_rotations(rotations: dict[tuple[int, ...], np.ndarray]) -> np.ndarray:
    """Per-item prior from {rotation: canonical dist}."""
    return item_prior(np.vstack([to_shown(dist, order) for order, dist in rotations.items()]))


def cyclic_average(rotations: dict[tuple[int, ...], np.ndarray]) -> np.ndarray:
    """Full cyclic averaging: the mean canonical distribution over all rotations (n prompts per item)."""
    return np.asarray(np.mean(np.vstack(list(rotations.values())), axis=0))


def calibration_sample(item_ids: Iterable[str], n_permutable: int, alpha: float, seed: int) -> list[str]:
    """The α fraction of items that PriDe runs in all rotations, chosen by the same seeded hash as the
    `pride[:alpha]` policy (so the choice does not depend on item order); at least one item."""
    ranked = sorted(item_ids, key=lambda i: _stable_unit(seed, f"pride:{i}"))
    k = max(1, round(alpha * n_permutable))
    return ranked[:k]


@dataclass
class PriDeResult:
    """PriDe applied to one group of trials (one model × template × reasoning mode)."""

    prior: np.ndarray
    """The global position prior P̃_prior (shown positions)."""
    calibration_items: list[str]
    """Items whose rotations estimated the prior (empty when the prior came from elsewhere)."""
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    """item id → debiased canonical distribution (cyclic average for calibration items)."""
    prompts: int = 0
    """Prompts PriDe needs for these items: n per calibration item, 1 per other item."""
    source: str = "estimated"
    """'estimated' from this data, or the run id the prior was taken from."""

    def predicted(self) -> dict[str, int]:
        return {item: int(np.argmax(dist)) for item, dist in self.predictions.items()}


def _identity_trial(frame: pd.DataFrame) -> dict[str, tuple[tuple[int, ...], np.ndarray]]:
    """item → (order, canonical dist) of the single pass PriDe would send: the identity order when present,
    else the first order seen (position-dependent items are only ever shown in identity)."""
    chosen: dict[str, tuple[tuple[int, ...], np.ndarray]] = {}
    for item_id, order, dist in zip(frame["item_id"], frame["option_order"], frame["dist"]):
        if dist is None:
            continue
        order = tuple(order)
        key = str(item_id)
        current = chosen.get(key)
        if current is None or (order == tuple(range(len(order))) and current[0] != order):
            chosen[key] = (order, np.asarray(dist, dtype=float))
    return chosen


def pride(frame: pd.DataFrame, *, alpha: float = DEFAULT_ALPHA, seed: int = 0,
          prior: np.ndarray | None = None, prior_source: str = "estimated") -> PriDeResult | None:
    """Apply PriDe to a trial frame of one group.

    - A frame from a `pride[:alpha]` run (fewer than half of the permuted items complete): the complete
      items are the calibration set.
    - A frame from a full cyclic run: PriDe is simulated: a seeded α sample of the complete items is the
      calibration set; every other item uses only its identity-order trial, exactly as a PriDe run would.
    - With `prior` given (e.g. from `--prior-from`), no calibration: every item is debiased.
    Returns None when there is neither a prior nor any complete item.
    """
    complete = complete_cyclic_items(frame)
    single = _identity_trial(frame)
    calibration: list[str] = []
    if prior is None:
        if not complete:
            return None
        # A pride run asks most items once (identity); a cyclic run asks most items in every rotation
        # (only position-dependent items stay in identity order).
        if len(complete) < 0.5 * len(single):
            calibration = sorted(complete)
        else:
            calibration = calibration_sample(complete, len(single), alpha, seed)
        prior = global_prior(prior_from_rotations(complete[i]) for i in calibration)
        prior_source = "estimated"
    result = PriDeResult(prior=np.asarray(prior, dtype=float), calibration_items=calibration, source=prior_source)
    for item in calibration:
        result.predictions[item] = cyclic_average(complete[item])
        result.prompts += len(complete[item])
    for item, (order, dist) in single.items():
        if item in result.predictions:
            continue
        if len(order) != len(result.prior):
            continue  # a prior for n options says nothing about an item with another number of options
        result.predictions[item] = to_canonical(debias(to_shown(dist, order), result.prior), order)
        result.prompts += 1
    return result


def priors_for_run(frame: pd.DataFrame, *, alpha: float = DEFAULT_ALPHA, seed: int = 0) -> list[dict[str, Any]]:
    """Position priors to store for a run: one per (model, survey, reasoning, n_options) group that has
    complete cyclic items. `frame` is the run's trial frame with model, survey_id and reasoning columns."""
    rows: list[dict[str, Any]] = []
    frame = frame[frame["dist"].notna()].copy()
    if frame.empty:
        return rows
    frame["n_options"] = [len(o) for o in frame["option_order"]]
    for (model, survey_id, reasoning, n), group in frame.groupby(["model", "survey_id", "reasoning", "n_options"]):
        result = pride(group, alpha=alpha, seed=seed)
        if result is None:
            continue
        rows.append({"model": model, "survey_id": survey_id, "reasoning": reasoning, "n_options": int(n),
                     "prior": [float(x) for x in result.prior], "n_items": len(result.calibration_items),
                     "source_run": None})
    return rows


def run_priors(store: Store, run_id: str, *, alpha: float = DEFAULT_ALPHA, seed: int = 0) -> list[dict[str, Any]]:
    """The position priors of a run, estimated from its stored results (empty without complete cyclic items)."""
    return priors_for_run(store.run_distributions(run_id), alpha=alpha, seed=seed)


def source_priors(store: Store, source_run: str, models: Sequence[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`--prior-from`: (the priors of `source_run` for `models`, ready to be recorded with the new run; the priors
    of the source run estimated now because it stored none, to be recorded with the source run). Raises with
    the fix when a model has none."""
    stored = store.position_priors(source_run)
    estimated: list[dict[str, Any]] = []
    if stored.empty:
        rows = estimated = run_priors(store, source_run)
    else:
        rows = [dict(r) for r in stored.to_dict("records")]
    copied: list[dict[str, Any]] = []
    for model in models:
        # Rows carry the name results are stored under (the engine registry's rule: a scripted fake key drops its query).
        mine = [r for r in rows if r["model"] in (model, stored_model_name(model))]
        if not mine:
            raise ValueError(
                f"run {source_run} has no position prior for model {model!r}: run a survey on that model with "
                "--orders cyclic or --orders pride[:alpha] first and pass that run to --prior-from")
        copied += [{**row, "prior": [float(x) for x in row["prior"]], "source_run": source_run} for row in mine]
    return copied, estimated
