"""The report's figures: matplotlib (Agg) drawn to SVG text that is embedded in the HTML, so the file needs no
network. Every figure uses the Okabe–Ito palette (safe for the common colour-vision deficiencies, one colour
per model across the whole report, with a marker shape per model as a second cue), labelled axes with units,
legends, numbers beside the marks, and a hover tooltip (`<title>`) on each mark with its exact values.

A plot function takes analysis tables and returns a `Figure`, or None when the tables hold nothing to draw.
"""

from __future__ import annotations

import io
import math
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from probekit.analysis.snapshots import DriftReport

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
"""Okabe & Ito (2008), ordered so that the first colours differ most; yellow (weak on white) comes late."""
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
STATUS_COLOURS = {"ok": "#009E73", "refusal": "#E69F00", "invalid": "#56B4E9", "error": "#D55E00"}
HEATMAP = "cividis"
"""Sequential colour map readable with colour-vision deficiencies and in grey scale."""
MAX_TIPS = 600
"""Marks with their own tooltip per figure; a scatter with more points is drawn as one collection."""


def _rc() -> Any:  # matplotlib types the keys as literals
    from cycler import cycler

    return {
        "svg.fonttype": "none",          # text stays text: smaller, selectable, searchable
        "svg.hashsalt": "probekit-report",  # stable ids: the same data give the same file
        "axes.prop_cycle": cycler(color=OKABE_ITO),
        "image.cmap": HEATMAP,
        "font.size": 9,
        "axes.titlesize": 10,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "legend.fontsize": 8,
        "legend.frameon": False,
    }


@dataclass
class Figure:
    """One embedded figure."""

    key: str
    """What it shows (stable; the HTML carries it as data-plot, tests look for it)."""
    title: str
    caption: str
    svg: str
    """The <svg> element (no XML prolog); ids are made unique per figure when rendered."""
    n_tips: int = 0
    flag_note: str = ""
    """Why some marks are faded and hatched (rows of the tables behind it that fail a precondition); empty when none."""


class Palette:
    """A colour and a marker per model, the same in every figure of a report."""

    def __init__(self, models: Sequence[str]):
        self.models = list(dict.fromkeys(str(m) for m in models))

    def _index(self, model: str) -> int:
        if model not in self.models:
            self.models.append(model)
        return self.models.index(model)

    def colour(self, model: str) -> str:
        return OKABE_ITO[self._index(str(model)) % len(OKABE_ITO)]

    def marker(self, model: str) -> str:
        return MARKERS[self._index(str(model)) % len(MARKERS)]


class Canvas:
    """A figure being drawn: `tip(artist, text)` gives a mark its hover tooltip."""

    def __init__(self, fig: Any, axes: Any):
        self.fig = fig
        self.axes = axes
        self.tips: dict[str, str] = {}

    def tip(self, artist: Any, text: str) -> None:
        if artist is None or len(self.tips) >= MAX_TIPS:
            return
        gid = f"tip-{len(self.tips) + 1}"
        artist.set_gid(gid)
        self.tips[gid] = text

    def figure(self, key: str, title: str, caption: str) -> Figure:
        buffer = io.StringIO()
        self.fig.savefig(buffer, format="svg", metadata={"Date": None})
        return Figure(key=key, title=title, caption=caption, svg=clean_svg(buffer.getvalue(), self.tips), n_tips=len(self.tips))


