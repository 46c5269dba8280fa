"""The snapshot axis: the runs of one survey on one model over time, grouped into snapshots, with any
analysis table computed per snapshot instead of pooled, and drift between snapshots (METRICS.md §8).

    from probekit.analysis.snapshots import analyze_snapshots, drift
    tables = analyze_snapshots("outputs/probekit.duckdb", survey="moralchoice_starter", model="smollm2")
    tables["uncertainty_summary"]    # one block of rows per snapshot: columns snapshot, version, ...
    report = drift("outputs/probekit.duckdb", survey="moralchoice_starter", model="smollm2")
    report.changed, report.pairs[0].summary["verdict"]

**Version identity** of a run × model is read from the `model_versions` view: requested model key,
resolved name (provider's model name, or the local path), the local weights' sha256, the provider's
fingerprints, and the user's label (`track add --model-label`). A *snapshot* is:

- `version` (default): one version identity, i.e. (model key, resolved name, weights hash, label). The
  provider's fingerprints are shown but are not part of it: providers rotate them between servers within
  one model version, so they would split one version into many;
- `fingerprint`: the version plus the set of fingerprints seen;
- `run`: every run on its own; `day`: the runs of one UTC day.

Only runs with the settings of the newest run are compared (scoring mode, samples, temperature, orders,
reasoning modes, item limit, API endpoint): a change of settings is not a change of the model. Runs left
out for this are counted in the report. The seed is not a setting here: tracked runs vary it on purpose so
that repeated runs measure sampling noise.

**Noise floor**: pairs of runs of one snapshot. A tracked job's `repeat` run and the scheduled run of the
same slot form such a pair (run back to back: nothing but sampling differs); without tracked repeats, two
runs with the same version identity do (consecutive, disjoint pairs). A compared pair that is itself a
noise pair is left out of its own noise floor when other noise pairs exist.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from probekit.analysis.bootstrap import DEFAULT_RESAMPLES, ratio_ci
from probekit.analysis.drift import ALPHA, LEVELS, Comparison, RunData, compare, prepare
from probekit.analysis.loader import AnalysisContext, survey_info
from probekit.store.store import Store

BY_CHOICES = ("version", "fingerprint", "run", "day")
SETTING_FIELDS = ("mode", "samples", "temperature", "orders", "reasoning", "limit", "endpoints", "prior_from")
COMPLETED = ("completed", "completed_with_errors")
MAX_NOISE_PAIRS = 10


def _config(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return {}
    parsed = json.loads(value)
    return parsed if isinstance(parsed, dict) else {}


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def _strings(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return sorted(str(v) for v in value)


def settings_key(config: dict[str, Any]) -> str:
    """The settings that make two runs comparable (survey ids and SETTING_FIELDS), as canonical JSON."""
    surveys = sorted(str(s.get("id")) for s in config.get("surveys") or [])
    return json.dumps({"surveys": surveys, **{k: config.get(k) for k in SETTING_FIELDS}}, sort_keys=True, default=str)


def version_key(row: dict[str, Any], by: str = "version") -> str:
    """The identity a snapshot groups by (see the module docstring), as canonical JSON."""
    key: list[Any] = [row.get("model"), _text(row.get("resolved_name")), _text(row.get("weights_sha256")), _text(row.get("model_label"))]
    if by == "fingerprint":
        key.append(_strings(row.get("system_fingerprints")))
    return json.dumps(key)


def version_text(row: dict[str, Any]) -> str:
    """A short human name for a run's version: the label, resolved name, weights hash, fingerprints."""
    parts = []
    if _text(row.get("model_label")):
        parts.append(str(row["model_label"]))
    resolved = _text(row.get("resolved_name"))
    if resolved and resolved != row.get("model"):
        parts.append(Path(resolved).name if resolved.startswith("/") else resolved)
    weights = _text(row.get("weights_sha256"))
    if weights:
        parts.append(f"weights {weights[:10]}")
    fingerprints = _strings(row.get("system_fingerprints"))
    if fingerprints:
        parts.append("fp " + ",".join(f[:12] for f in fingerprints[:3]) + ("…" if len(fingerprints) > 3 else ""))
    return " · ".join(parts) or str(row.get("model"))


