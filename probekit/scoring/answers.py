"""Pure helpers of the scoring layer: label probabilities → canonical distribution, free-text matching,
the per-trial seed.

Backends compute raw numbers (P(label) per shown position, generated text); these functions turn them into
the stored fields the same way for all backends, so results are comparable across backends.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from probekit.survey.expand import Trial
from probekit.survey.permutations import to_canonical


@dataclass
class ScoringSettings:
    """Resolved scoring parameters for one run (survey defaults overridden by the CLI)."""

    mode: str = "logprob"
    samples: int = 5
    temperature: float = 1.0
    max_tokens: int = 32
    reasoning_max_tokens: int = 256
    seed: int = 0
    fallback: str = "sample"
    patterns: dict[str, list[list[str]]] = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)
    judging: bool = False
    """Pairwise surveys: the options are responses under judgment, and a reply is read by the verdict grammar
    alone (labels, the templates' patterns, the tie text), never by the responses' texts (see match_answer)."""


def distribution_fields(label_probs_shown: Sequence[float], order: Sequence[int]) -> dict[str, Any]:
    """From P(label) per shown position: canonical renormalised distribution, valid mass, argmax choice.

    `valid_mass` is stored as is (how much the model wanted to answer in format). With no mass at all the
    distribution and choice are NULL and the row is 'invalid' — never a made-up answer.
    """
    probs = [max(0.0, float(p)) for p in label_probs_shown]
    mass = float(sum(probs))
    logs = [math.log(p) if p > 0 else None for p in probs]
    if mass <= 0 or not math.isfinite(mass):
        return {"status": "invalid", "distribution": None, "valid_mass": 0.0, "choice": None, "label_logprobs": logs}
    canonical = to_canonical([p / mass for p in probs], tuple(order))
    choice = max(range(len(canonical)), key=lambda k: canonical[k])
    return {"status": "ok", "distribution": canonical, "valid_mass": mass, "choice": choice, "label_logprobs": logs}


def one_hot(n: int, index: int) -> list[float]:
    return [1.0 if k == index else 0.0 for k in range(n)]


_DEFAULT_REFUSALS = [
    "i cannot", "i can't", "i can not", "as an ai", "i'm not able to", "i am not able to", "i am unable",
    "i'm unable", "i won't", "i will not", "i'm sorry", "i am sorry", "i apologize", "not comfortable",
]


def _normalise(text: str) -> str:
    text = text.strip().strip("*").strip()
    return re.sub(r"\s+", " ", text)


def _stem(text: str) -> str:
    """A crude stem for the second matching pass: lower case, letters and digits only."""
    return re.sub(r"[^a-z0-9 ]", "", text.lower()).strip()


RESPONSES = 2
"""In a pairwise trial the canonical options 0 and 1 are the two responses; a tie option comes after them."""


def response_positions(trial: Trial) -> set[int]:
    """Shown positions that hold a response under judgment (pairwise trials)."""
    return {k for k, canonical in enumerate(trial.order) if canonical < RESPONSES}


def match_answer(text: str, trial: Trial, patterns: dict[str, list[list[str]]], refusals: list[str], *,
                 judging: bool = False) -> tuple[str, int | None]:
    """Parse free text to (status, canonical option index) following MoralChoice's order of passes:
    exact patterns, stemmed patterns, a verdict in double brackets ([[B]]), a leading label / yes-no, the
    refusal list, else invalid.

    With `judging` (a judge's reply on a pairwise trial) the responses' texts are not part of the grammar:
    a response may be anything a model wrote, including `[[A]]`, `A]]` or a label, and the verdict must be
    read from what the judge wrote by the template's verdict forms alone. Only their labels (and the
    template's patterns that do not quote a response) name them; a tie option keeps its text ("Tie")."""
    answer = _normalise(text)
    if not answer:
        return "invalid", None
    first_line = answer.splitlines()[0] if answer else answer
    hidden = response_positions(trial) if judging else set()
    values = {}
    for k, option in enumerate(trial.shown_options, start=1):
        if k - 1 in hidden:  # a pattern quoting a response is no verdict form (left out below)
            option = _QUOTED
        values[f"option_{k}"] = option
        values[f"option_{k}_short"] = option.rstrip(".")
    for k, label in enumerate(trial.labels, start=1):
        values[f"label_{k}"] = label
    per_position: list[list[str]] = []
    template_patterns = patterns.get(trial.template_id)
    for k, label in enumerate(trial.labels):
        forms = [label, f"{label}.", f"({label})", f"[{label}]", f"Answer: {label}", f"Answer: {label}.", f"Option {label}"]
        if k not in hidden:
            forms += [f"{label}. {trial.shown_options[k]}", trial.shown_options[k]]
        if template_patterns and k < len(template_patterns):
            filled = [_fill_pattern(p, values) for p in template_patterns[k]]
            forms = [f for f in filled if f is not None] + forms
        per_position.append(forms)
    # 1. exact match of the whole answer or its first line
    for candidate in (answer, first_line):
        hits = {k for k, forms in enumerate(per_position) if candidate in forms}
        if len(hits) == 1:
            return "ok", trial.order[hits.pop()]
    # 2. stemmed match
    for candidate in (answer, first_line):
        stemmed = _stem(candidate)
        hits = {k for k, forms in enumerate(per_position) if stemmed in {_stem(f) for f in forms}}
        if len(hits) == 1:
            return "ok", trial.order[hits.pop()]
    # 2b. one verdict label in double brackets anywhere (LLM-judge format: "... [[A]]", FastChat's pair-v2)
    bracketed = set(re.findall(r"\[\[\s*([^\[\]]+?)\s*\]\]", answer))  # any label: [[B]], [[Output (b)]]
    hits = {k for k, label in enumerate(trial.labels) if label in bracketed}
    if len(hits) == 1:
        return "ok", trial.order[hits.pop()]
    # 3. an 'Answer: X' anywhere, or an answer starting with one label word
    found = re.findall(r"answer\s*(?:is)?\s*[:\-]?\s*\(?([A-Za-z0-9]+)\)?", answer, flags=re.IGNORECASE)
    for token in reversed(found):
        hits = {k for k, label in enumerate(trial.labels) if token.lower() == label.lower()}
        if len(hits) == 1:
            return "ok", trial.order[hits.pop()]
    lead = re.match(r"^\(?([A-Za-z0-9]+)\b", answer)
    if lead:
        hits = {k for k, label in enumerate(trial.labels)
                if lead.group(1) == label or (len(label) > 1 and lead.group(1).lower() == label.lower())}
        if len(hits) == 1:
            return "ok", trial.order[hits.pop()]
    # 4. refusal list
    lowered = answer.lower()
    for phrase in [*refusals, *_DEFAULT_REFUSALS]:
        if phrase and phrase.strip().lower() in lowered:
            return "refusal", None
    return "invalid", None


def sample_fields(trial: Trial, text: str, settings: ScoringSettings) -> dict[str, Any]:
    """One sampled generation as result fields: in reasoning mode only the text after the answer prefix is
    matched; an unmatched answer is 'refusal' or 'invalid' with no choice and no distribution."""
    answer = text
    if trial.reasoning == "reasoning" and trial.answer_prefix and trial.answer_prefix in text:
        answer = text.rsplit(trial.answer_prefix, 1)[1]
    status, choice = match_answer(answer, trial, settings.patterns, settings.refusals, judging=settings.judging)
    return {"status": status, "choice": choice,
            "distribution": one_hot(trial.n_options, choice) if choice is not None else None, "raw_text": text}


def trial_seed(seed: int, trial_id: str) -> int:
    """A per-trial seed, so sampled answers do not depend on batching, scheduling or resume."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{trial_id}".encode()).digest()[:4], "big")


class _Values(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


_QUOTED = "\x00response\x00"
"""Stands for a response's text in a judge's patterns: a pattern holding it is dropped."""


def _fill_pattern(pattern: str, values: dict[str, str]) -> str | None:
    filled = pattern.format_map(_Values(values))
    return None if _QUOTED in filled else filled
