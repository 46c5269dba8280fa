"""The recording lifecycle: how a run (probekit's own, an import, PriDe's priors) reaches storage.

The runtime talks to a `Recorder` and does not know how results are stored (inspect_ai's recorders are
the model): begin or resume a run, record its surveys, trials and models, record results in batches
(each call one transaction), record derived tables (position priors), finish the run. `StoreRecorder`
writes the DuckDB store; another sink (e.g. Parquet shards from remote workers) implements the same
protocol. The run's results go through `probekit.store.writer.ResultWriter` (buffered, one committing task).

One lifecycle for every run, whoever makes it:

    recorder = StoreRecorder(Store(path))
    claim = recorder.claim_run(new_id, config, config_hash(config), package_versions())  # a run: new, resume, wait, done
    # (an import: recorder.begin_run(...) — a new run, always; `recorded_run` wraps begin ... finish | discard)
    recorder.record_survey(survey, survey_hash, path)
    recorder.record_trials(run_id, survey_hash, trials)
    recorder.record_model(run_id, model, info)
    done = recorder.completed_trials(run_id, model)
    recorder.record_results(rows)          # repeated, one batch per call
    recorder.record_priors(run_id, prior_rows)
    recorder.finish_run(run_id, "completed")   # or "completed_with_errors", "interrupted" (resumable)
    recorder.discard_run(run_id)               # instead: a run that must leave nothing behind (a failed import)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from probekit.store.rows import ResultRow, item_rows, trial_rows
from probekit.store.store import RunClaim, Store
from probekit.survey.personas import persona_rows

if TYPE_CHECKING:
    from probekit.survey.expand import Trial
    from probekit.survey.schema import Survey


@runtime_checkable
class Recorder(Protocol):
    """Where a run's records go. Every method is synchronous; async callers use `asyncio.to_thread`."""

    def find_resumable(self, config_hash: str) -> str | None:
        """The latest unfinished run with this configuration, or None."""
        ...

    def begin_run(self, run_id: str, config: dict[str, Any], config_hash: str, packages: dict[str, str]) -> None:
        """Record a new run (status 'running'); `packages` are the versions that shape results."""
        ...

    def resume_run(self, run_id: str) -> dict[str, Any]:
        """Mark a stored run 'running' again and return its configuration (KeyError when unknown)."""
        ...

    def claim_run(self, run_id: str, config: dict[str, Any], config_hash: str, packages: dict[str, str], *,
                  force_new: bool = False) -> RunClaim:
        """Atomically: start run `run_id`, take over this configuration's unfinished run, wait for its live
        owner, or report it done (see Store.claim_run)."""
        ...

    def heartbeat(self, run_id: str) -> None:
        """Show that the run's owner is alive (called while the run goes on)."""
        ...

    def record_survey(self, survey: Survey, survey_hash: str, path: str | None) -> None:
        """Record a survey spec, its items and its personas (once per content hash)."""
        ...

    def record_trials(self, run_id: str, survey_hash: str, trials: Sequence[Trial]) -> None:
        """Record trials (once per trial id) and link them to the run."""
        ...

    def record_model(self, run_id: str, model: str, info: dict[str, Any]) -> None:
        """Record (or update) what is known about a model of the run."""
        ...

    def completed_trials(self, run_id: str, model: str) -> set[str]:
        """Trials of the run with a stored non-error answer for every sample (resume skips them)."""
        ...

    def record_results(self, rows: Sequence[ResultRow]) -> None:
        """Record one batch atomically; rows replace rows with the same run × trial × model × sample."""
        ...

    def record_priors(self, run_id: str, rows: Sequence[dict[str, Any]]) -> None:
        """Record PriDe position priors of the run (replacing those with the same key)."""
        ...

    def session(self) -> AbstractContextManager[None]:
        """Keep the sink open across the calls of a block made by one thread (may do nothing)."""
        ...

    def finish_run(self, run_id: str, status: str) -> None:
        """Record the run's final status (completed | completed_with_errors | interrupted) and end time."""
        ...

    def discard_run(self, run_id: str) -> None:
        """Remove the run and everything recorded for it (a failed import leaves nothing behind); surveys and
        trials, keyed by content and shared with other runs, stay."""
        ...

    def pending_path(self, run_id: str) -> Path | None:
        """A side file where the run's results may wait while the sink is held by another process (None:
        they wait in memory only)."""
        ...


