"""Selection (option-position) bias in multiple choice (Zheng et al., ICLR 2024; METRICS.md §3).

Pure functions over a *trial frame* (one row per trial: item_id, option_order, dist in canonical order),
plus the `probekit analyze` tables built from them:

- `position_bias` / `position_prior` — every survey whose items were shown in several orders: the
  probability given to each *displayed* position averaged over complete cyclic rotations (each option
  visits each position once, so content cancels), the PriDe prior and its KL divergence from uniform.
- `selection_bias` (mcq) — recall per gold position, RStd, and accuracy under identity order, full cyclic
  averaging and PriDe, with the number of prompts each needs.
- `mcq_calibration` (mcq) — ECE (10 bins) and Brier for those predictions.
- `confidence_by_correctness` (mcq) — mean confidence of the chosen option, direct vs reasoning, split by
  correct / incorrect (Fu et al. 2025).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from probekit.analysis.calibration import calibration
from probekit.analysis.loader import AnalysisContext
from probekit.analysis.pride import (
    DEFAULT_ALPHA,
    complete_cyclic_items,
    cyclic_average,
    debias,
    global_prior,
    kl_from_uniform,
    pride,
    prior_from_rotations,
    stored_prior,
    to_shown,
)
from probekit.analysis.registry import register

GROUP = ["model", "template_id", "reasoning", "n_options"]


# -- pure metrics ------------------------------------------------------------------------------------------

def recall_per_position(gold_positions: Sequence[int], predicted_positions: Sequence[int], n: int) -> np.ndarray:
    """recall_k = #{gold = k and pred = k} / #{gold = k} per shown position k (NaN where gold never is at k)."""
    gold = np.asarray(gold_positions, dtype=int)
    pred = np.asarray(predicted_positions, dtype=int)
    recalls = np.full(n, np.nan)
    for k in range(n):
        mask = gold == k
        if mask.any():
            recalls[k] = float(np.mean(pred[mask] == k))
    return recalls


def rstd(recalls: Sequence[float] | np.ndarray) -> float:
    """RStd: population standard deviation of the per-position recalls, ×100 as in the paper (positions
    where gold never appears are left out)."""
    values = np.asarray(recalls, dtype=float)
    values = values[~np.isnan(values)]
    return float(np.std(values) * 100) if values.size else float("nan")


def cyclic_pick_rates(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, int]:
    """(mean probability per displayed position, argmax share per displayed position, items used), both
    averaged over the complete cyclic rotations of each item and then over items."""
    complete = complete_cyclic_items(frame)
    if not complete:
        return np.array([]), np.array([]), 0
    probs, picks = [], []
    for rotations in complete.values():
        shown = np.vstack([to_shown(dist, order) for order, dist in rotations.items()])
        probs.append(shown.mean(axis=0))
        onehot = np.zeros_like(shown)
        onehot[np.arange(len(shown)), shown.argmax(axis=1)] = 1.0
        picks.append(onehot.mean(axis=0))
    return np.mean(probs, axis=0), np.mean(picks, axis=0), len(complete)


def prepare(forms: pd.DataFrame) -> pd.DataFrame:
    """Trials with a valid distribution, with the number of options as a column (a grouping key)."""
    frame = forms[forms["dist"].notna()].copy()
    frame["n_options"] = [len(o) for o in frame["option_order"]]
    return frame


def _positions(order: Sequence[int], canonical_index: int) -> int:
    return list(order).index(canonical_index)


def _identity_frame(frame: pd.DataFrame) -> pd.DataFrame:
    mask = [tuple(o) == tuple(range(len(o))) for o in frame["option_order"]]
    return frame[mask]


