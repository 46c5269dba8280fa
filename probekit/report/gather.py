"""What a report shows, read from the store: the runs and models in scope, per-model usage (trials, statuses,
tokens, cost), every applicable analysis table of every survey in scope (from the analysis registry, as
`probekit analyze --all` builds them), and the drift of each survey × model that has several snapshots.

Scope: runs (each survey of those runs, restricted to them), survey ids (every run that asked them, pooled,
as `probekit analyze --survey`), or by default the newest finished run with valid answers (a newer run that failed or
was interrupted is skipped and named in the scope); `models` filters everything.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from probekit.analysis.loader import AnalysisContext, survey_info
from probekit.analysis.registry import SurveyInfo, build_tables
from probekit.store.store import Store

if TYPE_CHECKING:
    from probekit.analysis.snapshots import DriftReport

DISTRIBUTION_KINDS = ("choice", "likert", "mcq", "pairwise")
"""Survey kinds whose answers are option distributions: the ones drift compares."""


@dataclass
class SurveyScope:
    """One survey in the report: its spec, the runs it is restricted to (None: all its runs) and its tables."""

    info: SurveyInfo
    run_ids: list[str] | None
    tables: dict[str, pd.DataFrame]
    n_items_asked: int = 0
    """Items of the survey with a trial in scope (fewer than n_items: the survey was only partly asked)."""
    n_items: int = 0
    """Items of the whole survey (-1: the survey was cut by an experiment's `limit:` and its whole is unknown)."""

    @property
    def survey_id(self) -> str:
        return self.info.survey_id


@dataclass
class ReportData:
    """Everything the report's sections draw from."""

    store: Path
    scope: str
    """The scope in words ("run 01J…", "survey pct, all runs")."""
    runs: pd.DataFrame
    """One row per run in scope: run_id, started_at, ended_at, status, probekit_version, experiment, surveys."""
    models: pd.DataFrame
    """One row per run × model: backend, resolved_name, revision, weights_sha256, dtype, device, fingerprints."""
    usage: pd.DataFrame
    """One row per model × survey: n_trials, n_rows, n_ok, n_refusal, n_invalid, n_error, tokens, cost_usd, latency."""
    surveys: list[SurveyScope]
    drift: list[DriftReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    n_boot: int = 1000
    seed: int = 0

    def model_names(self) -> list[str]:
        """Models in order of first appearance (their colour order in every figure)."""
        names = list(dict.fromkeys(str(m) for m in self.usage["model"])) if not self.usage.empty else []
        return names


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


def _newest_run(store: Store) -> str:
    latest = store.query("SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1")
    if latest.empty:
        raise KeyError(f"no runs in {store.path}; `probekit run SURVEY` makes one")
    return str(latest["run_id"][0])


def _surveys_of_runs(store: Store, runs: Sequence[str]) -> dict[str, list[str]]:
    """survey id → the given runs that asked it (in the order given)."""
    found = store.query(
        f"SELECT DISTINCT rt.run_id, t.survey_id FROM run_trials rt JOIN trials t USING (trial_id) "
        f"WHERE rt.run_id IN ({_marks(runs)}) ORDER BY t.survey_id", list(runs))
    missing = [r for r in runs if r not in set(found["run_id"])]
    if missing:
        raise KeyError(f"no run {', '.join(missing)} with trials in {store.path}; `probekit runs` lists them")
    out: dict[str, list[str]] = {}
    for survey_id in dict.fromkeys(found["survey_id"]):
        asked = set(found.loc[found["survey_id"] == survey_id, "run_id"])
        out[str(survey_id)] = [r for r in runs if r in asked]
    return out


def resolve_scope(store: Store, runs: Sequence[str] | None,
                  surveys: Sequence[str] | None) -> tuple[list[tuple[str, list[str] | None]], str]:
    """(survey id, run ids or None) pairs in scope, and the scope in words."""
    runs = list(dict.fromkeys(runs or []))
    surveys = list(dict.fromkeys(surveys or []))
    if surveys:
        by_survey = _surveys_of_runs(store, runs) if runs else {}
        pairs: list[tuple[str, list[str] | None]] = []
        for survey_id in surveys:
            survey_info(store, survey_id)  # KeyError with the fix when unknown
            if runs and survey_id not in by_survey:
                raise KeyError(f"none of the runs {', '.join(runs)} asked survey {survey_id!r}")
            pairs.append((survey_id, by_survey[survey_id] if runs else None))
        words = f"survey{'s' if len(surveys) > 1 else ''} {', '.join(surveys)}" + (
            f", run{'s' if len(runs) > 1 else ''} {', '.join(runs)}" if runs else ", every run that asked it")
        return pairs, words
    if not runs:
        from probekit.analysis.loader import default_run

        run, words = default_run(store)  # the newest finished run with valid answers; a failed newer one is named
        runs = [run]
    else:
        words = f"run{'s' if len(runs) > 1 else ''} {', '.join(runs)}"
    return [(s, r) for s, r in _surveys_of_runs(store, runs).items()], words


def _filters(pairs: Sequence[tuple[str, list[str] | None]], models: Sequence[str] | None) -> tuple[str, list[Any]]:
    """WHERE clause over `results r JOIN trials t` for the surveys (with their runs) and models in scope."""
    parts, params = [], []
    for survey_id, run_ids in pairs:
        if run_ids:
            parts.append(f"(t.survey_id = ? AND r.run_id IN ({_marks(run_ids)}))")
            params += [survey_id, *run_ids]
        else:
            parts.append("t.survey_id = ?")
            params.append(survey_id)
    where = "(" + " OR ".join(parts) + ")" if parts else "FALSE"
    if models:
        where += f" AND r.model IN ({_marks(models)})"
        params += list(models)
    return where, params


def usage_table(store: Store, where: str, params: Sequence[Any]) -> pd.DataFrame:
    """Per model × survey: trials, result rows by status, the mean valid label mass of the logprob rows (the share of
    probability on the answer labels before renormalising; NULL without logprob rows), tokens, cost (NULL when no
    row knows it), latency."""
    return store.query(
        f"""
        SELECT r.model, t.survey_id, count(DISTINCT r.trial_id) AS n_trials, count(DISTINCT r.run_id) AS n_runs,
               count(*) AS n_rows,
               count(*) FILTER (WHERE r.status = 'ok') AS n_ok,
               count(*) FILTER (WHERE r.status = 'refusal') AS n_refusal,
               count(*) FILTER (WHERE r.status = 'invalid') AS n_invalid,
               count(*) FILTER (WHERE r.status = 'error') AS n_error,
               count(*) FILTER (WHERE r.mode = 'logprob') AS n_logprob,
               avg(r.valid_mass) FILTER (WHERE r.mode = 'logprob' AND r.status IN ('ok', 'invalid')) AS mean_label_mass,
               sum(r.prompt_tokens) AS prompt_tokens, sum(r.completion_tokens) AS completion_tokens,
               sum(r.cost_usd) AS cost_usd, count(r.cost_usd) AS n_costed, avg(r.latency_ms) AS mean_latency_ms
        FROM results r JOIN trials t USING (trial_id)
        WHERE {where}
        GROUP BY ALL ORDER BY r.model, t.survey_id
        """, list(params))


def runs_table(store: Store, where: str, params: Sequence[Any]) -> pd.DataFrame:
    """The runs that hold results in scope, oldest first, with their surveys and experiment."""
    frame = store.query(
        f"""
        SELECT u.run_id, u.started_at, u.ended_at, u.status, u.probekit_version, u.config,
               string_agg(DISTINCT s.survey_id, ', ' ORDER BY s.survey_id) AS surveys,
               string_agg(DISTINCT s.model, ', ' ORDER BY s.model) AS models
        FROM runs u JOIN (SELECT DISTINCT r.run_id, t.survey_id, r.model FROM results r JOIN trials t USING (trial_id)
                          WHERE {where}) s USING (run_id)
        GROUP BY ALL ORDER BY u.started_at
        """, list(params))
    experiments = []
    for text in frame["config"]:
        config = json.loads(text) if isinstance(text, str) else dict(text or {})
        experiments.append(str((config.get("experiment") or {}).get("id") or ""))
    frame["experiment"] = experiments
    return frame.drop(columns=["config"])


def models_table(store: Store, runs: Sequence[str], models: Sequence[str] | None) -> pd.DataFrame:
    """Per run × model: how the model was resolved (backend, resolved name, revision / weights hash,
    fingerprints seen, dtype, device)."""
    if not runs:
        return pd.DataFrame(columns=["run_id", "model", "backend", "resolved_name", "revision", "weights_sha256", "dtype",
                                     "device", "fingerprints"])
    params: list[Any] = list(runs)
    where = f"m.run_id IN ({_marks(runs)})"
    if models:
        where += f" AND m.model IN ({_marks(models)})"
        params += list(models)
    frame = store.query(
        f"SELECT m.run_id, m.model, m.backend, m.resolved_name, m.revision, m.weights_sha256, m.dtype, m.device, m.details "
        f"FROM models m WHERE {where} ORDER BY m.model, m.run_id", params)
    prints, names = [], []
    for text in frame["details"]:
        details = json.loads(text) if isinstance(text, str) else dict(text or {})
        prints.append(", ".join(str(f) for f in details.get("system_fingerprints") or []))
        names.append(", ".join(str(n) for n in details.get("resolved_names") or []))
    frame["fingerprints"] = prints
    frame["resolved_names"] = names
    return frame.drop(columns=["details"])


def drift_reports(store_path: Path, scopes: Sequence[SurveyScope], models: Sequence[str], *, by: str, n_boot: int,
                  seed: int) -> tuple[list[DriftReport], list[str]]:
    """`probekit drift` for every survey × model in scope that has at least two snapshots."""
    from probekit.analysis.snapshots import drift

    reports, notes = [], []
    for scope in scopes:
        if scope.info.kind not in DISTRIBUTION_KINDS:
            continue
        for model in models:
            try:
                report = drift(store_path, survey=scope.survey_id, model=model, by=by, n_boot=n_boot, seed=seed)
            except KeyError:
                continue  # the model has no finished run of this survey
            except ValueError as error:
                notes.append(f"drift of {scope.survey_id} on {model}: {error}")
                continue
            if len(report.snapshots) >= 2:
                reports.append(report)
    return reports, notes


def gather(
    store: str | Path,
    *,
    runs: Sequence[str] | None = None,
    surveys: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    drift_by: str = "version",
    with_drift: bool = True,
) -> ReportData:
    """Read everything a report shows. Raises KeyError (unknown run or survey, empty store) and ValueError
    (bad arguments) with the fix in the message."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1 (got {n_boot})")
    path = Path(store)
    if not path.exists():
        raise FileNotFoundError(f"no store at {path}: run `probekit run SURVEY` first, or pass --store")
    db = Store(path)
    pairs, words = resolve_scope(db, runs, surveys)
    model_list = list(dict.fromkeys(models)) if models else None
    where, params = _filters(pairs, model_list)
    usage = usage_table(db, where, params)
    if usage.empty:
        known = db.query("SELECT DISTINCT model FROM results ORDER BY 1")
        raise KeyError(f"no results in scope ({words}" + (f", models {', '.join(model_list)}" if model_list else "") + ")"
                       + (f"; models with results: {', '.join(map(str, known['model']))}" if model_list else ""))
    run_frame = runs_table(db, where, params)
    scopes: list[SurveyScope] = []
    for survey_id, run_ids in pairs:
        ctx = AnalysisContext(store=db, info=survey_info(db, survey_id), run_ids=run_ids, models=model_list, seed=seed, n_boot=n_boot)
        from probekit.analysis.quality import whole_survey_meta

        tables = build_tables(ctx)
        forms = ctx.forms()
        whole = whole_survey_meta(ctx)  # an experiment's `limit:` stores the survey cut: count the whole one
        scopes.append(SurveyScope(info=ctx.info, run_ids=run_ids, tables=tables,
                                  n_items_asked=int(forms["item_id"].nunique()) if not forms.empty else 0,
                                  n_items=len(whole) if whole is not None else -1))
    data = ReportData(store=path, scope=words, runs=run_frame, models=models_table(db, list(run_frame["run_id"]), model_list),
                      usage=usage, surveys=scopes, n_boot=n_boot, seed=seed)
    if with_drift:
        data.drift, data.notes = drift_reports(path, scopes, data.model_names(), by=drift_by, n_boot=n_boot, seed=seed)
    return data


def cost_known(usage: pd.DataFrame) -> bool:
    """Whether any row in scope carries a cost (API models with a price)."""
    return bool(len(usage)) and int(usage["n_costed"].sum()) > 0 and not math.isnan(float(usage["cost_usd"].fillna(0).sum()))
