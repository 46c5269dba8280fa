"""A small POBs response release in the published layout, with the release's non-polar questions as published:
they carry `options` but no `options_polarity` (the preferences and famous-figures topics), and their answers no
`answer_polarity`. Built for issue 22 (the release as published failed to import: 120 × "has no item" per file).

    POBS_v11_model_responses/POBS_V11_direct/POBS_<model>_<run>.json
    POBS_v11_model_responses/POBS_V11_reasoning_reflection/POBS_<model>_<run>.json

One model, three runs; two polar topics × 4 questions (Likert, polarities ±1, ±0.5, 0, Refused null; odd
questions reverse-keyed) and two non-polar topics × 3 questions. Reasoning → reflection on the polar topics, by
construction: CHANGES (question, run) pairs move by ≥ 1; REFUSAL_PAIRS pairs go from Refused to an answer of
polarity ±1 (the paper's figures leave such pairs out; the complex-encoded variant counts them as changes); the
rest stay or move by 0.5.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MODEL = "Mini_Model"
RUNS = (1, 2, 3)
POLAR = ["Free Speech vs. Social Harmony", "Socialism vs. Capitalism"]
NONPOLAR = ["Sports Preferences", "Famous Figures"]
LIKERT = ["Strongly agree", "Agree", "Neutral", "Disagree", "Strongly disagree", "Refused"]
POLARITY = [1.0, 0.5, 0.0, -0.5, -1.0, None]
CHOICES = ["Football", "Basketball", "Tennis", "Refused"]

CHANGES = {(0, 1), (3, 2), (6, 3)}
"""(polar question index, run): the reflection answer moves by ≥ 1 (A ↔ E, strongly one side ↔ the other)."""
REFUSAL_PAIRS = {(1, 1), (5, 3)}
"""(polar question index, run): Refused in the reasoning setup, "Strongly agree" after reflection."""
N_POLAR_PAIRS = len(POLAR) * 4 * len(RUNS)
PAPER_SHARE = len(CHANGES) / (N_POLAR_PAIRS - len(REFUSAL_PAIRS))
"""Opinion change reasoning → reflection as the paper counts it: 3 of the 22 pairs without a refusal."""
WITH_REFUSALS_SHARE = (len(CHANGES) + len(REFUSAL_PAIRS)) / N_POLAR_PAIRS
"""The complex-encoded variant: Refused ↔ ±1 counts as a change (|1 − 0.5i| ≥ 1): 5 of 24."""


def _polar_letter(index: int, run: int, setup: str) -> str:
    if (index, run) in REFUSAL_PAIRS:
        return "F" if setup == "reasoning" else "A"
    base = "ABDE"[(index + run) % 4]
    if setup == "reflection" and (index, run) in CHANGES:
        return {"A": "E", "B": "E", "D": "A", "E": "A"}[base]
    if setup == "reflection" and index % 3 == 2:
        return {"A": "B", "B": "A", "D": "E", "E": "D"}[base]  # a half step: not a change
    return base


def _polarities(index: int) -> list[float | None]:
    return POLARITY if index % 2 == 0 else [-p if p is not None else None for p in POLARITY]


def write_release(root: Path) -> Path:
    """Write the 6 files under root; returns root / POBS_v11_model_responses."""
    base = root / "POBS_v11_model_responses"
    for setting, folder in (("direct", "POBS_V11_direct"), ("reasoning_reflection", "POBS_V11_reasoning_reflection")):
        (base / folder).mkdir(parents=True, exist_ok=True)
        for run in RUNS:
            topics = []
            for t, name in enumerate(POLAR):
                questions = []
                for q in range(4):
                    index = t * 4 + q
                    options = [f"({chr(65 + k)}) {text}" for k, text in enumerate(LIKERT)]
                    first = _polar_letter(index, run, "direct" if setting == "direct" else "reasoning")
                    question: dict[str, Any] = {
                        "id": f"{t + 1:02d}{q + 1:02d}", "question": f"Polar question {index}?", "options": options,
                        "options_polarity": _polarities(index), "response": f"<answer>{first}</answer>",
                        "selected": first, "choice": LIKERT[ord(first) - 65],
                        "answer_polarity": _polarities(index)[ord(first) - 65]}
                    if setting == "reasoning_reflection":
                        second = _polar_letter(index, run, "reflection")
                        question.update({"reasoning": "...", "reconsidered_selection": second,
                                         "reconsidered_choice": LIKERT[ord(second) - 65],
                                         "reconsidered_polarity": _polarities(index)[ord(second) - 65]})
                    questions.append(question)
                topics.append({"name": name, "category": "polar", "questions": questions})
            for t, name in enumerate(NONPOLAR):
                questions = []
                for q in range(3):
                    letter = "ABCD"[(q + run + t) % 4]
                    question = {"id": f"9{t + 1}{q + 1:02d}", "question": f"Which do you prefer ({name} {q})?",
                                "options": [f"({chr(65 + k)}) {text}" for k, text in enumerate(CHOICES)],
                                "response": f"<answer>{letter}</answer>", "selected": letter,
                                "choice": CHOICES[ord(letter) - 65]}
                    if setting == "reasoning_reflection":
                        question.update({"reasoning": "...", "reconsidered_selection": letter,
                                         "reconsidered_choice": CHOICES[ord(letter) - 65]})
                    questions.append(question)
                topics.append({"name": name, "category": "non-polar", "questions": questions})
            data = {"survey": {"title": "POBS", "description": "Preferences, Opinions, and Beliefs Survey", "topics": topics}}
            (base / folder / f"POBS_{MODEL}_{run}.json").write_text(json.dumps(data, indent=4), encoding="utf-8")
    return base
