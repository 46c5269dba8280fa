"""Whose opinions? Model answer distributions against human groups' (METRICS.md §9; docs/human-alignment.md).

Pure functions over two frames, then the registered tables that read them from the store:

- *model*: one row per model × persona context × item: `model`, `persona_id` ('' = no persona, the default
  context), `persona_style` ('' likewise), `item_id`, `dist` (canonical option order: the mean over the item's forms,
  i.e. templates × paraphrases × option orders, of each form's distribution), `n_forms`, `valid_mass`;
- *human*: one row per item × group: `item_id`, `group_var`, `group_value`, `shares`, `n`, `positions` (NaN: off
  the scale), `refusal` (bool per option).

Every figure is named by its convention, because the papers differ and a number reproduces only with its own formula:

- `similarity` = 1 − Jensen–Shannon *distance* with the natural log (scipy.spatial.distance.jensenshannon), the
  GlobalOpinionQA convention (Durmus et al. 2023; Ryan et al. 2024), over all of the item's options;
- `jsd_bits` = Jensen–Shannon *divergence* in bits; `total_variation` = ½ Σ|p − q|;
- `kendall_tau_b` between the two distributions over the options (ties handled as τ-b, as scipy.stats.kendalltau);
- `representativeness` = 1 − mean_q W1(D_M, D_G) / (max position − min position) on the item's ordinal positions,
  refusal options (and options without a position) removed and both distributions renormalised (OpinionQA,
  Santurkar et al. 2023); the model's refusal mass and the group's refusal rate are reported beside it.

A group's score is the mean over the questions it was asked (a country not asked a question is simply absent), with a
bootstrap CI over questions (probekit.analysis.bootstrap; one set of resamples shared by all groups of a table).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from probekit.analysis.bootstrap import DEFAULT_RESAMPLES, count_blocks, percentile_interval
from probekit.analysis.quality import DEFAULT as QUALITY_DEFAULTS
from probekit.analysis.registry import SurveyInfo, register

Array = NDArray[np.float64]
DEFAULT = ""
"""persona_id / persona_style of the default context (no persona)."""
MIN_QUESTIONS = 5
"""Fewer questions than this: the row is flagged `few_questions` (a mean over 1–4 questions is an anecdote)."""
LOW_VALID_MASS = QUALITY_DEFAULTS.min_label_mass
"""Mean valid label mass below this: flagged `low_label_mass` (the distribution is renormalised from noise, §10;
the same code and threshold as probekit.analysis.quality)."""
CORRECT_ANSWER_TAU = 0.9
"""Park et al.'s "correct answer" effect: the model's modal share ≥ τ on an item where no human group reaches τ."""
POOLED = "(mean of groups)"


# -- per-pair metrics (rows = model distribution × human distribution of the same item) ---------------------------
def _xlogy_ratio(p: Array, m: Array) -> Array:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0) / np.where(m > 0, m, 1.0)), 0.0)


def jsd_nat(P: Array, Q: Array) -> Array:
    """Jensen–Shannon divergence (natural log) of each row pair; rows sum to 1 (padding zeros allowed)."""
    M = (P + Q) / 2
    return np.clip((_xlogy_ratio(P, M).sum(axis=-1) + _xlogy_ratio(Q, M).sum(axis=-1)) / 2, 0.0, None)


def similarity(P: Array, Q: Array) -> Array:
    """1 − JS distance, natural log: 1 − sqrt(JSD_e) (Durmus et al. 2023)."""
    return 1.0 - np.sqrt(jsd_nat(P, Q))


def jsd_bits(P: Array, Q: Array) -> Array:
    """Jensen–Shannon divergence in bits (∈ [0, 1])."""
    return np.clip(jsd_nat(P, Q) / np.log(2.0), 0.0, 1.0)


def total_variation(P: Array, Q: Array) -> Array:
    """½ Σ |p − q|."""
    return np.abs(P - Q).sum(axis=-1) / 2


def kendall_tau_b(P: Array, Q: Array, mask: NDArray[np.bool_]) -> Array:
    """Kendall τ-b between each row pair over the options where `mask` is True (scipy.stats.kendalltau's tau-b:
    (concordant − discordant) / sqrt((n0 − ties in p)(n0 − ties in q))); NaN where either row is constant."""
    k = P.shape[-1]
    i, j = np.triu_indices(k, 1)
    both = mask[:, i] & mask[:, j]
    sp = np.sign(P[:, i] - P[:, j])
    sq = np.sign(Q[:, i] - Q[:, j])
    n0 = both.sum(axis=1)
    s = np.where(both, sp * sq, 0.0).sum(axis=1)
    tp = (both & (sp == 0)).sum(axis=1)
    tq = (both & (sq == 0)).sum(axis=1)
    denominator = np.sqrt((n0 - tp).astype(float) * (n0 - tq).astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, s / np.where(denominator > 0, denominator, 1.0), np.nan)


def ordinal_wd(P: Array, Q: Array, positions: Array) -> Array:
    """W1(D_M, D_G) / (max position − min position) over the options with a position (NaN: off the scale), both
    distributions renormalised over them (OpinionQA). NaN where the scale has < 2 distinct positions or either
    distribution has no mass on it."""
    on = np.isfinite(positions)
    pos = np.where(on, positions, np.inf)
    order = np.argsort(pos, axis=1, kind="stable")
    xs = np.take_along_axis(pos, order, axis=1)
    ps = np.take_along_axis(np.where(on, P, 0.0), order, axis=1)
    qs = np.take_along_axis(np.where(on, Q, 0.0), order, axis=1)
    mp, mq = ps.sum(axis=1), qs.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ps = ps / mp[:, None]
        qs = qs / mq[:, None]
        gaps = np.diff(xs, axis=1)
        gaps = np.where(np.isfinite(gaps), gaps, 0.0)
        w1 = (np.abs(np.cumsum(ps, axis=1)[:, :-1] - np.cumsum(qs, axis=1)[:, :-1]) * gaps).sum(axis=1)
        span = np.where(on, positions, -np.inf).max(axis=1) - np.where(on, positions, np.inf).min(axis=1)
        wd = w1 / span
    return np.where((span > 0) & np.isfinite(span) & (mp > 0) & (mq > 0), wd, np.nan)


def refusal_mass(P: Array, refusal: NDArray[np.bool_]) -> Array:
    """Mass on the refusal options of each row; NaN for items without a refusal option."""
    return np.where(refusal.any(axis=1), np.where(refusal, P, 0.0).sum(axis=1), np.nan)


# -- frames ---------------------------------------------------------------------------------------------------------
@dataclass
class HumanInputs:
    """What the tables are computed from (see the module docstring for the columns)."""

    model: pd.DataFrame
    human: pd.DataFrame
    personas: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["persona_id", "group_var", "group_value"]))
    """persona_id → the group it stands for (one row per attribute)."""
    population: tuple[str, str] | None = None
    topics: dict[str, str] = field(default_factory=dict)
    """item_id → topic (consistency across topics)."""
    texts: dict[str, str] = field(default_factory=dict)
    """item_id → question text (tables of single questions)."""


def _pad(arrays: Sequence[Any], width: int, fill: float = 0.0) -> Array:
    """Rows of different lengths as one matrix (rows × width), `fill` after each row's end. Rows are stacked per
    length, so a million short rows cost a few vstacks, not a million assignments."""
    values = list(arrays)
    out = np.full((len(values), width), fill, dtype=float)
    if not values:
        return out
    lengths = np.fromiter((len(v) for v in values), dtype=np.int64, count=len(values))
    for length in np.unique(lengths):
        rows = np.flatnonzero(lengths == length)
        if length:
            out[rows, :length] = np.concatenate([values[r] for r in rows]).astype(float).reshape(len(rows), int(length))
    return out


def pair_frame(model: pd.DataFrame, human: pd.DataFrame, *, contexts: str = "default") -> pd.DataFrame:
    """One row per model row × human group of the same item, with every per-question metric.

    `contexts`: "default" keeps the model's default context only (persona_id ''), "all" every context."""
    if contexts == "default":
        model = model[(model["persona_id"] == DEFAULT) & (model["persona_style"] == DEFAULT)]
    model = model[[d is not None for d in model["dist"]]].reset_index(drop=True)
    human = human.reset_index(drop=True)
    if model.empty or human.empty:
        return pd.DataFrame()
    width = int(max(max(len(d) for d in model["dist"]), max(len(s) for s in human["shares"])))
    M = _pad(model["dist"], width)
    H = _pad(human["shares"], width)
    # Positions and refusal flags belong to the item: padded once per item, not once per group.
    item_codes, item_names = pd.factorize(human["item_id"])
    first = np.unique(item_codes, return_index=True)[1]
    POS = _pad(human["positions"].to_numpy()[first], width, np.nan)[item_codes]
    REF = _pad(human["refusal"].to_numpy()[first], width).astype(bool)[item_codes]
    KM = np.fromiter((len(d) for d in model["dist"]), dtype=np.int64, count=len(model))
    KH = np.fromiter((len(s) for s in human["shares"]), dtype=np.int64, count=len(human))
    # A model frame with group_var / group_value (persona contexts with the group each one targets) is paired with
    # those groups only; otherwise every model row meets every group asked its item.
    if {"group_var", "group_value"} <= set(model.columns):
        keys = ["item_id", "group_var", "group_value"]
        left = pd.DataFrame({**{k: model[k].to_numpy() for k in keys}, "m": np.arange(len(model))})
        right = pd.DataFrame({**{k: human[k].to_numpy() for k in keys}, "h": np.arange(len(human))})
        joined = left.merge(right, on=keys, how="inner", sort=False)
        im, ih = joined["m"].to_numpy(), joined["h"].to_numpy()
    else:
        im, ih = _item_join(model["item_id"], human["item_id"])
    same = KM[im] == KH[ih]  # a model distribution over other options than the human one is no pair
    im, ih = im[same], ih[same]
    P, Q, pos, ref = M[im], H[ih], POS[ih], REF[ih]
    mask = np.arange(width)[None, :] < KH[ih][:, None]
    # Series.take keeps each column's dtype (Arrow strings are not rebuilt from Python objects row by row).
    out = pd.DataFrame({
        **{c: model[c].take(im).reset_index(drop=True) for c in ("model", "persona_id", "persona_style", "item_id")},
        **{c: human[c].take(ih).reset_index(drop=True) for c in ("group_var", "group_value")},
    })
    out["similarity"] = similarity(P, Q)
    out["jsd_bits"] = jsd_bits(P, Q)
    out["total_variation"] = total_variation(P, Q)
    out["kendall_tau_b"] = kendall_tau_b(P, Q, mask)
    out["wd"] = ordinal_wd(P, Q, pos)
    out["model_refusal"] = refusal_mass(P, ref)
    out["human_refusal"] = refusal_mass(Q, ref)
    out["valid_mass"] = model["valid_mass"].to_numpy()[im] if "valid_mass" in model else np.nan
    out["m_row"], out["h_row"] = im, ih
    return out


