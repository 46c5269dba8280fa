"""The answers stage 2 compares, read from the store (never generated again)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from probekit.store.store import Store


@dataclass(frozen=True)
class StoredAnswer:
    """One stored free answer: who wrote it, to which question, where it is stored."""

    model: str
    item_id: str
    text: str
    run_id: str
    trial_id: str
    sample_index: int


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


def stored_answers(store: Store, survey_id: str, models: Sequence[str], item_ids: Sequence[str], *,
                   runs: Sequence[str] | None = None) -> dict[tuple[str, str], StoredAnswer]:
    """(model, item_id) → the first stored answer with text (lowest sample index, then earliest). With `runs`
    only answers of those runs (a model's stage-1 runs); without, any run of the survey id (answers imported
    from elsewhere)."""
    if not models or not item_ids or not store.path.exists() or (runs is not None and not runs):
        return {}
    clauses = ["t.survey_id = ?", "r.status = 'ok'", "r.raw_text IS NOT NULL", f"r.model IN ({_marks(models)})",
               f"t.item_id IN ({_marks(item_ids)})"]
    params: list[object] = [survey_id, *models, *item_ids]
    if runs is not None:
        clauses.append(f"r.run_id IN ({_marks(runs)})")
        params.extend(runs)
    frame = store.query(
        "SELECT r.model, t.item_id, r.raw_text, r.run_id, r.trial_id, r.sample_index "
        "FROM results r JOIN trials t USING (trial_id) "
        f"WHERE {' AND '.join(clauses)} "
        "QUALIFY row_number() OVER (PARTITION BY r.model, t.item_id ORDER BY r.sample_index, r.created_at, r.run_id) = 1",
        params)
    return {(str(m), str(i)): StoredAnswer(str(m), str(i), str(text), str(run), str(trial), int(sample))
            for m, i, text, run, trial, sample in zip(frame["model"], frame["item_id"], frame["raw_text"], frame["run_id"],
                                                      frame["trial_id"], frame["sample_index"])}
