"""Likert inventories (METRICS.md §4, Gupta et al. 2024): expected item scores, keyed trait scores,
Cronbach's α, prompt sensitivity across administration styles and option-order (anchor) symmetry.

Conventions (docs/survey-conventions.md): options carry `value`; `item.keyed` = ±1; `item.meta.domain`
and `item.meta.facet`; `template.group` = administration style; `template.meta.anchors` = original or
mirrored. Stored distributions are in canonical order, so E[r] = Σ_j value_j p_j needs no relabelling.

Respondents (`results.respondent`: people of a human sample, personas, sessions of one model, imported with
docs/importing.md) stay distinct: each is a row of the respondents × items matrix behind Cronbach's α, and trait
scores average over them (each respondent's item score counts once).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from probekit.analysis.bootstrap import mean_ci, statistic_ci
from probekit.analysis.loader import AnalysisContext
from probekit.analysis.registry import is_personality, register

CELL = ("model", "reasoning", "style", "anchors")


def keyed_score(expected: np.ndarray | float, keyed: np.ndarray | int, low: np.ndarray | float, high: np.ndarray | float) -> np.ndarray:
    """Reverse-keyed items score (low + high) − r, i.e. (k + 1) − r on a 1..k scale."""
    r = np.asarray(expected, dtype=float)
    return np.where(np.asarray(keyed) < 0, np.asarray(low) + np.asarray(high) - r, r)


def expected_score(dist: np.ndarray, values: np.ndarray) -> float:
    """E[r] over the options that carry a scale value (others, e.g. a refusal option, renormalised away)."""
    valued = np.isfinite(values)
    mass = float(dist[valued].sum())
    return float((dist[valued] * values[valued]).sum() / mass) if mass > 0 else float("nan")


def form_scores(forms: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """One row per form with a valid distribution: expected score, keyed score, trait/facet, style, anchors.

    style = template.group (administration style) or the template id; anchors = template.meta.anchors
    (default 'original')."""
    info = items.set_index("item_id")
    rows = []
    for row in forms.itertuples(index=False):
        if row.dist is None or row.item_id not in info.index:
            continue
        item = info.loc[row.item_id]
        values = np.asarray(item["option_values"], dtype=float)
        if len(values) != len(row.dist) or not np.isfinite(values).any():
            continue
        expected = expected_score(row.dist, values)
        low, high = np.nanmin(values), np.nanmax(values)
        meta = item["meta"] or {}
        rows.append({
            "run_id": row.run_id, "model": row.model, "respondent": getattr(row, "respondent", ""),
            "reasoning": row.reasoning, "item_id": row.item_id,
            "trial_id": row.trial_id, "template_id": row.template_id,
            "style": row.template_group or row.template_id, "anchors": str(row.tmeta.get("anchors", "original")),
            "paraphrase_id": row.paraphrase_id, "option_order": ",".join(map(str, row.option_order)),
            "factors": ",".join(f"{k}={v}" for k, v in sorted(row.factors.items())),
            "domain": meta.get("domain"), "facet": meta.get("facet"), "keyed": int(item["keyed"] if pd.notna(item["keyed"]) else 1),
            "expected": expected, "score": float(keyed_score(expected, item["keyed"] if pd.notna(item["keyed"]) else 1, low, high)),
        })
    return pd.DataFrame(rows)


def item_scores(scores: pd.DataFrame, cell: Sequence[str] = CELL) -> pd.DataFrame:
    """Per cell × item: expected score E[r] and keyed score, each the mean over the item's forms."""
    return (scores.groupby([*cell, "domain", "facet", "item_id", "keyed"], sort=True, dropna=False)
            .agg(expected=("expected", "mean"), score=("score", "mean"), n_forms=("score", "size")).reset_index())


def trait_scores(scores: pd.DataFrame, trait: str = "domain", cell: Sequence[str] = CELL, *, n_boot: int = 1000,
                 seed: int = 0) -> pd.DataFrame:
    """Per cell × trait: mean of the items' keyed scores (each item first averaged over its forms in the
    cell), with a bootstrap CI over items, n items and n forms."""
    per_item = scores.groupby([*cell, trait, "item_id"], sort=True)["score"].agg(["mean", "count"]).reset_index()
    rows = []
    for key, sub in per_item.groupby([*cell, trait], sort=True):
        est, low, high = mean_ci(sub["mean"].to_numpy(), n_boot=n_boot, seed=seed)
        rows.append({**dict(zip([*cell, "trait"], key)), "score": est, "score_ci_low": low, "score_ci_high": high,
                     "n_items": len(sub), "n_forms": int(sub["count"].sum())})
    return pd.DataFrame(rows)


