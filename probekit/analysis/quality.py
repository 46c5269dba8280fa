"""When a number is not a finding (METRICS.md §10): the preconditions of every analysis table, checked row by row.

Every table `build_tables` makes goes through `apply`: each check registered for the table (and the checks every
table gets) marks the rows whose precondition fails, and the row carries the codes in its `flags` column (text,
codes joined by ", "; empty when the row is clean). `probekit analyze` shows the column, the JSON carries it,
`--strict` (`analyze(..., strict=True)`) drops flagged rows, and the report greys flagged rows and marks out and
says why under the table (`describe`). A check never changes a number: a flagged row keeps its estimate so a
reader can still see what the degenerate case gives.

The codes, their thresholds and the reason for each are in `FLAGS` and docs/quality.md. Thresholds live in
`Thresholds` (one frozen instance per analysis context: `analyze(..., thresholds=Thresholds(judge_margin=0.1))`).

A module with tables of its own declares their preconditions with `@precondition("table_name")`: a function
`(table, ctx) -> {code: boolean mask over the rows}`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from probekit.analysis.loader import AnalysisContext


@dataclass(frozen=True)
class Thresholds:
    """The thresholds of the checks (docs/quality.md gives the reason for each default)."""

    min_alpha_items: int = 3
    """Cronbach's α needs at least 3 items: with k = 2 the factor k/(k−1) = 2 and one negative covariance gives
    nonsense such as α = −5498 (METRICS.md §10)."""
    min_respondents: int = 3
    """α (and its bootstrap over respondents) needs at least 3 respondents (administrations)."""
    min_label_mass: float = 0.10
    """Mean probability on the answer labels (logprob mode) below this: the stored distribution is renormalised
    from a sliver of what the model would say, so it reflects the tail of its output, not an answer."""
    min_position_consistency: float = 0.5
    """A judge whose verdicts survive the order swap less often than a coin-flip judge does (0.5 for A/B
    verdicts) picks by position more than by content: its self-preference and self-recognition say nothing
    about preference."""
    min_share_asked: float = 1.0
    """Share of the survey's items (of the row's scale, trait, level or topic) that must have been asked: a
    compass from 10 of 62 propositions is not a compass position."""
    judge_margin: float = 0.05
    """A response wins a pair only when its two-order score s exceeds the other's by more than this (probability
    points); closer is a tie (w = 0.5). A judge that always answers "A" has s_a ≈ s_b ≈ 0.5 up to rounding noise."""


DEFAULT = Thresholds()


@dataclass(frozen=True)
class Flag:
    code: str
    what: str
    """What the flag says about the row (shown in the report under the table)."""


FLAGS: dict[str, Flag] = {f.code: f for f in (
    Flag("few_items", "fewer than {min_alpha_items} items: Cronbach's α is not meaningful"),
    Flag("few_respondents", "fewer than {min_respondents} respondents (administrations): α and its CI are not meaningful"),
    Flag("no_variation", "the administrations do not vary (a deterministic model, one form): α is undefined"),
    Flag("low_label_mass", "mean probability on the answer labels below {min_label_mass:.0%}: the distribution is "
                           "renormalised from a sliver of the model's output"),
    Flag("partial_survey", "only part of the survey was asked (e.g. --limit): the figure is not the whole survey's"),
    Flag("unanswered", "some items have no valid answer and add nothing to the score"),
    Flag("one_order", "the pairs were judged in one order only: the metric needs both orders"),
    Flag("position_only", "the judge's position consistency is below {min_position_consistency:.2f}: its verdicts follow "
                          "the position, so self-preference and self-recognition reflect position, not preference"),
    Flag("no_gold", "no gold verdict for these pairs (no gold voter left, or no label matches): WR_gold, DBG and the "
                    "equal-opportunity bias are undefined"),
    Flag("no_decided_gold", "no pair has a gold verdict other than a tie in both directions: equal-opportunity bias "
                            "is undefined"),
    Flag("one_repetition", "fewer than two repetitions per question: reliability is undefined"),
    Flag("skipped_rows", "the import behind these results skipped bad rows (--skip-bad): the figures cover fewer answers "
                         "than the source holds"),
    # Human alignment (probekit.analysis.human flags these itself: the builder knows its question counts).
    Flag("one_question", "one question only: a group's score from one question is an anecdote, not an alignment"),
    Flag("few_questions", "fewer than 5 questions: the mean over so few questions is not a group's alignment"),
    Flag("one_topic", "one topic only: consistency across topics is undefined"),
    Flag("one_context", "one context per question (no personas or samples): the model's spread across contexts is 0 "
                        "by construction"),
    Flag("one_group_slope", "fewer than 3 target groups: the steerability slope across groups is not meaningful"),
)}


def describe(code: str, thresholds: Thresholds = DEFAULT) -> str:
    """The reader's sentence for a flag code (unknown codes as they are)."""
    flag = FLAGS.get(code)
    if flag is None:
        return code
    return flag.what.format(**{name: getattr(thresholds, name) for name in thresholds.__dataclass_fields__})