def _item_join(left: pd.Series, right: pd.Series) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Every (left row, right row) pair with the same item id, as two index arrays (a sort-based equi-join: the right
    rows of an item are one contiguous run after sorting)."""
    codes, _names = pd.factorize(pd.concat([left, right], ignore_index=True))
    lc, rc = codes[: len(left)], codes[len(left):]
    order = np.argsort(rc, kind="stable")
    sorted_codes = rc[order]
    start = np.searchsorted(sorted_codes, lc, side="left")
    count = np.searchsorted(sorted_codes, lc, side="right") - start
    im = np.repeat(np.arange(len(left)), count)
    offsets = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    ih = order[np.repeat(start, count) + offsets]
    return im.astype(np.int64), ih.astype(np.int64)


# -- bootstrap over questions, shared by every column of a table ----------------------------------------------------
def boot_means(values: Array, *, n_boot: int = DEFAULT_RESAMPLES, seed: int = 0) -> tuple[Array, Array, Array]:
    """Means of the columns of `values` (questions × columns, NaN = not asked) and their bootstrap replicates from one
    set of question resamples: (estimate per column, count per column, replicates resamples × columns)."""
    finite = np.isfinite(values)
    num, den = np.where(finite, values, 0.0), finite.astype(float)
    counts = den.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        estimate = num.sum(axis=0) / counts
        if values.shape[0] == 0:
            return estimate, counts, np.full((0, values.shape[1]), np.nan)
        reps = np.vstack([(w @ num) / (w @ den) for w in count_blocks(values.shape[0], n_boot, seed)])
    return estimate, counts, reps


def _cis(reps: Array) -> tuple[Array, Array]:
    """95 % percentile intervals per column, replicates that are undefined (NaN) left out (as percentile_interval)."""
    low, high = np.full(reps.shape[1], np.nan), np.full(reps.shape[1], np.nan)
    defined = np.isfinite(reps).any(axis=0) if reps.shape[0] else np.zeros(reps.shape[1], dtype=bool)
    if defined.any():
        bounds = np.nanpercentile(reps[:, defined], [2.5, 97.5], axis=0)
        low[defined], high[defined] = bounds[0], bounds[1]
    return low, high


def _layout(pairs: pd.DataFrame, keys: list[str]) -> tuple[NDArray[np.int64], int, NDArray[np.int64], pd.DataFrame]:
    """Where each pair goes in a questions × columns matrix (one column per distinct `keys` tuple, sorted): question
    codes, number of questions, column codes, the columns' keys."""
    codes_q, items = pd.factorize(pairs["item_id"], sort=True)
    grouped = pairs.groupby(keys, sort=True, observed=True)
    codes_c = grouped.ngroup().to_numpy()
    column_keys = grouped.size().reset_index()[keys]
    return codes_q, len(items), codes_c, column_keys