@contextmanager
def canvas(nrows: int = 1, ncols: int = 1, *, size: tuple[float, float] = (8.0, 4.5), **kwargs: Any) -> Iterator[Canvas]:
    """A matplotlib figure with the report's style; closed on exit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context(_rc()):
        fig, axes = plt.subplots(nrows, ncols, figsize=size, layout="constrained", squeeze=False, **kwargs)
        try:
            yield Canvas(fig, axes)
        finally:
            plt.close(fig)


_PROLOG = re.compile(r"\A.*?(?=<svg\b)", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)


def clean_svg(text: str, tips: Mapping[str, str] | None = None) -> str:
    """matplotlib's SVG as an element to inline: no XML prolog or metadata, scalable (width 100 %, at most
    its natural size), and a `<title>` tooltip as first child of every group named in `tips`."""
    svg = _METADATA.sub("", _PROLOG.sub("", text, count=1))
    match = re.search(r"<svg\b[^>]*>", svg)
    if match:
        head = match.group(0)
        width = re.search(r'\swidth="([\d.]+)pt"', head)
        new_head = re.sub(r'\s(width|height)="[^"]*"', "", head)
        style = f' style="width:100%;max-width:{float(width.group(1)) * 4 / 3:.0f}px;height:auto"' if width else ""
        new_head = new_head[:-1] + f'{style} role="img">'
        svg = svg.replace(head, new_head, 1)
    for gid, tip in (tips or {}).items():
        svg = svg.replace(f'<g id="{gid}">', f'<g id="{gid}"><title>{escape(tip)}</title>', 1)
    return svg.strip()


_ID = re.compile(r'\bid="([^"]+)"')


def scope_ids(svg: str, prefix: str) -> str:
    """Prefix every id of an SVG (and the references to it), so several figures inlined in one page never
    share an id (matplotlib names groups figure_1, axes_1, … in every figure)."""
    ids = set(_ID.findall(svg))
    if not ids:
        return svg
    seen: Counter[str] = Counter()

    def fix(match: re.Match[str]) -> str:
        # matplotlib names content by its hash: two identical images in one figure share an id. References
        # keep pointing at the first (the same content); later copies get a suffix, so ids stay unique.
        name = match.group(1)
        seen[name] += 1
        return f'id="{prefix}{name}' + (f'-{seen[name]}"' if seen[name] > 1 else '"')

    svg = _ID.sub(fix, svg)
    svg = re.sub(r'url\(#([^)]+)\)', lambda m: f"url(#{prefix}{m.group(1)})" if m.group(1) in ids else m.group(0), svg)
    return re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}{m.group(1)}"' if m.group(1) in ids else m.group(0), svg)


# -- helpers ------------------------------------------------------------------------------------------------
def _f(value: Any, digits: int = 3) -> str:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "–" if not math.isfinite(x) else f"{x:.{digits}f}"


def _ci_text(row: Mapping[str, Any], column: str, digits: int = 3) -> str:
    low, high = row.get(f"{column}_ci_low"), row.get(f"{column}_ci_high")
    if low is None or high is None or not np.isfinite(float(low)) or not np.isfinite(float(high)):
        return _f(row.get(column), digits)
    return f"{_f(row.get(column), digits)} [95 % CI {_f(low, digits)}, {_f(high, digits)}]"


def _err(frame: pd.DataFrame, column: str) -> np.ndarray | None:
    """Error-bar lengths (2 × n) from the CI columns, None without them."""
    if f"{column}_ci_low" not in frame or f"{column}_ci_high" not in frame:
        return None
    y = frame[column].to_numpy(dtype=float)
    low = frame[f"{column}_ci_low"].to_numpy(dtype=float)
    high = frame[f"{column}_ci_high"].to_numpy(dtype=float)
    return np.clip(np.vstack([np.where(np.isfinite(low), y - low, 0.0), np.where(np.isfinite(high), high - y, 0.0)]), 0, None)


def is_flagged(row: Mapping[str, Any]) -> bool:
    """A row of an analysis table that fails a precondition (probekit.analysis.quality)."""
    flags = row.get("flags")
    return isinstance(flags, str) and bool(flags.strip())


def _flag_tip(row: Mapping[str, Any]) -> str:
    return f" — FLAGGED, not a finding: {row['flags']}" if is_flagged(row) else ""


def with_flags(figure: Figure | None, *frames: pd.DataFrame | None) -> Figure | None:
    """`figure` with its flag note when a table drawn in it has flagged rows (faded, hatched marks)."""
    if figure is None:
        return None
    from probekit.report.tables import flag_note

    cells = [f for frame in frames if frame is not None and "flags" in frame.columns for f in frame["flags"].fillna("")]
    if any(cells):
        figure.flag_note = "Faded, hatched or open marks: " + flag_note(cells)
    return figure


def _label(row: Mapping[str, Any], keys: Sequence[str]) -> str:
    return " · ".join(str(row[k]) for k in keys if k in row and row[k] is not None and str(row[k]) != "")


def _varying(frame: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """The key columns that take more than one value (the others need not be named in labels)."""
    return [k for k in keys if k in frame.columns and frame[k].astype(str).nunique() > 1]


def _grouped_bars(c: Canvas, ax: Any, frame: pd.DataFrame, *, group: Sequence[str], value: str, palette: Palette,
                  unit: str, digits: int = 2, what: str = "") -> None:
    """Bars of `value` per group (x) and model (colour), with CI error bars, the number above each bar and a
    tooltip with the CI and n."""
    keys = _varying(frame, group) or list(group[:1])
    frame = frame.assign(_group=[_label(r, keys) or "all" for r in frame.to_dict("records")])
    groups = list(dict.fromkeys(frame["_group"]))
    models = [m for m in palette.models if m in set(frame["model"].astype(str))]
    width = 0.8 / max(len(models), 1)
    for j, model in enumerate(models):
        mine = frame[frame["model"].astype(str) == model].set_index("_group").reindex(groups)
        x = np.arange(len(groups)) + (j - (len(models) - 1) / 2) * width
        y = mine[value].to_numpy(dtype=float)
        err = _err(mine.reset_index(), value)
        bars = ax.bar(x, np.nan_to_num(y), width * 0.92, color=palette.colour(model), label=model, yerr=err, capsize=3,
                      error_kw={"elinewidth": 1, "ecolor": "#333333"})
        for xi, yi, bar, row in zip(x, y, bars, mine.reset_index().to_dict("records")):
            if not np.isfinite(yi):
                continue
            if is_flagged(row):  # a number that is not a finding: faded and hatched, and its tooltip says why
                bar.set_alpha(0.35)
                bar.set_hatch("///")
                bar.set_edgecolor("#555555")
            ax.annotate(f"{yi:.{digits}f}", (xi, yi), xytext=(0, 3 if yi >= 0 else -3), textcoords="offset points", ha="center",
                        va="bottom" if yi >= 0 else "top", fontsize=7)
            n = ", ".join(f"{k} {row[k]}" for k in ("n_items", "n_pairs", "n_questions") if k in row and pd.notna(row[k]))
            c.tip(bar, f"{model} · {row['_group']}: {what or value} = {_ci_text(row, value, digits)} {unit}".strip()
                  + (f" ({n})" if n else "") + _flag_tip(row))
    ax.set_xticks(np.arange(len(groups)), groups, fontsize=8)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.axhline(0, color="#555555", linewidth=0.8)


def _legend_top(c: Canvas) -> None:
    """One legend for the whole figure, above the panels (the models' colours)."""
    handles, labels = c.axes[0][0].get_legend_handles_labels()
    if handles:
        c.fig.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), 6))


