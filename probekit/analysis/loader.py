"""Read the store into the frames the analysis functions take.

An `AnalysisContext` is one survey (all stored versions of its id) restricted to some runs and models.
It reads lazily and caches: most tables need only `forms()`, one row per (run, model, trial) whose
distribution is aggregated in DuckDB, so a store with millions of sample rows never crosses into pandas
row by row.

Scope: with a run, only that run's results; with a survey id, every run that asked it. Results of
several runs of the same model are pooled (they are repeated administrations of the same trials).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from probekit.analysis.quality import DEFAULT as DEFAULT_THRESHOLDS
from probekit.analysis.quality import Thresholds
from probekit.analysis.registry import SurveyInfo
from probekit.store.store import Store


def _json(value: Any) -> dict[str, Any]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return {}
    if isinstance(value, dict):
        return value
    parsed = json.loads(value)
    return parsed if isinstance(parsed, dict) else {}


def _floats(values: Any) -> np.ndarray:
    if values is None:
        return np.array([], dtype=float)
    if isinstance(values, np.ma.MaskedArray):
        return np.ma.filled(values.astype(float), np.nan)
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


@dataclass
class AnalysisContext:
    """One survey in scope: the store, the survey's spec, the run/model filters and cached frames."""

    store: Store
    info: SurveyInfo
    run_ids: list[str] | None = None
    models: list[str] | None = None
    seed: int = 0
    n_boot: int = 1000
    thresholds: Thresholds = DEFAULT_THRESHOLDS
    """The quality layer's thresholds and the judges' win margin (probekit.analysis.quality)."""
    persona: str | None = ""
    """The persona context the tables read: '' the default context (no persona), a persona id that persona's
    trials (all its styles), None every context pooled. A persona is an axis of its own, not one more form of an
    item: pooling it would count 'answer as a person in Japan' as a rewording of the question. The
    human-alignment tables compare contexts and read them all (`_filters(all_personas=True)`)."""
    _cache: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    # -- SQL ---------------------------------------------------------------------------------------
    def _filters(self, result_alias: str = "r", trial_alias: str = "t", *,
                 all_personas: bool = False) -> tuple[str, list[Any]]:
        """WHERE clause restricting results to this survey, runs, models and persona context."""
        clauses = [f"{trial_alias}.survey_id = ?"]
        params: list[Any] = [self.info.survey_id]
        if not all_personas and self.persona is not None and self._has_personas():
            clauses.append(f"{trial_alias}.persona_id = ?")
            params.append(self.persona)
        if self.run_ids:
            clauses.append(f"{result_alias}.run_id IN ({', '.join('?' for _ in self.run_ids)})")
            params.extend(self.run_ids)
        if self.models:
            clauses.append(f"{result_alias}.model IN ({', '.join('?' for _ in self.models)})")
            params.extend(self.models)
        return " AND ".join(clauses), params

    def _has_personas(self) -> bool:
        """The store's trials carry the persona axis (migration 10; a store opened read-only may predate it)."""
        if "_has_personas" not in self._cache:
            found = self.store.query("SELECT count(*) AS n FROM information_schema.columns WHERE table_name = 'trials' "
                                     "AND column_name = 'persona_id'")
            self._cache["_has_personas"] = found
        return bool(self._cache["_has_personas"]["n"].iloc[0])

    def sql(self, query: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        """Read-only SQL over the store. `{scope}` in the query is replaced by this context's filter on
        `results r JOIN trials t` (its parameters come first)."""
        if "{scope}" in query:
            where, scope_params = self._filters()
            query = query.replace("{scope}", where)
            params = [*scope_params, *(params or [])]
        return self.store.query(query, params or [])

    # -- frames ------------------------------------------------------------------------------------
    def items(self) -> pd.DataFrame:
        """One row per item id (the newest stored version): options' values, polarities, refusal flags,
        gold, keyed and parsed `meta` (dict)."""
        if "items" not in self._cache:
            frame = self.store.query(
                "SELECT i.* REPLACE (list_transform(i.option_values, lambda x: coalesce(x, 'NaN'::DOUBLE)) AS option_values, "
                "list_transform(i.option_polarities, lambda x: coalesce(x, 'NaN'::DOUBLE)) AS option_polarities), s.created_at "
                "FROM items i JOIN surveys s USING (survey_hash) WHERE i.survey_id = ? "
                "QUALIFY row_number() OVER (PARTITION BY i.item_id ORDER BY s.created_at DESC) = 1 ORDER BY i.item_id",
                [self.info.survey_id],
            )
            frame["meta"] = [_json(m) for m in frame["meta"]]
            # NULL list entries arrive as masked arrays; analyses want plain float arrays with NaN.
            for column in ("option_values", "option_polarities"):
                frame[column] = [_floats(v) for v in frame[column]]
            frame["option_refusal"] = [[bool(x) for x in v] if v is not None else [] for v in frame["option_refusal"]]
            self._cache["items"] = frame.drop(columns=["created_at"])
        return self._cache["items"]

    def template_meta(self) -> dict[str, dict[str, Any]]:
        """template id -> {'group': ..., **meta} from the spec."""
        return {str(t.get("id")): {"group": t.get("group"), **(t.get("meta") or {})} for t in self.info.templates()}

    def forms(self) -> pd.DataFrame:
        """One row per run × model × trial (= one form of one item).

        Columns: run_id, model, item_id, trial_id, template_id, paraphrase_id, factors (dict), option_order
        (tuple), reasoning, mode, n_rows, n_ok, n_refusal, n_invalid, n_error, valid_mass (mean over ok
        rows), dist (np.ndarray in canonical order: the mean of the ok rows' distributions, i.e. p̂ for
        sample mode; None when no row is ok). Also template_group and one `tmeta` dict per template.
        """
        if "forms" in self._cache:
            return self._cache["forms"]
        where, params = self._filters()
        # Widest option list in scope: the per-option means are plain aggregates over distribution[k],
        # one pass over the results with no unnesting (the list is in canonical order).
        width_frame = self.store.query(
            "SELECT coalesce(max(n_options), 0) AS k FROM items WHERE survey_id = ?", [self.info.survey_id]
        )
        width = int(width_frame["k"][0])
        option_means = "".join(
            f", avg(r.distribution[{k + 1}]) FILTER (WHERE r.status = 'ok' AND r.distribution IS NOT NULL) AS p{k}"
            for k in range(width)
        )
        frame = self.store.query(
            f"""
            SELECT r.run_id, r.model, t.item_id, r.trial_id, t.template_id, t.paraphrase_id,
                   CAST(t.factors AS VARCHAR) AS factors, array_to_string(t.option_order, ',') AS option_order,
                   t.reasoning, min(r.mode) AS mode, count(*) AS n_rows,
                   count(*) FILTER (WHERE r.status = 'ok' AND r.distribution IS NOT NULL) AS n_ok,
                   count(*) FILTER (WHERE r.status = 'refusal') AS n_refusal,
                   count(*) FILTER (WHERE r.status = 'invalid' OR (r.status = 'ok' AND r.distribution IS NULL)) AS n_invalid,
                   count(*) FILTER (WHERE r.status = 'error') AS n_error,
                   avg(r.valid_mass) FILTER (WHERE r.status = 'ok') AS valid_mass{option_means}
            FROM results r JOIN trials t USING (trial_id)
            WHERE {where}
            GROUP BY ALL
            ORDER BY r.run_id, r.model, t.item_id, r.trial_id
            """,
            params,
        )
        # Few distinct factor / order strings: parse each once.
        factor_cache = {text: _json(text) for text in frame["factors"].unique()}
        frame["factors"] = frame["factors"].map(factor_cache)
        order_cache = {text: tuple(int(x) for x in text.split(",")) if text else () for text in frame["option_order"].unique()}
        frame["option_order"] = frame["option_order"].map(order_cache)
        means = frame[[f"p{k}" for k in range(width)]].to_numpy(dtype=float) if width else np.zeros((len(frame), 0))
        n_opts = frame["option_order"].map({order: len(order) for order in order_cache.values()}).to_numpy()
        has = frame["n_ok"].to_numpy() > 0
        frame["dist"] = [means[i, : n_opts[i]] if has[i] else None for i in range(len(frame))]
        frame = frame.drop(columns=[f"p{k}" for k in range(width)])
        tmeta = self.template_meta()
        ids = frame["template_id"].unique()
        frame["template_group"] = frame["template_id"].map({t: tmeta.get(t, {}).get("group") for t in ids})
        frame["tmeta"] = frame["template_id"].map({t: tmeta.get(t, {}) for t in ids})
        for column in ("n_rows", "n_ok", "n_refusal", "n_invalid", "n_error"):
            frame[column] = frame[column].astype(int)
        self._cache["forms"] = frame
        return frame

    def responses(self) -> pd.DataFrame:
        """One row per stored result (sample) with its form columns: run_id, model, item_id, trial_id,
        template_id, paraphrase_id, factors (dict), reasoning, sample_index, status, mode, choice, dist."""
        if "responses" in self._cache:
            return self._cache["responses"]
        where, params = self._filters()
        frame = self.store.query(
            f"""
            SELECT r.run_id, r.model, t.item_id, r.trial_id, t.template_id, t.paraphrase_id,
                   CAST(t.factors AS VARCHAR) AS factors, t.reasoning, r.sample_index, r.status, r.mode, r.choice,
                   r.distribution AS dist
            FROM results r JOIN trials t USING (trial_id)
            WHERE {where}
            ORDER BY r.run_id, r.model, t.item_id, r.trial_id, r.sample_index
            """,
            params,
        )
        frame["factors"] = [_json(f) for f in frame["factors"]]
        frame["dist"] = [np.asarray(d, dtype=float) if isinstance(d, (list, np.ndarray)) else None for d in frame["dist"]]
        tmeta = self.template_meta()
        frame["template_group"] = [tmeta.get(t, {}).get("group") for t in frame["template_id"]]
        frame["tmeta"] = [tmeta.get(t, {}) for t in frame["template_id"]]
        self._cache["responses"] = frame
        return frame


def survey_info(store: Store, survey_id: str) -> SurveyInfo:
    """The kind and newest stored spec of a survey id."""
    frame = store.query(
        "SELECT kind, spec FROM surveys WHERE survey_id = ? ORDER BY created_at DESC LIMIT 1", [survey_id]
    )
    if frame.empty:
        raise KeyError(f"no survey {survey_id!r} in {store.path}; `probekit runs` lists what was run")
    return SurveyInfo(survey_id=survey_id, kind=str(frame["kind"][0]), spec=_json(frame["spec"][0]))


FINISHED = ("completed", "completed_with_errors")
"""Run statuses of a run that ended on its own (not interrupted, not still running)."""


def default_run(store: Store) -> tuple[str, str]:
    """The run analysed when none is named, and why it was picked: the newest finished run (completed, with or
    without errors) that stored a valid answer; a newer run that failed, was interrupted or is still running is
    skipped and named. Without any finished run, the newest run that has a valid answer; without that, the newest
    run. KeyError on a store without runs."""
    frame = store.query(
        "SELECT u.run_id, u.status, (SELECT count(*) FROM results r WHERE r.run_id = u.run_id AND r.status = 'ok') AS n_ok "
        "FROM runs u ORDER BY u.started_at DESC")
    if frame.empty:
        raise KeyError(f"no runs in {store.path}; `probekit run SURVEY` makes one")
    rows = frame.to_dict("records")
    newest = rows[0]
    chosen = next((r for r in rows if r["status"] in FINISHED and r["n_ok"] > 0), None)
    if chosen is None:
        chosen = next((r for r in rows if r["n_ok"] > 0), newest)
    if chosen["run_id"] == newest["run_id"]:
        why = f"run {chosen['run_id']} (the newest, {chosen['status']})"
    else:
        skipped = [r for r in rows if r["run_id"] != chosen["run_id"] and rows.index(r) < rows.index(chosen)]
        listed = ", ".join(f"{r['run_id']} ({r['status']}, {r['n_ok']} valid answers)" for r in skipped[:3])
        more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        why = (f"run {chosen['run_id']} (the newest {'finished ' if chosen['status'] in FINISHED else ''}run with valid "
               f"answers; newer: {listed}{more}; name one with --run)")
    return str(chosen["run_id"]), why


def contexts(
    store_path: str | Path,
    *,
    run: str | None = None,
    survey: str | None = None,
    models: Sequence[str] | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    persona: str | None = "",
) -> list[AnalysisContext]:
    """One context per survey in scope: the surveys of `run` (or the newest run when neither is given),
    or the survey id `survey` across all its runs. `persona`: the persona context the tables read
    (AnalysisContext.persona)."""
    store = Store(store_path)
    run_ids: list[str] | None = None
    if survey is not None:
        survey_ids = [survey]
        if run is not None:
            run_ids = [run]
    else:
        if run is None:
            run, _why = default_run(store)
        run_ids = [run]
        found = store.query(
            "SELECT DISTINCT t.survey_id FROM run_trials rt JOIN trials t USING (trial_id) WHERE rt.run_id = ? ORDER BY 1",
            [run],
        )
        if found.empty:
            raise KeyError(f"no run {run!r} with trials in {store.path}; `probekit runs` lists them")
        survey_ids = [str(s) for s in found["survey_id"]]
    model_list = list(models) if models else None
    return [
        AnalysisContext(store=store, info=survey_info(store, sid), run_ids=run_ids, models=model_list, seed=seed, n_boot=n_boot,
                        thresholds=thresholds, persona=persona)
        for sid in survey_ids
    ]
