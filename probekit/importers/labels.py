"""Answers as the source showed them: a shown label ("B", "2", "(A)") or a shown option text ("Strongly agree"),
mapped to the canonical option through the matched trial's labels and order. One mapping for every format (the
POBs letters, the generic format's `label`), so a reversed-scale prompt never needs inverting by hand."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

from probekit.survey.expand import Trial


def clean_label(value: Any) -> str | None:
    """The label a source recorded, or None for no usable answer: 'A.' / '(A)' / ' a ' are reduced to the label."""
    if value is None:
        return None
    text = str(value).strip().strip("().[]*").strip()
    return text or None


def normalise(text: str) -> str:
    """Text compared without case, punctuation or spacing: sources re-type items and anchors ("I worry about
    things" vs "Worry about things."'s first-person form, "Very accurate" vs "Very Accurate")."""
    kept = "".join(" " if unicodedata.category(ch)[0] in "PZ" else ch for ch in unicodedata.normalize("NFKC", text))
    return " ".join(kept.casefold().split())


def is_positional(label: str, trial: Trial) -> bool:
    """True when `label` is one of the trial's position labels ("A", "3"): its meaning depends on the order shown."""
    return any(shown.casefold() == label.casefold() for shown in trial.labels)


def shown_choice(label: str, trial: Trial, canonical_texts: Sequence[str]) -> int | str:
    """The canonical option index a shown answer names, or why it names none (a phrase to follow the label, e.g.
    "is not one of the labels ..."). A position label goes through the
    trial's order (position k shows option order[k]); otherwise the text is matched to the options as shown, then to
    the survey's own option texts (both without case or punctuation)."""
    positions = [k for k, shown in enumerate(trial.labels) if shown.casefold() == label.casefold()]
    if len(positions) == 1:
        return trial.order[positions[0]]
    wanted = normalise(label)
    by_shown = {trial.order[k] for k, text in enumerate(trial.shown_options) if normalise(text) == wanted}
    by_spec = {k for k, text in enumerate(canonical_texts) if normalise(text) == wanted}
    found = by_shown or by_spec
    if len(found) == 1:
        return next(iter(found))
    if len(found) > 1:
        return f"is the text of {len(found)} options of item {trial.item_id!r}: give the position label"
    return (f"is not one of the labels {list(trial.labels)} nor an option's text "
            f"({', '.join(repr(t) for t in trial.shown_options)})")


def order_from_texts(shown: Sequence[str], texts: Sequence[str]) -> list[int] | None:
    """The shown order (canonical indices) of option texts listed as the source showed them, or None when they are
    not exactly the options `texts` (canonical order) in some order."""
    index = {normalise(t): k for k, t in enumerate(texts)}
    if len(index) != len(texts) or len(shown) != len(texts):
        return None
    order = [index.get(normalise(text), -1) for text in shown]
    return order if sorted(order) == list(range(len(texts))) else None
