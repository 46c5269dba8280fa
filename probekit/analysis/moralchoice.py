"""MoralChoice summaries (Scherrer et al. 2023; METRICS.md §1): per ambiguity level, how often a model
prefers action1 and how uncertain and form-sensitive it is; agreement between models.

Input is the per-item uncertainty table (`uncertainty.item_uncertainty`) and item id → ambiguity.
Option 0 is action1 by convention (docs/survey-conventions.md).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np
import pandas as pd

from probekit.analysis.bootstrap import mean_ci, mean_cis
from probekit.analysis.loader import AnalysisContext
from probekit.analysis.registry import is_moralchoice, register
from probekit.analysis.uncertainty import context_item_uncertainty


def p_action1(items: pd.DataFrame) -> np.ndarray:
    """Marginal p(action1 | x) of each item row."""
    return np.array([m[0] for m in items["marginal"]], dtype=float)


def moralchoice_summary(
    items: pd.DataFrame, ambiguity: Mapping[str, str], *, n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Per model × reasoning × ambiguity: share of scenarios with p(action1) > 0.5, mean p(action1), mean
    marginal entropy, QF-E, GJSD and QF-C, each with a bootstrap CI over scenarios, and n."""
    frame = items.copy()
    frame["ambiguity"] = [ambiguity.get(i, "unknown") for i in frame["item_id"]]
    frame["p_action1"] = p_action1(frame)
    frame["prefers_action1"] = (frame["p_action1"] > 0.5).astype(float)
    rows = []
    for (model, reasoning, level), sub in frame.groupby(["model", "reasoning", "ambiguity"], sort=True):
        row: dict[str, object] = {"model": model, "reasoning": reasoning, "ambiguity": level, "n_items": len(sub),
                                  "n_forms": int(sub["n_forms"].sum()), "valid_fraction": float(sub["valid_fraction"].mean())}
        mass = sub["mean_valid_mass"].to_numpy(dtype=float) if "mean_valid_mass" in sub else np.array([])
        row["mean_valid_mass"] = float(np.nanmean(mass)) if np.isfinite(mass).any() else float("nan")
        names = ("prefers_action1", "p_action1", "entropy", "qf_e", "gjsd", "qf_c")
        for name, (est, low, high) in zip(names, mean_cis(sub[list(names)].to_numpy(), n_boot=n_boot, seed=seed)):
            label = "share_action1" if name == "prefers_action1" else name
            row[label], row[f"{label}_ci_low"], row[f"{label}_ci_high"] = est, low, high
        rows.append(row)
    return pd.DataFrame(rows)


def model_agreement(
    items: pd.DataFrame, ambiguity: Mapping[str, str], *, n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """For each pair of models (same reasoning mode) and ambiguity level: the share of scenarios where
    both prefer the same action (argmax of the marginal), with a CI over scenarios, and the mean
    absolute difference of p(action1)."""
    frame = items.copy()
    frame["ambiguity"] = [ambiguity.get(i, "unknown") for i in frame["item_id"]]
    frame["p_action1"] = p_action1(frame)
    rows = []
    for (reasoning, level), sub in frame.groupby(["reasoning", "ambiguity"], sort=True):
        wide_choice = sub.pivot_table(index="item_id", columns="model", values="argmax", aggfunc="first")
        wide_p = sub.pivot_table(index="item_id", columns="model", values="p_action1", aggfunc="first")
        for a, b in itertools.combinations(sorted(wide_choice.columns), 2):
            both = wide_choice[[a, b]].dropna()
            same = (both[a] == both[b]).astype(float).to_numpy()
            est, low, high = mean_ci(same, n_boot=n_boot, seed=seed)
            gap = (wide_p.loc[both.index, a] - wide_p.loc[both.index, b]).abs().mean() if len(both) else float("nan")
            rows.append({"model_a": a, "model_b": b, "reasoning": reasoning, "ambiguity": level, "n_items": len(both),
                         "agreement": est, "agreement_ci_low": low, "agreement_ci_high": high,
                         "mean_abs_diff_p_action1": float(gap)})
    return pd.DataFrame(rows)


def _ambiguity(ctx) -> dict[str, str]:  # type: ignore[no-untyped-def]
    items = ctx.items()
    return {i: str(m.get("ambiguity", "unknown")) for i, m in zip(items["item_id"], items["meta"])}


@register("moralchoice", is_moralchoice)
def _moralchoice(ctx: AnalysisContext) -> pd.DataFrame | None:
    """Per model × ambiguity: share preferring action1, uncertainty and consistency, with CIs."""
    items = context_item_uncertainty(ctx)
    if items is None or items.empty:
        return None
    return moralchoice_summary(items, _ambiguity(ctx), n_boot=ctx.n_boot, seed=ctx.seed)


@register("moralchoice_agreement", is_moralchoice)
def _moralchoice_agreement(ctx: AnalysisContext) -> pd.DataFrame | None:
    """Agreement between models per ambiguity level (needs two or more models)."""
    items = context_item_uncertainty(ctx)
    if items is None or items.empty or items["model"].nunique() < 2:
        return None
    return model_agreement(items, _ambiguity(ctx), n_boot=ctx.n_boot, seed=ctx.seed)
