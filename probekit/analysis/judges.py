"""LLM judges: position bias and self-preference (METRICS.md §7), and the answers judges compare.

A *judgment* is one pairwise trial on one judge: a question, two responses with their authors (canonical
options a = 0, b = 1, and a tie option 2 when the survey allows it), which response was shown first, and the
judge's distribution over the verdicts in canonical order (logprob mode: the renormalised label
probabilities; sample mode: the share of samples). Every pair is judged in both orders. Pure functions over
frames of judgments:

- `verdict(p)`: the canonical verdict of one order (0 = a, 1 = b, 2 = tie); a and b equally likely is a tie.
- `pair_table`: one row per judge × pair with both orders: verdicts v_ab (a shown first) and v_ba (b shown
  first), scores s(r) = ½ [P(r | r shown first) + P(r | r shown second)] and w_a = 1 / 0.5 / 0 as s_a is
  larger / within the margin of / smaller than s_b (`MARGIN`, 0.05 by default: a win needs a margin).
- `position_summary`: position consistency PC (share of pairs with the same verdict in both orders), primacy
  and recency counts as Shi et al.'s script counts them (AA, AC, CA primacy; BB, BC, CB recency, in the labels
  the judge gave), preference fairness PF = (recency − primacy) / n (Shi et al. 2024), with bootstrap CIs
  clustered by question; beside them probekit's strict variant (`primacy_strict`, `recency_strict`, `pf_strict`:
  the same position chosen in both orders; a tie on one side is `other_inconsistent`).
- `panel_gold` / `file_gold`: gold verdicts w_G per pair: the majority of other judges' w (each over both
  orders; as many for as against = 0.5), or labels from a file.
- `self_pairs` + `self_preference_summary`: per judge J, over the pairs of its own answer r_J against another
  model's r_O: WR_J = 100 · mean w_J (naive self win rate), WR_gold = 100 · mean w_G, DBG = WR_J − WR_gold
  (Chen et al. 2025), and the equal-opportunity bias P(prefers the gold-better | it is J's own) −
  P(prefers the gold-better | it is the other's) (Wataoka et al. 2024); pairs without gold count in the naive
  WR only, and are reported.
- `recognition_summary`: self-recognition (Panickssery et al. 2024), the same two-order averaging of "which
  did you write?".

Tables (`probekit analyze`): judge_position, judge_self_preference, judge_pairs (detail), self_recognition,
answers (generate surveys). docs/judges.md describes each column.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from probekit.analysis.bootstrap import count_blocks, percentile_interval, ratio_ci
from probekit.analysis.loader import AnalysisContext
from probekit.analysis.registry import SurveyInfo, register

TOL = 1e-9
"""Probabilities closer than this are equal (a tie between the responses)."""

A, B, TIE = 0, 1, 2


# -- one judgment, one pair ------------------------------------------------------------------------------

def verdict(p: Sequence[float] | np.ndarray | None, tol: float = TOL) -> int | None:
    """The canonical verdict of one judgment: 0 (response a), 1 (response b) or 2 (tie). The most probable of
    a, b and tie; a and b equally probable (and not below the tie) is a tie. None without a distribution."""
    if p is None:
        return None
    values = np.asarray(p, dtype=float)
    if values.size < 2 or not np.all(np.isfinite(values)):
        return None
    best = float(values.max())
    winners = {k for k in range(values.size) if values[k] >= best - tol}
    if winners == {A}:
        return A
    if winners == {B}:
        return B
    return TIE


MARGIN = 0.05
"""Default win margin (probekit.analysis.quality.Thresholds.judge_margin): a response wins only when its two-order
score beats the other's by more than this; a judge that always answers "A" scores both responses 0.5 up to
rounding noise (0.5005 against 0.4995), which is no preference."""


def score_win(s_a: float, s_b: float, tol: float = TOL, margin: float = 0.0) -> float:
    """w_a: 1 when s_a > s_b + margin, 0 when s_a < s_b − margin, 0.5 otherwise (a tie)."""
    if s_a > s_b + max(margin, tol):
        return 1.0
    if s_a < s_b - max(margin, tol):
        return 0.0
    return 0.5


JUDGMENT_COLUMNS = ["judge", "template_id", "reasoning", "item_id", "question", "model_a", "model_b", "first", "p"]
"""A judgment frame: judge, the form (template, reasoning mode; optional), item (the pair), question (the
bootstrap cluster), authors of responses a and b, the canonical index shown first (0 or 1), and p (canonical
distribution: a, b[, tie]) or None."""

FORM = ["judge", "template_id", "reasoning"]
"""One judge in one form: the unit every summary is computed for."""


def pair_table(judgments: pd.DataFrame, tol: float = TOL, margin: float = 0.0) -> pd.DataFrame:
    """One row per judge × pair: p_ab / p_ba (a / b shown first), v_ab / v_ba, s_a / s_b, w_a and `complete`
    (both orders have a distribution). Several judgments of one order (runs, samples) are averaged first.
    w_a needs s_a and s_b `margin` apart (`score_win`); the tables use `MARGIN` unless told otherwise."""
    rows = []
    judgments = judgments.assign(**{c: judgments[c] if c in judgments else "" for c in ("template_id", "reasoning")})
    keys = [*FORM, "item_id", "question", "model_a", "model_b"]
    if judgments.empty:
        return pd.DataFrame(columns=[*keys, "p_ab", "p_ba", "v_ab", "v_ba", "s_a", "s_b", "w_a", "complete"])
    for key, group in judgments.groupby(keys, sort=True, dropna=False):
        by_first: dict[int, np.ndarray | None] = {}
        for first in (A, B):
            dists = [np.asarray(p, dtype=float) for p, f in zip(group["p"], group["first"]) if f == first and p is not None]
            by_first[first] = np.mean(dists, axis=0) if dists else None
        p_ab, p_ba = by_first[A], by_first[B]
        complete = p_ab is not None and p_ba is not None
        s_a = s_b = w_a = float("nan")
        if complete:
            assert p_ab is not None and p_ba is not None
            s_a = 0.5 * (float(p_ab[A]) + float(p_ba[A]))
            s_b = 0.5 * (float(p_ab[B]) + float(p_ba[B]))
            w_a = score_win(s_a, s_b, tol, margin)
        rows.append({**dict(zip(keys, key)), "p_ab": p_ab, "p_ba": p_ba, "v_ab": verdict(p_ab, tol),
                     "v_ba": verdict(p_ba, tol), "s_a": s_a, "s_b": s_b, "w_a": w_a, "complete": complete})
    return pd.DataFrame(rows)


# -- position bias -----------------------------------------------------------------------------------------

def shown_labels(v_ab: int, v_ba: int) -> str:
    """The two verdicts as the labels the judge gave (A = the response shown first, B = second, C = tie), first
    the order with a shown first, then the swapped one: 'AB' is consistent, 'AA' chose the first shown twice."""
    first_order = "ABC"[int(v_ab)]
    swapped = {A: "B", B: "A", TIE: "C"}[int(v_ba)]
    return first_order + swapped


SHI_PRIMACY = ("AA", "AC", "CA")
SHI_RECENCY = ("BB", "BC", "CB")
"""How Shi et al.'s script (Position-Bias-Analyzer, consistency_preference_calculation.py) counts an inconsistent
pair: a tie on one side and the first-shown (second-shown) response on the other counts as primacy (recency)."""


def _pattern(v_ab: int, v_ba: int) -> str:
    """consistent | primacy (first shown chosen both times) | recency (second shown both times) | other (a tie in
    one order and a response in the other): probekit's strict split."""
    if v_ab == v_ba:
        return "consistent"
    if v_ab == A and v_ba == B:
        return "primacy"
    if v_ab == B and v_ba == A:
        return "recency"
    return "other"