def _matrix(pairs: pd.DataFrame, keys: list[str], value: str) -> tuple[pd.DataFrame, Array]:
    """Questions × columns (one column per distinct `keys` tuple) of `value`; NaN where a column's group was not asked
    the question. Returns (the columns' keys, the matrix)."""
    codes_q, n_items, codes_c, column_keys = _layout(pairs, keys)
    matrix = np.full((n_items, len(column_keys)), np.nan)
    matrix[codes_q, codes_c] = pairs[value].to_numpy(dtype=float)
    return column_keys, matrix


def _flags(n: Array, valid_mass: Array | None = None, extra: Sequence[str] | None = None) -> list[str]:
    out = []
    for index, count in enumerate(n):
        marks = []
        if count == 1:
            marks.append("one_question")
        elif count < MIN_QUESTIONS:
            marks.append("few_questions")
        if valid_mass is not None and np.isfinite(valid_mass[index]) and valid_mass[index] < LOW_VALID_MASS:
            marks.append("low_label_mass")
        if extra is not None and extra[index]:
            marks.append(extra[index])
        out.append(",".join(marks))
    return out


def _group_table(pairs: pd.DataFrame, keys: list[str], metrics: Sequence[str], *, n_boot: int, seed: int) -> pd.DataFrame:
    """Mean of each metric per `keys` with CIs over questions; n_questions counts the questions with a value of the
    first metric."""
    out: pd.DataFrame | None = None
    codes_q, n_items, codes_c, column_keys = _layout(pairs, keys)
    for position, metric in enumerate(metrics):
        matrix = np.full((n_items, len(column_keys)), np.nan)
        matrix[codes_q, codes_c] = pairs[metric].to_numpy(dtype=float)
        estimate, counts, reps = boot_means(matrix, n_boot=n_boot, seed=seed)
        low, high = _cis(reps)
        if out is None:
            out = column_keys.copy()
            out["n_questions"] = counts.astype(int)
        if position > 0 and metric == "kendall_tau_b":
            out["n_tau"] = counts.astype(int)
        out[metric], out[f"{metric}_ci_low"], out[f"{metric}_ci_high"] = estimate, low, high
    assert out is not None
    return out


