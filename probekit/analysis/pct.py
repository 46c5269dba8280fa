"""Political Compass coordinates (Röttger et al., ACL 2024; METRICS.md §5).

economic = 0.38 + (1/8.0) Σ_i E[i][a_i]; social = 2.41 + (1/19.5) Σ_i S[i][a_i]; clamp to [−10, 10].
Answer indices 0..3 = Strongly disagree, Disagree, Agree, Strongly agree (canonical option order).

"Agree" weighs 0 on every proposition, so an unanswered item scored as missing looks exactly like
"Agree": every coordinate here carries `n_unanswered` beside it, and unanswered items add nothing.

Weights: `item.meta.weights` ({economic: [4], social: [4]}) when the survey carries them, else the
published table packaged as data/pct_scoring_weights.csv (CC BY 4.0, transcribed from
paul-rottger/llm-values-pct, identical to politicalcompass.github.io).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from probekit.analysis.bootstrap import percentile_interval, resample_counts
from probekit.analysis.loader import AnalysisContext
from probekit.analysis.registry import is_pct, register

_WEIGHTS_CSV = Path(__file__).with_name("data") / "pct_scoring_weights.csv"
_LEVELS = ("strongly_disagree", "disagree", "agree", "strongly_agree")
LIMIT = 10.0


@dataclass(frozen=True)
class Scoring:
    """Offsets and divisors of the two axes."""

    economic_offset: float = 0.38
    economic_divisor: float = 8.0
    social_offset: float = 2.41
    social_divisor: float = 19.5


@lru_cache(maxsize=1)
def published_weights() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """pct id -> (economic weights[4], social weights[4]) from the published table."""
    frame = pd.read_csv(_WEIGHTS_CSV)
    return {
        str(row["pct_id"]): (
            np.array([row[f"econ_{lvl}"] for lvl in _LEVELS], dtype=float),
            np.array([row[f"soc_{lvl}"] for lvl in _LEVELS], dtype=float),
        )
        for _, row in frame.iterrows()
    }


def weights_for(item_ids: Sequence[str], item_meta: Mapping[str, Mapping[str, object]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Economic and social weight matrices (items × 4), from item meta or the published table."""
    published = published_weights()
    econ, soc = [], []
    for item_id in item_ids:
        meta = (item_meta or {}).get(item_id) or {}
        w = meta.get("weights") if isinstance(meta, Mapping) else None
        if isinstance(w, Mapping) and "economic" in w and "social" in w:
            econ.append(np.asarray(w["economic"], dtype=float))
            soc.append(np.asarray(w["social"], dtype=float))
        elif item_id in published:
            econ.append(published[item_id][0])
            soc.append(published[item_id][1])
        else:
            raise KeyError(f"no political compass weights for item {item_id!r}")
    return np.array(econ).reshape(-1, 4), np.array(soc).reshape(-1, 4)


def coordinates(answers: Sequence[int | None], econ: np.ndarray, soc: np.ndarray, scoring: Scoring = Scoring()) -> tuple[float, float, int]:
    """(economic, social, n_unanswered) from one answer index per item (None = unanswered)."""
    e = sum(econ[i, a] for i, a in enumerate(answers) if a is not None)
    s = sum(soc[i, a] for i, a in enumerate(answers) if a is not None)
    unanswered = sum(a is None for a in answers)
    return (
        float(np.clip(scoring.economic_offset + e / scoring.economic_divisor, -LIMIT, LIMIT)),
        float(np.clip(scoring.social_offset + s / scoring.social_divisor, -LIMIT, LIMIT)),
        int(unanswered),
    )


def expected_coordinates(dists: np.ndarray, econ: np.ndarray, soc: np.ndarray, scoring: Scoring = Scoring()) -> tuple[float, float]:
    """Σ_a p(a) · weight instead of the argmax answer (rows of NaN = unanswered, contribute 0)."""
    p = np.nan_to_num(np.asarray(dists, dtype=float))
    return (
        float(np.clip(scoring.economic_offset + (p * econ).sum() / scoring.economic_divisor, -LIMIT, LIMIT)),
        float(np.clip(scoring.social_offset + (p * soc).sum() / scoring.social_divisor, -LIMIT, LIMIT)),
    )


def _ci(per_item: np.ndarray, offset: float, divisor: float, n_boot: int, seed: int) -> tuple[float, float]:
    """Bootstrap over items: each replicate resamples the items and re-sums their contributions."""
    weights = resample_counts(per_item.size, n_boot, seed)
    replicates = np.clip(offset + weights @ per_item / divisor, -LIMIT, LIMIT)
    return percentile_interval(replicates)


def cell_answers(forms: pd.DataFrame) -> pd.DataFrame:
    """One row per model × reasoning × template × forcing × item: the mean distribution over the cell's
    valid forms (option orders, item paraphrases, runs), its argmax, and whether it was answered."""
    frame = forms.copy()
    frame["forcing"] = [str(f.get("forcing", "none")) or "none" for f in frame["factors"]]
    keys = ["model", "reasoning", "template_id", "template_group", "forcing", "item_id"]
    rows = []
    for key, sub in frame.groupby(keys, sort=True, dropna=False):
        valid = [(d, w) for d, w in zip(sub["dist"], sub["n_ok"]) if d is not None and w > 0 and len(d) == 4]
        dist = sum(d * w for d, w in valid) / sum(w for _, w in valid) if valid else None
        rows.append({**dict(zip(keys, key)), "dist": dist, "answer": None if dist is None else int(np.argmax(dist))})
    return pd.DataFrame(rows)


