"""The report's "Whose opinions?" section (docs/human-alignment.md): for every survey with human reference
distributions, similarity per group with CIs (one sorted bar per group), the steerability scatter (default context
against the best persona context per group, diagonal drawn), and the most and least aligned questions with the model's
and the group's distributions side by side."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from probekit.report import plots
from probekit.report.plots import Figure, Palette, canvas
from probekit.report.tables import Table, display_table

if TYPE_CHECKING:
    from probekit.report.gather import ReportData, SurveyScope
    from probekit.report.sections import Part

MAX_GROUPS = 40
"""Bars per model in the similarity figure (the table lists every group)."""
QUESTIONS_SHOWN = 5
"""Most and least aligned questions drawn per model."""


def _label(row: dict[str, Any]) -> str:
    return str(row["group_value"]) if row["group_var"] in ("country", "") else f"{row['group_var']}: {row['group_value']}"


def similarity_bars(table: pd.DataFrame, palette: Palette) -> Figure | None:
    """One horizontal bar per group (sorted, best on top) per model, with its 95 % CI over questions."""
    if table.empty:
        return None
    models = list(dict.fromkeys(table["model"]))
    height = min(MAX_GROUPS, int(table.groupby("model").size().max()))
    with canvas(1, len(models), size=(4.2 * len(models) + 1.5, 0.22 * height + 1.4), sharex=True) as c:
        for ax, model in zip(c.axes[0], models):
            rows = table[table["model"] == model].sort_values("similarity", ascending=True, kind="stable").tail(MAX_GROUPS)
            y = np.arange(len(rows))
            values = rows["similarity"].to_numpy(dtype=float)
            low = values - rows["similarity_ci_low"].to_numpy(dtype=float)
            high = rows["similarity_ci_high"].to_numpy(dtype=float) - values
            bars = ax.barh(y, values, xerr=np.vstack([np.nan_to_num(low), np.nan_to_num(high)]), color=palette.colour(model),
                           alpha=0.85, error_kw={"elinewidth": 0.8, "capsize": 2})
            for bar, row in zip(bars, rows.to_dict("records")):
                c.tip(bar, f"{model} · {_label(row)}: similarity {row['similarity']:.3f} "
                      f"[{row['similarity_ci_low']:.3f}, {row['similarity_ci_high']:.3f}], {row['n_questions']} question(s)")
            ax.set_yticks(y, [_label(r) for r in rows.to_dict("records")], fontsize=7)
            ax.set_xlim(max(0.0, float(np.nanmin(rows["similarity_ci_low"].fillna(rows["similarity"]))) - 0.05), 1.0)
            ax.set_xlabel("similarity: 1 − JS distance (natural log)")
            ax.set_title(model)
        return c.figure("human-similarity", "Similarity to each human group",
                        "Mean over the questions each group was asked of 1 − Jensen–Shannon distance (natural log) between "
                        "the model's answer distribution and the group's (Durmus et al. 2023), with 95 % bootstrap CIs over "
                        "questions; groups sorted, most similar on top.")


def steerability_scatter(table: pd.DataFrame, palette: Palette) -> Figure | None:
    """Per group: the default context's score (x) against the best persona context's (y); the diagonal is no lift."""
    if table.empty:
        return None
    metric = "representativeness" if (table["metric"] == "representativeness").any() else "similarity"
    rows = table[table["metric"] == metric]
    with canvas(1, 1, size=(5.2, 4.8)) as c:
        ax = c.axes[0][0]
        lo = float(np.nanmin(rows[["rep_default", "rep_best"]].to_numpy(dtype=float))) - 0.02
        hi = float(np.nanmax(rows[["rep_default", "rep_best"]].to_numpy(dtype=float))) + 0.02
        ax.plot([lo, hi], [lo, hi], color="#777777", linewidth=0.8, linestyle="--", label="no lift (y = x)")
        for model, block in rows.groupby("model", sort=False):
            points = ax.scatter(block["rep_default"], block["rep_best"], color=palette.colour(str(model)),
                                marker=palette.marker(str(model)), s=22, label=str(model))
            if len(block) <= plots.MAX_TIPS:
                c.tip(points, "; ".join(f"{_label(r)}: {r['rep_default']:.3f} → {r['rep_best']:.3f} ({r['best_style']})"
                                        for r in block.head(30).to_dict("records")))
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel(f"{metric}, default context (Rep_d)")
        ax.set_ylabel(f"{metric}, best persona context (Rep_s)")
        ax.legend(loc="lower right")
        return c.figure("human-steerability", "Steerability: default against best persona context",
                        f"Each point is one group: its {metric} when the model answers with no persona (x) and under the "
                        "persona context of that group that scores best (y; OpinionQA's Rep_s). Above the diagonal the "
                        "persona moved the model towards the group.")


def question_pairs(items: pd.DataFrame, palette: Palette, *, n: int = QUESTIONS_SHOWN) -> Figure | None:
    """The most and least aligned questions of the first model: model and group distributions side by side."""
    if items.empty:
        return None
    model = str(items["model"].iloc[0])
    rows = items[items["model"] == model].sort_values("similarity", kind="stable")
    picked = pd.concat([rows.tail(n).iloc[::-1], rows.head(n)]).drop_duplicates(subset=["item_id", "group_var", "group_value"])
    picked = picked.head(2 * n)
    with canvas(len(picked), 1, size=(8.0, 1.25 * len(picked) + 0.6)) as c:
        for ax, row in zip(c.axes[:, 0], picked.to_dict("records")):
            k = len(row["human_dist"])
            x = np.arange(k)
            ax.bar(x - 0.2, row["model_dist"], width=0.4, color=palette.colour(model), label=model)
            ax.bar(x + 0.2, row["human_dist"], width=0.4, color="#999999", label=_label(row))
            names = list(row.get("options") or [f"option {i + 1}" for i in range(k)])
            ax.set_xticks(x, [str(t)[:28] for t in names], fontsize=6)
            ax.set_ylim(0, 1)
            question = str(row.get("question") or row["item_id"])
            ax.set_title(f"{question[:95]}{'…' if len(question) > 95 else ''}  — {_label(row)}, similarity "
                         f"{row['similarity']:.3f}", fontsize=7, loc="left")
            ax.legend(fontsize=6, loc="upper right")
        return c.figure("human-questions", f"Most and least aligned questions ({model})",
                        f"The {n} questions × groups where {model}'s answer distribution is closest to the group's, then the "
                        f"{n} where it is farthest (1 − JS distance); model in colour, the group in grey.")


def _items_table(data: ReportData, scope: SurveyScope) -> pd.DataFrame:
    """The per-question detail table (not built by default): computed for the report's scope."""
    from probekit.analysis.loader import AnalysisContext, survey_info
    from probekit.analysis.registry import build_tables
    from probekit.store.store import Store

    store = Store(data.store)
    models = data.model_names() or None
    ctx = AnalysisContext(store=store, info=survey_info(store, scope.survey_id), run_ids=scope.run_ids, models=models,
                          seed=data.seed, n_boot=data.n_boot)
    return build_tables(ctx, ["human_items"]).get("human_items", pd.DataFrame())


