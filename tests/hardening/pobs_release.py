"""A small POBs response release in the published layout and format (IBM/POBS @ 40ba4dd; the files themselves
carry no license and are not in shared/data/pobs, see its SOURCE.md), built for the tests:

    POBS_v11_model_responses/POBS_V11_direct/POBS_<model>_<run>.json
    POBS_v11_model_responses/POBS_V11_reasoning_reflection/POBS_<model>_<run>.json

Each file: {"survey": {"title", "description", "topics": [{"name", "category", "questions": [{"id", "question",
"options", "options_polarity", "response", "reasoning", "selected", "choice", "answer_polarity"}]}]}}; the
reasoning_reflection files add "reconsidered_response", "reconsidered_selection", "reconsidered_choice",
"reconsidered_polarity". Polar topics are named "X vs. Y" (options polarities ±1, ±0.5, 0, Refused null,
reverse-keyed questions reversed); the non-polar topics (preferences, famous figures) code every substantive
option 1. As in the release, some files code their non-polar answers' polarity on a ±0.5/±1 scale instead
(A −1, B −0.5, C 0.5, D 1): 8 of the 20 files here (DeepSeek_V2.5's five reasoning_reflection files and
llama_3_3_70b_instruct's direct runs 1-3), so that spec and file disagree on those answers.

Answers are deterministic. DeepSeek_V2.5 reasoning → reflection ("DeepSeek-V2.5-style"): 5 of the 160 polar
(question, run) pairs change by ≥ 1 (3.1 %), 22 of the 40 non-polar pairs change (Refused ↔ an answer), 27 of
200 over all topics (13.5 %).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

POLAR_TOPICS = ["Free Speech vs. Social Harmony", "Socialism vs. Capitalism", "Secularism vs. Religiousness",
                "AI Precautionary vs. Optimism"]
NONPOLAR_TOPICS = ["Sports Preferences", "Famous Figures"]
QUESTIONS_PER_POLAR = 8
QUESTIONS_PER_NONPOLAR = 4
MODELS = ["DeepSeek_V2.5", "llama_3_3_70b_instruct"]
RUNS = range(1, 6)
LIKERT = ["Strongly agree", "Agree", "Neutral", "Disagree", "Strongly disagree", "Refused"]
LIKERT_POLARITY = [1.0, 0.5, 0.0, -0.5, -1.0, None]
CHOICES = ["Football", "Basketball", "Tennis", "Cricket", "Refused"]
CHOICE_POLARITY: list[float | None] = [1.0, 1.0, 1.0, 1.0, None]
RESCALED = {"A": -1.0, "B": -0.5, "C": 0.5, "D": 1.0}
"""How the 8 odd files code non-polar answers."""

POLAR_CHANGES = {(0, 1), (5, 2), (11, 3), (20, 4), (27, 5)}
"""DeepSeek_V2.5: (polar question index, run) whose reflection answer moves by ≥ 1 from the reasoning answer."""


def questions() -> list[tuple[str, str, bool, int]]:
    """(id, topic, polar, index within its kind) of every question, in file order."""
    out = []
    for t, topic in enumerate(POLAR_TOPICS):
        out += [(f"{t + 1:02d}{q + 1:02d}", topic, True, t * QUESTIONS_PER_POLAR + q) for q in range(QUESTIONS_PER_POLAR)]
    for t, topic in enumerate(NONPOLAR_TOPICS):
        out += [(f"9{t + 1}{q + 1:02d}", topic, False, t * QUESTIONS_PER_NONPOLAR + q) for q in range(QUESTIONS_PER_NONPOLAR)]
    return out


def _options(polar: bool, index: int) -> tuple[list[str], list[float | None]]:
    if polar:
        polarity = LIKERT_POLARITY if index % 2 == 0 else [-p if p is not None else None for p in LIKERT_POLARITY]
        return [f"({chr(65 + k)}) {text}" for k, text in enumerate(LIKERT)], list(polarity)
    return [f"({chr(65 + k)}) {text}" for k, text in enumerate(CHOICES)], list(CHOICE_POLARITY)


def _letter_for(polar: bool, model: str, run: int, index: int, setup: str) -> str:
    """The selected letter (deterministic)."""
    if polar:
        base = "ABCDE"[(index + (model == MODELS[1])) % 5]
        if model == MODELS[0] and setup == "reflection" and (index, run) in POLAR_CHANGES:
            return "E" if base in "AB" else "A"  # a move of ≥ 1 whichever keying
        if setup == "reflection" and index % 7 == 3:
            return {"A": "B", "B": "A", "C": "D", "D": "C", "E": "D"}[base]  # a half step: not a change
        return base
    refused = "E"
    base = "ABCD"[(index + run) % 4]
    if model == MODELS[0]:
        # 22 of 40 (question, run) pairs switch between Refused and an answer from reasoning to reflection
        flips = (index * 5 + run) % 40 < 22
        if setup == "reasoning":
            return refused if flips and index % 2 == 0 else base
        if setup == "reflection":
            return base if flips and index % 2 == 0 else (refused if flips else base)
    return base


def _polarity(letter: str, options_polarity: list[float | None], polar: bool, rescaled: bool) -> float | None:
    value = options_polarity[ord(letter) - 65]
    if not polar and rescaled and value is not None:
        return RESCALED[letter]
    return value


def odd_file(model: str, run: int, setting: str) -> bool:
    """Whether the file codes its non-polar answers on the ±0.5/±1 scale."""
    return (model == MODELS[0] and setting == "reasoning_reflection") or (model == MODELS[1] and setting == "direct" and run <= 3)


def write_release(root: Path) -> Path:
    """Write the 20 files under root; returns root / POBS_v11_model_responses."""
    base = root / "POBS_v11_model_responses"
    for setting, folder in (("direct", "POBS_V11_direct"), ("reasoning_reflection", "POBS_V11_reasoning_reflection")):
        (base / folder).mkdir(parents=True, exist_ok=True)
        for model in MODELS:
            for run in RUNS:
                rescaled = odd_file(model, run, setting)
                topics: dict[str, list[dict[str, Any]]] = {}
                for qid, topic, polar, index in questions():
                    options, polarity = _options(polar, index)
                    first = _letter_for(polar, model, run, index, "direct" if setting == "direct" else "reasoning")
                    question: dict[str, Any] = {
                        "id": qid, "question": f"Question {qid} about {topic}?", "options": options,
                        "options_polarity": polarity, "response": f"<answer>{first}</answer>",
                        "reasoning": None if setting == "direct" else f"Considering {topic} ...",
                        "selected": first, "choice": options[ord(first) - 65][4:],
                        "answer_polarity": _polarity(first, polarity, polar, rescaled),
                    }
                    if setting == "reasoning_reflection":
                        second = _letter_for(polar, model, run, index, "reflection")
                        question.update({"reconsidered_response": f"After reflection: <answer>{second}</answer>",
                                         "reconsidered_selection": second, "reconsidered_choice": options[ord(second) - 65][4:],
                                         "reconsidered_polarity": _polarity(second, polarity, polar, rescaled)})
                    topics.setdefault(topic, []).append(question)
                data = {"survey": {"title": "POBS", "description": "Preferences, Opinions, and Beliefs Survey",
                                   "topics": [{"name": name, "category": "polar" if " vs" in name else "non-polar",
                                               "questions": qs} for name, qs in topics.items()]}}
                (base / folder / f"POBS_{model}_{run}.json").write_text(json.dumps(data, indent=4), encoding="utf-8")
    return base
