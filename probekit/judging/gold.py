"""Gold verdicts for a pairwise survey: a panel of judges (the default) or a file of labels.

The source is stored per survey (`judge_gold_sources`, `judge_gold`), apart from the judges' runs: changing
the gold never re-runs a judge, and `probekit analyze` reads whatever source is set now.

Labels file (JSONL, one label per line; the lmsys/mt_bench_human_judgments field names):

    {"question_id": 81, "model_a": "gpt-4", "model_b": "smollm2", "winner": "model_a"}

`winner` is model_a, model_b or tie (`tie (inconsistent)` counts as tie); `turn`, when present, must be 1
(first-turn answers); other fields (judge, conversations ...) are ignored. Several labels of one pair are a
majority: w_G = 1 when more prefer model_a than model_b, 0 when fewer, 0.5 when as many.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from probekit.analysis.judges import votes_to_gold
from probekit.jsonl import iter_jsonl
from probekit.store.recorder import StoreRecorder
from probekit.store.store import Store
from probekit.survey.errors import SpecError, SpecProblem

WINNERS = {"model_a": "model_a", "model_b": "model_b", "tie": "tie", "tie (inconsistent)": "tie"}


def read_gold_file(path: str | Path) -> list[dict[str, Any]]:
    """Gold verdict rows (question_id, model_a, model_b in name order, score_a, votes) from a labels file;
    SpecError with file:line for every bad line."""
    source = Path(path)
    votes: dict[tuple[str, str, str], list[str]] = {}
    problems: list[SpecProblem] = []
    for number, data, error in iter_jsonl(source):
        if error is not None:
            problems.append(SpecProblem(str(source), number, f"invalid JSON: {error}", "write one JSON object per line"))
            continue
        if not isinstance(data, dict):
            problems.append(SpecProblem(str(source), number, "each line must be a JSON object", "see docs/judges.md (gold labels)"))
            continue
        missing = [k for k in ("question_id", "model_a", "model_b", "winner") if data.get(k) in (None, "")]
        if missing:
            problems.append(SpecProblem(str(source), number, f"missing {', '.join(missing)}",
                                        "each label needs question_id, model_a, model_b and winner"))
            continue
        winner = WINNERS.get(str(data["winner"]))
        if winner is None:
            problems.append(SpecProblem(str(source), number, f"winner {data['winner']!r}", "use model_a, model_b or tie"))
            continue
        if data.get("turn", 1) != 1:
            continue  # second-turn labels judge the second answers, which these experiments do not compare
        a, b = str(data["model_a"]), str(data["model_b"])
        if a == b:
            problems.append(SpecProblem(str(source), number, f"model_a and model_b are both {a!r}", "a label compares two models"))
            continue
        if b < a:  # stored in name order
            a, b = b, a
            winner = {"model_a": "model_b", "model_b": "model_a"}.get(winner, winner)
        votes.setdefault((str(data["question_id"]), a, b), []).append(winner)
    if problems:
        raise SpecError(problems)
    rows = []
    for (question, a, b), winners in sorted(votes.items()):
        score, votes_a, votes_b, votes_tie = votes_to_gold(winners)
        rows.append({"question_id": question, "model_a": a, "model_b": b, "score_a": score, "votes_a": votes_a,
                     "votes_b": votes_b, "votes_tie": votes_tie})
    return rows


def set_gold(store: Store | str | Path, survey_id: str, *, file: str | Path | None = None,
             panel: Sequence[str] | None = None, exclude: str = "parties") -> dict[str, Any]:
    """Set the gold source of a pairwise survey: the labels of `file`, or a panel (`panel` judges, None =
    every judge of the survey; `exclude` parties | judge). Returns the settings stored."""
    recorder = StoreRecorder(store if isinstance(store, Store) else Store(store))
    if file is not None:
        rows = read_gold_file(file)
        settings: dict[str, Any] = {"file": Path(file).name, "sha256": hashlib.sha256(Path(file).read_bytes()).hexdigest(),
                                    "rows": len(rows)}
        recorder.record_judge_gold(survey_id, "file", settings, rows)
        return settings
    if exclude not in ("parties", "judge"):
        raise ValueError(f"exclude must be 'parties' or 'judge', not {exclude!r}")
    settings = {"panel": list(panel) if panel is not None else None, "exclude": exclude}
    recorder.record_judge_gold(survey_id, "panel", settings)
    return settings
