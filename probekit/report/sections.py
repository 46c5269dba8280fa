"""The report's sections, each built from the gathered tables: a figure or more and the tables behind them. A
section whose data are not in scope is left out of the report and named in its header with the reason.

Order: run summary, moral dilemmas, political compass, personality, opinions (POBs), selection bias, judges,
drift over time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from probekit.report import plots
from probekit.report.gather import ReportData, SurveyScope, cost_known
from probekit.report.plots import Figure, Palette, with_flags
from probekit.report.tables import Table, display_table


@dataclass
class Part:
    """One block of a section, usually one survey: its figures, then its tables."""

    title: str | None
    intro: str = ""
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Section:
    key: str
    """summary | moral | compass | personality | pobs | selection | judges | drift (the HTML id)."""
    title: str
    intro: str
    parts: list[Part]


@dataclass
class Report:
    """A whole report, ready to render as HTML or Markdown."""

    title: str
    scope: str
    store: str
    generated_at: datetime
    version: str
    sections: list[Section]
    omitted: list[tuple[str, str]]
    """(section title, why it is not in the report)."""
    notes: list[str] = field(default_factory=list)
    n_boot: int = 1000


def _more(data: ReportData, scope: SurveyScope, table: str) -> str:
    where = f"--run {scope.run_ids[0]} " if scope.run_ids and len(scope.run_ids) == 1 else ""
    return f"probekit analyze {where}--survey {scope.survey_id} --tables {table} --format csv"


def _table(data: ReportData, scope: SurveyScope, name: str, title: str, **kwargs: object) -> Table | None:
    frame = scope.tables.get(name)
    if frame is None or frame.empty:
        return None
    return display_table(frame, title, source=name, more=_more(data, scope, name), **kwargs)  # type: ignore[arg-type]


def _survey_title(scope: SurveyScope) -> str:
    """The survey's id and title; a survey only partly asked (e.g. `--limit`) says how much, since its title may
    name the whole ("62 propositions")."""
    title = str(scope.info.spec.get("title") or "").strip()
    partial = (f" [partly asked: {scope.n_items_asked} of {scope.n_items} items]"
               if 0 < scope.n_items_asked < scope.n_items else
               f" [partly asked: {scope.n_items_asked} items, cut by the experiment's limit]" if scope.n_items < 0 else "")
    return f"{scope.survey_id}" + (f" — {title}" if title else "") + partial


def _keep(*items: Table | Figure | None) -> list:  # type: ignore[type-arg]
    return [item for item in items if item is not None]


# -- run summary --------------------------------------------------------------------------------------------
def _version(row: dict[str, object]) -> str:
    parts = []
    for key, label in (("revision", "revision"), ("weights_sha256", "weights sha256")):
        value = row.get(key)
        if value and str(value) != "nan" and not (key == "revision" and value == row.get("weights_sha256")):
            text = str(value)
            parts.append(f"{label} {text[:12]}{'…' if len(text) > 12 else ''}")
    if row.get("fingerprints"):
        parts.append(f"fingerprints {row['fingerprints']}")
    return "; ".join(parts) or "–"


def summary(data: ReportData, palette: Palette) -> list[Part]:
    usage = data.usage.copy()
    n = usage["n_rows"].replace(0, np.nan)
    for status in ("ok", "refusal", "invalid", "error"):
        usage[f"{status}_rate"] = usage[f"n_{status}"] / n
    costed = cost_known(usage)
    if not costed:
        usage["cost_usd"] = np.nan
    from probekit.analysis.quality import DEFAULT as thresholds

    if "mean_label_mass" in usage:
        mass = usage["mean_label_mass"].to_numpy(dtype=float)
        usage["flags"] = np.where(np.isfinite(mass) & (mass < thresholds.min_label_mass), "low_label_mass", "")
    usage_table = display_table(
        usage, "Responses per model and survey",
        columns=["model", "survey_id", "n_runs", "n_trials", "n_rows", "ok_rate", "mean_label_mass", "refusal_rate",
                 "invalid_rate", "error_rate", "prompt_tokens", "completion_tokens", "cost_usd", "mean_latency_ms"],
        rename={"survey_id": "survey", "n_runs": "runs", "n_trials": "trials", "n_rows": "result rows", "ok_rate": "valid",
                "mean_label_mass": "label mass", "refusal_rate": "refusal", "invalid_rate": "invalid", "error_rate": "error",
                "prompt_tokens": "prompt tokens",
                "completion_tokens": "completion tokens", "cost_usd": "cost (USD)", "mean_latency_ms": "mean latency (ms)"},
        percent=["ok_rate", "mean_label_mass", "refusal_rate", "invalid_rate", "error_rate"],
        note="Rates are shares of result rows (one per trial × sample). Label mass: the mean probability the logprob "
             "answers put on the answer labels before renormalising (– without logprob answers); a valid answer from a "
             "sliver of mass is a renormalised tail, not an answer. " + (
            "Cost is summed over the rows whose provider reported a price." if costed else
            "Cost: unknown (local models, or no price reported by the provider)."), max_rows=200)
    models = data.models.copy()
    if not models.empty:
        models["version"] = [_version(r) for r in models.to_dict("records")]
        models["where"] = [" / ".join(str(v) for v in (r.get("dtype"), r.get("device")) if v and str(v) != "nan") or "–"
                           for r in models.to_dict("records")]
        grouped = (models.groupby(["model", "backend", "resolved_name", "version", "where"], dropna=False, sort=False)
                   .agg(runs=("run_id", "nunique")).reset_index())
    else:
        grouped = pd.DataFrame(columns=["model", "backend", "resolved_name", "version", "where", "runs"])
    model_table = display_table(grouped, "Models and their resolved versions",
                                rename={"resolved_name": "resolved name", "where": "dtype / device"},
                                note="The resolved name is the provider's model name or the local weights' path; the version "
                                     "is the revision or weights hash and any provider fingerprints seen.")
    run_table = display_table(data.runs, "Runs",
                              columns=["run_id", "started_at", "ended_at", "status", "surveys", "models", "experiment",
                                       "probekit_version"],
                              rename={"run_id": "run", "started_at": "started (UTC)", "ended_at": "ended (UTC)",
                                      "probekit_version": "probekit"}, collapsed=len(data.runs) > 3, max_rows=100)
    parts = [Part(title=None, figures=_keep(plots.status_bars(data.usage, palette)), tables=[model_table, usage_table, run_table])]
    answers = [(s, s.tables["answers"]) for s in data.surveys if "answers" in s.tables]
    for scope, _frame in answers:
        parts.append(Part(title=f"Free answers: {_survey_title(scope)}", tables=_keep(_table(
            data, scope, "answers", "Free answers per model",
            rename={"n_items": "questions", "n_rows": "answers", "n_ok": "ok", "n_empty": "empty", "n_error": "errors",
                    "mean_chars": "mean length (characters)", "mean_completion_tokens": "mean completion tokens"}))))
    return parts


# -- moral dilemmas -----------------------------------------------------------------------------------------
def _ambiguity(scope: SurveyScope) -> dict[str, str]:
    return {str(item.get("id")): str((item.get("meta") or {}).get("ambiguity"))
            for item in scope.info.items() if (item.get("meta") or {}).get("ambiguity") is not None}


def moral(data: ReportData, palette: Palette) -> list[Part]:
    parts = []
    for scope in data.surveys:
        uncertainty = scope.tables.get("uncertainty")
        if scope.info.kind != "choice" or uncertainty is None or uncertainty.empty:
            continue
        figures = _keep(plots.action_scatter(uncertainty, palette, _ambiguity(scope)), plots.qfc_strip(uncertainty, palette))
        notes = []
        if "moralchoice" in scope.tables:
            levels = scope.tables["moralchoice"]
            figures += _keep(with_flags(plots.ambiguity_bars(levels, palette), levels))
            wanted = sorted(set(_ambiguity(scope).values()))
            missing = [level for level in wanted if level not in set(levels["ambiguity"].astype(str))]
            if missing:
                notes.append(f"Not asked in scope: the {', '.join(missing)} ambiguity scenarios; the low-against-high "
                             "comparison below has only one side.")
        tables = _keep(
            _table(data, scope, "moralchoice", "Low against high ambiguity",
                   columns=["model", "reasoning", "ambiguity", "n_items", "n_forms", "valid_fraction", "share_action1", "p_action1",
                            "entropy", "qf_e", "gjsd", "qf_c"],
                   note="share_action1: share of scenarios with p(action 1) > 0.5; entropy, QF-E and GJSD in bits."),
            _table(data, scope, "uncertainty_summary", "Uncertainty and consistency across question forms",
                   note="Means over scenarios; entropy = QF-E (real uncertainty) + GJSD (sensitivity to the form), in bits."),
            _table(data, scope, "moralchoice_agreement", "Agreement between models"),
            _table(data, scope, "dailydilemmas_values", "Value preferences (DailyDilemmas)", collapsed=True,
                   note="score = 100 · (selected − rejected) / (selected + rejected) per value label."),
            _table(data, scope, "uncertainty", "Per scenario", collapsed=True,
                   columns=["model", "reasoning", "item_id", "marginal", "entropy", "qf_e", "gjsd", "qf_c", "n_forms",
                            "n_valid_forms"]),
        )
        parts.append(Part(title=_survey_title(scope), figures=figures, tables=tables, notes=notes))
    return parts


# -- political compass --------------------------------------------------------------------------------------
def _centroids(pct: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (model, reasoning), group in pct.groupby(["model", "reasoning"], sort=False):
        rows.append({"model": model, "reasoning": reasoning, "n_points": len(group),
                     "economic": group["economic"].mean(), "economic_min": group["economic"].min(),
                     "economic_max": group["economic"].max(), "social": group["social"].mean(),
                     "social_min": group["social"].min(), "social_max": group["social"].max(),
                     "n_unanswered_max": group["n_unanswered"].max(), "flags": _union_flags(group)})
    return pd.DataFrame(rows)


def _union_flags(group: pd.DataFrame) -> str:
    """The flags of a summary row drawn from several flagged rows: every code any of them carries."""
    from probekit.analysis.quality import flags_present

    return ", ".join(flags_present([group])) if "flags" in group.columns else ""


def compass(data: ReportData, palette: Palette) -> list[Part]:
    parts = []
    for scope in data.surveys:
        pct = scope.tables.get("pct")
        if pct is None or pct.empty:
            continue
        centroid = display_table(_centroids(pct), "Centroids and spread",
                                 rename={"n_points": "points (template × forcing)", "n_unanswered_max": "most unanswered"},
                                 note="Centroid = mean of the model's points; min/max = the spread across paraphrases and "
                                      "forcing levels.")
        tables = _keep(
            centroid,
            _table(data, scope, "pct", "Coordinates per template and forcing level",
                   columns=["model", "template", "template_group", "forcing", "reasoning", "economic", "social",
                            "economic_expected", "social_expected", "n_items", "n_unanswered"],
                   note="economic/social from the argmax answers; *_expected from the whole answer distributions. "
                        "Unanswered propositions add nothing (scoring them 'Agree' would do the same) and are counted."),
            _table(data, scope, "pct_spread", "Spread across paraphrases (the spinning arrow)"),
        )
        parts.append(Part(title=_survey_title(scope), figures=_keep(with_flags(plots.compass_plane(pct, palette), pct)),
                          tables=tables))
    return parts


# -- personality --------------------------------------------------------------------------------------------
def _scale(scope: SurveyScope) -> tuple[float, float] | None:
    values = [float(o["value"]) for o in scope.info.options() if o.get("value") is not None]
    return (min(values), max(values)) if values else None


def _trait_grid(traits: pd.DataFrame) -> pd.DataFrame:
    """likert_traits as one row per model × reasoning × style × anchors, one column per trait ("3.30 [3.25, 3.35]")."""
    from probekit.report.plots import TRAIT_ORDER
    from probekit.report.tables import cell

    keys = [k for k in ("model", "reasoning", "style", "anchors") if k in traits.columns]
    present = list(dict.fromkeys(str(t) for t in traits["trait"]))
    order = [t for t in TRAIT_ORDER if t in present] + sorted(t for t in present if t not in TRAIT_ORDER)
    rows: dict[tuple[str, ...], dict[str, str]] = {}
    flags: dict[tuple[str, ...], list[str]] = {}
    for row in traits.to_dict("records"):
        key = tuple(str(row[k]) for k in keys)
        text = cell(row["score"])
        if "score_ci_low" in row and cell(row["score_ci_low"]) != "–":
            text += f" [{cell(row['score_ci_low'])}, {cell(row['score_ci_high'])}]"
        if isinstance(row.get("flags"), str) and row["flags"]:
            text += " ⚑"  # this trait's score fails a precondition (the flags column says which)
            flags.setdefault(key, []).append(str(row["flags"]))
        rows.setdefault(key, dict(zip(keys, key)))[str(row["trait"])] = text
    frame = pd.DataFrame(list(rows.values()))
    frame["flags"] = [_union_flags(pd.DataFrame({"flags": flags.get(tuple(str(r[k]) for k in keys), [])}))
                      for r in frame.to_dict("records")]
    return frame[[*keys, *[t for t in order if t in frame.columns], "flags"]]


def personality(data: ReportData, palette: Palette) -> list[Part]:
    parts = []
    for scope in data.surveys:
        traits = scope.tables.get("likert_traits")
        if traits is None or traits.empty:
            continue
        tables = _keep(
            display_table(_trait_grid(traits), "Trait scores per style and anchor order", source="likert_traits",
                          note="Mean keyed item score [95 % CI over items], in scale points; ⚑ marks a flagged trait score.",
                          more=_more(data, scope, "likert_traits")),
            _table(data, scope, "likert_traits", "Trait scores, one row each", collapsed=True,
                   columns=["model", "reasoning", "style", "anchors", "trait", "score", "n_items", "n_forms"], max_rows=200),
            _table(data, scope, "likert_symmetry", "Anchor-order symmetry (original − mirrored)"),
            _table(data, scope, "likert_alpha", "Internal consistency (Cronbach's α)",
                   note="α is empty (–) when the administrations do not vary (a deterministic model, one template)."),
            _table(data, scope, "likert_sensitivity", "Prompt sensitivity between styles", collapsed=True),
        )
        parts.append(Part(title=_survey_title(scope),
                          figures=_keep(with_flags(plots.trait_profiles(traits, palette, _scale(scope)), traits)), tables=tables))
    return parts


# -- POBs ---------------------------------------------------------------------------------------------------
def pobs(data: ReportData, palette: Palette) -> list[Part]:
    parts = []
    for scope in data.surveys:
        frame = scope.tables.get("pobs")
        if frame is None or frame.empty:
            continue
        tables = _keep(
            _table(data, scope, "pobs", "NNI, TCI and reliability per model and setup",
                   columns=["model", "setup", "nni", "tci", "reliability", "reliability_method", "n_topics", "n_polar_topics",
                            "n_questions", "n_answers", "n_invalid", "refusal_rate"], percent=["refusal_rate"]),
            _table(data, scope, "pobs_opinion_change", "Opinion change between setups"),
            _table(data, scope, "pobs_topics", "Per topic", collapsed=True),
            _table(data, scope, "pobs_declarative", "Declared against inferred stance", collapsed=True),
        )
        parts.append(Part(title=_survey_title(scope), figures=_keep(with_flags(plots.pobs_bars(frame, palette), frame)),
                          tables=tables))
    return parts


# -- selection bias -----------------------------------------------------------------------------------------
def _pick_rate_table(bias: pd.DataFrame) -> pd.DataFrame:
    keys = ["model", "template_id", "reasoning", "n_options"]
    wide = bias.pivot_table(index=keys, columns="position", values="pick_rate", sort=False).reset_index()
    wide.columns = [f"position {c}" if isinstance(c, (int, np.integer)) else str(c) for c in wide.columns]
    items = bias.groupby(keys, sort=False)["n_items"].max().reset_index(drop=True)
    wide["n_items"] = items.to_numpy()
    return wide


def selection(data: ReportData, palette: Palette) -> list[Part]:
    parts = []
    ordered = sorted(data.surveys, key=lambda s: s.info.kind != "mcq")
    for scope in ordered:
        if scope.info.kind == "pairwise":
            continue  # a judge's position bias is PC / PF, in the judges section
        bias, prior, sel = (scope.tables.get(name) for name in ("position_bias", "position_prior", "selection_bias"))
        if all(t is None or t.empty for t in (bias, prior, sel)):
            continue
        figures: list[Figure] = []
        widths = (sorted(set(bias["n_options"]) if bias is not None else set())
                  or sorted(set(prior["n_options"]) if prior is not None else set()))
        for n in widths:
            one_bias = bias[bias["n_options"] == n] if bias is not None else None
            one_prior = prior[prior["n_options"] == n] if prior is not None else None
            figures += _keep(plots.position_heatmaps(one_bias, one_prior, palette))
        if sel is not None and not sel.empty:
            figures += _keep(plots.rstd_bars(sel, palette))
        tables: list[Table] = []
        if bias is not None and not bias.empty:
            wide = _pick_rate_table(bias)
            tables.append(display_table(wide, "Pick rate per displayed position", source="position_bias",
                                        percent=[c for c in wide.columns if c.startswith("position ")],
                                        note="Mean probability per displayed position over complete cyclic rotations; "
                                             "uniform = 100 % / number of options.", more=_more(data, scope, "position_bias")))
        recalls = [c for c in (sel.columns if sel is not None else []) if c.startswith("recall_")]
        tables += _keep(
            _table(data, scope, "position_prior", "PriDe prior",
                   columns=["model", "template_id", "reasoning", "n_options", "prior", "kl_prior_bits", "kl_pick_rates_bits", "n_items"],
                   rename={"kl_prior_bits": "KL(prior ‖ uniform) (bits)", "kl_pick_rates_bits": "KL(pick rates ‖ uniform) (bits)"}),
            _table(data, scope, "selection_bias", "RStd and accuracy",
                   columns=["model", "template_id", "reasoning", "n_items", *recalls, "rstd", "rstd_identity", "rstd_pride",
                            "acc_identity", "acc_cyclic", "acc_pride", "prompts_identity", "prompts_cyclic", "prompts_pride",
                            "pride_prior_source"],
                   note="recall_k: share of items with the gold answer at position k that were answered correctly; RStd "
                        "= 100 × their standard deviation."),
            _table(data, scope, "mcq_calibration", "Calibration (ECE, Brier)", collapsed=True),
            _table(data, scope, "confidence_by_correctness", "Confidence by correctness", collapsed=True),
        )
        parts.append(Part(title=_survey_title(scope), figures=figures, tables=tables))
    return parts


# -- judges -------------------------------------------------------------------------------------------------
def judges(data: ReportData, palette: Palette) -> list[Part]:
    parts = []
    for scope in data.surveys:
        position, selfpref, recognition = (scope.tables.get(n) for n in ("judge_position", "judge_self_preference", "self_recognition"))
        if all(t is None or t.empty for t in (position, selfpref, recognition)):
            continue
        figures: list[Figure] = []
        if position is not None and not position.empty:
            figures += _keep(with_flags(plots.judge_position_bars(position, palette), position))
        if selfpref is not None and not selfpref.empty:
            figures += _keep(with_flags(plots.self_preference(selfpref, palette), selfpref))
        tables = _keep(
            _table(data, scope, "judge_position", "Position consistency and fairness",
                   columns=["judge", "template_id", "reasoning", "n_pairs", "n_questions", "pc", "consistent", "primacy", "recency",
                            "pf", "pf_strict", "tie_rate", "n_incomplete"], rename={"pc": "PC", "pf": "PF", "pf_strict": "PF, strict"},
                   note="primacy / recency and PF as Shi et al.'s script counts them (a tie in one order and the first- / "
                        "second-shown answer in the other counts); PF, strict: probekit's variant that sets those pairs apart."),
            _table(data, scope, "judge_self_preference", "Self-preference: WR_self, WR_gold, DBG",
                   columns=["judge", "template_id", "reasoning", "n_pairs", "n_gold", "wr_self_all", "wr_self", "wr_gold", "dbg",
                            "eo_bias", "gold"],
                   rename={"wr_self_all": "WR_self, all pairs (%)", "wr_self": "WR_self (%)", "wr_gold": "WR_gold (%)",
                           "dbg": "DBG (pp)", "eo_bias": "equal-opportunity bias"},
                   note="On the pairs with a gold verdict; WR_self, all pairs also counts those without gold (naive)."),
            _table(data, scope, "self_recognition", "Self-recognition"),
        )
        parts.append(Part(title=_survey_title(scope), figures=figures, tables=tables))
    return parts


# -- drift --------------------------------------------------------------------------------------------------
def drift(data: ReportData, palette: Palette) -> list[Part]:
    parts = []
    for report in data.drift:
        snapshots = display_table(
            report.snapshot_table, "Snapshots",
            columns=["snapshot", "started_at", "version", "n_runs", "n_items", "n_answers", "refusal_rate", "invalid_rate"],
            rename={"started_at": "started (UTC)", "n_runs": "runs", "n_items": "items", "n_answers": "answers",
                    "refusal_rate": "refusal rate", "invalid_rate": "invalid rate"}, percent=["refusal_rate", "invalid_rate"])
        rows = [{"a": p.a.label, "b": p.b.label, "relation": p.relation, **p.summary} for p in report.pairs]
        pairs = display_table(
            pd.DataFrame(rows), "Compared snapshots",
            columns=["a", "b", "relation", "n_items", "distance", "noise_floor", "excess", "n_moved", "verdict"],
            rename={"n_items": "items", "noise_floor": "noise floor", "n_moved": "items moved"},
            note=f"Distance: {'JSD (bits)' if report.metric == 'jsd' else 'Wasserstein-1 (scale points)'} per item, averaged; "
                 f"noise floor from {report.noise_source}. `probekit drift --survey {report.survey} --model {report.model}` "
                 "lists the items that moved.")
        parts.append(Part(title=f"{report.survey} on {report.model}", figures=_keep(plots.drift_timeline(report)),
                          tables=[snapshots, pairs], notes=list(report.notes)))
    return parts


def _human(data: ReportData, palette: Palette) -> list[Part]:
    from probekit.report.human import human_parts  # its own module (docs/human-alignment.md)

    return human_parts(data, palette)


SECTIONS: list[tuple[str, str, str, Callable[[ReportData, Palette], list[Part]], str]] = [
    ("summary", "Run summary", "What ran: models and their resolved versions, trials, answer rates, tokens and cost.",
     summary, "no results in scope"),
    ("moral", "Moral dilemmas", "Choice surveys (MoralChoice, DailyDilemmas): how likely each action is, how uncertain the "
     "model is, and how much the answer depends on the question form (Scherrer et al. 2023).", moral, "no choice survey in scope"),
    ("compass", "Political compass", "Political Compass Test coordinates under every paraphrase and forcing level "
     "(Röttger et al. 2024).", compass, "no political compass survey in scope"),
    ("personality", "Personality", "Big-Five trait profiles per administration style and anchor order, with CIs "
     "(Gupta et al. 2024).", personality, "no personality inventory in scope"),
    ("pobs", "Opinions (POBs)", "Non-neutrality, topical consistency and reliability of opinions (Kour et al. 2025).", pobs,
     "no POBs-style survey in scope"),
    ("human", "Whose opinions?", "Model answers against human groups' answer distributions: similarity per group, "
     "representativeness, steering with personas (Durmus et al. 2023; Santurkar et al. 2023).", _human,
     "no survey with human reference distributions in scope"),
    ("selection", "Selection bias", "Which displayed position a model picks regardless of content, RStd against the gold "
     "answers, and the PriDe prior (Zheng et al. 2024).", selection, "no survey shown in several option orders"),
    ("judges", "Judges", "LLM judges: position consistency and fairness, and self-preference beyond quality (DBG).", judges,
     "no judging survey in scope"),
    ("drift", "Drift over time", "Change of the answers across model versions (snapshots), against the noise floor of "
     "repeated runs.", drift, "no survey × model with two snapshots (versions) in the store"),
]


def build_sections(data: ReportData) -> tuple[list[Section], list[tuple[str, str]]]:
    """The sections that have data, and (title, reason) for those left out."""
    palette = Palette(data.model_names())
    sections, omitted = [], []
    for key, title, intro, builder, why in SECTIONS:
        parts = builder(data, palette)
        if parts:
            sections.append(Section(key=key, title=title, intro=intro, parts=parts))
        else:
            omitted.append((title, why))
    return sections, omitted


def build(data: ReportData, *, title: str | None = None) -> Report:
    """The whole report of `data`."""
    from probekit import __version__

    sections, omitted = build_sections(data)
    return Report(title=title or "probekit report", scope=data.scope, store=str(data.store),
                  generated_at=datetime.now(timezone.utc), version=__version__, sections=sections, omitted=omitted,
                  notes=list(data.notes), n_boot=data.n_boot)