def model_runs(store: Store, survey: str, model: str, *, job: str | None = None) -> pd.DataFrame:
    """The finished runs of `model` that asked `survey` (oldest first), one row each: the columns of the
    `model_versions` view plus config (dict), tracking (dict), settings, version_key, version."""
    store.migrate()
    where = ["v.model = ?", f"v.run_status IN ({', '.join(repr(s) for s in COMPLETED)})",
             "EXISTS (SELECT 1 FROM run_trials rt JOIN trials t USING (trial_id) WHERE rt.run_id = v.run_id AND t.survey_id = ?)"]
    params: list[Any] = [model, survey]
    if job is not None:
        where.append("v.job = ?")
        params.append(job)
    frame = store.query(
        f"SELECT v.*, r.config FROM model_versions v JOIN runs r USING (run_id) WHERE {' AND '.join(where)} "
        "ORDER BY v.started_at, v.run_id", params)
    frame["config"] = [_config(c) for c in frame["config"]]
    frame["tracking"] = [dict(c.get("tracking") or {}) for c in frame["config"]]
    frame["settings"] = [settings_key(c) for c in frame["config"]]
    records = frame.to_dict("records")
    frame["version_key"] = [version_key(r) for r in records]
    frame["version"] = [version_text(r) for r in records]
    return frame


@dataclass
class Snapshot:
    """One snapshot: the runs of one version (or run, or day), oldest first."""

    label: str
    """S1, S2 … in order of first appearance."""
    key: str
    """The grouping key (version identity, run id or day)."""
    version: str
    """Human name of the version (label, resolved name, weights hash, fingerprints)."""
    run_ids: list[str]
    started_at: datetime
    """Start of its first run."""

    @property
    def run_id(self) -> str:
        """The run that stands for the snapshot in comparisons (its first)."""
        return self.run_ids[0]


def group_snapshots(runs: pd.DataFrame, by: str = "version") -> list[Snapshot]:
    """Group runs (rows of `model_runs`, oldest first) into snapshots in order of first appearance."""
    if by not in BY_CHOICES:
        raise ValueError(f"unknown snapshot axis {by!r}: use one of {', '.join(BY_CHOICES)}")
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in runs.to_dict("records"):
        if by == "run":
            key = str(row["run_id"])
        elif by == "day":
            key = _utc(row["started_at"]).strftime("%Y-%m-%d")
        else:
            key = version_key(row, by)
        groups.setdefault(key, []).append(row)
    snapshots = []
    for index, (key, rows) in enumerate(groups.items(), start=1):
        versions = list(dict.fromkeys(str(r["version"]) for r in rows))
        snapshots.append(Snapshot(label=f"S{index}", key=key, version=" | ".join(versions),
                                  run_ids=[str(r["run_id"]) for r in rows], started_at=pd.Timestamp(rows[0]["started_at"]).to_pydatetime()))
    return snapshots


def noise_pairs(runs: pd.DataFrame, limit: int = MAX_NOISE_PAIRS) -> tuple[list[tuple[str, str]], str]:
    """Pairs of runs of one snapshot, and where they came from ('tracked repeats' or 'same version').
    Tracked pairs: a job's repeat run with the scheduled run of the same slot, when both have the same
    version identity. Else disjoint consecutive pairs of runs with the same version identity. The most
    recent `limit` pairs."""
    rows = runs.to_dict("records")
    scheduled = {(r["tracking"].get("job"), r["tracking"].get("slot")): r for r in rows
                 if r["tracking"].get("kind") == "scheduled"}
    tracked = []
    for row in rows:
        info = row["tracking"]
        if info.get("kind") != "repeat":
            continue
        first = scheduled.get((info.get("job"), info.get("slot")))
        if first is not None and first["version_key"] == row["version_key"]:
            tracked.append((str(first["run_id"]), str(row["run_id"])))
    if tracked:
        return tracked[-limit:], "tracked repeats"
    pairs: list[tuple[str, str]] = []
    by_version: dict[str, list[str]] = {}
    for row in rows:
        by_version.setdefault(str(row["version_key"]), []).append(str(row["run_id"]))
    for run_ids in by_version.values():
        pairs.extend((run_ids[i], run_ids[i + 1]) for i in range(0, len(run_ids) - 1, 2))
    order = {str(r["run_id"]): i for i, r in enumerate(rows)}
    pairs.sort(key=lambda pair: order[pair[1]])
    return pairs[-limit:], "same version"