def codes(cell: Any) -> list[str]:
    """The flag codes of one `flags` cell."""
    if not isinstance(cell, str) or not cell.strip():
        return []
    return [c.strip() for c in cell.split(",") if c.strip()]


Check = Callable[[pd.DataFrame, "AnalysisContext"], Mapping[str, "pd.Series | np.ndarray"]]
_CHECKS: dict[str, list[Check]] = {}


def precondition(*tables: str) -> Callable[[Check], Check]:
    """Register a check for the named tables."""

    def decorator(fn: Check) -> Check:
        for table in tables:
            _CHECKS.setdefault(table, []).append(fn)
        return fn

    return decorator


def thresholds_of(ctx: Any) -> Thresholds:
    return getattr(ctx, "thresholds", None) or DEFAULT


def apply(name: str, table: pd.DataFrame, ctx: AnalysisContext) -> pd.DataFrame:
    """`table` with its `flags` column: the codes of every failed precondition, in catalogue order."""
    found: list[set[str]] = [set() for _ in range(len(table))]
    # The checks every table gets read the store; a context without one (a stand-in in a unit test) skips them.
    generic = [_label_mass, _skipped_rows] if hasattr(ctx, "store") and hasattr(ctx, "_cache") else []
    if len(table):
        for check in [*_CHECKS.get(name, []), *generic]:
            for code, mask in check(table, ctx).items():
                for i in np.flatnonzero(np.asarray(mask, dtype=bool)):
                    found[i].add(code)
    if "flags" in table.columns:  # what the builder flagged itself (it knows preconditions no generic check sees)
        for row, cell in enumerate(table["flags"]):
            found[row].update(codes(cell))
    order = list(FLAGS)
    text = [", ".join(sorted(s, key=lambda c: order.index(c) if c in order else len(order))) for s in found]
    base = table.drop(columns=["flags"]) if "flags" in table.columns else table
    return base.assign(flags=text)


