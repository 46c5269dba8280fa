"""The typed result row: one sample of one trial on one model, as stored in the `results` table, and the
builders of the `items` and `trials` rows of a survey.

Every producer (the runner's scoring layer, importers, the fake backend) builds rows through this class, so
a misspelt column is a TypeError where the row is made, never a silent NULL in the store.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from probekit.survey.expand import Trial
    from probekit.survey.schema import Survey


@dataclass(slots=True, kw_only=True)
class ResultRow:
    """One row of `results` (see docs/schema.md for each column's meaning)."""

    run_id: str = ""
    trial_id: str = ""
    model: str = ""
    respondent: str = ""
    """Who answered as `model` (a person, a persona, one session); '' = the model itself."""
    sample_index: int = 0
    status: str = "ok"
    """ok | refusal | invalid | error."""
    mode: str = "logprob"
    """logprob | sample | sequence | none (errors)."""
    choice: int | None = None
    distribution: list[float] | None = None
    valid_mass: float | None = None
    missing_labels: int | None = None
    label_logprobs: list[float | None] | None = None
    seq_logprob_sum: list[float] | None = None
    seq_logprob_mean: list[float] | None = None
    top_logprobs: Any = None
    raw_text: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    cost_usd: float | None = None
    resolved_model: str | None = None
    system_fingerprint: str | None = None
    error_class: str | None = None
    error_message: str | None = None
    attempts: int | None = None
    created_at: datetime | None = None

    def with_(self, **changes: Any) -> ResultRow:
        """A copy with some fields changed (unknown names raise TypeError)."""
        return replace(self, **changes)

    def __getitem__(self, column: str) -> Any:
        """row["status"] reads like the stored row; an unknown column raises AttributeError."""
        return getattr(self, column)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


RESULT_COLUMNS: list[str] = [f.name for f in fields(ResultRow)]
"""Column order of the `results` table."""


def item_rows(survey: Survey, digest: str) -> list[dict[str, Any]]:
    """One `items` row per item of the survey (options in canonical order)."""
    from probekit.survey.expand import item_options

    rows = []
    for item in survey.items:
        options = item_options(survey, item)
        rows.append({
            "survey_hash": digest, "survey_id": survey.id, "item_id": item.id, "n_options": len(options),
            "option_texts": [o.text for o in options], "option_values": [o.value for o in options],
            "option_polarities": [o.polarity for o in options], "option_refusal": [o.refusal for o in options],
            "gold": item.gold, "keyed": item.keyed, "position_dependent": item.position_dependent,
            "fields": json.dumps(item.fields), "meta": json.dumps(item.meta, default=str),
        })
    return rows


def trial_rows(trials: Sequence[Trial]) -> list[dict[str, Any]]:
    """One `trials` row per trial (the survey hash is added by the store)."""
    return [{
        "trial_id": t.trial_id, "survey_id": t.survey_id, "item_id": t.item_id, "template_id": t.template_id,
        "paraphrase_id": t.paraphrase_id, "factors": json.dumps(t.factors), "option_order": list(t.order),
        "label_scheme": t.label_scheme, "labels": list(t.labels), "reasoning": t.reasoning,
        "messages": json.dumps([m.model_dump() for m in t.messages]), "completion_prompt": t.completion_prompt,
        "followups": json.dumps([f.model_dump() for f in t.followups]),
        "persona_id": t.persona_id, "persona_style": t.persona_style,
    } for t in trials]