def cronbach_alpha(matrix: np.ndarray) -> float:
    """Cronbach's α of a respondents × items matrix: k/(k−1) · (1 − Σ var(item) / var(total)), ddof = 1."""
    m = np.asarray(matrix, dtype=float)
    n_resp, k = m.shape
    if k < 2 or n_resp < 2:
        return float("nan")
    total_var = m.sum(axis=1).var(ddof=1)
    # Identical administrations (a deterministic model) leave α undefined; float noise would give ±∞-ish.
    if total_var <= 1e-12 * max(1.0, float(np.abs(m).max()) ** 2):
        return float("nan")
    return float(k / (k - 1) * (1 - m.var(axis=0, ddof=1).sum() / total_var))


def _alpha_of_rows(matrix: np.ndarray, rows: np.ndarray) -> float:
    """Cronbach's α of the drawn respondents (rows, with repeats) of a matrix: the bootstrap statistic."""
    return cronbach_alpha(matrix[rows])


def alpha_table(scores: pd.DataFrame, trait: str = "domain", *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Cronbach's α per model × reasoning × trait. A 'respondent' is one administration: run × respondent ×
    template × paraphrase × option order × factors (the LLM analogue of a person filling in the whole inventory;
    `respondent` is who answered as the model: a person, a persona, a session). Only respondents that answered
    every item of the trait are used; CI by bootstrapping respondents."""
    respondent = ["run_id", "respondent", "template_id", "paraphrase_id", "option_order", "factors"]
    if "respondent" not in scores:
        scores = scores.assign(respondent="")
    rows = []
    for (model, reasoning, name), sub in scores.groupby(["model", "reasoning", trait], sort=True):
        wide = sub.pivot_table(index=respondent, columns="item_id", values="score", aggfunc="mean").dropna()
        matrix = wide.to_numpy()
        alpha = cronbach_alpha(matrix)
        if len(matrix) > 2:
            low, high = statistic_ci(len(matrix), functools.partial(_alpha_of_rows, matrix),
                                     n_boot=n_boot, seed=seed)
        else:
            low, high = float("nan"), float("nan")
        rows.append({"model": model, "reasoning": reasoning, "trait": name, "alpha": alpha, "alpha_ci_low": low,
                     "alpha_ci_high": high, "n_items": matrix.shape[1], "n_respondents": matrix.shape[0]})
    return pd.DataFrame(rows)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (NaN entries stay NaN and do not count)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = finite.size
    order = finite[np.argsort(p[finite], kind="stable")]
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        out[index] = running
    return out


def _paired(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Paired t-test and Wilcoxon signed-rank over items, with Cohen's d_z = mean(d) / sd(d)."""
    from scipy import stats  # imported here: scipy.stats costs seconds at start-up and few tables need it

    d = a - b
    n = d.size
    sd = d.std(ddof=1) if n > 1 else float("nan")
    with np.errstate(all="ignore"):
        t_p = float(stats.ttest_rel(a, b).pvalue) if n > 1 and sd > 0 else (1.0 if n > 1 else float("nan"))
        try:
            w_p = float(stats.wilcoxon(d).pvalue) if n > 1 and np.any(d != 0) else (1.0 if n > 1 else float("nan"))
        except ValueError:
            w_p = float("nan")
    return {"mean_diff": float(d.mean()) if n else float("nan"), "cohen_dz": float(d.mean() / sd) if n > 1 and sd > 0 else float("nan"),
            "p_ttest": t_p, "p_wilcoxon": w_p}


def _item_means(scores: pd.DataFrame, trait: str, by: Sequence[str]) -> pd.DataFrame:
    return scores.groupby([*by, trait, "item_id"], sort=True)["score"].mean().reset_index()


def prompt_sensitivity(scores: pd.DataFrame, trait: str = "domain", *, alpha: float = 0.05) -> pd.DataFrame:
    """Do trait scores differ between administration styles? Original anchors only (mirroring is the
    symmetry test). Per model × reasoning × pair of styles × trait: paired tests across items, d_z,
    and Holm-corrected p across traits; with ≥ 3 styles also a Friedman test per trait (style 'all')."""
    base = scores[scores["anchors"] == "original"]
    means = _item_means(base, trait, ["model", "reasoning", "style"])
    rows = []
    for (model, reasoning), sub in means.groupby(["model", "reasoning"], sort=True):
        styles = sorted(sub["style"].unique())
        if len(styles) < 2:
            continue
        wide = {name: g.pivot_table(index="item_id", columns="style", values="score") for name, g in sub.groupby(trait)}
        comparisons: list[tuple[str, str]] = list(itertools.combinations(styles, 2))
        for style_a, style_b in comparisons:
            family = []
            for name, table in sorted(wide.items()):
                if style_a not in table or style_b not in table:
                    continue
                pair = table[[style_a, style_b]].dropna()
                result = _paired(pair[style_a].to_numpy(), pair[style_b].to_numpy())
                family.append({"model": model, "reasoning": reasoning, "trait": name, "style_a": style_a, "style_b": style_b,
                               "test": "paired", "n_items": len(pair), "score_a": float(pair[style_a].mean()),
                               "score_b": float(pair[style_b].mean()), **result})
            adjusted = holm([r["p_ttest"] for r in family])
            for r, p_adj in zip(family, adjusted):
                r["p_holm"] = float(p_adj)
                r["significant"] = bool(p_adj < alpha) if np.isfinite(p_adj) else False
            rows.extend(family)
        if len(styles) >= 3:
            family = []
            for name, table in sorted(wide.items()):
                complete = table.reindex(columns=styles).dropna()
                if len(complete) < 2:
                    continue
                from scipy import stats

                with np.errstate(all="ignore"):
                    p = float(stats.friedmanchisquare(*[complete[s].to_numpy() for s in styles]).pvalue)
                family.append({"model": model, "reasoning": reasoning, "trait": name, "style_a": "all", "style_b": "",
                               "test": "friedman", "n_items": len(complete), "score_a": float("nan"), "score_b": float("nan"),
                               "mean_diff": float(complete.max(axis=1).sub(complete.min(axis=1)).mean()),
                               "cohen_dz": float("nan"), "p_ttest": p if np.isfinite(p) else 1.0, "p_wilcoxon": float("nan")})
            adjusted = holm([r["p_ttest"] for r in family])
            for r, p_adj in zip(family, adjusted):
                r["p_holm"] = float(p_adj)
                r["significant"] = bool(p_adj < alpha) if np.isfinite(p_adj) else False
            rows.extend(family)
    return pd.DataFrame(rows)


def order_symmetry(scores: pd.DataFrame, trait: str = "domain", *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Original minus mirrored anchors per model × reasoning × style × trait: mean per-item difference
    with a bootstrap CI over items, the paired t-test p (and Holm across traits) and d_z. 0 = robust to
    anchor order."""
    means = _item_means(scores, trait, ["model", "reasoning", "style", "anchors"])
    rows = []
    for (model, reasoning, style, name), sub in means.groupby(["model", "reasoning", "style", trait], sort=True):
        table = sub.pivot_table(index="item_id", columns="anchors", values="score")
        if "original" not in table or "mirrored" not in table:
            continue
        pair = table[["original", "mirrored"]].dropna()
        diff = (pair["original"] - pair["mirrored"]).to_numpy()
        est, low, high = mean_ci(diff, n_boot=n_boot, seed=seed)
        result = _paired(pair["original"].to_numpy(), pair["mirrored"].to_numpy())
        rows.append({"model": model, "reasoning": reasoning, "style": style, "trait": name, "n_items": len(pair),
                     "score_original": float(pair["original"].mean()), "score_mirrored": float(pair["mirrored"].mean()),
                     "difference": est, "difference_ci_low": low, "difference_ci_high": high,
                     "cohen_dz": result["cohen_dz"], "p_ttest": result["p_ttest"]})
    table = pd.DataFrame(rows)
    if not table.empty:
        # Holm across traits within each model × reasoning × style, as for prompt sensitivity.
        table["p_holm"] = np.nan
        for _, index in table.groupby(["model", "reasoning", "style"]).groups.items():
            table.loc[index, "p_holm"] = holm(table.loc[index, "p_ttest"].to_numpy())
    return table


def respondent_trait_scores(scores: pd.DataFrame, trait: str = "domain") -> pd.DataFrame:
    """Per model × reasoning × respondent × trait: the mean keyed score of the trait's items (each item first
    averaged over the respondent's forms), with n items. The scores a human-sample study reports per person."""
    per_item = scores.groupby(["model", "reasoning", "respondent", trait, "item_id"], sort=True)["score"].mean()
    table = per_item.groupby(level=[0, 1, 2, 3], sort=True).agg(["mean", "size"]).reset_index()
    return table.rename(columns={trait: "trait", "mean": "score", "size": "n_items"})


# -- registered tables --------------------------------------------------------------------------------
def respondent_forms(ctx) -> pd.DataFrame | None:  # type: ignore[no-untyped-def]
    """ctx.forms() split by respondent (one row per run × model × respondent × trial, distribution = the mean of
    its ok rows), or None when no result in scope names a respondent (the pooled forms are the same then)."""
    import duckdb

    try:
        named = ctx.sql("SELECT count(*) AS n FROM results r JOIN trials t USING (trial_id) "
                        "WHERE {scope} AND r.respondent <> ''")
    except duckdb.Error:  # a store written before migration 8 (readers do not migrate): no respondents
        return None
    if int(named["n"][0]) == 0:
        return None
    frame = ctx.sql(
        "SELECT r.run_id, r.model, r.respondent, t.item_id, r.trial_id, t.template_id, t.paraphrase_id, "
        "CAST(t.factors AS VARCHAR) AS factors, t.option_order, t.reasoning, "
        "list(CAST(r.distribution AS DOUBLE[])) FILTER (WHERE r.status = 'ok' AND r.distribution IS NOT NULL) AS dists "
        "FROM results r JOIN trials t USING (trial_id) WHERE {scope} GROUP BY ALL "
        "ORDER BY r.run_id, r.model, r.respondent, t.item_id, r.trial_id")
    import json

    frame["factors"] = [json.loads(f) if isinstance(f, str) and f else {} for f in frame["factors"]]
    frame["option_order"] = [tuple(int(x) for x in o) for o in frame["option_order"]]
    # A trial none of whose rows is ok (a refusal, an invalid answer) has no list: DuckDB gives pd.NA, not None.
    frame["dist"] = [np.mean(np.asarray([list(d) for d in ds], dtype=float), axis=0)
                     if isinstance(ds, (list, tuple, np.ndarray)) and len(ds) else None for ds in frame["dists"]]
    tmeta = ctx.template_meta()
    frame["template_group"] = [tmeta.get(t, {}).get("group") for t in frame["template_id"]]
    frame["tmeta"] = [tmeta.get(t, {}) for t in frame["template_id"]]
    return frame.drop(columns=["dists"])


def _scores(ctx) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    if "likert_scores" not in ctx._cache:
        by_respondent = respondent_forms(ctx)
        forms = by_respondent if by_respondent is not None else ctx.forms()
        ctx._cache["likert_scores"] = form_scores(forms, ctx.items()) if not forms.empty else pd.DataFrame()
    return ctx._cache["likert_scores"]


@register("likert_traits", is_personality)
def _likert_traits(ctx: AnalysisContext) -> pd.DataFrame | None:
    """Keyed trait (domain) scores per model × style × anchors, with CIs over items."""
    scores = _scores(ctx)
    return None if scores.empty else trait_scores(scores, "domain", n_boot=ctx.n_boot, seed=ctx.seed)


@register("likert_items", is_personality, detail=True)
def _likert_items(ctx: AnalysisContext) -> pd.DataFrame | None:
    """Expected and keyed score per item × model × style × anchors."""
    scores = _scores(ctx)
    return None if scores.empty else item_scores(scores)


@register("likert_facets", is_personality, detail=True)
def _likert_facets(ctx: AnalysisContext) -> pd.DataFrame | None:
    """Keyed facet scores per model × style × anchors, with CIs over items."""
    scores = _scores(ctx)
    if scores.empty or scores["facet"].isna().all():
        return None
    return trait_scores(scores.dropna(subset=["facet"]), "facet", n_boot=ctx.n_boot, seed=ctx.seed)


@register("likert_alpha", is_personality)
def _likert_alpha(ctx: AnalysisContext) -> pd.DataFrame | None:
    """Cronbach's α per model × trait over administrations."""
    scores = _scores(ctx)
    return None if scores.empty else alpha_table(scores, "domain", n_boot=ctx.n_boot, seed=ctx.seed)


@register("likert_respondents", is_personality, detail=True)
def _likert_respondents(ctx: AnalysisContext) -> pd.DataFrame | None:
    """Keyed trait (domain) score per model × respondent (people, personas or sessions given as respondents)."""
    scores = _scores(ctx)
    if scores.empty or (scores["respondent"] == "").all():
        return None
    return respondent_trait_scores(scores, "domain")


@register("likert_sensitivity", is_personality)
def _likert_sensitivity(ctx: AnalysisContext) -> pd.DataFrame | None:
    """Prompt sensitivity across administration styles: paired tests, d_z, Holm across traits."""
    scores = _scores(ctx)
    if scores.empty:
        return None
    table = prompt_sensitivity(scores, "domain")
    return None if table.empty else table


@register("likert_symmetry", is_personality)
def _likert_symmetry(ctx: AnalysisContext) -> pd.DataFrame | None:
    """Option-order (anchor) symmetry: original − mirrored trait scores with CIs."""
    scores = _scores(ctx)
    if scores.empty:
        return None
    table = order_symmetry(scores, "domain", n_boot=ctx.n_boot, seed=ctx.seed)
    return None if table.empty else table