def selection_summary(frame: pd.DataFrame, gold: dict[str, int], *, alpha: float = DEFAULT_ALPHA, seed: int = 0,
                      prior: np.ndarray | None = None, prior_source: str = "estimated") -> dict[str, Any]:
    """All selection-bias numbers of one group (one model × template × reasoning mode × option count)."""
    frame = frame[frame["item_id"].astype(str).isin(gold)]
    n = int(frame["n_options"].iloc[0])
    gold_pos, pred_pos = [], []
    for item_id, order, dist in zip(frame["item_id"], frame["option_order"], frame["dist"]):
        gold_pos.append(_positions(order, gold[str(item_id)]))
        pred_pos.append(_positions(order, int(np.argmax(dist))))
    recalls = recall_per_position(gold_pos, pred_pos, n)
    identity = _identity_frame(frame)
    ident_pred = {str(i): int(np.argmax(d)) for i, d in zip(identity["item_id"], identity["dist"])}
    ident_gold_pos = [gold[i] for i in ident_pred]
    complete = complete_cyclic_items(frame)
    cyclic_pred = {i: int(np.argmax(cyclic_average(r))) for i, r in complete.items()}
    # Items that are never permuted (position dependent) count with their single order under full cyclic.
    for item, pred in ident_pred.items():
        cyclic_pred.setdefault(item, pred)
    result = pride(frame, alpha=alpha, seed=seed, prior=prior, prior_source=prior_source)
    row: dict[str, Any] = {"n_items": int(frame["item_id"].nunique()), "n_trials": len(frame)}
    for k in range(n):
        row[f"recall_{k + 1}"] = recalls[k]
    row["rstd"] = rstd(recalls)
    row["rstd_identity"] = rstd(recall_per_position(ident_gold_pos, list(ident_pred.values()), n))
    row["acc_identity"] = _accuracy(ident_pred, gold)
    row["acc_cyclic"] = _accuracy(cyclic_pred, gold)
    row["acc_pride"] = _accuracy(result.predicted(), gold) if result else float("nan")
    if result is not None:
        # RStd after debiasing every identity-order trial with the prior (the paper's "debiased" RStd).
        debiased = [int(np.argmax(debias(to_shown(d, o), result.prior))) for o, d in zip(identity["option_order"], identity["dist"])]
        gold_shown = [_positions(o, gold[str(i)]) for i, o in zip(identity["item_id"], identity["option_order"])]
        row["rstd_pride"] = rstd(recall_per_position(gold_shown, debiased, n))
    else:
        row["rstd_pride"] = float("nan")
    row["n_cyclic_items"] = len(complete)
    row["prompts_identity"] = len(ident_pred)
    row["prompts_cyclic"] = sum(len(r) for r in complete.values()) + sum(1 for i in ident_pred if i not in complete)
    row["prompts_pride"] = result.prompts if result else 0
    row["pride_calibration_items"] = len(result.calibration_items) if result else 0
    row["pride_prior"] = [round(float(x), 4) for x in result.prior] if result else None
    row["pride_prior_source"] = result.source if result else None
    return row


def _accuracy(predictions: dict[str, int], gold: dict[str, int]) -> float:
    hits = [predictions[i] == gold[i] for i in predictions if i in gold]
    return float(np.mean(hits)) if hits else float("nan")


def calibration_rows(frame: pd.DataFrame, gold: dict[str, int], *, alpha: float = DEFAULT_ALPHA, seed: int = 0,
                     prior: np.ndarray | None = None, prior_source: str = "estimated") -> list[dict[str, Any]]:
    """ECE and Brier of one group under four ways of predicting: the identity-order trial, every trial
    (each order on its own), the cyclic average, and PriDe's debiased distribution."""
    frame = frame[frame["item_id"].astype(str).isin(gold)]
    identity = _identity_frame(frame)
    complete = complete_cyclic_items(frame)
    result = pride(frame, alpha=alpha, seed=seed, prior=prior, prior_source=prior_source)
    sets: dict[str, dict[str, list[Any]]] = {
        "identity": {"d": list(identity["dist"]), "g": [gold[str(i)] for i in identity["item_id"]]},
        "every_order": {"d": list(frame["dist"]), "g": [gold[str(i)] for i in frame["item_id"]]},
        "cyclic_average": {"d": [cyclic_average(r) for r in complete.values()], "g": [gold[i] for i in complete]},
    }
    if result is not None:
        sets["pride"] = {"d": list(result.predictions.values()), "g": [gold[i] for i in result.predictions]}
    rows = []
    for name, data in sets.items():
        if not data["d"]:
            continue
        summary = calibration(data["d"], data["g"])
        rows.append({"prediction": name, "n": summary.n, "accuracy": summary.accuracy,
                     "mean_confidence": summary.mean_confidence, "ece": summary.ece, "brier": summary.brier})
    return rows


def confidence_rows(frame: pd.DataFrame, gold: dict[str, int]) -> list[dict[str, Any]]:
    """Mean confidence (probability of the chosen option) split by correct / incorrect, over all trials."""
    frame = frame[frame["item_id"].astype(str).isin(gold)]
    correct = np.array([int(np.argmax(d)) == gold[str(i)] for i, d in zip(frame["item_id"], frame["dist"])])
    confidence = np.array([float(np.max(d)) for d in frame["dist"]])
    rows = []
    for label, mask in (("correct", correct), ("incorrect", ~correct)):
        if mask.any():
            rows.append({"answer": label, "n": int(mask.sum()), "mean_confidence": float(confidence[mask].mean()),
                         "median_confidence": float(np.median(confidence[mask]))})
    return rows


# -- analyze tables ----------------------------------------------------------------------------------------

def _gold(ctx: Any) -> dict[str, int]:
    items = ctx.items()
    return {str(i): int(g) for i, g in zip(items["item_id"], items["gold"]) if g is not None and not pd.isna(g)}


