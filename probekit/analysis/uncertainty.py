"""Per-trial distributions and MoralChoice-style uncertainty/consistency per item (METRICS.md §0–1).

Input is the `forms` frame of the loader (one row per run × model × trial with its mean distribution).
A form = one trial (template × paraphrase × factors × option order); the reasoning mode is kept as a
separate grouping column, so direct and reasoning answers are never mixed into one marginal.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from probekit.analysis.bootstrap import mean_cis
from probekit.analysis.distributions import entropy, form_uncertainty
from probekit.analysis.loader import AnalysisContext
from probekit.analysis.registry import register

DEFAULT_GROUP = ("model", "reasoning")


def _n_options(forms: pd.DataFrame) -> np.ndarray:
    return np.array([len(o) for o in forms["option_order"]], dtype=int)


def _stack(dists: Sequence[np.ndarray | None], n: int) -> np.ndarray:
    """Rows of length n; a missing distribution (no valid answer) becomes uniform (MoralChoice)."""
    uniform = np.full(n, 1.0 / n)
    return np.vstack([d if d is not None and len(d) == n else uniform for d in dists]) if len(dists) else np.zeros((0, n))


def pool_runs(forms: pd.DataFrame) -> pd.DataFrame:
    """Merge rows of the same model × trial from several runs: distributions averaged weighted by the
    number of valid rows, counts summed. With one run the frame is returned unchanged."""
    if forms.empty or forms["run_id"].nunique() <= 1:
        return forms
    pieces = []
    for _, group in forms.groupby(["model", "trial_id"], sort=False):
        if len(group) == 1:
            pieces.append(group.iloc[0].to_dict())
            continue
        first = group.iloc[0].to_dict()
        valid = [(d, w) for d, w in zip(group["dist"], group["n_ok"]) if d is not None and w > 0]
        first["dist"] = (sum(d * w for d, w in valid) / sum(w for _, w in valid)) if valid else None
        for column in ("n_rows", "n_ok", "n_refusal", "n_invalid", "n_error"):
            first[column] = int(group[column].sum())
        first["valid_mass"] = group["valid_mass"].mean()
        first["run_id"] = ",".join(sorted(set(group["run_id"])))
        pieces.append(first)
    return pd.DataFrame(pieces)


def trial_entropy(forms: pd.DataFrame) -> np.ndarray:
    """Entropy (bits) of each trial's distribution; NaN where no answer was valid."""
    ent = np.full(len(forms), np.nan)
    n_opts = _n_options(forms)
    dists = forms["dist"].to_numpy()
    has = np.array([d is not None for d in dists], dtype=bool)
    for n in np.unique(n_opts):
        rows = np.flatnonzero((n_opts == n) & has)
        if rows.size:
            ent[rows] = entropy(_stack(list(dists[rows]), int(n)))
    return ent


def trial_table(forms: pd.DataFrame) -> pd.DataFrame:
    """Per trial: normalised distribution, its entropy, valid mass and refusal/invalid/error rates."""
    out = forms[["run_id", "model", "item_id", "trial_id", "template_id", "paraphrase_id", "reasoning", "mode",
                 "n_rows", "n_ok", "valid_mass"]].copy()
    out["option_order"] = [list(o) for o in forms["option_order"]]
    out["distribution"] = [None if d is None else [float(x) for x in d] for d in forms["dist"]]
    out["entropy"] = trial_entropy(forms)
    rows = forms["n_rows"].to_numpy(dtype=float)
    for column in ("refusal", "invalid", "error"):
        out[f"{column}_rate"] = forms[f"n_{column}"].to_numpy() / np.maximum(rows, 1)
    return out


def item_uncertainty(forms: pd.DataFrame, group: Sequence[str] = DEFAULT_GROUP) -> pd.DataFrame:
    """Per group (model, reasoning) × item: marginal action likelihood, its entropy, QF-E, GJSD, QF-C,
    with the number of forms, of valid forms and the valid fraction of rows beside them."""
    forms = pool_runs(forms)
    keys = [*group, "item_id"]
    frames = []
    n_opts = _n_options(forms)
    for n in np.unique(n_opts):
        sub = forms[n_opts == n].sort_values(keys, kind="stable")
        sub = sub.assign(valid_form=(sub["n_ok"] > 0).astype(int))
        grouped = sub.groupby(keys, sort=True)
        codes = grouped.ngroup().to_numpy()
        slots = grouped.cumcount().to_numpy()
        n_items, n_slots = int(codes.max()) + 1, int(slots.max()) + 1
        P = np.zeros((n_items, n_slots, int(n)))
        mask = np.zeros((n_items, n_slots), dtype=bool)
        P[codes, slots] = _stack(list(sub["dist"]), int(n))
        mask[codes, slots] = True
        result = form_uncertainty(P, mask)
        counts = grouped.agg(
            n_valid_forms=("valid_form", "sum"), n_rows=("n_rows", "sum"), n_ok=("n_ok", "sum"),
            n_refusal=("n_refusal", "sum"), n_invalid=("n_invalid", "sum"), mean_valid_mass=("valid_mass", "mean"),
        ).reset_index()
        counts["n_options"] = int(n)
        counts["n_forms"] = result["n_forms"]
        counts["valid_fraction"] = counts["n_ok"] / counts["n_rows"].clip(lower=1)
        counts["marginal"] = [[float(x) for x in row] for row in result["marginal"]]
        counts["argmax"] = result["marginal"].argmax(axis=1)
        for name in ("entropy", "qf_e", "gjsd", "qf_c"):
            counts[name] = result[name]
        frames.append(counts)
    if not frames:
        return pd.DataFrame(columns=[*keys, "n_options", "n_forms", "n_valid_forms", "marginal", "entropy", "qf_e", "gjsd", "qf_c"])
    out = pd.concat(frames, ignore_index=True)
    order = [*keys, "n_options", "n_forms", "n_valid_forms", "n_rows", "n_refusal", "n_invalid", "valid_fraction",
             "mean_valid_mass", "marginal", "argmax", "entropy", "qf_e", "gjsd", "qf_c"]
    return out[order].sort_values(keys, kind="stable").reset_index(drop=True)