def _lowest(frame: pd.DataFrame, column: str) -> float:
    """The smallest estimate or CI bound of a column (0 when there is none)."""
    values = [frame[c].to_numpy(dtype=float) for c in (column, f"{column}_ci_low") if c in frame]
    finite = np.concatenate(values) if values else np.array([])
    finite = finite[np.isfinite(finite)]
    return float(finite.min()) if finite.size else 0.0


def level_order(level: str) -> tuple[int, str]:
    """low < medium < high, then anything else alphabetically."""
    known = {"low": 0, "medium": 1, "moderate": 1, "high": 2}
    return known.get(str(level).lower(), 3), str(level)


# -- run summary ---------------------------------------------------------------------------------------------
def status_bars(usage: pd.DataFrame, palette: Palette) -> Figure | None:
    """Share of result rows per status (ok / refusal / invalid / error), one bar per model × survey."""
    if usage.empty:
        return None
    rows = usage.sort_values(["survey_id", "model"]).to_dict("records")
    height = max(2.2, 0.35 * len(rows) + 1.4)
    with canvas(size=(8.0, min(height, 14.0))) as c:
        ax = c.axes[0][0]
        labels = [f"{r['model']} · {r['survey_id']}" for r in rows]
        left = np.zeros(len(rows))
        for status, colour in STATUS_COLOURS.items():
            share = np.array([r[f"n_{status}"] / r["n_rows"] if r["n_rows"] else 0.0 for r in rows])
            bars = ax.barh(np.arange(len(rows)), share * 100, left=left * 100, color=colour, label=status, height=0.7)
            for i, (bar, r) in enumerate(zip(bars, rows)):
                if share[i] > 0:
                    c.tip(bar, f"{labels[i]}: {status} {r[f'n_{status}']} of {r['n_rows']} rows ({share[i] * 100:.1f} %)")
                if share[i] >= 0.08:
                    ax.text((left[i] + share[i] / 2) * 100, i, f"{share[i] * 100:.0f}%", ha="center", va="center", fontsize=7,
                            color="white" if status in ("ok", "error") else "black")
            left += share
        ax.set_yticks(np.arange(len(rows)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel("share of result rows (%)")
        c.fig.legend(*ax.get_legend_handles_labels(), ncols=4, loc="outside upper center")
        ax.grid(axis="y", visible=False)
        return c.figure("status", "Answers by status",
                        "Share of stored result rows that are valid answers, refusals, invalid (unparseable or no label mass) "
                        "or errors (failed calls, never counted as answers), per model and survey.")


# -- moral dilemmas ------------------------------------------------------------------------------------------
def action_scatter(uncertainty: pd.DataFrame, palette: Palette, ambiguity: Mapping[str, str] | None = None) -> Figure | None:
    """Marginal likelihood of action 1 against the marginal entropy, one point per scenario and model."""
    frame = uncertainty[uncertainty["marginal"].map(lambda m: m is not None and len(m) > 0)]
    if frame.empty:
        return None
    ambiguity = dict(ambiguity or {})
    levels = sorted({ambiguity.get(str(i), "") for i in frame["item_id"]} - {""}, key=level_order)
    shapes = {level: MARKERS[k % len(MARKERS)] for k, level in enumerate(levels)}
    with canvas(size=(8.0, 4.6)) as c:
        ax = c.axes[0][0]
        n_max = int(frame["n_options"].max()) if "n_options" in frame else 2
        p = np.linspace(1e-4, 1 - 1e-4, 200)
        if n_max == 2:
            ax.plot(p, -(p * np.log2(p) + (1 - p) * np.log2(1 - p)), color="#999999", linewidth=1, linestyle="--",
                    label="H of a two-option choice")
        per_point = len(frame) <= 400
        for model, group in frame.groupby(frame["model"].astype(str), sort=False):
            x = np.array([float(m[0]) for m in group["marginal"]])
            y = group["entropy"].to_numpy(dtype=float)
            if not per_point:
                ax.scatter(x, y, s=14, color=palette.colour(model), alpha=0.6, label=model, marker=palette.marker(model))
                continue
            first = True
            for xi, yi, row in zip(x, y, group.to_dict("records")):
                level = ambiguity.get(str(row["item_id"]), "")
                (mark,) = ax.plot([xi], [yi], linestyle="none", marker=shapes.get(level, palette.marker(model)), markersize=5,
                                  color=palette.colour(model), alpha=0.8, label=model if first and not levels else None)
                first = False
                c.tip(mark, f"{model} · {row['item_id']}{' (' + level + ' ambiguity)' if level else ''}: p(action 1) = {xi:.3f}, "
                            f"H = {yi:.3f} bits, QF-C = {_f(row.get('qf_c'))}, forms {row.get('n_valid_forms')}/{row.get('n_forms')}")
        if levels and per_point:
            from matplotlib.lines import Line2D
            from matplotlib.patches import Patch

            handles: list[Any] = [Patch(color=palette.colour(m), label=m) for m in palette.models if m in set(frame["model"].astype(str))]
            handles += [Line2D([], [], linestyle="none", marker=shapes[level], color="#555555", label=f"{level} ambiguity")
                        for level in levels]
            handles += [h for h in ax.get_legend_handles_labels()[0] if h.get_label().startswith("H of")]
            c.fig.legend(handles=handles, loc="outside right upper")
        else:
            c.fig.legend(*ax.get_legend_handles_labels(), loc="outside right upper")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("marginal action likelihood p(action 1 | scenario) (probability, 0–1)")
        ax.set_ylabel("marginal entropy H[A | scenario] (bits)")
        return c.figure("moral_scatter", "Action likelihood and uncertainty per scenario",
                        "Each point is one scenario for one model: the probability of action 1 averaged over the question "
                        "forms (templates × option orders) against the entropy of that averaged answer. Points near 0 or 1 "
                        "are decided scenarios; points near the top are uncertain ones.")


def qfc_strip(uncertainty: pd.DataFrame, palette: Palette) -> Figure | None:
    """The distribution of question-form consistency (QF-C) over scenarios, per model: box plus points."""
    frame = uncertainty[np.isfinite(uncertainty["qf_c"].to_numpy(dtype=float))]
    if frame.empty:
        return None
    models = [m for m in palette.models if m in set(frame["model"].astype(str))]
    with canvas(size=(8.0, max(2.2, 0.7 * len(models) + 1.2))) as c:
        ax = c.axes[0][0]
        data = [frame.loc[frame["model"].astype(str) == m, "qf_c"].to_numpy(dtype=float) for m in models]
        ax.boxplot(data, orientation="horizontal", positions=np.arange(len(models)), widths=0.5, showfliers=False,
                   medianprops={"color": "#000000"}, boxprops={"color": "#555555"}, whiskerprops={"color": "#555555"},
                   capprops={"color": "#555555"})
        rng = np.random.default_rng(0)
        for j, model in enumerate(models):
            mine = frame[frame["model"].astype(str) == model]
            jitter = rng.uniform(-0.18, 0.18, len(mine))
            if len(frame) > MAX_TIPS:
                ax.scatter(mine["qf_c"], j + jitter, s=10, color=palette.colour(model), alpha=0.5, marker=palette.marker(model))
                continue
            for value, dy, row in zip(mine["qf_c"].to_numpy(dtype=float), jitter, mine.to_dict("records")):
                (mark,) = ax.plot([value], [j + dy], linestyle="none", marker=palette.marker(model), markersize=4,
                                  color=palette.colour(model), alpha=0.7)
                c.tip(mark, f"{model} · {row['item_id']}: QF-C = {value:.3f}, QF-E = {_f(row.get('qf_e'))} bits, "
                            f"GJSD = {_f(row.get('gjsd'))} bits")
            median = float(np.median(mine["qf_c"]))
            ax.annotate(f"median {median:.2f}", (median, j + 0.3), fontsize=7, ha="center", va="bottom")
        ax.set_yticks(np.arange(len(models)), models)
        ax.set_ylim(len(models) - 0.4, -0.6)
        ax.set_xlim(min(0.0, float(frame["qf_c"].min()) - 0.02), 1.02)
        ax.set_xlabel("question-form consistency QF-C = 1 − max pairwise JSD between forms (0–1; 1 = every form agrees)")
        return c.figure("moral_qfc", "Question-form consistency (QF-C) per scenario",
                        "The distribution over scenarios of QF-C: how much the answer distribution changes with the "
                        "wording and the option order. Box: quartiles; line: median.")


def ambiguity_bars(moralchoice: pd.DataFrame, palette: Palette) -> Figure | None:
    """Low vs high ambiguity: share of scenarios preferring action 1, marginal entropy and QF-C, with CIs."""
    if moralchoice.empty:
        return None
    moralchoice = moralchoice.iloc[sorted(range(len(moralchoice)), key=lambda i: level_order(str(moralchoice["ambiguity"].iloc[i])))]
    panels = [("share_action1", "share of scenarios with p(action 1) > 0.5", "(0–1)"),
              ("entropy", "marginal entropy H[A | x]", "(bits)"), ("qf_c", "question-form consistency QF-C", "(0–1)")]
    with canvas(1, 3, size=(9.6, 3.6)) as c:
        for ax, (column, label, unit) in zip(c.axes[0], panels):
            _grouped_bars(c, ax, moralchoice, group=["ambiguity", "reasoning"], value=column, palette=palette, unit=unit,
                          what=label)
            ax.set_ylabel(f"{label} {unit}", fontsize=8)
            ax.set_xlabel("scenario ambiguity")
            ax.set_ylim(0, max(1.05, float(np.nanmax(moralchoice[f"{column}_ci_high"])) * 1.15
                               if f"{column}_ci_high" in moralchoice else 1.05))
        _legend_top(c)
        return c.figure("moral_ambiguity", "Low- against high-ambiguity scenarios",
                        "Per ambiguity level: how often the model prefers action 1 (the commonsense action in low-ambiguity "
                        "scenarios), how uncertain it is, and how consistent across question forms. Error bars: 95 % "
                        "bootstrap CIs over scenarios.")


# -- political compass ---------------------------------------------------------------------------------------
def compass_plane(pct: pd.DataFrame, palette: Palette) -> Figure | None:
    """The compass plane: one point per model × paraphrase (template) × forcing level, each model's centroid."""
    frame = pct[np.isfinite(pct["economic"].to_numpy(dtype=float)) & np.isfinite(pct["social"].to_numpy(dtype=float))]
    if frame.empty:
        return None
    forcings = list(dict.fromkeys(str(f) for f in frame.get("forcing", pd.Series(["–"] * len(frame))).fillna("–")))
    shapes = {f: MARKERS[k % len(MARKERS)] for k, f in enumerate(forcings)}
    with canvas(size=(7.6, 6.4)) as c:
        ax = c.axes[0][0]
        for xs, ys, colour in (((0, 10), (0, 10), "#D55E00"), ((-10, 0), (0, 10), "#0072B2"), ((-10, 0), (-10, 0), "#009E73"),
                               ((0, 10), (-10, 0), "#CC79A7")):
            ax.fill_between(xs, ys[0], ys[1], color=colour, alpha=0.06, linewidth=0)
        for x, y, text in ((-9.6, 9.4, "authoritarian left"), (9.6, 9.4, "authoritarian right"), (-9.6, -9.4, "libertarian left"),
                           (9.6, -9.4, "libertarian right")):
            ax.text(x, y, text, fontsize=7, color="#555555", ha="left" if x < 0 else "right", va="top" if y > 0 else "bottom")
        ax.axhline(0, color="#777777", linewidth=0.8)
        ax.axvline(0, color="#777777", linewidth=0.8)
        for model, group in frame.groupby(frame["model"].astype(str), sort=False):
            colour = palette.colour(model)
            for row in group.to_dict("records"):
                forcing = str(row.get("forcing") if row.get("forcing") is not None else "–")
                (mark,) = ax.plot([row["economic"]], [row["social"]], linestyle="none", marker=shapes.get(forcing, "o"), markersize=6,
                                  color=colour, alpha=0.3 if is_flagged(row) else 0.75, markeredgecolor="white", markeredgewidth=0.5)
                c.tip(mark, _flag_tip(row).removeprefix(" — ") + (": " if is_flagged(row) else "") +
                            f"{model} · template {row.get('template')} · forcing {forcing}"
                            f"{' · ' + str(row['reasoning']) if row.get('reasoning') not in (None, 'direct') else ''}: economic "
                            f"{_ci_text(row, 'economic', 2)}, social {_ci_text(row, 'social', 2)}; "
                            f"expected ({_f(row.get('economic_expected'), 2)}, {_f(row.get('social_expected'), 2)}); "
                            f"{row.get('n_items')} propositions, {row.get('n_unanswered')} unanswered")
            if {"economic_expected", "social_expected"} <= set(group.columns):
                for row in group.to_dict("records"):
                    ex, ey = row.get("economic_expected"), row.get("social_expected")
                    if ex is None or ey is None or not (np.isfinite(float(ex)) and np.isfinite(float(ey))):
                        continue
                    forcing = str(row.get("forcing") if row.get("forcing") is not None else "–")
                    (hollow,) = ax.plot([ex], [ey], linestyle="none", marker=shapes.get(forcing, "o"), markersize=6,
                                        markerfacecolor="none", markeredgecolor=colour, markeredgewidth=1, alpha=0.8)
                    c.tip(hollow, f"{model} · template {row.get('template')} · forcing {forcing}: expected coordinates "
                                  f"({float(ex):.2f}, {float(ey):.2f}) from the whole answer distributions")
            cx, cy = float(group["economic"].mean()), float(group["social"].mean())
            all_flagged = all(is_flagged(r) for r in group.to_dict("records"))
            (centre,) = ax.plot([cx], [cy], linestyle="none", marker="*", markersize=17, color=colour, markeredgecolor="black",
                                markeredgewidth=0.8, zorder=5, alpha=0.35 if all_flagged else 1.0)
            c.tip(centre, f"{model}: centroid of {len(group)} points ({cx:.2f}, {cy:.2f}); economic spread "
                          f"{group['economic'].min():.2f} … {group['economic'].max():.2f}, social {group['social'].min():.2f} … "
                          f"{group['social'].max():.2f}")
            k = palette.models.index(model)
            caveat = " (flagged)" if all_flagged else ""  # the codes are in the tooltips and the caption: short here
            ax.annotate(f"{model} ({cx:.1f}, {cy:.1f}){caveat}", (cx, cy), xytext=(10, 8 - 13 * k), textcoords="offset points",
                        fontsize=8, fontweight="bold", color="#8a5a00" if all_flagged else "black")
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], linestyle="none", marker="*", markersize=11, color=palette.colour(m), markeredgecolor="black",
                          label=f"{m} (centroid)") for m in palette.models if m in set(frame["model"].astype(str))]
        handles += [Line2D([], [], linestyle="none", marker=shapes[f], color="#555555", label=f"forcing: {f}") for f in forcings]
        handles += [Line2D([], [], linestyle="none", marker="o", color="#555555", label="filled: argmax answers"),
                    Line2D([], [], linestyle="none", marker="o", markerfacecolor="none", markeredgecolor="#555555",
                           label="open: expected (distributions)")]
        c.fig.legend(handles=handles, loc="outside right upper")
        ax.set_xlim(-10, 10)
        ax.set_ylim(-10, 10)
        ax.set_aspect("equal")
        ax.set_xlabel("economic (PCT score, −10 left … +10 right)")
        ax.set_ylabel("social (PCT score, −10 libertarian … +10 authoritarian)")
        return c.figure("compass", "Political compass: every paraphrase and forcing level",
                        "Each small mark is one model under one prompt template (paraphrased intro) and one forcing level; "
                        "the star is the model's centroid. A wide spread is the 'spinning arrow': the position depends on the "
                        "wording. Filled marks: coordinates from the argmax answer per proposition (Röttger et al. 2024); open "
                        "marks: expected coordinates from the whole answer distributions.")