def _has_permuted_orders(frame: pd.DataFrame) -> bool:
    return bool(len(frame)) and any(tuple(o) != tuple(range(len(o))) for o in frame["option_order"])


def _group_prior(ctx: Any, model: str, reasoning: str, n: int) -> tuple[np.ndarray | None, str]:
    """A prior stored with the run (e.g. copied by --prior-from); used only when the data hold no rotations."""
    found = stored_prior(ctx.store, ctx.run_ids, model, reasoning, n)
    return (found[0], found[1]) if found else (None, "estimated")


def _groups(ctx: Any) -> list[tuple[dict[str, Any], pd.DataFrame]]:
    frame = prepare(ctx.forms())
    if frame.empty:
        return []
    return [(dict(zip(GROUP, keys)), group) for keys, group in frame.groupby(GROUP, sort=True)]


@register("position_bias", "*", description="Pick rate per displayed position, averaged over cyclic rotations")
def position_pick_rates_table(ctx: AnalysisContext) -> pd.DataFrame | None:
    """Probability and argmax share per displayed position, averaged over each item's complete cyclic
    rotations (content cancels); any survey whose items were shown in several orders."""
    rows = []
    for key, group in _groups(ctx):
        if not _has_permuted_orders(group):
            continue
        probs, picks, n_items = cyclic_pick_rates(group)
        if n_items == 0:
            continue
        for k in range(len(probs)):
            rows.append({**key, "position": k + 1, "pick_rate": float(probs[k]), "argmax_rate": float(picks[k]),
                         "uniform": 1 / len(probs), "n_items": n_items})
    return pd.DataFrame(rows) if rows else None


@register("position_prior", "*", description="PriDe position prior and its KL divergence from uniform")
def position_prior_table(ctx: AnalysisContext) -> pd.DataFrame | None:
    """The PriDe prior estimated from every item with complete cyclic rotations, its KL divergence from
    uniform (bits), and the KL of the cyclic pick rates."""
    rows = []
    for key, group in _groups(ctx):
        complete = complete_cyclic_items(group)
        if not complete:
            continue
        prior = global_prior(prior_from_rotations(r) for r in complete.values())
        probs, _picks, _n = cyclic_pick_rates(group)
        rows.append({**key, "prior": [round(float(x), 4) for x in prior], "kl_prior_bits": kl_from_uniform(prior),
                     "kl_pick_rates_bits": kl_from_uniform(probs), "n_items": len(complete)})
    return pd.DataFrame(rows) if rows else None


def _prior_for(ctx: Any, key: dict[str, Any], group: pd.DataFrame) -> tuple[Any, str]:
    """The PriDe prior to debias with: estimated from the group itself when every item was run in all cyclic
    orders, else the prior stored with the run (or a --prior-from run)."""
    if complete_cyclic_items(group):
        return None, "estimated"
    return _group_prior(ctx, key["model"], key["reasoning"], key["n_options"])


@register("selection_bias", "mcq", description="Recall per position, RStd, accuracy identity / cyclic / PriDe")
def selection_bias_table(ctx: AnalysisContext) -> pd.DataFrame | None:
    """Per model × template × reasoning mode: recall per gold position, RStd (all trials, identity trials,
    after PriDe), accuracy under identity order, full cyclic averaging and PriDe, and prompts each needs."""
    gold = _gold(ctx)
    rows = []
    for key, group in _groups(ctx):
        prior, source = _prior_for(ctx, key, group)
        rows.append({**key, **selection_summary(group, gold, seed=ctx.seed, prior=prior, prior_source=source)})
    return pd.DataFrame(rows) if rows else None


@register("mcq_calibration", "mcq", description="ECE (10 bins) and Brier per prediction scheme")
def calibration_table(ctx: AnalysisContext) -> pd.DataFrame | None:
    """ECE (10 equal-width bins) and multi-class Brier for identity, every order, cyclic average and PriDe,
    per model × template × reasoning mode (direct and reasoning reported separately)."""
    gold = _gold(ctx)
    rows = []
    for key, group in _groups(ctx):
        prior, source = _prior_for(ctx, key, group)
        rows += [{**key, **r} for r in calibration_rows(group, gold, seed=ctx.seed, prior=prior, prior_source=source)]
    return pd.DataFrame(rows) if rows else None


@register("confidence_by_correctness", "mcq", description="Confidence of the chosen option, direct vs reasoning, by correctness")
def confidence_table(ctx: AnalysisContext) -> pd.DataFrame | None:
    """Mean confidence of the chosen option per reasoning mode, split by correct / incorrect answers."""
    gold = _gold(ctx)
    rows = []
    for key, group in _groups(ctx):
        rows += [{**key, **r} for r in confidence_rows(group, gold)]
    return pd.DataFrame(rows) if rows else None