def drop_flagged(tables: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """`--strict`: every table without its flagged rows (a table left with none stays, empty)."""
    out = {}
    for name, frame in tables.items():
        out[name] = frame[frame["flags"].fillna("") == ""].reset_index(drop=True) if "flags" in frame.columns else frame
    return out


def flags_present(tables: Mapping[str, pd.DataFrame] | Iterable[pd.DataFrame]) -> list[str]:
    """The flag codes that occur in the tables, in catalogue order."""
    frames: Iterable[pd.DataFrame] = tables.values() if isinstance(tables, Mapping) else tables
    seen = {c for frame in frames if "flags" in frame.columns for cell in frame["flags"] for c in codes(cell)}
    order = list(FLAGS)
    return sorted(seen, key=lambda c: order.index(c) if c in order else len(order))


# -- checks every table gets ------------------------------------------------------------------------------
def model_label_mass(ctx: AnalysisContext) -> pd.DataFrame:
    """Mean valid label mass per model × reasoning over the logprob rows in scope (columns model, reasoning,
    label_mass); empty when nothing in scope was scored by logprobs."""
    if "quality_label_mass" not in ctx._cache:
        frame = ctx.sql("SELECT r.model, t.reasoning, avg(r.valid_mass) AS label_mass FROM results r JOIN trials t "
                        "USING (trial_id) WHERE {scope} AND r.mode = 'logprob' AND r.status IN ('ok', 'invalid') "
                        "AND r.valid_mass IS NOT NULL GROUP BY ALL")
        ctx._cache["quality_label_mass"] = frame
    return ctx._cache["quality_label_mass"]


def _label_mass(table: pd.DataFrame, ctx: AnalysisContext) -> dict[str, np.ndarray]:
    """Rows of a model (or judge) whose answers put too little probability on the labels."""
    th = thresholds_of(ctx)
    column = "model" if "model" in table.columns else "judge" if "judge" in table.columns else None
    if column is None:
        return {}
    for own in ("mean_valid_mass", "valid_mass", "label_mass"):
        if own in table.columns and column == "model":
            values = pd.to_numeric(table[own], errors="coerce").to_numpy(dtype=float)
            return {"low_label_mass": np.isfinite(values) & (values < th.min_label_mass)}
    mass = model_label_mass(ctx)
    if mass.empty:
        return {}
    if "reasoning" in table.columns:
        lookup = {(str(m), str(r)): float(v) for m, r, v in zip(mass["model"], mass["reasoning"], mass["label_mass"])}
        values = np.array([lookup.get((str(m), str(r)), np.nan) for m, r in zip(table[column], table["reasoning"])])
    else:
        per_model = mass.groupby("model")["label_mass"].mean().to_dict()
        values = np.array([per_model.get(m, np.nan) for m in table[column]], dtype=float)
    return {"low_label_mass": np.isfinite(values) & (values < th.min_label_mass)}


def _skipped_rows(table: pd.DataFrame, ctx: AnalysisContext) -> dict[str, np.ndarray]:
    """Every row, when an import in scope skipped bad rows (`probekit import --skip-bad`): a reliability or a mean
    over fewer topics than the source holds must not pass for the whole."""
    if "quality_skipped" not in ctx._cache:
        import json

        skipped = 0
        try:
            where = "" if not ctx.run_ids else f" AND run_id IN ({', '.join('?' for _ in ctx.run_ids)})"
            configs = ctx.store.query(
                "SELECT config FROM runs WHERE run_id IN (SELECT DISTINCT r.run_id FROM results r JOIN trials t "
                f"USING (trial_id) WHERE t.survey_id = ?){where}", [ctx.info.survey_id, *(ctx.run_ids or [])])
            for text in configs["config"]:
                config = json.loads(text) if isinstance(text, str) else dict(text or {})
                skipped += int((config.get("import") or {}).get("skipped") or 0)
        except Exception:  # noqa: BLE001 - a store without configs: nothing known to be skipped
            skipped = 0
        ctx._cache["quality_skipped"] = skipped  # type: ignore[assignment]
    return {"skipped_rows": np.full(len(table), bool(ctx._cache["quality_skipped"]))}


# -- helpers for the per-table checks ---------------------------------------------------------------------
def whole_survey_meta(ctx: AnalysisContext) -> list[dict[str, Any]] | None:
    """The `meta` of every item of the whole survey, which may be more than the stored items: an experiment entry
    with `limit: N` stores the survey cut to its first N items (`probekit run --limit` stores it whole and asks
    N). For a cut survey the experiment's survey file is read again (when it is still there and has the same id);
    None when the survey was cut and its whole is unknown."""
    if "quality_whole_meta" in ctx._cache:
        return ctx._cache["quality_whole_meta"]  # type: ignore[return-value]
    import json

    stored = [dict(m or {}) for m in ctx.items()["meta"]]
    result: list[dict[str, Any]] | None = stored
    try:
        where = "" if not ctx.run_ids else f" AND run_id IN ({', '.join('?' for _ in ctx.run_ids)})"
        configs = ctx.store.query(f"SELECT config FROM runs WHERE config IS NOT NULL{where}", list(ctx.run_ids or []))
    except Exception:  # noqa: BLE001 - an old store without configs: the stored items are all we know
        configs = pd.DataFrame({"config": []})
    for text in configs["config"]:
        config = json.loads(text) if isinstance(text, str) else dict(text or {})
        entries = (config.get("experiment") or {}).get("surveys") or []
        ids = [str(s.get("id")) for s in config.get("surveys") or []]
        for entry, survey_id in zip(entries, ids):
            if survey_id != ctx.info.survey_id or entry.get("limit") is None:
                continue
            whole = _survey_file_meta(str(entry.get("path") or ""), survey_id)
            if whole is None:
                result = None
            elif result is not None and len(whole) > len(result):
                result = whole
    ctx._cache["quality_whole_meta"] = result  # type: ignore[assignment]
    return result


def _survey_file_meta(path: str, survey_id: str) -> list[dict[str, Any]] | None:
    from pathlib import Path

    try:
        from probekit.survey.loader import load_survey

        survey = load_survey(Path(path))
    except Exception:  # noqa: BLE001 - moved, edited or unreadable: the whole survey is unknown
        return None
    if survey.id != survey_id:
        return None
    return [dict(item.meta or {}) for item in survey.items]


def _spec_counts(ctx: AnalysisContext, key: Callable[[Mapping[str, Any]], Any] | None = None) -> dict[Any, float]:
    """Items of the whole survey (`whole_survey_meta`), counted by `key(meta)` (None: one total under key None).
    A cut survey whose whole is unknown counts as infinitely many (every row is then partial)."""
    metas = whole_survey_meta(ctx)
    if metas is None:
        return _Unknown()
    if key is None:
        return {None: float(len(metas))}
    counts: dict[Any, float] = {}
    for meta in metas:
        k = key(meta)
        counts[k] = counts.get(k, 0) + 1
    return counts


class _Unknown(dict):  # type: ignore[type-arg]
    """Counts of a survey whose size is unknown: every group is larger than what was asked."""

    def get(self, key: Any, default: Any = None) -> float:  # noqa: ARG002
        return float("inf")


def _short(table: pd.DataFrame, counted: str, totals: Mapping[Any, float], by: str | None, th: Thresholds) -> np.ndarray:
    """Rows whose `counted` column covers less than `min_share_asked` of their group's items."""
    have = pd.to_numeric(table[counted], errors="coerce").to_numpy(dtype=float)
    want = np.array([totals.get(None if by is None else (None if pd.isna(v) else str(v)), 0) for v in
                     (table[by] if by is not None else [None] * len(table))], dtype=float)
    return (want > 0) & np.isfinite(have) & (have < th.min_share_asked * want - 1e-9)


def _str_key(name: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda meta: None if meta.get(name) is None else str(meta.get(name))


# -- per-table checks -------------------------------------------------------------------------------------
@precondition("likert_alpha")
def _alpha(table: pd.DataFrame, ctx: AnalysisContext) -> dict[str, Any]:
    th = thresholds_of(ctx)
    alpha = table["alpha"].to_numpy(dtype=float)
    few_items = table["n_items"].to_numpy() < th.min_alpha_items
    few_resp = table["n_respondents"].to_numpy() < th.min_respondents
    return {"few_items": few_items, "few_respondents": few_resp,
            "no_variation": ~np.isfinite(alpha) & ~few_items & ~few_resp,
            "partial_survey": _short(table, "n_items", _spec_counts(ctx, _str_key("domain")), "trait", th)}


@precondition("likert_traits")
def _traits(table: pd.DataFrame, ctx: AnalysisContext) -> dict[str, Any]:
    return {"partial_survey": _short(table, "n_items", _spec_counts(ctx, _str_key("domain")), "trait", thresholds_of(ctx))}


@precondition("likert_facets")
def _facets(table: pd.DataFrame, ctx: AnalysisContext) -> dict[str, Any]:
    return {"partial_survey": _short(table, "n_items", _spec_counts(ctx, _str_key("facet")), "trait", thresholds_of(ctx))}


@precondition("likert_symmetry", "likert_sensitivity")
def _likert_pairs(table: pd.DataFrame, ctx: AnalysisContext) -> dict[str, Any]:
    return {"partial_survey": _short(table, "n_items", _spec_counts(ctx, _str_key("domain")), "trait", thresholds_of(ctx))}


@precondition("pct")
def _pct(table: pd.DataFrame, ctx: AnalysisContext) -> dict[str, Any]:
    th = thresholds_of(ctx)
    total = _spec_counts(ctx)
    return {"partial_survey": _short(table, "n_items", total, None, th),
            "unanswered": table["n_unanswered"].to_numpy() > 0}


@precondition("pct_spread")
def _pct_spread(table: pd.DataFrame, ctx: AnalysisContext) -> dict[str, Any]:
    coords = ctx._cache.get("pct")
    if coords is None or coords.empty:
        return {}
    short = _short(coords, "n_items", _spec_counts(ctx), None, thresholds_of(ctx))
    keys = ["model", "reasoning", "template_group", "forcing"]
    bad = {tuple(str(v) for v in row) for row, s in zip(coords[keys].itertuples(index=False), short) if s}
    return {"partial_survey": np.array([tuple(str(v) for v in row) in bad for row in table[keys].itertuples(index=False)]),
            "unanswered": table["n_unanswered_total"].to_numpy() > 0}


def _asked_per_model(ctx: AnalysisContext) -> dict[tuple[str, str], int]:
    forms = ctx.forms()
    if forms.empty:
        return {}
    counts = forms.groupby(["model", "reasoning"])["item_id"].nunique()
    return {(str(m), str(r)): int(n) for (m, r), n in counts.items()}


@precondition("uncertainty_summary", "selection_bias", "position_bias", "position_prior", "mcq_calibration",
              "response_rates", "dailydilemmas_values")
def _whole_survey(table: pd.DataFrame, ctx: AnalysisContext) -> dict[str, Any]:
    """The items the model was asked (in the row's reasoning mode) against the survey's items."""
    if "model" not in table.columns:
        return {}
    th = thresholds_of(ctx)
    total = _spec_counts(ctx).get(None, 0)
    asked = _asked_per_model(ctx)
    reasoning = table["reasoning"] if "reasoning" in table.columns else [None] * len(table)
    have = []
    for m, r in zip(table["model"], reasoning):
        if r is None:
            have.append(max([n for (mm, _r), n in asked.items() if mm == str(m)] or [0]))
        else:
            have.append(asked.get((str(m), str(r)), 0))
    return {"partial_survey": (total > 0) & (np.asarray(have, dtype=float) < th.min_share_asked * total - 1e-9)}


@precondition("moralchoice")
def _moralchoice(table: pd.DataFrame, ctx: AnalysisContext) -> dict[str, Any]:
    return {"partial_survey": _short(table, "n_items", _spec_counts(ctx, _str_key("ambiguity")), "ambiguity",
                                     thresholds_of(ctx))}


def _pobs_question_counts(ctx: AnalysisContext, by_topic: bool) -> dict[Any, float]:
    metas = whole_survey_meta(ctx)
    if metas is None:
        return _Unknown()
    counts: dict[Any, float] = {}
    for meta in metas:
        if meta.get("declarative"):
            continue
        key = str(meta.get("topic")) if by_topic else None
        counts[key] = counts.get(key, 0) + 1
    return counts


@precondition("pobs")
def _pobs(table: pd.DataFrame, ctx: AnalysisContext) -> dict[str, Any]:
    th = thresholds_of(ctx)
    return {"partial_survey": _short(table, "n_questions", _pobs_question_counts(ctx, False), None, th),
            "one_repetition": ~np.isfinite(table["reliability"].to_numpy(dtype=float))}


@precondition("pobs_topics")
def _pobs_topics(table: pd.DataFrame, ctx: AnalysisContext) -> dict[str, Any]:
    th = thresholds_of(ctx)
    reliability = table["reliability"].to_numpy(dtype=float)
    by_distribution = table["reliability_distribution"].to_numpy(dtype=float) if "reliability_distribution" in table else reliability
    return {"partial_survey": _short(table, "n_questions", _pobs_question_counts(ctx, True), "topic", th),
            "one_repetition": ~np.isfinite(reliability) & ~np.isfinite(by_distribution)}


@precondition("judge_position")
def _judge_position(table: pd.DataFrame, ctx: AnalysisContext) -> dict[str, Any]:
    return {"one_order": (table["n_pairs"].to_numpy() == 0) & (table["n_incomplete"].to_numpy() > 0)}


def _judge_pc(ctx: AnalysisContext) -> dict[tuple[str, str, str], float]:
    """PC per judge × template × reasoning (from the judge_position table of the context, built once)."""
    if "quality_judge_pc" not in ctx._cache:
        from probekit.analysis.judges import FORM, _pairs, position_summary

        pairs = _pairs(ctx)
        pcs = {}
        for key, group in pairs.groupby(FORM, sort=True):
            pcs[tuple(str(k) for k in key)] = float(position_summary(group, n_boot=1, seed=0)["pc"])
        ctx._cache["quality_judge_pc"] = pcs  # type: ignore[assignment]
    return ctx._cache["quality_judge_pc"]  # type: ignore[return-value]


def _position_only(table: pd.DataFrame, ctx: AnalysisContext) -> np.ndarray:
    th = thresholds_of(ctx)
    if "pc" in table.columns:
        pc = table["pc"].to_numpy(dtype=float)
    else:
        pcs = _judge_pc(ctx)
        pc = np.array([pcs.get((str(j), str(t), str(r)), np.nan) for j, t, r in
                       zip(table["judge"], table["template_id"], table["reasoning"])], dtype=float)
    return np.isfinite(pc) & (pc < th.min_position_consistency)


@precondition("judge_self_preference")
def _judge_self_preference(table: pd.DataFrame, ctx: AnalysisContext) -> dict[str, Any]:
    eo = table["eo_bias"].to_numpy(dtype=float)
    no_gold = table["n_gold"].to_numpy() == 0
    return {"position_only": _position_only(table, ctx), "no_gold": no_gold,
            "no_decided_gold": ~no_gold & ~np.isfinite(eo)}


@precondition("self_recognition")
def _self_recognition(table: pd.DataFrame, ctx: AnalysisContext) -> dict[str, Any]:
    return {"position_only": _position_only(table, ctx)}