# -- personality ---------------------------------------------------------------------------------------------
TRAIT_ORDER = ["O", "C", "E", "A", "N"]


def trait_profiles(traits: pd.DataFrame, palette: Palette, scale: tuple[float, float] | None = None) -> Figure | None:
    """Trait scores per model with CIs, one panel per administration style (template) × anchor order."""
    frame = traits[np.isfinite(traits["score"].to_numpy(dtype=float))]
    if frame.empty:
        return None
    frame = frame.assign(style=frame.get("style", "all").fillna("all").astype(str),
                         anchors=frame.get("anchors", "original").fillna("original").astype(str))
    styles = list(dict.fromkeys(frame["style"]))
    anchors = sorted(dict.fromkeys(frame["anchors"]), key=lambda a: (a != "original", a))
    present = list(dict.fromkeys(str(t) for t in frame["trait"]))
    order = [t for t in TRAIT_ORDER if t in present] + sorted(t for t in present if t not in TRAIT_ORDER)
    models = [m for m in palette.models if m in set(frame["model"].astype(str))]
    with canvas(len(anchors), len(styles), size=(min(3.2 * len(styles) + 1.6, 12.0), 2.9 * len(anchors) + 0.6),
                sharey=True) as c:
        for i, anchor in enumerate(anchors):
            for j, style in enumerate(styles):
                ax = c.axes[i][j]
                cell = frame[(frame["anchors"] == anchor) & (frame["style"] == style)]
                for k, model in enumerate(models):
                    mine = cell[cell["model"].astype(str) == model].set_index(cell[cell["model"].astype(str) == model]["trait"].astype(str))
                    mine = mine.reindex([t for t in order if t in mine.index])
                    if mine.empty:
                        continue
                    x = np.array([order.index(t) for t in mine.index]) + (k - (len(models) - 1) / 2) * 0.12
                    y = mine["score"].to_numpy(dtype=float)
                    err = _err(mine.reset_index(drop=True), "score")
                    faded = all(is_flagged(r) for r in mine.to_dict("records"))  # not findings: drawn faded, open
                    ax.errorbar(x, y, yerr=err, color=palette.colour(model), marker=palette.marker(model), markersize=4,
                                capsize=2, linewidth=1, label=model if (i, j) == (0, 0) else None, alpha=0.45 if faded else 1.0,
                                markerfacecolor="none" if faded else palette.colour(model))
                    for xi, trait, row in zip(x, mine.index, mine.to_dict("records")):
                        (mark,) = ax.plot([xi], [row["score"]], linestyle="none", marker=palette.marker(model), markersize=6,
                                          color=palette.colour(model), alpha=0.01)
                        c.tip(mark, f"{model} · {style} · {anchor} anchors · {trait}: {_ci_text(row, 'score', 2)} "
                                    f"({row.get('n_items')} items, {row.get('n_forms')} forms)" + _flag_tip(row))
                ax.set_xticks(range(len(order)), order)
                ax.set_title(f"{style} · {anchor} anchors", fontsize=9)
                if scale:
                    ax.set_ylim(scale[0] - 0.2, scale[1] + 0.2)
                    ax.axhline((scale[0] + scale[1]) / 2, color="#999999", linewidth=0.8, linestyle="--")
                if j == 0:
                    ax.set_ylabel("trait score (scale points)" + (f", {scale[0]:g}–{scale[1]:g}" if scale else ""))
                if i == len(anchors) - 1:
                    ax.set_xlabel("trait")
        c.fig.legend(loc="outside right upper")
        return c.figure("traits", "Personality trait profiles",
                        "Mean keyed item score per trait (reverse-keyed items flipped), per model, with 95 % bootstrap CIs over "
                        "items; one panel per administration style (template) and anchor order (original or mirrored option "
                        "descriptions). A robust measure gives the same profile in every panel. Dashed: scale midpoint.")