def human_parts(data: ReportData, palette: Palette) -> list[Part]:
    """One part per survey with human reference distributions."""
    from probekit.report.sections import Part, _survey_title, _table

    parts = []
    for scope in data.surveys:
        similarity = scope.tables.get("human_similarity")
        if similarity is None or similarity.empty:
            continue
        steer = scope.tables.get("human_steerability")
        items = _items_table(data, scope)
        figures = [f for f in (similarity_bars(similarity, palette),
                               steerability_scatter(steer, palette) if steer is not None and not steer.empty else None,
                               question_pairs(items, palette)) if f is not None]
        tables: list[Table] = [t for t in (
            _table(data, scope, "human_similarity", "Similarity per group",
                   columns=["model", "group_var", "group_value", "n_questions", "similarity", "jsd_bits", "total_variation",
                            "kendall_tau_b", "valid_mass", "flags"],
                   rename={"group_var": "variable", "group_value": "group", "n_questions": "questions",
                           "similarity": "1 − JS distance (nat.)", "jsd_bits": "JSD (bits)", "total_variation": "TV",
                           "kendall_tau_b": "Kendall τ-b", "valid_mass": "valid mass"}),
            _table(data, scope, "human_representativeness", "Representativeness (OpinionQA) and refusals",
                   columns=["model", "group_var", "group_value", "n_questions", "representativeness", "model_refusal_mass",
                            "human_refusal_rate", "flags"], percent=["model_refusal_mass", "human_refusal_rate"]),
            _table(data, scope, "human_baselines", "Human baselines: each group against the population", collapsed=True),
            _table(data, scope, "human_steerability", "Steerability",
                   columns=["model", "metric", "group_var", "group_value", "n_questions", "rep_default", "rep_best", "lift",
                            "best_style", "best_persona", "slope", "flags"]),
            _table(data, scope, "human_consistency", "Consistency across topics", collapsed=True),
            _table(data, scope, "human_diversity", "Diversity of answers (Park et al.)", collapsed=True),
        ) if t is not None]
        if not items.empty:
            shown = items.assign(model_dist=[json_list(v) for v in items["model_dist"]],
                                 human_dist=[json_list(v) for v in items["human_dist"]])
            tables.append(display_table(shown, "Questions, least aligned first",
                                        columns=["model", "item_id", "group_value", "similarity", "representativeness",
                                                 "model_dist", "human_dist", "question"], collapsed=True,
                                        source="human_items", max_rows=60))
        parts.append(Part(title=_survey_title(scope), figures=figures, tables=tables))
    return parts


def json_list(values: Any) -> str:
    return "[" + ", ".join(f"{float(v):.2f}" for v in values) + "]"
