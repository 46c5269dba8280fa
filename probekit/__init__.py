"""probekit: survey and bias-probing experiments on LLMs.

Python API (mirrors the CLI):
    probekit.load_survey(path)           -> Survey (validated; raises SpecError with file:line — fix)
    probekit.expand(survey, ...)         -> list[Trial]
    probekit.run(paths, models=[...])    -> RunSummary (results in the DuckDB store); a judging experiment
                                            file -> JudgingSummary
    probekit.open_store(path)            -> Store with DataFrame readers (runs(), results(), query(sql))
    probekit.export(out_dir, store=...)  -> ExportSummary (Parquet/CSV/JSONL + manifest.json; docs/export.md)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from probekit.defaults import DEFAULT_STORE

__version__ = "0.1.0"

if TYPE_CHECKING:
    from probekit.exporting import ExportSummary
    from probekit.judging.flow import JudgingSummary
    from probekit.runner import RunOptions, RunSummary
    from probekit.store.store import Store
    from probekit.survey.expand import Trial
    from probekit.survey.schema import Survey


def load_survey(path: Any) -> Survey:
    from probekit.survey.loader import load_survey as _load

    return _load(path)


def expand(survey: Survey, **overrides: Any) -> list[Trial]:
    from probekit.survey.expand import expand as _expand

    return _expand(survey, **overrides)


def run(survey_paths: Any, options: RunOptions | None = None, **kwargs: Any) -> RunSummary | JudgingSummary:
    """Run survey files, Survey objects, an experiment file or a judging experiment file. Keywords are the
    options of `probekit run` (probekit.settings.RunRequest: models, limit, orders, mode, reasoning, ...) and
    `store`, checked before anything is stored; a judging experiment returns a JudgingSummary."""
    import asyncio

    from probekit.pipeline import prepare_run, run_async

    paths = list(survey_paths) if isinstance(survey_paths, list | tuple) else [survey_paths]
    plan, run_options = prepare_run(paths, options, **kwargs)
    if plan is not None and plan.judging is not None:  # both stages (probekit.judging sits above the pipeline)
        from probekit.judging.flow import run_judging_async

        settings = plan.settings
        return asyncio.run(run_judging_async(plan.judging, models=list(settings.models), store=settings.store,
                                             limit=settings.limit, options=run_options))
    return asyncio.run(run_async(plan.inputs if plan is not None and plan.inputs is not None else paths, run_options))


def open_store(path: Any = DEFAULT_STORE) -> Store:
    from probekit.store.store import open_store as _open

    return _open(path)


def export(out_dir: Any, **kwargs: Any) -> ExportSummary:
    """Export runs (or, with analysis=True, the analysis tables) to Parquet, CSV or JSON lines with a manifest:
    `probekit.export("share/", store="outputs/probekit.duckdb", run=run_id, format="parquet")`. Options:
    probekit.exporting.export; restore with `probekit import DIR` (probekit.importers.probekit_export)."""
    from probekit.exporting import export as _export

    return _export(out_dir, **kwargs)


__all__ = ["load_survey", "expand", "run", "open_store", "export", "__version__"]