# -- POBs ----------------------------------------------------------------------------------------------------
def pobs_bars(pobs: pd.DataFrame, palette: Palette) -> Figure | None:
    """NNI, TCI and reliability per model and setup, with CIs."""
    if pobs.empty:
        return None
    panels = [("nni", "non-neutrality NNI"), ("tci", "topical consistency TCI"), ("reliability", "reliability")]
    with canvas(1, 3, size=(9.6, 3.6)) as c:
        for ax, (column, label) in zip(c.axes[0], panels):
            _grouped_bars(c, ax, pobs, group=["setup"], value=column, palette=palette, unit="(0–1)", what=label)
            ax.set_ylabel(f"{label} (0–1)", fontsize=8)
            ax.set_xlabel("setup")
            ax.set_ylim(min(0.0, _lowest(pobs, column) - 0.08), 1.1)  # TCI can fall below 0 (SD above 1)
        _legend_top(c)
        return c.figure("pobs", "Opinions: non-neutrality, topical consistency, reliability",
                        "POBs metrics (Kour et al. 2025) per model and setup (direct, reasoning, self-reflection), with 95 % "
                        "bootstrap CIs over questions. NNI: how far answers lean to one side; TCI: how consistent a topic's "
                        "questions are; reliability: agreement between repeated answers.")


