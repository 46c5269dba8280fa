"""Timeline plots (PNG and SVG): a metric per snapshot with its 95 % CI, or drift from the first snapshot
against the noise floor. matplotlib is imported only here, with the non-interactive Agg backend."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from probekit.analysis.snapshots import DriftReport

FORMATS = ("png", "svg")


def output_paths(path: str | Path) -> list[Path]:
    """`out/timeline`, `out/timeline.png` or `out/timeline.svg` → [out/timeline.png, out/timeline.svg]."""
    target = Path(path)
    stem = target.with_suffix("") if target.suffix.lower() in (".png", ".svg") else target
    return [stem.with_name(f"{stem.name}.{fmt}") for fmt in FORMATS]


def metric_series(tables: dict[str, pd.DataFrame], metric: str) -> pd.DataFrame:
    """From `analyze_snapshots` tables, the rows of `TABLE.COLUMN` per snapshot: columns snapshot,
    snapshot_started_at, version, series (the row's other text columns, e.g. reasoning or ambiguity),
    estimate, ci_low, ci_high (NaN when the table has no CI for the column)."""
    table, _, column = metric.partition(".")
    if not column:
        raise ValueError(f"metric {metric!r}: name it TABLE.COLUMN, e.g. uncertainty_summary.entropy")
    if table not in tables:
        raise KeyError(f"no table {table!r} per snapshot (have: {', '.join(sorted(tables)) or 'none'})")
    frame = tables[table]
    if column not in frame.columns:
        numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c]) and not c.endswith(("_ci_low", "_ci_high"))]
        raise KeyError(f"table {table!r} has no column {column!r} (numeric columns: {', '.join(numeric)})")
    fixed = {"snapshot", "snapshot_started_at", "version", "n_runs", "run_ids", "model"}
    keys = [c for c in frame.columns if c not in fixed and frame[c].dtype == object
            and frame[c].map(lambda v: isinstance(v, str)).all() and frame[c].nunique() > 1]
    out = pd.DataFrame({
        "snapshot": frame["snapshot"], "snapshot_started_at": frame["snapshot_started_at"], "version": frame["version"],
        "series": frame[keys].astype(str).agg(" · ".join, axis=1) if keys else column,
        "estimate": pd.to_numeric(frame[column], errors="coerce"),
        "ci_low": pd.to_numeric(frame[f"{column}_ci_low"], errors="coerce") if f"{column}_ci_low" in frame else np.nan,
        "ci_high": pd.to_numeric(frame[f"{column}_ci_high"], errors="coerce") if f"{column}_ci_high" in frame else np.nan,
    })
    return out


def _axes(title: str, ylabel: str) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    ax.set_title(title, fontsize=11)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _save(fig: Any, path: str | Path) -> list[Path]:
    import matplotlib.pyplot as plt

    paths = output_paths(path)
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    for target in paths:
        fig.savefig(target, dpi=150)
    plt.close(fig)
    return paths


def _tick_labels(snapshots: Sequence[str], times: Sequence[Any], versions: Sequence[str]) -> list[str]:
    labels = []
    for label, when, version in zip(snapshots, times, versions):
        day = pd.Timestamp(when).strftime("%Y-%m-%d %H:%M") if when is not None and not pd.isna(when) else ""
        short = version if len(version) <= 24 else version[:23] + "…"
        labels.append(f"{label}\n{day}\n{short}")
    return labels


def plot_metric(series: pd.DataFrame, path: str | Path, *, title: str, ylabel: str) -> list[Path]:
    """One line per series over the snapshots, error bars = 95 % CI. Returns the PNG and SVG paths."""
    fig, ax = _axes(title, ylabel)
    order = list(dict.fromkeys(series["snapshot"]))
    x_of = {s: i for i, s in enumerate(order)}
    first = series.drop_duplicates("snapshot").set_index("snapshot").reindex(order)
    for name, group in series.groupby("series", sort=True):
        x = np.array([x_of[s] for s in group["snapshot"]], dtype=float)
        y = group["estimate"].to_numpy(dtype=float)
        low, high = group["ci_low"].to_numpy(dtype=float), group["ci_high"].to_numpy(dtype=float)
        err = np.vstack([np.where(np.isfinite(low), y - low, 0.0), np.where(np.isfinite(high), high - y, 0.0)])
        ax.errorbar(x, y, yerr=np.clip(err, 0, None), marker="o", capsize=4, label=str(name))
    ax.set_xticks(range(len(order)), _tick_labels(order, list(first["snapshot_started_at"]), [str(v) for v in first["version"]]),
                  fontsize=7)
    if series["series"].nunique() > 1:
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_drift(report: DriftReport, path: str | Path) -> list[Path]:
    """Distance of every snapshot from the first (95 % CI) with the noise floor as a band."""
    unit = "JSD (bits)" if report.metric == "jsd" else "Wasserstein-1 (scale units)"
    fig, ax = _axes(f"{report.survey} on {report.model}: distance from {report.snapshots[0].label if report.snapshots else 'S1'}", unit)
    pairs = [p for p in report.pairs if p.a.label == report.snapshots[0].label] if report.snapshots else []
    order = [s.label for s in report.snapshots]
    x = np.array([order.index(p.b.label) for p in pairs], dtype=float)
    y = np.array([p.summary["distance"] for p in pairs], dtype=float)
    low = np.array([p.summary["distance_ci_low"] for p in pairs], dtype=float)
    high = np.array([p.summary["distance_ci_high"] for p in pairs], dtype=float)
    if len(pairs):
        ax.errorbar(x, y, yerr=np.clip(np.vstack([y - low, high - y]), 0, None), marker="o", capsize=4, label="mean distance, 95 % CI")
        changed = np.array([p.changed for p in pairs])
        if changed.any():
            ax.scatter(x[changed], y[changed], s=120, facecolors="none", edgecolors="red", label="changed")
    floors = [p.summary for p in report.pairs if np.isfinite(p.summary.get("noise_floor", np.nan))]
    if floors:
        floor = floors[0]
        ax.axhspan(floor["noise_floor_ci_low"], floor["noise_floor_ci_high"], color="grey", alpha=0.25, label="noise floor, 95 % CI")
        ax.axhline(floor["noise_floor"], color="grey", linestyle="--", linewidth=1)
    ax.set_xticks(range(len(order)), _tick_labels(order, [s.started_at for s in report.snapshots], [s.version for s in report.snapshots]),
                  fontsize=7)
    ax.set_xlim(-0.5, max(len(order) - 0.5, 0.5))
    ax.legend(fontsize=8)
    return _save(fig, path)