def similarity_table(pairs: pd.DataFrame, *, n_boot: int = DEFAULT_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """Per model × group: similarity (1 − JS distance, natural log), JSD in bits, total variation and Kendall τ-b,
    each the mean over the questions the group was asked, with CIs; sorted by similarity within each model."""
    if pairs.empty:
        return pd.DataFrame()
    keys = ["model", "group_var", "group_value"]
    table = _group_table(pairs, keys, ["similarity", "jsd_bits", "total_variation", "kendall_tau_b"], n_boot=n_boot, seed=seed)
    mass = pairs.groupby(keys)["valid_mass"].mean()
    table["valid_mass"] = mass.reindex(pd.MultiIndex.from_frame(table[keys])).to_numpy()
    table["flags"] = _flags(table["n_questions"].to_numpy(), table["valid_mass"].to_numpy())
    return table.sort_values(["model", "similarity"], ascending=[True, False], kind="stable").reset_index(drop=True)


def representativeness_table(pairs: pd.DataFrame, *, n_boot: int = DEFAULT_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """Per model × group: OpinionQA representativeness 1 − mean_q WD over the ordinal questions, with a CI, and
    beside it the model's mean refusal mass and the group's mean refusal rate (questions with a refusal option)."""
    if pairs.empty or not np.isfinite(pairs["wd"]).any():
        return pd.DataFrame()
    keys = ["model", "group_var", "group_value"]
    scored = pairs.assign(representativeness=1.0 - pairs["wd"])
    table = _group_table(scored, keys, ["representativeness"], n_boot=n_boot, seed=seed)
    refusals = pairs.groupby(keys).agg(model_refusal_mass=("model_refusal", "mean"), human_refusal_rate=("human_refusal", "mean"),
                                       n_refusal_questions=("human_refusal", "count"))
    table = table.merge(refusals.reset_index(), on=keys, how="left")
    table["n_refusal_questions"] = table["n_refusal_questions"].fillna(0).astype(int)
    table["flags"] = _flags(table["n_questions"].to_numpy())
    return table.sort_values(["model", "representativeness"], ascending=[True, False], kind="stable").reset_index(drop=True)


# -- human baselines: each group against the whole population -------------------------------------------------------
def reference_frame(human: pd.DataFrame, population: tuple[str, str] | None) -> tuple[pd.DataFrame, str]:
    """The reference each group is compared with in the baselines, as a "model" frame: the population group when one is
    declared, else the unweighted mean of the groups asked each question. Returns (frame, its label)."""
    if population is not None:
        var, value = population
        chosen = human[(human["group_var"] == var) & (human["group_value"] == value)]
        label = f"{var}:{value}"
        dists = list(chosen["shares"])
        items = chosen["item_id"].to_numpy()
    else:
        label = POOLED
        codes, names = pd.factorize(human["item_id"], sort=True)
        lengths = np.fromiter((len(x) for x in human["shares"]), dtype=np.int64, count=len(human))
        width = int(lengths.max()) if len(lengths) else 0
        sums = _sum_rows(_pad(human["shares"], width), codes, len(names))
        counts = np.bincount(codes, minlength=len(names))
        by_item = pd.Series(lengths).groupby(codes)
        k_min, k_max = by_item.min().to_numpy(), by_item.max().to_numpy()
        same = k_min == k_max  # groups of one item over different option lists cannot be averaged
        items = np.asarray(names, dtype=object)[same]
        dists = [row[:k] for row, k in zip(sums[same] / counts[same][:, None], k_max[same])]
    frame = pd.DataFrame({"model": label, "persona_id": DEFAULT, "persona_style": DEFAULT, "item_id": items,
                          "dist": dists, "n_forms": 1, "valid_mass": np.nan})
    return frame, label


def baselines_table(human: pd.DataFrame, population: tuple[str, str] | None, *, n_boot: int = DEFAULT_RESAMPLES,
                    seed: int = 0) -> pd.DataFrame:
    """Per group: similarity and representativeness of the group to the reference (the population, or the mean of the
    groups), then two summary rows per group variable: the average and the worst group (OpinionQA's human baselines)."""
    reference, label = reference_frame(human, population)
    others = human if population is None else human[~((human["group_var"] == population[0]) & (human["group_value"] == population[1]))]
    pairs = pair_frame(reference, others)
    if pairs.empty:
        return pd.DataFrame()
    pairs["representativeness"] = 1.0 - pairs["wd"]
    keys = ["group_var", "group_value"]
    table = _group_table(pairs, keys, ["similarity", "representativeness"], n_boot=n_boot, seed=seed)
    table.insert(0, "reference", label)
    summary = []
    for var, rows in table.groupby("group_var", sort=True):
        for what, pick in (("(average)", np.nanmean), ("(worst)", np.nanmin)):
            summary.append({"reference": label, "group_var": var, "group_value": what, "n_questions": int(rows["n_questions"].sum()),
                            "similarity": float(pick(rows["similarity"])) if rows["similarity"].notna().any() else np.nan,
                            "representativeness": (float(pick(rows["representativeness"]))
                                                   if rows["representativeness"].notna().any() else np.nan)})
    table["flags"] = _flags(table["n_questions"].to_numpy())
    out = pd.concat([table, pd.DataFrame(summary)], ignore_index=True)
    out["flags"] = out["flags"].fillna("")
    return out


# -- steerability ----------------------------------------------------------------------------------------------------
def persona_targets(personas: pd.DataFrame) -> pd.DataFrame:
    """persona_id, group_var, group_value: the groups each persona stands for."""
    return personas[["persona_id", "group_var", "group_value"]].drop_duplicates()


def steerability_table(model: pd.DataFrame, human: pd.DataFrame, personas: pd.DataFrame, *, metric: str = "representativeness",
                       n_boot: int = DEFAULT_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """Per model × target group G: Rep_d(G) (default context) and Rep_s(G) = max over persona contexts c of G (each
    persona of G in each style) of Rep_c(G), the lift Rep_s − Rep_d with CIs (the max is taken within every resample),
    the best context, and per model the OLS slope and intercept of Rep_s on Rep_d across groups (OpinionQA).
    `metric`: representativeness (1 − WD, ordinal questions) or similarity (1 − JS distance, every question)."""
    targets = persona_targets(personas)
    if targets.empty:
        return pd.DataFrame()
    # Each persona context meets only the groups it stands for; the default context meets every target group.
    targeted = human.merge(targets[["group_var", "group_value"]].drop_duplicates(), on=["group_var", "group_value"])
    default = pair_frame(model, targeted, contexts="default")
    persona_rows = model[model["persona_id"] != DEFAULT].merge(targets, on="persona_id", how="inner")
    steered = pair_frame(persona_rows, human, contexts="all") if not persona_rows.empty else pd.DataFrame()
    if default.empty or steered.empty:
        return pd.DataFrame()
    for frame in (default, steered):
        frame["value"] = (1.0 - frame["wd"]) if metric == "representativeness" else frame["similarity"]
    default = default[np.isfinite(default["value"])]
    steered = steered[np.isfinite(steered["value"])]
    if default.empty or steered.empty:
        return pd.DataFrame()
    keys = ["model", "group_var", "group_value"]
    default = default.assign(context="default")
    steered = steered.assign(context=steered["persona_style"].astype(str) + "|" + steered["persona_id"].astype(str))
    both = pd.concat([default, steered], ignore_index=True)
    column_keys, matrix = _matrix(both, [*keys, "context"], "value")
    estimate, counts, reps = boot_means(matrix, n_boot=n_boot, seed=seed)
    column_keys["estimate"], column_keys["n"] = estimate, counts
    rows = []
    for group_key, cols in column_keys.groupby(keys, sort=True):
        is_default = (cols["context"] == "default").to_numpy()
        if not is_default.any() or is_default.all():
            continue
        d_col = cols.index[is_default][0]
        s_cols = cols.index[~is_default].to_numpy()
        best = s_cols[int(np.nanargmax(estimate[s_cols]))] if np.isfinite(estimate[s_cols]).any() else s_cols[0]
        with warnings.catch_warnings():  # a resample that drew none of a context's questions: NaN, left out of the CI
            warnings.simplefilter("ignore", RuntimeWarning)
            rep_s_reps = np.nanmax(reps[:, s_cols], axis=1) if reps.shape[0] else np.zeros(0)
        lift_reps = rep_s_reps - reps[:, d_col] if reps.shape[0] else np.zeros(0)
        style, _, persona = str(column_keys.at[best, "context"]).partition("|")
        rows.append({**dict(zip(keys, group_key)), "metric": metric, "n_questions": int(counts[d_col]),
                     "n_contexts": int(len(s_cols)),
                     "rep_default": float(estimate[d_col]), **_ci("rep_default", reps[:, d_col] if reps.shape[0] else []),
                     "rep_best": float(np.nanmax(estimate[s_cols])), **_ci("rep_best", rep_s_reps),
                     "lift": float(np.nanmax(estimate[s_cols]) - estimate[d_col]), **_ci("lift", lift_reps),
                     "best_style": style, "best_persona": persona})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    slopes = []
    for model_name, rows_m in table.groupby("model", sort=False):
        x, y = rows_m["rep_default"].to_numpy(), rows_m["rep_best"].to_numpy()
        ok = np.isfinite(x) & np.isfinite(y)
        slope, intercept = (np.polyfit(x[ok], y[ok], 1) if ok.sum() >= 2 and np.ptp(x[ok]) > 0 else (np.nan, np.nan))
        slopes.append({"model": model_name, "slope": float(slope), "intercept": float(intercept), "n_groups": int(ok.sum())})
    table = table.merge(pd.DataFrame(slopes), on="model", how="left")
    table["flags"] = _flags(table["n_questions"].to_numpy(),
                            extra=["one_group_slope" if n < 3 else "" for n in table["n_groups"]])
    return table.sort_values(["model", "lift"], ascending=[True, False], kind="stable").reset_index(drop=True)


def _ci(name: str, replicates: Any) -> dict[str, float]:
    low, high = percentile_interval(np.asarray(replicates, dtype=float))
    return {f"{name}_ci_low": low, f"{name}_ci_high": high}


# -- consistency across topics ---------------------------------------------------------------------------------------
def consistency_table(pairs: pd.DataFrame, topics: dict[str, str], *, metric: str = "representativeness") -> pd.DataFrame:
    """Per model × group variable: g* = the group with the highest mean score over every question, g*_t per topic, and
    C = mean_t 1[g*_t = g*] (OpinionQA's consistency). Topics with one question are kept and counted."""
    if pairs.empty or not topics:
        return pd.DataFrame()
    value = (1.0 - pairs["wd"]) if metric == "representativeness" else pairs["similarity"]
    frame = pairs.assign(value=value, topic=pairs["item_id"].map(topics))
    frame = frame[np.isfinite(frame["value"]) & frame["topic"].notna()]
    rows = []
    for (model_name, var), block in frame.groupby(["model", "group_var"], sort=True):
        overall = block.groupby("group_value")["value"].mean()
        if len(overall) < 2:
            continue
        best = str(overall.idxmax())
        per_topic = block.groupby(["topic", "group_value"])["value"].mean().reset_index()
        winners = per_topic.loc[per_topic.groupby("topic")["value"].idxmax()]
        agree = int((winners["group_value"] == best).sum())
        n_topics = len(winners)
        rows.append({"model": model_name, "group_var": var, "metric": metric, "best_group": best,
                     "n_groups": int(len(overall)), "n_topics": n_topics, "n_questions": int(block["item_id"].nunique()),
                     "topics_agreeing": agree, "consistency": agree / n_topics if n_topics else np.nan,
                     "topic_best_groups": json.dumps(dict(zip(winners["topic"].astype(str), winners["group_value"].astype(str))),
                                                     ensure_ascii=False),
                     "flags": "one_topic" if n_topics < 2 else ""})
    return pd.DataFrame(rows)


# -- diversity of thought (Park et al. 2023) -------------------------------------------------------------------------
def _entropy_nat(P: Array) -> Array:
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(P > 0, P * np.log(np.where(P > 0, P, 1.0)), 0.0).sum(axis=-1)


def _sum_rows(values: Array, codes: NDArray[np.int64], size: int) -> Array:
    """Row sums of `values` per code (size × columns): one bincount per column (np.add.at is far slower)."""
    return np.column_stack([np.bincount(codes, weights=values[:, j], minlength=size) for j in range(values.shape[1])]) \
        if values.shape[1] else np.zeros((size, 0))


def diversity_items(model: pd.DataFrame, human: pd.DataFrame, *, tau: float = CORRECT_ANSWER_TAU) -> pd.DataFrame:
    """Per model × item, over every context of the model (default and personas; each a distribution that already
    pools samples and forms): the pooled distribution's modal share and entropy / log k, the variance of the answer
    position under it, the variance across contexts of the expected position (between-persona), the human
    between-group variance of the groups' mean positions and the pooled groups' within variance, their ratios, and
    the "correct answer" flag (model modal share ≥ τ where no human group's reaches τ). Variances are population
    variances (ddof 0); positions as in representativeness (refusals off the scale, renormalised)."""
    model = model[[d is not None for d in model["dist"]]].reset_index(drop=True)
    if model.empty or human.empty:
        return pd.DataFrame()
    human = human.reset_index(drop=True)
    item_index = pd.Index(sorted(set(human["item_id"]) & set(model["item_id"])))
    if item_index.empty:
        return pd.DataFrame()
    human = human[human["item_id"].isin(item_index)].reset_index(drop=True)
    h_item = item_index.get_indexer(human["item_id"])
    k_item = np.zeros(len(item_index), dtype=np.int64)
    k_item[h_item] = np.fromiter((len(x) for x in human["shares"]), dtype=np.int64, count=len(human))
    width = int(k_item.max())
    H = _pad(human["shares"], width)
    first = np.unique(h_item, return_index=True)[1]  # positions belong to the item: one row per item
    POS = np.full((len(item_index), width), np.nan)
    POS[h_item[first]] = _pad(human["positions"].to_numpy()[first], width, np.nan)
    on = np.isfinite(POS)
    x = np.where(on, POS, 0.0)
    n_items = len(item_index)

    def moments(D: Array, rows: NDArray[np.int64]) -> tuple[Array, Array]:
        """Mean and variance of the position under each row's distribution over its item's scale."""
        w = np.where(on[rows], D, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            w = w / w.sum(axis=1, keepdims=True)
            mean = (w * x[rows]).sum(axis=1)
            var = (w * (x[rows] - mean[:, None]) ** 2).sum(axis=1)
        return mean, var

    def per_item(values: Array, codes: NDArray[np.int64], size: int) -> tuple[Array, Array, Array]:
        """Sum, sum of squares and count of `values` per code (NaN left out)."""
        ok = np.isfinite(values)
        total = np.bincount(codes[ok], weights=values[ok], minlength=size).astype(float)
        squares = np.bincount(codes[ok], weights=values[ok] ** 2, minlength=size).astype(float)
        return total, squares, np.bincount(codes[ok], minlength=size).astype(float)

    n_groups = np.bincount(h_item, minlength=n_items)
    human_max = pd.Series(H.max(axis=1)).groupby(h_item).max().reindex(range(n_items)).to_numpy()
    h_sum = _sum_rows(H, h_item, n_items)
    h_pooled = h_sum / np.maximum(n_groups, 1)[:, None]
    g_mean, _ = moments(H, h_item)
    s1, s2, cnt = per_item(g_mean, h_item, n_items)
    with np.errstate(invalid="ignore", divide="ignore"):
        human_between = np.where(cnt > 0, s2 / cnt - (s1 / cnt) ** 2, np.nan)
    _, human_within = moments(h_pooled, np.arange(n_items))

    m_item = item_index.get_indexer(model["item_id"])
    keep = (m_item >= 0) & (np.array([len(d) for d in model["dist"]]) == k_item[np.maximum(m_item, 0)])
    model = model[keep].reset_index(drop=True)
    m_item = m_item[keep]
    M = _pad(model["dist"], width)
    codes, cells = pd.factorize(pd.MultiIndex.from_arrays([model["model"], m_item]), sort=True)
    n_cells = len(cells)
    cell_item = np.asarray(cells.get_level_values(1), dtype=np.int64)
    n_contexts = np.bincount(codes, minlength=n_cells)
    m_sum = _sum_rows(M, codes, n_cells)
    pooled = m_sum / n_contexts[:, None]
    c_mean, _ = moments(M, m_item)
    t1, t2, tc = per_item(c_mean, codes, n_cells)
    _, pooled_var = moments(pooled, cell_item)
    valid = np.arange(width)[None, :] < k_item[cell_item][:, None]
    entropy_nat = -np.where(pooled > 0, pooled * np.log(np.where(pooled > 0, pooled, 1.0)), 0.0).sum(axis=1)
    scale = (on[cell_item].sum(axis=1) >= 2) & (np.nanmax(np.where(on[cell_item], POS[cell_item], -np.inf), axis=1)
                                                > np.nanmin(np.where(on[cell_item], POS[cell_item], np.inf), axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        between = np.where(tc > 0, t2 / tc - (t1 / tc) ** 2, np.nan)
        hb, hw = human_between[cell_item], human_within[cell_item]
        out = pd.DataFrame({
            "model": np.asarray(cells.get_level_values(0)), "item_id": np.asarray(item_index)[cell_item],
            "n_contexts": n_contexts, "n_groups": n_groups[cell_item],
            "modal_share": np.where(valid, pooled, -np.inf).max(axis=1),
            "normalised_entropy": entropy_nat / np.log(k_item[cell_item]),
            "human_max_modal_share": human_max[cell_item],
            "model_position_var": np.where(scale, pooled_var, np.nan),
            "model_between_context_var": np.where(scale, np.clip(between, 0.0, None), np.nan),
            "human_between_group_var": np.where(scale, np.clip(hb, 0.0, None), np.nan),
            "human_within_var": np.where(scale, hw, np.nan),
        })
        out["variance_ratio"] = np.where(out["human_between_group_var"] > 0,
                                         out["model_between_context_var"] / out["human_between_group_var"], np.nan)
        out["total_variance_ratio"] = np.where(out["human_within_var"] > 0,
                                               out["model_position_var"] / out["human_within_var"], np.nan)
    out["correct_answer"] = (out["modal_share"] >= tau) & (out["human_max_modal_share"] < tau)
    return out


def diversity_table(items: pd.DataFrame, *, tau: float = CORRECT_ANSWER_TAU, n_boot: int = DEFAULT_RESAMPLES,
                    seed: int = 0) -> pd.DataFrame:
    """Per model: mean modal share, normalised entropy and correct-answer share with CIs over questions; median
    variance ratios (between contexts vs between human groups; total vs the human population's within variance)."""
    if items.empty:
        return pd.DataFrame()
    items = items.assign(correct_answer=items["correct_answer"].astype(float))
    table = _group_table(items.assign(group="all"), ["model"], ["modal_share", "normalised_entropy", "correct_answer"],
                         n_boot=n_boot, seed=seed)
    table = table.rename(columns={"correct_answer": "correct_answer_share", "correct_answer_ci_low": "correct_answer_share_ci_low",
                                  "correct_answer_ci_high": "correct_answer_share_ci_high"})
    extra = items.groupby("model").agg(
        n_contexts=("n_contexts", "max"),
        n_ordinal=("variance_ratio", "count") if "variance_ratio" in items else ("n_contexts", lambda s: 0),
        median_variance_ratio=("variance_ratio", "median") if "variance_ratio" in items else ("n_contexts", lambda s: np.nan),
        median_total_variance_ratio=(("total_variance_ratio", "median") if "total_variance_ratio" in items
                                     else ("n_contexts", lambda s: np.nan)))
    table = table.merge(extra.reset_index(), on="model", how="left")
    table["tau"] = tau
    table["flags"] = _flags(table["n_questions"].to_numpy(), extra=["one_context" if n < 2 else "" for n in table["n_contexts"]])
    return table


def items_table(pairs: pd.DataFrame, model: pd.DataFrame, human: pd.DataFrame, texts: dict[str, str]) -> pd.DataFrame:
    """Per model × question × group (default context): every per-question metric with the model's and the group's
    distributions side by side (the most and least aligned questions of the report)."""
    if pairs.empty:
        return pd.DataFrame()
    defaults = model[(model["persona_id"] == DEFAULT) & (model["persona_style"] == DEFAULT)]
    defaults = defaults[[d is not None for d in defaults["dist"]]].reset_index(drop=True)
    out = pairs.drop(columns=["persona_id", "persona_style"]).copy()
    out.insert(2, "question", out["item_id"].map(texts).fillna(""))
    out["representativeness"] = 1.0 - out["wd"]
    dists, shares = defaults["dist"].to_numpy(), human["shares"].to_numpy()
    out["model_dist"] = [np.asarray(dists[m], dtype=float).tolist() for m in out["m_row"].to_numpy()]
    out["human_dist"] = [np.asarray(shares[h], dtype=float).tolist() for h in out["h_row"].to_numpy()]
    options = human["options"].to_numpy() if "options" in human else None
    out["options"] = list(options[out["h_row"].to_numpy()]) if options is not None else [[] for _ in range(len(out))]
    return out.drop(columns=["m_row", "h_row", "wd"]).sort_values(["model", "similarity"], kind="stable").reset_index(drop=True)


# -- reading the store ------------------------------------------------------------------------------------------------
def has_human_distributions(info: SurveyInfo) -> bool:
    """Surveys whose items carry human reference distributions."""
    return any(item.get("human") for item in info.items())


def _columns(ctx: Any, table: str) -> set[str]:
    frame = ctx.store.query("SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' AND table_name = ?",
                            [table])
    return set(frame["column_name"])


def inputs_from_context(ctx: Any) -> HumanInputs | None:
    """The model and human frames of an analysis context (cached on it)."""
    if "human_inputs" not in ctx._cache:
        ctx._cache["human_inputs"] = _read_inputs(ctx)  # not a frame: the cache holds whatever a table shares
    return ctx._cache["human_inputs"]  # type: ignore[no-any-return]


def _read_inputs(ctx: Any) -> HumanInputs | None:
    if "human_distributions" not in set(ctx.store.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'")["table_name"]):
        return None
    human = ctx.store.query(
        "SELECT h.item_id, h.group_var, h.group_value, h.shares, h.n, "
        "list_transform(h.option_positions, lambda x: coalesce(x, 'NaN'::DOUBLE)) AS positions, h.option_refusal AS refusal, "
        "i.option_texts AS options FROM human_distributions h JOIN surveys s USING (survey_hash) "
        "LEFT JOIN items i ON i.survey_hash = h.survey_hash AND i.item_id = h.item_id WHERE h.survey_id = ? "
        "QUALIFY dense_rank() OVER (PARTITION BY h.item_id ORDER BY s.created_at DESC, h.survey_hash) = 1 "
        "ORDER BY h.item_id, h.group_var, h.group_value", [ctx.info.survey_id])
    if human.empty:
        return None
    for column in ("shares", "positions"):
        human[column] = [np.asarray(v, dtype=float) for v in human[column]]
    human["refusal"] = [np.asarray([bool(x) for x in v], dtype=bool) for v in human["refusal"]]
    human["options"] = [list(v) if v is not None else [] for v in human["options"]]
    trial_columns = _columns(ctx, "trials")
    style = "t.persona_style" if "persona_style" in trial_columns else "''"
    persona = "coalesce(nullif(t.persona_id, ''), r.respondent)" if "persona_id" in trial_columns else "r.respondent"
    where, params = ctx._filters(all_personas=True)  # the tables compare the contexts
    width = int(max(len(s) for s in human["shares"]))
    means = "".join(f", avg(r.distribution[{k + 1}]) FILTER (WHERE r.status = 'ok' AND r.distribution IS NOT NULL) AS p{k}"
                    for k in range(width))
    forms = ctx.store.query(
        f"SELECT r.model, {persona} AS persona_id, {style} AS persona_style, t.item_id, r.trial_id, len(t.option_order) AS k, "
        "count(*) FILTER (WHERE r.status = 'ok' AND r.distribution IS NOT NULL) AS n_ok, "
        f"avg(r.valid_mass) FILTER (WHERE r.status = 'ok') AS valid_mass{means} "
        f"FROM results r JOIN trials t USING (trial_id) WHERE {where} GROUP BY ALL", params)
    forms = forms[forms["n_ok"] > 0]
    model = model_from_forms(forms, width)
    personas = pd.DataFrame(columns=["persona_id", "group_var", "group_value"])
    tables = set(ctx.store.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'")["table_name"])
    if "personas" in tables:
        stored = ctx.store.query("SELECT persona_id, CAST(attributes AS VARCHAR) AS attributes FROM personas WHERE survey_id = ?",
                                 [ctx.info.survey_id])
        personas = personas_from_attributes(stored)
    population = None
    reference = ctx.info.spec.get("human") or {}
    if reference.get("population"):
        var, _, value = str(reference["population"]).partition(":")
        population = (var, value)
    items = ctx.info.items()
    topics = {str(i["id"]): str(i["meta"]["topic"]) for i in items if (i.get("meta") or {}).get("topic") is not None}
    texts = {str(i["id"]): str((i.get("fields") or {}).get("question") or next(iter((i.get("fields") or {}).values()), ""))
             for i in items}
    return HumanInputs(model=model, human=human, personas=personas, population=population, topics=topics, texts=texts)


def model_from_forms(forms: pd.DataFrame, width: int) -> pd.DataFrame:
    """Per model × persona context × item: the mean over its forms (trials) of each form's distribution."""
    columns = ["model", "persona_id", "persona_style", "item_id", "dist", "n_forms", "valid_mass"]
    if forms.empty:
        return pd.DataFrame(columns=columns)
    probs = forms[[f"p{k}" for k in range(width)]].to_numpy(dtype=float)
    forms = forms.assign(_row=np.arange(len(forms)))
    rows = []
    for key, block in forms.groupby(["model", "persona_id", "persona_style", "item_id"], sort=True):
        k = int(block["k"].iloc[0])
        dist = probs[block["_row"].to_numpy(), :k].mean(axis=0)
        rows.append((*key, dist, int(len(block)), float(block["valid_mass"].mean())))
    return pd.DataFrame(rows, columns=columns)


def personas_from_attributes(stored: pd.DataFrame) -> pd.DataFrame:
    """The personas table's attributes JSON ({group_var: group_value}) as rows persona_id, group_var, group_value."""
    rows: list[tuple[str, str, str]] = []
    for persona_id, attributes in zip(stored["persona_id"], stored["attributes"]):
        parsed = json.loads(attributes) if isinstance(attributes, str) else dict(attributes or {})
        rows.extend((str(persona_id), str(var), str(value)) for var, value in parsed.items())
    return pd.DataFrame(rows, columns=["persona_id", "group_var", "group_value"]).drop_duplicates()


def _pairs(ctx: Any) -> pd.DataFrame:
    if "human_pairs" not in ctx._cache:
        inputs = inputs_from_context(ctx)
        ctx._cache["human_pairs"] = pd.DataFrame() if inputs is None else pair_frame(inputs.model, inputs.human)
    return ctx._cache["human_pairs"]  # type: ignore[no-any-return]


def _none_if_empty(frame: pd.DataFrame) -> pd.DataFrame | None:
    return None if frame is None or frame.empty else frame


@register("human_similarity", has_human_distributions,
          description="Per model × human group: 1 − JS distance (natural log), JSD (bits), TV, Kendall τ-b, with CIs")
def _human_similarity(ctx: Any) -> pd.DataFrame | None:
    return _none_if_empty(similarity_table(_pairs(ctx), n_boot=ctx.n_boot, seed=ctx.seed))


@register("human_representativeness", has_human_distributions,
          description="Per model × human group: OpinionQA representativeness (1 − W1/range) and refusal mass vs rate")
def _human_representativeness(ctx: Any) -> pd.DataFrame | None:
    return _none_if_empty(representativeness_table(_pairs(ctx), n_boot=ctx.n_boot, seed=ctx.seed))


@register("human_baselines", has_human_distributions,
          description="Each human group against the whole population: similarity and representativeness, average and worst")
def _human_baselines(ctx: Any) -> pd.DataFrame | None:
    inputs = inputs_from_context(ctx)
    return None if inputs is None else _none_if_empty(baselines_table(inputs.human, inputs.population, n_boot=ctx.n_boot,
                                                                      seed=ctx.seed))


@register("human_steerability", has_human_distributions,
          description="Per model × group: default vs best persona context (Rep_d, Rep_s), lift, OLS slope across groups")
def _human_steerability(ctx: Any) -> pd.DataFrame | None:
    inputs = inputs_from_context(ctx)
    if inputs is None:
        return None
    tables = [steerability_table(inputs.model, inputs.human, inputs.personas, metric=metric, n_boot=ctx.n_boot, seed=ctx.seed)
              for metric in ("representativeness", "similarity")]
    tables = [t for t in tables if not t.empty]
    return pd.concat(tables, ignore_index=True) if tables else None


@register("human_consistency", has_human_distributions,
          description="Per model × group variable: best-aligned group per topic vs overall (OpinionQA consistency)")
def _human_consistency(ctx: Any) -> pd.DataFrame | None:
    inputs = inputs_from_context(ctx)
    if inputs is None:
        return None
    tables = [consistency_table(_pairs(ctx), inputs.topics, metric=metric) for metric in ("representativeness", "similarity")]
    tables = [t for t in tables if not t.empty]
    return pd.concat(tables, ignore_index=True) if tables else None


@register("human_diversity", has_human_distributions,
          description="Per model: modal share, normalised entropy, variance ratios, correct-answer effect (Park et al.)")
def _human_diversity(ctx: Any) -> pd.DataFrame | None:
    inputs = inputs_from_context(ctx)
    if inputs is None:
        return None
    return _none_if_empty(diversity_table(diversity_items(inputs.model, inputs.human), n_boot=ctx.n_boot, seed=ctx.seed))


@register("human_diversity_items", has_human_distributions, detail=True,
          description="Per model × question: diversity of the model's answers across contexts vs the human groups'")
def _human_diversity_items(ctx: Any) -> pd.DataFrame | None:
    inputs = inputs_from_context(ctx)
    return None if inputs is None else _none_if_empty(diversity_items(inputs.model, inputs.human))


@register("human_items", has_human_distributions, detail=True,
          description="Per model × question × group: every per-question metric, model and human distributions side by side")
def _human_items(ctx: Any) -> pd.DataFrame | None:
    inputs = inputs_from_context(ctx)
    return None if inputs is None else _none_if_empty(items_table(_pairs(ctx), inputs.model, inputs.human, inputs.texts))
