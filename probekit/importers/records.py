"""The common shape every import format is parsed into, before it is matched to trials and stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STATUSES = ("refusal", "invalid")


@dataclass
class Response:
    """One answer collected elsewhere: which item, in which form, from which model, and what it said.

    Exactly one of `choice` (canonical option index), `distribution` (canonical order), `status`
    (refusal | invalid) or `label` (a shown label such as "B", resolved against the matched trial) is set.
    """

    line: int
    """Line in the source file (1-based), for error messages."""
    survey: str | None
    """Survey id (None: the only survey given with --survey)."""
    item: str
    """Item id as in the survey."""
    model: str
    """Model that answered."""
    form: dict[str, Any] = field(default_factory=dict)
    """Form keys: template, paraphrase, order, reasoning, setup, or a factor name."""
    sample: int = 0
    """Sample / repeated-run index."""
    respondent: str = ""
    """Who answered as `model` (a person, a persona, one session of the model); '' = the model itself."""
    choice: int | None = None
    distribution: list[float] | None = None
    status: str | None = None
    label: str | None = None
    """The answer as shown: a label of the trial's scheme ("B", "2") or an option's shown text."""
    shown: list[str] | None = None
    """The option texts in the order the source showed them (another way to say the shown order)."""
    item_text: str | None = None
    """The item's text as the source showed it: checked against the spec's item (or matched, by text)."""
    prompt: str | list[dict[str, str]] | None = None
    """The exact prompt the source sent (a user message, or chat messages): stored instead of the template's."""
    prompt_template: str | None = None
    """The source's prompt template with the survey's placeholders, rendered per item in place of the template's."""
    label_needs_order: bool = False
    """A position label ("A") must come with the order it was shown in (form.order, shown or form.template): the
    generic format says so per row, so a reversed-scale file can never import un-inverted."""
    raw_text: str | None = None
    """The model's raw answer, when the source has it."""
    check_polarity: float | None = None
    """POBs: the polarity the source recorded for the answer; must equal the chosen option's (unless the
    import trusts the survey's polarities)."""
    answer_key: str | None = None
    """The source's name of the field holding this answer (POBs: selected / reconsidered_selection), for messages."""
    source: str | None = None
    """The file the row came from (set by the importer; rows of several files are imported together)."""


@dataclass(frozen=True)
class RowProblem:
    """A bad row: where it is and why."""

    path: str
    line: int
    message: str
    kind: str | None = None
    """What the problem is without the row's particulars (e.g. "no form has forcing='jail-09'"), so many rows
    with one problem are summarised as one line; None: the message itself."""

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"

    @property
    def group(self) -> str:
        return self.kind or self.message


@dataclass
class Parsed:
    """What a format parser returns: good responses and bad rows (never raised, always collected)."""

    responses: list[Response] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