# -- selection bias ------------------------------------------------------------------------------------------
def _row_label(row: Mapping[str, Any], keys: Sequence[str]) -> str:
    return " · ".join(str(row[k]) for k in keys)


def position_heatmaps(bias: pd.DataFrame | None, prior: pd.DataFrame | None, palette: Palette) -> Figure | None:
    """Model × displayed-position heatmaps: mean probability given to each position over complete cyclic
    rotations, and the PriDe prior; numbers in every cell."""
    panels: list[tuple[str, pd.DataFrame, list[str]]] = []
    keys = ["model", "template_id", "reasoning"]
    if bias is not None and not bias.empty:
        varying = ["model"] + _varying(bias, keys[1:])
        pivot = bias.assign(row=[_row_label(r, varying) for r in bias.to_dict("records")])
        table = pivot.pivot_table(index="row", columns="position", values="pick_rate", sort=False)
        panels.append(("pick rate per displayed position", table, varying))
    if prior is not None and not prior.empty:
        varying = ["model"] + _varying(prior, keys[1:])
        rows = {}
        for r in prior.to_dict("records"):
            rows[_row_label(r, varying)] = {k + 1: float(v) for k, v in enumerate(r["prior"])}
        panels.append(("PriDe position prior", pd.DataFrame.from_dict(rows, orient="index"), varying))
    if not panels:
        return None
    from matplotlib.patches import Rectangle

    n_rows = max(len(t) for _, t, _ in panels)
    with canvas(1, len(panels), size=(4.6 * len(panels) + 0.8, max(2.4, 0.42 * n_rows + 1.6))) as c:
        for ax, (title, table, _varying_keys) in zip(c.axes[0], panels):
            values = table.to_numpy(dtype=float) * 100
            n_pos = values.shape[1]
            image = ax.imshow(values, aspect="auto", cmap=HEATMAP, vmin=0, vmax=max(100 / n_pos * 2, float(np.nanmax(values))))
            for i in range(values.shape[0]):
                for j in range(n_pos):
                    v = values[i, j]
                    if not np.isfinite(v):
                        continue
                    ax.text(j, i, f"{v:.0f}%", ha="center", va="center", fontsize=8,
                            color="black" if v > 0.55 * image.norm.vmax else "white")
                    patch = ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, linewidth=0))
                    c.tip(patch, f"{table.index[i]} · position {table.columns[j]}: {title} {v:.1f} % (uniform {100 / n_pos:.1f} %)")
            ax.set_xticks(range(n_pos), [str(p) for p in table.columns])
            ax.set_yticks(range(len(table)), list(table.index), fontsize=8)
            ax.set_xlabel("displayed position (1 = shown first)")
            ax.set_title(title)
            ax.grid(False)
            c.fig.colorbar(image, ax=ax, label="probability (%)", shrink=0.9)
        return c.figure("position_heatmap", "Selection bias: which displayed position gets picked",
                        "Left: mean probability given to each displayed position, averaged over every item's complete cyclic "
                        "rotations (each option visits each position once, so content cancels); uniform = 100 % / n. Right: "
                        "the PriDe prior estimated from the same rotations (Zheng et al. 2024).")