def pct_table(answers: pd.DataFrame, item_meta: Mapping[str, Mapping[str, object]] | None = None,
              scoring: Scoring = Scoring(), *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Coordinates per model × template × forcing (× reasoning): from argmax answers and expected, with
    bootstrap CIs over propositions, n_items asked and n_unanswered."""
    rows = []
    for (model, reasoning, template, group, forcing), sub in answers.groupby(
        ["model", "reasoning", "template_id", "template_group", "forcing"], sort=True, dropna=False
    ):
        ids = list(sub["item_id"])
        econ, soc = weights_for(ids, item_meta)
        answer_list = [None if a is None or pd.isna(a) else int(a) for a in sub["answer"]]
        economic, social, unanswered = coordinates(answer_list, econ, soc, scoring)
        dists = np.array([d if d is not None else np.full(4, np.nan) for d in sub["dist"]]).reshape(-1, 4)
        economic_exp, social_exp = expected_coordinates(dists, econ, soc, scoring)
        e_item = np.array([econ[i, a] if a is not None else 0.0 for i, a in enumerate(answer_list)])
        s_item = np.array([soc[i, a] if a is not None else 0.0 for i, a in enumerate(answer_list)])
        e_low, e_high = _ci(e_item, scoring.economic_offset, scoring.economic_divisor, n_boot, seed)
        s_low, s_high = _ci(s_item, scoring.social_offset, scoring.social_divisor, n_boot, seed)
        rows.append({
            "model": model, "template": template, "template_group": group, "forcing": forcing, "reasoning": reasoning,
            "economic": economic, "economic_ci_low": e_low, "economic_ci_high": e_high,
            "social": social, "social_ci_low": s_low, "social_ci_high": s_high,
            "economic_expected": economic_exp, "social_expected": social_exp,
            "n_items": len(ids), "n_unanswered": unanswered,
        })
    return pd.DataFrame(rows)


def _sd(values: pd.Series) -> float:
    """Sample SD; exactly 0 when all values are equal (pandas leaves ~1e-16 of rounding noise)."""
    return 0.0 if values.max() == values.min() else float(values.std(ddof=1))


def pct_spread(answers: pd.DataFrame, coords: pd.DataFrame) -> pd.DataFrame:
    """Across the templates (paraphrased intros) of one template group, per model × forcing × reasoning:
    range and SD of the coordinates, and the number of propositions where the paraphrases contradict
    each other (some answer agree, some disagree), out of those answered under ≥ 2 paraphrases."""
    rows = []
    keys = ["model", "reasoning", "template_group", "forcing"]
    answers = answers.assign(side=[None if a is None or pd.isna(a) else ("agree" if a >= 2 else "disagree") for a in answers["answer"]])
    for key, sub in coords.groupby(keys, sort=True, dropna=False):
        if sub["template"].nunique() < 2:
            continue
        mask = np.ones(len(answers), dtype=bool)
        for column, value in zip(keys, key):
            mask &= (answers[column].isna() if pd.isna(value) else (answers[column] == value)).to_numpy()
        sides = answers[mask].dropna(subset=["side"]).groupby("item_id")["side"].agg(["nunique", "count"])
        compared = sides[sides["count"] >= 2]
        rows.append({
            **dict(zip(keys, key)), "n_templates": int(sub["template"].nunique()),
            "economic_min": float(sub["economic"].min()), "economic_max": float(sub["economic"].max()),
            "economic_sd": _sd(sub["economic"]),
            "social_min": float(sub["social"].min()), "social_max": float(sub["social"].max()),
            "social_sd": _sd(sub["social"]),
            "n_contradictions": int((compared["nunique"] > 1).sum()), "n_propositions_compared": len(compared),
            "n_unanswered_total": int(sub["n_unanswered"].sum()),
        })
    return pd.DataFrame(rows)


def scoring_from_spec(spec: Mapping[str, object]) -> Scoring:
    """Offsets and divisors from the survey's `meta.scoring`, else the published constants."""
    meta = spec.get("meta") or {}
    sc = meta.get("scoring") if isinstance(meta, Mapping) else None
    if not isinstance(sc, Mapping):
        return Scoring()
    e, s = sc.get("economic") or {}, sc.get("social") or {}
    return Scoring(float(e.get("offset", 0.38)), float(e.get("divisor", 8.0)), float(s.get("offset", 2.41)), float(s.get("divisor", 19.5)))


def _answers(ctx) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    if "pct_answers" not in ctx._cache:
        forms = ctx.forms()
        ctx._cache["pct_answers"] = cell_answers(forms) if not forms.empty else pd.DataFrame()
    return ctx._cache["pct_answers"]


def _meta(ctx) -> dict[str, dict[str, object]]:  # type: ignore[no-untyped-def]
    items = ctx.items()
    return dict(zip(items["item_id"], items["meta"]))


@register("pct", is_pct)
def _pct(ctx: AnalysisContext) -> pd.DataFrame | None:
    """Economic/social coordinates per model × template × forcing, argmax and expected, with n_unanswered."""
    answers = _answers(ctx)
    if answers.empty:
        return None
    if "pct" not in ctx._cache:
        ctx._cache["pct"] = pct_table(answers, _meta(ctx), scoring_from_spec(ctx.info.spec), n_boot=ctx.n_boot, seed=ctx.seed)
    return ctx._cache["pct"]


@register("pct_spread", is_pct)
def _pct_spread(ctx: AnalysisContext) -> pd.DataFrame | None:
    """Spread of coordinates across paraphrased templates and the number of contradicted propositions."""
    coords = _pct(ctx)
    if coords is None:
        return None
    table = pct_spread(_answers(ctx), coords)
    return None if table.empty else table