def _shi_pattern(v_ab: int, v_ba: int) -> str:
    """consistent | primacy | recency as Shi et al.'s script counts them (AC, CA primacy; BC, CB recency)."""
    labels = shown_labels(v_ab, v_ba)
    if labels in SHI_PRIMACY:
        return "primacy"
    if labels in SHI_RECENCY:
        return "recency"
    return "consistent"


def _clustered(values: Sequence[float], clusters: Sequence[Any], scale: float = 1.0, *, n_boot: int,
               seed: int) -> tuple[float, float, float]:
    """Mean of row values with a bootstrap CI resampling whole clusters (questions)."""
    frame = pd.DataFrame({"v": np.asarray(values, dtype=float), "c": [str(c) for c in clusters]})
    frame = frame[np.isfinite(frame["v"])]
    if frame.empty:
        return (float("nan"),) * 3  # type: ignore[return-value]
    sums = frame.groupby("c", sort=True)["v"].agg(["sum", "count"])
    estimate, low, high = ratio_ci(sums["sum"].to_numpy(), sums["count"].to_numpy(dtype=float), n_boot=n_boot, seed=seed)
    return (estimate * scale, low * scale, high * scale)


def position_summary(pairs: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """PC, primacy / recency counts and PF of one judge's pairs (complete ones; the rest counted as
    n_incomplete), with CIs clustered by question. `pairs` is (a slice of) `pair_table`."""
    done = pairs[pairs["complete"] & pairs["v_ab"].notna() & pairs["v_ba"].notna()]
    patterns = [_pattern(int(a), int(b)) for a, b in zip(done["v_ab"], done["v_ba"])]
    shi = [_shi_pattern(int(a), int(b)) for a, b in zip(done["v_ab"], done["v_ba"])]
    n = len(patterns)
    questions = list(done["question"])
    consistent = [1.0 if p == "consistent" else 0.0 for p in patterns]
    fairness = [1.0 if p == "recency" else (-1.0 if p == "primacy" else 0.0) for p in shi]
    fairness_strict = [1.0 if p == "recency" else (-1.0 if p == "primacy" else 0.0) for p in patterns]
    verdicts = [v for pair in zip(done["v_ab"], done["v_ba"]) for v in pair]
    pc = _clustered(consistent, questions, n_boot=n_boot, seed=seed)
    pf = _clustered(fairness, questions, n_boot=n_boot, seed=seed)
    pf_strict = _clustered(fairness_strict, questions, n_boot=n_boot, seed=seed)
    return {
        "n_pairs": n, "n_questions": len(set(questions)), "n_incomplete": int(len(pairs) - n),
        "pc": pc[0], "pc_ci_low": pc[1], "pc_ci_high": pc[2],
        "consistent": patterns.count("consistent"), "primacy": shi.count("primacy"), "recency": shi.count("recency"),
        "pf": pf[0], "pf_ci_low": pf[1], "pf_ci_high": pf[2],
        "primacy_strict": patterns.count("primacy"), "recency_strict": patterns.count("recency"),
        "other_inconsistent": patterns.count("other"),
        "pf_strict": pf_strict[0], "pf_strict_ci_low": pf_strict[1], "pf_strict_ci_high": pf_strict[2],
        "tie_rate": float(np.mean([v == TIE for v in verdicts])) if verdicts else float("nan"),
    }


# -- gold verdicts -----------------------------------------------------------------------------------------

def majority(scores: Iterable[float]) -> float:
    """Gold from several verdicts w ∈ {1, 0.5, 0} for the same response: 1 when more say 1 than 0, 0 when
    fewer, 0.5 when as many (ties count for neither side). NaN without any verdict."""
    values = [float(s) for s in scores if s is not None and np.isfinite(s)]
    if not values:
        return float("nan")
    wins, losses = sum(v > 0.5 for v in values), sum(v < 0.5 for v in values)
    return 1.0 if wins > losses else (0.0 if wins < losses else 0.5)


def panel_gold(pairs: pd.DataFrame, *, panel: Sequence[str] | None = None, exclude: str = "parties") -> dict[str, float]:
    """w_G for response a of each pair (item_id → 1 / 0.5 / 0): the majority of the panel judges' w_a, each
    over both orders. `panel` None = every judge in `pairs`; `exclude` 'parties' leaves out the two authors
    of the pair (neither judges its own answer), 'judge' nobody here (the evaluated judge is left out by
    `self_pairs`). Pairs no panel judge judged completely have no gold (absent)."""
    if exclude not in ("parties", "judge"):
        raise ValueError(f"exclude must be 'parties' or 'judge', not {exclude!r}")
    members = set(panel) if panel is not None else None
    gold: dict[str, float] = {}
    done = pairs[pairs["complete"]]
    if done.empty:
        return gold
    # One vote per judge: its w_a, averaged over its forms (templates, reasoning modes) when it has several.
    votes_by_judge = done.groupby(["item_id", "judge", "model_a", "model_b"], sort=True)["w_a"].mean().reset_index()
    for item_id, group in votes_by_judge.groupby("item_id", sort=True):
        votes = []
        for judge, model_a, model_b, w_a in zip(group["judge"], group["model_a"], group["model_b"], group["w_a"]):
            if members is not None and judge not in members:
                continue
            if exclude == "parties" and judge in (model_a, model_b):
                continue
            votes.append(w_a)
        if votes:
            gold[str(item_id)] = majority(votes)
    return gold


def panel_gold_without(pairs: pd.DataFrame, judge: str, *, panel: Sequence[str] | None = None,
                       exclude: str = "parties") -> dict[str, float]:
    """`panel_gold` with `judge` left out of the panel (the gold of a judge's own pairs never uses its votes)."""
    members = [j for j in (panel if panel is not None else sorted(set(pairs["judge"]))) if j != judge]
    return panel_gold(pairs, panel=members, exclude=exclude)


def file_gold(pairs: pd.DataFrame, verdicts: pd.DataFrame) -> dict[str, float]:
    """w_G for response a of each pair from stored labels (`judge_gold`: question_id, model_a, model_b,
    score_a), matched by question and the two authors in either order."""
    lookup: dict[tuple[str, str, str], float] = {}
    for question, model_a, model_b, score in zip(verdicts.get("question_id", []), verdicts.get("model_a", []),
                                                 verdicts.get("model_b", []), verdicts.get("score_a", [])):
        lookup[(str(question), str(model_a), str(model_b))] = float(score)
        lookup[(str(question), str(model_b), str(model_a))] = 1.0 - float(score)
    gold = {}
    for item_id, question, model_a, model_b in zip(pairs["item_id"], pairs["question"], pairs["model_a"], pairs["model_b"]):
        found = lookup.get((str(question), str(model_a), str(model_b)))
        if found is not None:
            gold[str(item_id)] = found
    return gold


def votes_to_gold(winners: Sequence[str]) -> tuple[float, int, int, int]:
    """Labels 'model_a' / 'model_b' / 'tie' of one pair → (score_a, votes_a, votes_b, votes_tie)."""
    votes_a = sum(w == "model_a" for w in winners)
    votes_b = sum(w == "model_b" for w in winners)
    votes_tie = sum(w == "tie" for w in winners)
    score = 1.0 if votes_a > votes_b else (0.0 if votes_a < votes_b else 0.5)
    return score, votes_a, votes_b, votes_tie


# -- self-preference -----------------------------------------------------------------------------------------

def self_pairs(pairs: pd.DataFrame, gold: Mapping[str, float] | Callable[[str], Mapping[str, float]]) -> pd.DataFrame:
    """Each judge's own pairs (its answer against another model's), complete in both orders: judge,
    question, item_id, other, w_self (w of the judge's own response), w_gold (gold for the judge's own
    response; NaN when the pair has none). `gold` maps item_id → w_G of response a, or is a function of the
    judge giving that map (a panel without the judge)."""
    rows = []
    done = pairs[pairs["complete"]]
    templates = done["template_id"] if "template_id" in done else [""] * len(done)
    modes = done["reasoning"] if "reasoning" in done else [""] * len(done)
    maps: dict[str, Mapping[str, float]] = {}
    for judge, template, mode, item_id, question, model_a, model_b, w_a in zip(
            done["judge"], templates, modes, done["item_id"], done["question"], done["model_a"], done["model_b"], done["w_a"]):
        if model_a == model_b or judge not in (model_a, model_b):
            continue
        if judge not in maps:
            maps[judge] = gold(judge) if callable(gold) else gold
        own_is_a = judge == model_a
        gold_a = maps[judge].get(str(item_id))
        w_gold = float("nan") if gold_a is None or not np.isfinite(gold_a) else (gold_a if own_is_a else 1.0 - gold_a)
        rows.append({"judge": judge, "template_id": template, "reasoning": mode, "question": question, "item_id": item_id,
                     "other": model_b if own_is_a else model_a, "w_self": w_a if own_is_a else 1.0 - w_a, "w_gold": w_gold})
    return pd.DataFrame(rows, columns=[*FORM, "question", "item_id", "other", "w_self", "w_gold"])


def _difference_ci(num1: np.ndarray, den1: np.ndarray, num2: np.ndarray, den2: np.ndarray, *, n_boot: int,
                   seed: int) -> tuple[float, float, float]:
    """Σnum1/Σden1 − Σnum2/Σden2 with a bootstrap CI over clusters (the entries)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        estimate = float(num1.sum() / den1.sum() - num2.sum() / den2.sum()) if den1.sum() and den2.sum() else float("nan")
        if num1.size == 0 or not np.isfinite(estimate):
            return (estimate, float("nan"), float("nan"))
        replicates = np.concatenate([(w @ num1) / (w @ den1) - (w @ num2) / (w @ den2)
                                     for w in count_blocks(num1.size, n_boot, seed)])
    low, high = percentile_interval(replicates)
    return (estimate, low, high)


def self_preference_summary(rows: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """One judge's self-preference numbers from its `self_pairs` rows: naive WR over every own pair, then
    WR_self, WR_gold and DBG over the pairs with a gold verdict, and the equal-opportunity bias over those
    whose gold is not a tie. Percentages (WR, DBG in points); EO as a difference of probabilities."""
    with_gold = rows[np.isfinite(rows["w_gold"].astype(float))]
    naive = _clustered(rows["w_self"], rows["question"], 100.0, n_boot=n_boot, seed=seed)
    wr_self = _clustered(with_gold["w_self"], with_gold["question"], 100.0, n_boot=n_boot, seed=seed)
    wr_gold = _clustered(with_gold["w_gold"], with_gold["question"], 100.0, n_boot=n_boot, seed=seed)
    dbg = _clustered(with_gold["w_self"].astype(float) - with_gold["w_gold"].astype(float), with_gold["question"], 100.0,
                     n_boot=n_boot, seed=seed)
    # Equal opportunity: per question, how often the judge prefers the gold-better response when it is its own
    # (w_self) and when it is the other model's (1 - w_self).
    decided = with_gold[with_gold["w_gold"].astype(float) != 0.5]
    questions = sorted({str(q) for q in decided["question"]})
    index = {q: i for i, q in enumerate(questions)}
    own_hit, own_n, other_hit, other_n = (np.zeros(len(questions)) for _ in range(4))
    for question, w_self, w_gold in zip(decided["question"], decided["w_self"], decided["w_gold"]):
        i = index[str(question)]
        if float(w_gold) == 1.0:
            own_hit[i] += float(w_self)
            own_n[i] += 1
        else:
            other_hit[i] += 1.0 - float(w_self)
            other_n[i] += 1
    eo = _difference_ci(own_hit, own_n, other_hit, other_n, n_boot=n_boot, seed=seed)
    return {
        "n_pairs": len(rows), "n_questions": int(rows["question"].nunique()), "n_gold": len(with_gold),
        "n_missing_gold": int(len(rows) - len(with_gold)),
        "wr_self_all": naive[0], "wr_self_all_ci_low": naive[1], "wr_self_all_ci_high": naive[2],
        "wr_self": wr_self[0], "wr_self_ci_low": wr_self[1], "wr_self_ci_high": wr_self[2],
        "wr_gold": wr_gold[0], "wr_gold_ci_low": wr_gold[1], "wr_gold_ci_high": wr_gold[2],
        "dbg": dbg[0], "dbg_ci_low": dbg[1], "dbg_ci_high": dbg[2],
        "n_own_better": int(own_n.sum()), "n_other_better": int(other_n.sum()),
        "eo_bias": eo[0], "eo_bias_ci_low": eo[1], "eo_bias_ci_high": eo[2],
    }


def recognition_summary(rows: pd.DataFrame, pairs: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Self-recognition of one judge: `rows` are its `self_pairs` on a recognition survey (w_self = 1 when it
    gives its own answer more probability over both orders), `pairs` its pair rows (for PC)."""
    accuracy = _clustered(rows["w_self"], rows["question"], 100.0, n_boot=n_boot, seed=seed)
    own = pairs[pairs["complete"] & pairs["item_id"].isin(set(rows["item_id"]))]
    position = position_summary(own, n_boot=n_boot, seed=seed)
    return {"n_pairs": len(rows), "n_questions": int(rows["question"].nunique()),
            "accuracy": accuracy[0], "accuracy_ci_low": accuracy[1], "accuracy_ci_high": accuracy[2],
            "pc": position["pc"], "primacy": position["primacy"], "recency": position["recency"]}


# -- from the store ------------------------------------------------------------------------------------------

def judgments_from(forms: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """The judgment frame of a pairwise survey's `forms()` and `items()`: authors and question from the items'
    meta (`models`, `question_id`; without them, 'a' / 'b' and the item id)."""
    meta = {str(i): m for i, m in zip(items["item_id"], items["meta"])} if not items.empty else {}
    rows = []
    for judge, template, reasoning, item_id, order, dist in zip(forms["model"], forms["template_id"], forms["reasoning"],
                                                                forms["item_id"], forms["option_order"], forms["dist"]):
        item_meta = meta.get(str(item_id), {})
        models = list(item_meta.get("models") or ["a", "b"])
        rows.append({"judge": judge, "template_id": template, "reasoning": reasoning, "item_id": str(item_id),
                     "question": str(item_meta.get("question_id", item_id)),
                     "model_a": str(models[0]), "model_b": str(models[1]), "first": int(order[0]) if order else 0,
                     "p": dist})
    return pd.DataFrame(rows, columns=JUDGMENT_COLUMNS)


def is_judge_survey(info: SurveyInfo) -> bool:
    """A pairwise survey whose task is judging (not self-recognition)."""
    return info.kind == "pairwise" and (info.spec.get("pairwise") or {}).get("task", "judge") == "judge"


def is_recognition_survey(info: SurveyInfo) -> bool:
    return info.kind == "pairwise" and (info.spec.get("pairwise") or {}).get("task") == "self_recognition"


def _pairs(ctx: Any, *, everyone: bool = False) -> pd.DataFrame:
    """The pair table of the context (or, `everyone`, of every stored run and judge of the survey: what a panel
    reads), cached on the context."""
    key = "judge_pairs_all" if everyone else "judge_pairs"
    if key not in ctx._cache:
        source = ctx
        if everyone and (ctx.run_ids or ctx.models):
            source = AnalysisContext(store=ctx.store, info=ctx.info, seed=ctx.seed, n_boot=ctx.n_boot)
        forms = source.forms()
        margin = float(getattr(getattr(ctx, "thresholds", None), "judge_margin", MARGIN))
        ctx._cache[key] = pair_table(judgments_from(forms, source.items()), margin=margin) if not forms.empty else pair_table(
            pd.DataFrame(columns=JUDGMENT_COLUMNS))
    return ctx._cache[key]  # type: ignore[no-any-return]


def gold_source(ctx: Any) -> tuple[str, dict[str, Any], Callable[[str], Mapping[str, float]]]:
    """(kind, settings, judge → {item_id: w_G of response a}) for the context's survey: the stored source
    (probekit.judging sets it), else a panel of every judge of the survey with both authors left out."""
    kind, settings, verdicts = ctx.store.judge_gold(ctx.info.survey_id)
    if kind == "file":
        gold = file_gold(_pairs(ctx, everyone=True), verdicts)
        return "file", settings, lambda judge: gold
    panel = settings.get("panel") if kind == "panel" else None
    exclude = str(settings.get("exclude", "parties")) if kind == "panel" else "parties"
    everyone = _pairs(ctx, everyone=True)
    cache: dict[str, Mapping[str, float]] = {}

    def for_judge(judge: str) -> Mapping[str, float]:
        if judge not in cache:
            cache[judge] = panel_gold_without(everyone, judge, panel=panel, exclude=exclude)
        return cache[judge]

    return "panel", {"panel": panel, "exclude": exclude}, for_judge


@register("judge_position", is_judge_survey, description="Judges' position consistency, primacy/recency, preference fairness")
def judge_position_table(ctx: AnalysisContext) -> pd.DataFrame | None:
    """Per judge, over every pair it judged in both orders: PC, primacy / recency counts, PF (with CIs
    clustered by question), the share of tie verdicts and pairs missing an order."""
    pairs = _pairs(ctx)
    if pairs.empty:
        return None
    rows = [{**dict(zip(FORM, key)), **position_summary(group, n_boot=ctx.n_boot, seed=ctx.seed)}
            for key, group in pairs.groupby(FORM, sort=True)]
    return pd.DataFrame(rows)


@register("judge_self_preference", is_judge_survey, description="Self win rate, gold win rate, DBG, equal-opportunity bias")
def judge_self_preference_table(ctx: AnalysisContext) -> pd.DataFrame | None:
    """Per judge, over its own answers against other models': naive WR_self, then WR_self, WR_gold and DBG on
    the pairs with gold, equal-opportunity bias; CIs clustered by question; the gold source."""
    pairs = _pairs(ctx)
    if pairs.empty:
        return None
    kind, settings, gold = gold_source(ctx)
    own = self_pairs(pairs, gold)
    if own.empty:
        return None
    described = "file " + str(settings.get("file", "")) if kind == "file" else (
        "panel " + (",".join(settings["panel"]) if settings.get("panel") else "all judges") + f" (excluding {settings['exclude']})")
    rows = [{**dict(zip(FORM, key)), **self_preference_summary(group, n_boot=ctx.n_boot, seed=ctx.seed), "gold": described}
            for key, group in own.groupby(FORM, sort=True)]
    return pd.DataFrame(rows)


@register("judge_pairs", is_judge_survey, detail=True, description="One row per judge × pair: both verdicts, scores, gold")
def judge_pairs_table(ctx: AnalysisContext) -> pd.DataFrame | None:
    """Per judge × pair: the verdict in each order (a / b / tie), s_a, s_b, w_a and the gold w_G of a."""
    pairs = _pairs(ctx)
    if pairs.empty:
        return None
    _kind, _settings, gold = gold_source(ctx)
    names = {A: "a", B: "b", TIE: "tie", None: None}
    out = pairs.drop(columns=["p_ab", "p_ba"]).copy()
    out["v_ab"] = [names.get(None if pd.isna(v) else int(v)) for v in out["v_ab"]]
    out["v_ba"] = [names.get(None if pd.isna(v) else int(v)) for v in out["v_ba"]]
    out["gold_a"] = [gold(judge).get(str(item), float("nan")) for judge, item in zip(out["judge"], out["item_id"])]
    return out


@register("self_recognition", is_recognition_survey, description="Which answer did you write? Accuracy over both orders")
def self_recognition_table(ctx: AnalysisContext) -> pd.DataFrame | None:
    """Per judge, over the pairs holding its own answer: accuracy (100 · mean w of its own answer, both orders
    averaged; 50 = chance) with a CI clustered by question, and position consistency of its answers."""
    pairs = _pairs(ctx)
    own = self_pairs(pairs, {})
    if own.empty:
        return None
    rows = []
    for key, group in own.groupby(FORM, sort=True):
        mine = pairs[(pairs["judge"] == key[0]) & (pairs["template_id"] == key[1]) & (pairs["reasoning"] == key[2])]
        rows.append({**dict(zip(FORM, key)), **recognition_summary(group, mine, n_boot=ctx.n_boot, seed=ctx.seed)})
    return pd.DataFrame(rows)


@register("answers", "generate", description="Free answers per model: counts, empty answers, length")
def answers_table(ctx: AnalysisContext) -> pd.DataFrame | None:
    """Per model of a generate survey: questions answered, answers stored, ok / empty (invalid) / error
    rows, mean length in characters and completion tokens."""
    frame = ctx.sql(
        "SELECT r.model, count(DISTINCT t.item_id) AS n_items, count(*) AS n_rows, "
        "count(*) FILTER (WHERE r.status = 'ok') AS n_ok, count(*) FILTER (WHERE r.status = 'invalid') AS n_empty, "
        "count(*) FILTER (WHERE r.status = 'error') AS n_error, "
        "avg(length(r.raw_text)) FILTER (WHERE r.status = 'ok') AS mean_chars, "
        "avg(r.completion_tokens) FILTER (WHERE r.status = 'ok') AS mean_completion_tokens "
        "FROM results r JOIN trials t USING (trial_id) WHERE {scope} GROUP BY r.model ORDER BY r.model")
    return None if frame.empty else frame