class StoreRecorder:
    """The Recorder over a DuckDB `Store`: each call opens the file, writes one transaction, closes it."""

    def __init__(self, store: Store | str | Path):
        self.store = store if isinstance(store, Store) else Store(store)

    def find_resumable(self, config_hash: str) -> str | None:
        return self.store.resumable_run(config_hash)

    def begin_run(self, run_id: str, config: dict[str, Any], config_hash: str, packages: dict[str, str]) -> None:
        self.store.create_run(run_id, config, config_hash, packages.get("probekit", "dev"), packages)

    def resume_run(self, run_id: str) -> dict[str, Any]:
        config = self.store.run_config(run_id)  # KeyError naming the run and the store when unknown
        self.store.take_run(run_id)
        return config

    def claim_run(self, run_id: str, config: dict[str, Any], config_hash: str, packages: dict[str, str], *,
                  force_new: bool = False) -> RunClaim:
        return self.store.claim_run(run_id, config, config_hash, packages.get("probekit", "dev"), packages, force_new=force_new)

    def heartbeat(self, run_id: str) -> None:
        self.store.heartbeat(run_id)

    def record_survey(self, survey: Survey, survey_hash: str, path: str | None) -> None:
        if survey.personas is not None:  # its personas (docs/personas.md), once per content hash
            self.store.register_personas(persona_rows(survey.id, survey_hash, survey.personas))
        self.store.register_survey(survey_hash, survey, path, item_rows(survey, survey_hash))
        if any(item.human for item in survey.items):  # human reference distributions (probekit.store.human)
            from probekit.store.human import record_human

            record_human(self.store, survey, survey_hash)

    def record_trials(self, run_id: str, survey_hash: str, trials: Sequence[Trial]) -> None:
        self.store.add_trials(run_id, survey_hash, trial_rows(trials))

    def record_model(self, run_id: str, model: str, info: dict[str, Any]) -> None:
        self.store.upsert_model(run_id, model, info)

    def completed_trials(self, run_id: str, model: str) -> set[str]:
        return self.store.completed_trials(run_id, model)

    def record_results(self, rows: Sequence[ResultRow | Mapping[str, Any]]) -> None:
        """Also takes mappings (each becomes `ResultRow(**row)`: a misspelt column raises TypeError)."""
        self.store.write_results(rows)

    def record_priors(self, run_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self.store.write_priors(run_id, rows)

    def session(self) -> AbstractContextManager[None]:
        return self.store.session()

    def finish_run(self, run_id: str, status: str) -> None:
        self.store.set_run_status(run_id, status, ended=True)

    def discard_run(self, run_id: str) -> None:
        self.store.delete_run(run_id)

    def pending_path(self, run_id: str) -> Path | None:
        return Path(f"{self.store.path}.pending-{run_id}.jsonl")

    def record_restored(self, tables: Mapping[str, Any], *, replace: bool = False) -> dict[str, tuple[int, int]]:
        """Record runs exported from another store as they were: run ids, timestamps, statuses and every row
        unchanged (`probekit import` of a `probekit export`), all tables in one transaction. Rows already
        stored (same primary key) are kept, so importing an export twice adds nothing; with `replace` the
        exported values replace stored ones that differ. Returns per table (rows inserted, stored rows that
        differ from the exported ones)."""
        return self.store.restore_rows(tables, replace=replace)

    def record_judge_gold(self, survey_id: str, kind: str, settings: Mapping[str, Any],
                          rows: Sequence[Mapping[str, Any]] = ()) -> None:
        """Set where a pairwise survey's gold verdicts come from (a judge panel, or a file's labels), replacing
        the previous source (probekit.judging.gold)."""
        self.store.write_judge_gold(survey_id, kind, settings, rows)


@contextmanager
def recorded_run(recorder: Recorder, run_id: str, config: dict[str, Any], config_hash: str,
                 packages: dict[str, str]) -> Iterator[str]:
    """A run that is recorded whole or not at all (an import): begun, the block records into it, then finished
    `completed`; when the block raises, the run is discarded (the error propagates)."""
    recorder.begin_run(run_id, config, config_hash, packages)
    try:
        yield run_id
    except BaseException:
        try:
            recorder.discard_run(run_id)
        except Exception:  # the store is failing anyway: the run stays marked 'running', never 'completed'
            pass
        raise
    recorder.finish_run(run_id, "completed")