# -- analysis tables per snapshot --------------------------------------------------------------------------
def _settings_scope(runs: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The runs with the settings of the newest run, and how many were left out."""
    if runs.empty:
        return runs, 0
    newest = runs["settings"].iloc[-1]
    kept = runs[runs["settings"] == newest].reset_index(drop=True)
    return kept, len(runs) - len(kept)


def _utc(value: Any) -> pd.Timestamp:
    moment = pd.Timestamp(value)
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")


def _since(runs: pd.DataFrame, since: datetime | str | None) -> pd.DataFrame:
    if since is None:
        return runs
    moment = _utc(since)
    started = pd.to_datetime(runs["started_at"], utc=True)
    return runs[started >= moment].reset_index(drop=True)


def analyze_snapshots(store_path: str | Path, *, survey: str, model: str, by: str = "version", tables: Sequence[str] | None = None,
                      all_tables: bool = False, job: str | None = None, since: datetime | str | None = None,
                      seed: int = 0, n_boot: int = DEFAULT_RESAMPLES) -> dict[str, pd.DataFrame]:
    """Every table `probekit analyze` would build for the survey and model, once per snapshot (runs of a
    snapshot pooled), stacked with leading columns snapshot, snapshot_started_at, version, n_runs, run_ids."""
    from probekit.analysis import listed_tables
    from probekit.analysis.registry import build_tables

    store = Store(store_path)
    runs, _ = _settings_scope(model_runs(store, survey, model, job=job))
    runs = _since(runs, since)
    info = survey_info(store, survey)
    out: dict[str, list[pd.DataFrame]] = {}
    for snapshot in group_snapshots(runs, by):
        ctx = AnalysisContext(store=store, info=info, run_ids=snapshot.run_ids, models=[model], seed=seed, n_boot=n_boot)
        only = tables if tables is not None or all_tables else listed_tables(ctx)
        for name, frame in build_tables(ctx, only).items():
            frame = frame.copy()
            frame.insert(0, "run_ids", [",".join(snapshot.run_ids)] * len(frame))
            frame.insert(0, "n_runs", len(snapshot.run_ids))
            frame.insert(0, "version", snapshot.version)
            frame.insert(0, "snapshot_started_at", pd.Timestamp(snapshot.started_at))
            frame.insert(0, "snapshot", snapshot.label)
            out.setdefault(name, []).append(frame)
    return {name: pd.concat(frames, ignore_index=True) for name, frames in out.items()}


# -- drift -------------------------------------------------------------------------------------------------
@dataclass
class PairReport:
    """One compared pair of snapshots."""

    a: Snapshot
    b: Snapshot
    relation: str
    """consecutive | first (b against the first snapshot)."""
    comparison: Comparison
    noise_note: str = ""

    @property
    def summary(self) -> dict[str, Any]:
        return self.comparison.summary

    @property
    def changed(self) -> bool:
        return bool(self.summary["changed"])


@dataclass
class DriftReport:
    """`probekit drift`: snapshots, their rates, the compared pairs and the noise floor's source."""

    survey: str
    model: str
    by: str
    metric: str
    level: str
    snapshots: list[Snapshot]
    snapshot_table: pd.DataFrame
    pairs: list[PairReport]
    noise_pairs: list[tuple[str, str]]
    noise_source: str
    excluded_runs: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(pair.changed for pair in self.pairs)

    def to_dict(self, top: int = 10) -> dict[str, Any]:
        """The report as plain JSON-able data (the `--format json` output)."""
        from probekit.analysis.export import _plain

        pairs = []
        for pair in self.pairs:
            items = pair.comparison.items
            shown = items[items["moved"]].head(top) if pair.changed else items.head(0)
            pairs.append({
                "a": pair.a.label, "b": pair.b.label, "relation": pair.relation, "run_a": pair.a.run_id, "run_b": pair.b.run_id,
                "version_a": pair.a.version, "version_b": pair.b.version, "noise_note": pair.noise_note,
                **{k: _plain(v) for k, v in pair.summary.items()},
                "moved_items": [{k: _plain(v) for k, v in row.items()} for row in shown.to_dict("records")],
                "items": [{k: _plain(v) for k, v in row.items() if not k.startswith("marginal")} for row in items.to_dict("records")],
            })
        return {
            "survey": self.survey, "model": self.model, "by": self.by, "metric": self.metric, "level": self.level, "changed": self.changed,
            "excluded_runs": self.excluded_runs, "noise_source": self.noise_source,
            "noise_pairs": [list(p) for p in self.noise_pairs], "notes": self.notes,
            "snapshots": [{k: _plain(v) for k, v in row.items()} for row in self.snapshot_table.to_dict("records")],
            "pairs": pairs,
        }


def _metric_for(items: pd.DataFrame, kind: str, metric: str) -> tuple[str, dict[str, np.ndarray] | None]:
    values = {str(i): np.asarray(v, dtype=float) for i, v in zip(items["item_id"], items["option_values"])}
    ordinal = kind == "likert" and bool(values) and all(v.size > 1 and np.all(np.isfinite(v)) for v in values.values())
    if metric == "auto":
        metric = "w1" if ordinal else "jsd"
    if metric == "w1" and not ordinal:
        raise ValueError("--metric w1 needs a Likert survey whose every option has a scale value; use jsd")
    if metric not in ("jsd", "w1"):
        raise ValueError(f"unknown metric {metric!r}: use auto, jsd or w1")
    return metric, values if metric == "w1" else None


def _snapshot_rates(snapshot: Snapshot, data: dict[str, RunData], n_boot: int, seed: int) -> dict[str, Any]:
    rates = pd.concat([data[r].rates for r in snapshot.run_ids]).groupby("item_id").sum(numeric_only=True)
    row: dict[str, Any] = {"n_items": len(rates), "n_answers": int(rates["answered"].sum()), "n_errors": int(rates["error"].sum())}
    for name in ("refusal", "invalid"):
        estimate, low, high = ratio_ci(rates[name].to_numpy(), rates["answered"].to_numpy(), n_boot=n_boot, seed=seed)
        row[f"{name}_rate"], row[f"{name}_rate_ci_low"], row[f"{name}_rate_ci_high"] = estimate, low, high
    return row


def drift(store_path: str | Path, *, survey: str, model: str, by: str = "version", since: datetime | str | None = None,
          job: str | None = None, metric: str = "auto", level: str = "form", alpha: float = ALPHA, min_effect: float = 0.0,
          n_boot: int = DEFAULT_RESAMPLES, seed: int = 0, latest_only: bool = False) -> DriftReport:
    """Compare the snapshots of `survey` on `model`: each with the one before and with the first (only the
    newest snapshot's two pairs with `latest_only`). `since` limits the compared snapshots to runs started
    then or later; noise pairs come from every run with the same settings. `level`: form (the same prompts'
    answers, default) or item (item marginals); `min_effect`: the smallest mean excess distance that counts
    as a change (default 0: any change beyond noise). Raises KeyError when the survey or the model has no
    finished run."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}: use {' or '.join(LEVELS)}")
    store = Store(store_path)
    info = survey_info(store, survey)
    all_runs = model_runs(store, survey, model, job=job)
    if all_runs.empty:
        raise KeyError(f"no finished run of {model!r} on survey {survey!r} in {store.path}"
                       + (f" for job {job!r}" if job else "") + "; `probekit runs` lists what ran")
    runs, excluded = _settings_scope(all_runs)
    scoped = _since(runs, since)
    snapshots = group_snapshots(scoped, by)
    pairs_found, source = noise_pairs(runs)
    ctx_items = AnalysisContext(store=store, info=info, models=[model]).items()
    metric, values = _metric_for(ctx_items, info.kind, metric)
    n_options = {str(i): int(n) for i, n in zip(ctx_items["item_id"], ctx_items["n_options"])}

    needed = {r for s in snapshots for r in s.run_ids} | {r for pair in pairs_found for r in pair}
    data: dict[str, RunData] = {}
    for run_id in sorted(needed):
        ctx = AnalysisContext(store=store, info=info, run_ids=[run_id], models=[model])
        data[run_id] = prepare(run_id, ctx.responses())

    notes = []
    if excluded:
        notes.append(f"{excluded} run(s) with other settings (mode, samples, temperature, orders, limit …) left out")
    if not pairs_found:
        notes.append("no noise floor: no snapshot has two runs. `probekit track run-due` repeats the first run of every "
                     "new version of a tracked job; for untracked runs, run the same command again with --new-run")
    table_rows = []
    for snapshot in snapshots:
        table_rows.append({"snapshot": snapshot.label, "started_at": pd.Timestamp(snapshot.started_at), "version": snapshot.version,
                           "n_runs": len(snapshot.run_ids), "run_ids": ",".join(snapshot.run_ids),
                           **_snapshot_rates(snapshot, data, n_boot, seed)})
    snapshot_table = pd.DataFrame(table_rows)

    wanted: list[tuple[int, int, str]] = []
    n = len(snapshots)
    for k in range(1, n):
        if latest_only and k != n - 1:
            continue
        wanted.append((k - 1, k, "consecutive"))
        if k >= 2:
            wanted.append((0, k, "first"))
    reports = []
    for i, j, relation in wanted:
        a, b = snapshots[i], snapshots[j]
        own = {a.run_id, b.run_id}
        others = [p for p in pairs_found if set(p) != own]
        note = ""
        if len(others) < len(pairs_found) and not others:
            others, note = list(pairs_found), "this pair is the only noise pair: it is its own noise floor"
        elif len(others) < len(pairs_found):
            note = "this pair is a noise pair: left out of its own noise floor"
        comparison = compare(data[a.run_id], data[b.run_id], n_options=n_options, metric=metric, level=level, values=values,
                             noise_pairs=[(data[x], data[y]) for x, y in others], alpha=alpha, min_effect=min_effect,
                             n_boot=n_boot, seed=seed)
        reports.append(PairReport(a=a, b=b, relation=relation, comparison=comparison, noise_note=note))
    return DriftReport(survey=survey, model=model, by=by, metric=metric, level=level, snapshots=snapshots, snapshot_table=snapshot_table,
                       pairs=reports, noise_pairs=pairs_found, noise_source=source if pairs_found else "none",
                       excluded_runs=excluded, notes=notes)