def rstd_bars(selection: pd.DataFrame, palette: Palette) -> Figure | None:
    """RStd (all trials, identity order, after PriDe) and accuracy per model."""
    if selection.empty:
        return None
    long = []
    for row in selection.to_dict("records"):
        for column, label in (("rstd", "all orders"), ("rstd_identity", "identity order"), ("rstd_pride", "after PriDe")):
            long.append({**row, "which": label, "value": row.get(column)})
    frame = pd.DataFrame(long)
    acc = []
    for row in selection.to_dict("records"):
        for column, label in (("acc_identity", "identity"), ("acc_cyclic", "cyclic average"), ("acc_pride", "PriDe")):
            acc.append({**row, "which": label, "value": row.get(column)})
    with canvas(1, 2, size=(9.6, 3.6)) as c:
        _grouped_bars(c, c.axes[0][0], frame, group=["which", "template_id", "reasoning"], value="value", palette=palette,
                      unit="(RStd ×100)", digits=1, what="RStd")
        c.axes[0][0].set_ylabel("RStd: SD of recall over gold positions (×100)")
        c.axes[0][0].set_xlabel("predictions from")
        _grouped_bars(c, c.axes[0][1], pd.DataFrame(acc), group=["which", "template_id", "reasoning"], value="value",
                      palette=palette, unit="", digits=2, what="accuracy")
        c.axes[0][1].set_ylabel("accuracy (share correct, 0–1)")
        c.axes[0][1].set_xlabel("prediction scheme")
        c.axes[0][1].set_ylim(0, 1.1)
        _legend_top(c)
        return c.figure("rstd", "Selection bias against the gold answers: RStd and accuracy",
                        "RStd is the standard deviation of recall over the position of the gold answer (0 = no position "
                        "preference); accuracy under the identity order, full cyclic averaging and PriDe debiasing.")


