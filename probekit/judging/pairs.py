"""Stage 2's surveys: which pairs each judge judges, and the pairwise survey built from stored answers.

Pairs are unordered: the two authors in name order are the canonical responses a and b (the expansion shows
every pair in both orders). A pair item carries the question's fields (what the judge template fills in), the
two answers as its options, and in `meta` the question id, the authors and where each answer is stored.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from probekit.judging.stored import StoredAnswer
from probekit.survey.schema import Survey

Pair = tuple[str, str]
"""Two answer models in name order."""


def pair_of(x: str, y: str) -> Pair:
    return (x, y) if x <= y else (y, x)


def plan_pairs(sources: Sequence[str], judges: Sequence[str], *, mode: str = "self", panel: Sequence[str] | None = None,
               panel_gold: bool = True, exclude: str = "parties") -> dict[str, list[Pair]]:
    """The pairs each judge judges. `all`: every pair of answer models. `self`: the judge's own answer against
    every other; with a panel gold, each panel judge also judges the other judges' own pairs it may vote on
    (`exclude` parties: those it did not write)."""
    unique = sorted(dict.fromkeys(sources))
    every = [pair_of(x, y) for x, y in itertools.combinations(unique, 2)]
    if mode == "all":
        return {judge: list(every) for judge in judges}
    if mode != "self":
        raise ValueError(f"pairs must be 'self' or 'all', not {mode!r}")
    own = {judge: [p for p in every if judge in p] for judge in judges}
    members = set(panel) if panel is not None else set(judges)
    planned: dict[str, list[Pair]] = {}
    for judge in judges:
        wanted = set(own[judge])
        if panel_gold and judge in members:
            for other in judges:
                if other == judge:
                    continue
                wanted |= {p for p in own[other] if exclude != "parties" or judge not in p}
        planned[judge] = sorted(wanted)
    return planned


def answer_digest(a: str, b: str) -> str:
    return hashlib.sha256(f"{a}\x00{b}".encode()).hexdigest()[:8]


def pair_items(pairs: Sequence[Pair], questions: Sequence[Any], answers: Mapping[tuple[str, str], StoredAnswer], *,
               max_chars: int | None = None) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Pairwise items (question × pair, in question order) from the stage-1 items (`questions`, Item objects)
    and the stored answers; and the (model, question) answers that are missing (their pairs are left out)."""
    items: list[dict[str, Any]] = []
    missing: set[tuple[str, str]] = set()
    for question in questions:
        for model_a, model_b in pairs:
            found = [answers.get((model, question.id)) for model in (model_a, model_b)]
            if found[0] is None or found[1] is None:
                missing |= {(model, question.id) for model, answer in zip((model_a, model_b), found) if answer is None}
                continue
            texts = [answer.text if max_chars is None else answer.text[:max_chars] for answer in found if answer]
            meta: dict[str, Any] = {
                "question_id": question.id, "models": [model_a, model_b],
                "answers": [{"run_id": a.run_id, "trial_id": a.trial_id, "sample_index": a.sample_index}
                            for a in found if a is not None]}
            if "category" in question.meta:
                meta["category"] = question.meta["category"]
            items.append({
                "id": f"{question.id}|{model_a}|{model_b}|{answer_digest(*texts)}",
                "fields": dict(question.fields),
                "options": [{"text": texts[0], "id": model_a}, {"text": texts[1], "id": model_b}],
                "meta": meta,
            })
    return items, sorted(missing)


def pair_survey(base: Survey, survey_id: str, items: list[dict[str, Any]], note: Mapping[str, Any]) -> Survey:
    """The judging survey as stage 2 runs it: `base`'s templates, labels, tie and scoring over `items`."""
    data = base.model_dump()
    data.update(id=survey_id, items=items, items_file=None, meta={**base.meta, "judging": dict(note)})
    return Survey.model_validate(data)