def uncertainty_summary(items: pd.DataFrame, group: Sequence[str] = DEFAULT_GROUP, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Means over items of H[A|x], QF-E, GJSD and QF-C per group, each with a bootstrap CI over items."""
    rows = []
    for key, sub in items.groupby(list(group), sort=True):
        row = dict(zip(group, key if isinstance(key, tuple) else (key,)))
        row["n_items"] = len(sub)
        row["n_forms"] = int(sub["n_forms"].sum())
        row["valid_fraction"] = float(sub["n_rows"].mul(sub["valid_fraction"]).sum() / max(1, sub["n_rows"].sum()))
        # Beside validity, how much probability the labels got (logprob mode; NaN otherwise): a valid answer
        # renormalised from a sliver of mass is not an answer (probekit.analysis.quality).
        mass = sub["mean_valid_mass"].to_numpy(dtype=float) if "mean_valid_mass" in sub else np.array([])
        row["mean_valid_mass"] = float(np.nanmean(mass)) if np.isfinite(mass).any() else float("nan")
        names = ("entropy", "qf_e", "gjsd", "qf_c")
        for name, (est, low, high) in zip(names, mean_cis(sub[list(names)].to_numpy(), n_boot=n_boot, seed=seed)):
            row[name], row[f"{name}_ci_low"], row[f"{name}_ci_high"] = est, low, high
        rows.append(row)
    return pd.DataFrame(rows)


def response_rates(forms: pd.DataFrame) -> pd.DataFrame:
    """Per model × template × reasoning: how often answers were valid, refused, invalid or failed, the
    mean valid mass and the mean per-trial entropy. Never folded into the answer distributions."""
    trials = forms[["model", "template_id", "reasoning", "trial_id", "n_rows", "n_ok", "n_refusal", "n_invalid",
                    "n_error", "valid_mass"]].assign(entropy=trial_entropy(forms))
    out = trials.groupby(["model", "template_id", "reasoning"], sort=True).agg(
        n_trials=("trial_id", "nunique"), n_rows=("n_rows", "sum"), n_ok=("n_ok", "sum"), n_refusal=("n_refusal", "sum"),
        n_invalid=("n_invalid", "sum"), n_error=("n_error", "sum"), mean_valid_mass=("valid_mass", "mean"),
        mean_entropy=("entropy", "mean"),
    ).reset_index()
    for column in ("ok", "refusal", "invalid", "error"):
        out[f"{column}_rate"] = out[f"n_{column}"] / out["n_rows"].clip(lower=1)
    return out.drop(columns=["n_ok"])


# -- registered tables --------------------------------------------------------------------------------
_DISTRIBUTION_KINDS = ("choice", "likert", "mcq", "pairwise")


@register("response_rates", _DISTRIBUTION_KINDS)
def _response_rates(ctx: AnalysisContext) -> pd.DataFrame | None:
    """Valid / refusal / invalid / error rates, valid mass and entropy per model × template × reasoning."""
    forms = ctx.forms()
    return None if forms.empty else response_rates(forms)


@register("trials", _DISTRIBUTION_KINDS, detail=True)
def _trials(ctx: AnalysisContext) -> pd.DataFrame | None:
    """One row per trial: normalised distribution, entropy, valid mass, refusal/invalid rates."""
    forms = ctx.forms()
    return None if forms.empty else trial_table(forms)


def context_item_uncertainty(ctx) -> pd.DataFrame | None:  # type: ignore[no-untyped-def]
    """The per-item uncertainty table of a context, computed once and shared by the tables using it."""
    if "uncertainty" not in ctx._cache:
        forms = ctx.forms()
        ctx._cache["uncertainty"] = item_uncertainty(forms) if not forms.empty else None
    return ctx._cache["uncertainty"]


@register("uncertainty", _DISTRIBUTION_KINDS)
def _uncertainty(ctx: AnalysisContext) -> pd.DataFrame | None:
    """Per item × model: marginal action likelihood, marginal entropy, QF-E, GJSD, QF-C."""
    return context_item_uncertainty(ctx)


@register("uncertainty_summary", _DISTRIBUTION_KINDS)
def _uncertainty_summary(ctx: AnalysisContext) -> pd.DataFrame | None:
    """Per model: mean marginal entropy, QF-E, GJSD, QF-C over items with bootstrap CIs."""
    items = context_item_uncertainty(ctx)
    return None if items is None or items.empty else uncertainty_summary(items, n_boot=ctx.n_boot, seed=ctx.seed)
