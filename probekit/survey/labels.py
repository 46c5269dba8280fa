"""Label schemes: the strings that name shown option positions, and the token variants a model may use."""

from __future__ import annotations

import string
from functools import lru_cache

from probekit.survey.schema import LabelKind

LETTERS = string.ascii_uppercase


def label_problem(scheme: LabelKind | list[str], n_options: int) -> tuple[str, str] | None:
    """Why `scheme` cannot label n options (message, fix), or None when it can."""
    if isinstance(scheme, list):
        if len(scheme) < n_options:
            return (f"custom labels {scheme} name fewer than the {n_options} options",
                    f"give at least {n_options} labels")
        if len(set(scheme)) != len(scheme):
            return (f"custom labels {scheme} repeat a label", "make every label distinct")
        return None
    if scheme == "yesno" and n_options != 2:
        return (f"label scheme 'yesno' needs exactly 2 options, not {n_options}", "use letters or numbers")
    if scheme == "letters" and n_options > len(LETTERS):
        return (f"{n_options} options exceed the 26 letters", "use numbers")
    if scheme == "custom":
        return ("label scheme 'custom' needs the labels themselves", "write labels: [\"x\", \"y\", ...]")
    return None


def labels_for(scheme: LabelKind | list[str], n_options: int, shown_texts: list[str] | None = None) -> list[str]:
    """Labels for shown positions 1..n (position k gets labels[k])."""
    if isinstance(scheme, list):
        return list(scheme[:n_options])
    if scheme == "letters":
        return list(LETTERS[:n_options])
    if scheme == "numbers":
        return [str(k + 1) for k in range(n_options)]
    if scheme == "yesno":
        return ["yes", "no"]
    if scheme == "option_text":
        if shown_texts is None:
            raise ValueError("option_text labels need the shown option texts")
        return list(shown_texts)
    raise ValueError(f"unknown label scheme {scheme!r}")


def join_or(labels: list[str]) -> str:
    """'A, B, C or D'."""
    if len(labels) <= 1:
        return "".join(labels)
    return ", ".join(labels[:-1]) + " or " + labels[-1]


LABEL_PREFIXES = ("", " ", "(", " (")
"""What may stand before a label in the model's answer and still name it ("A", " A", "(A", " (A")."""


def label_cores(label: str) -> tuple[str, ...]:
    """The spellings of a label that count as it: case variants only for word labels (a lower-case 'a' is
    the English article, not option A)."""
    if len(label) == 1:
        return (label,)
    return tuple(dict.fromkeys((label, label.lower(), label.upper(), label.capitalize())))


def label_variants(label: str) -> list[str]:
    """Surface forms of one label whose probabilities are summed (METRICS.md §0): 'A', ' A', 'yes', ' Yes' ...

    The one surface-form policy of probekit: the scoring layer sends these forms with every label request
    (`LabelRequest.forms`, see `label_forms`) and reads generated answers with the same rule
    (`strip_label_prefix` + `label_cores`, probekit.scoring.reading)."""
    return list(dict.fromkeys(prefix + core for core in label_cores(label) for prefix in LABEL_PREFIXES))


@lru_cache(maxsize=4096)
def label_forms(labels: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """`label_variants` of each label (cached: the same few label sets recur in every batch of a run)."""
    return tuple(tuple(label_variants(label)) for label in labels)


def strip_label_prefix(text: str) -> str:
    """Generated text without what may stand before a label (`LABEL_PREFIXES`, read liberally: any leading
    whitespace, newlines included, and one '(' with spaces around it)."""
    text = text.lstrip()
    if text.startswith("("):
        text = text[1:].lstrip()
    return text