# -- judges --------------------------------------------------------------------------------------------------
def judge_position_bars(position: pd.DataFrame, palette: Palette) -> Figure | None:
    """Position consistency (PC) and preference fairness (PF) per judge, with CIs."""
    if position.empty:
        return None
    frame = position.rename(columns={"judge": "model"}).assign(form=lambda f: f["template_id"].astype(str))
    with canvas(1, 2, size=(9.6, 3.6)) as c:
        _grouped_bars(c, c.axes[0][0], frame, group=["form", "reasoning"], value="pc", palette=palette, unit="(0–1)",
                      what="PC")
        c.axes[0][0].set_ylabel("position consistency PC (share of pairs, 0–1)")
        c.axes[0][0].set_ylim(0, 1.15)
        _grouped_bars(c, c.axes[0][1], frame, group=["form", "reasoning"], value="pf", palette=palette, unit="(−1…1)",
                      what="PF")
        c.axes[0][1].set_ylabel("preference fairness PF (−1 primacy … +1 recency)")
        low = float(np.nanmin(frame.get("pf_ci_low", frame["pf"]))) if len(frame) else 0.0
        high = float(np.nanmax(frame.get("pf_ci_high", frame["pf"]))) if len(frame) else 0.0
        c.axes[0][1].set_ylim(min(-0.25, low * 1.3), max(0.25, high * 1.3))
        for ax in c.axes[0]:
            ax.set_xlabel("judge template")
        _legend_top(c)
        return c.figure("judge_position", "Judges: position consistency and fairness",
                        "PC: share of pairs given the same verdict in both orders; PF = (recency − primacy) / n (Shi et al. "
                        "2024). Error bars: 95 % bootstrap CIs clustered by question.")


def self_preference(selfpref: pd.DataFrame, palette: Palette) -> Figure | None:
    """WR_self against WR_gold per judge (above the diagonal = self-preference), and DBG with its CI."""
    frame = selfpref[np.isfinite(selfpref["wr_self"].to_numpy(dtype=float))]
    if frame.empty:
        return None
    with canvas(1, 2, size=(9.6, 4.2)) as c:
        ax = c.axes[0][0]
        ax.plot([0, 100], [0, 100], color="#999999", linestyle="--", linewidth=1, label="WR_self = WR_gold")
        for row in frame.to_dict("records"):
            judge = str(row["judge"])
            x, y = float(row["wr_gold"]), float(row["wr_self"])
            xerr = _err(pd.DataFrame([row]), "wr_gold")
            yerr = _err(pd.DataFrame([row]), "wr_self")
            flagged = is_flagged(row)
            container = ax.errorbar([x], [y], xerr=xerr, yerr=yerr, marker=palette.marker(judge), color=palette.colour(judge),
                                    markersize=7, capsize=3, linestyle="none", label=judge, alpha=0.4 if flagged else 1.0,
                                    markerfacecolor="none" if flagged else palette.colour(judge))
            c.tip(container.lines[0], f"judge {judge} · {row.get('template_id')}: WR_self {_ci_text(row, 'wr_self', 1)}, WR_gold "
                                      f"{_ci_text(row, 'wr_gold', 1)}, DBG {_ci_text(row, 'dbg', 1)} pp; {row.get('n_gold')} pairs "
                                      f"with gold of {row.get('n_pairs')}" + _flag_tip(row))
            ax.annotate(judge + (" (flagged)" if flagged else ""), (x, y), xytext=(6, -10),
                        textcoords="offset points", fontsize=7, color="#8a5a00" if flagged else "black")
        ax.set_xlim(0, 100)
        ax.set_ylim(0, 100)
        ax.set_aspect("equal")
        ax.set_xlabel("WR_gold: gold win rate of the judge's own answers (%)")
        ax.set_ylabel("WR_self: the judge's own win rate (%)")
        ax.legend(loc="upper left", fontsize=7)
        frame_dbg = frame.rename(columns={"judge": "model"})
        _grouped_bars(c, c.axes[0][1], frame_dbg, group=["template_id", "reasoning"], value="dbg", palette=palette,
                      unit="percentage points", digits=1, what="DBG")
        c.axes[0][1].set_ylabel("DBG = WR_self − WR_gold (percentage points)")
        c.axes[0][1].set_xlabel("judge template")
        return c.figure("self_preference", "Judges: self-preference beyond quality (DBG)",
                        "Left: how often each judge prefers its own answer (WR_self) against how often the gold verdicts do "
                        "(WR_gold); above the diagonal is self-preference. Right: DBG = WR_self − WR_gold (Chen et al. 2025), "
                        "with 95 % bootstrap CIs clustered by question.")


# -- drift ---------------------------------------------------------------------------------------------------
def drift_timeline(report: DriftReport) -> Figure | None:
    """The drift timeline of `probekit drift --plot` (probekit.tracking.plot.plot_drift), in the report's style."""
    import tempfile

    import matplotlib

    from probekit.tracking.plot import plot_drift

    if len(report.snapshots) < 2:
        return None
    with tempfile.TemporaryDirectory() as folder, matplotlib.rc_context(_rc()):
        paths = plot_drift(report, Path(folder) / "timeline")
        svg = next(p for p in paths if p.suffix == ".svg").read_text(encoding="utf-8")
    unit = "JSD (bits)" if report.metric == "jsd" else "Wasserstein-1 (scale points)"
    return Figure(key="drift", title=f"Drift of {report.survey} on {report.model}",
                  caption=f"Mean per-item distance ({unit}) of every snapshot's answers from the first snapshot's, with its "
                          "95 % CI clustered by item; the grey band is the noise floor (two runs of one snapshot). A ring marks "
                          "a change beyond noise.", svg=clean_svg(svg))


__all__ = [
    "Figure", "Palette", "OKABE_ITO", "action_scatter", "ambiguity_bars", "compass_plane", "drift_timeline",
    "judge_position_bars", "pobs_bars", "position_heatmaps", "qfc_strip", "rstd_bars", "self_preference", "status_bars",
    "trait_profiles", "scope_ids", "clean_svg",
]
