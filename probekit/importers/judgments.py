"""Judge data made elsewhere: pairwise judgments, and the answers judges compare (docs/judges.md).

- `judgments` (JSONL, one judgment per line) becomes a `pairwise` survey (one item per question × pair of
  models, both orders) and one run whose models are the judges, analysed by the same judge tables:

      {"judge": "gpt-4", "question": "81", "model_a": "alpaca-13b", "model_b": "gpt-3.5-turbo",
       "first": "model_b", "verdict": "A"}

  `first` says which of the two was shown first (as assistant A); `verdict` is the judge's answer as shown
  (A = the first shown, B = the second, C or tie = a tie), or `probs` its probabilities as shown ([P(A), P(B)]
  or [P(A), P(B), P(tie)]). Optional: `survey` (default `judgments`), `sample`, `category`, `question_text`,
  `answer_a` / `answer_b` (the texts), `raw_text` (the judge's output).
- `answers`: free answers to a `generate` survey's items, stored as generate results of one run, e.g. the
  MT-Bench answers of 31 published models (shared/data/selfpref/mtbench_80q_31models_answers.jsonl: one
  question per line, `answers: {model: [turn 1, turn 2]}`; the first turn is imported), or probekit's own
  answer lines `{"item": "81", "model": "gpt-4", "answer": "..."}` (optional `survey`, `sample`).

Imports are all-or-nothing unless bad rows are skipped, and idempotent (the same file, survey and models are
imported once), like `probekit.importers.core`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from probekit.defaults import DEFAULT_STORE
from probekit.hashing import config_hash
from probekit.importers.core import (
    REPO_SURVEYS,
    BadRows,
    ImportRefused,
    ImportSummary,
    _previous_import,
    _stored_survey,
)
from probekit.importers.records import RowProblem
from probekit.jsonl import iter_jsonl
from probekit.store.recorder import StoreRecorder, recorded_run
from probekit.store.rows import ResultRow
from probekit.store.store import Store
from probekit.survey.expand import Trial, expand
from probekit.survey.schema import Survey

FORMATS = ("judgments", "answers")
JUDGMENT_FIELDS = {"judge", "question", "model_a", "model_b", "first", "verdict", "probs", "survey", "sample", "category",
                   "question_text", "answer_a", "answer_b", "raw_text"}
VERDICTS = {"A": 0, "B": 1, "C": 2, "TIE": 2}


def sniff_format(path: Path) -> str | None:
    """judgments / answers when the first JSONL line looks like one of them, else None."""
    try:
        with path.open(encoding="utf-8") as handle:
            for raw in handle:
                if raw.strip():
                    data = json.loads(raw)
                    break
            else:
                return None
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    if "judge" in data and ("verdict" in data or "probs" in data):
        return "judgments"
    if ("answers" in data and "turns" in data) or ("answer" in data and "model" in data and "item" in data):
        return "answers"
    return None


def import_judge_file(path: str | Path, fmt: str, *, store_path: str | Path = DEFAULT_STORE,
                      survey_file: str | Path | None = None, skip_bad: bool = False, models: Sequence[str] | None = None,
                      on_problem: Callable[[RowProblem], None] | None = None) -> ImportSummary:
    """`probekit import` of a judgments or answers file (`fmt`)."""
    if fmt == "judgments":
        return import_judgments(path, store=store_path, skip_bad=skip_bad, on_problem=on_problem)
    if fmt == "answers":
        survey = None
        if survey_file is not None:
            from probekit.survey.loader import load_survey

            survey = load_survey(survey_file)
        return import_answers(path, store=store_path, survey=survey, models=models, skip_bad=skip_bad, on_problem=on_problem)
    raise ImportRefused(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


# -- shared: one import run ----------------------------------------------------------------------------

def _record(store: Store, source: Path, fmt: str, survey: Survey, trials: list[Trial], rows: list[ResultRow],
            problems: list[RowProblem], extra: dict[str, Any] | None = None) -> ImportSummary:
    from ulid import ULID

    from probekit.provenance import package_versions, survey_hash

    digest = survey_hash(survey)
    models = sorted({r.model for r in rows})
    config: dict[str, Any] = {
        "surveys": [{"id": survey.id, "hash": digest}], "models": models,
        "import": {"format": fmt, "file": source.name, "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
                   "rows": len(rows), "skipped": len(problems), **(extra or {})},
    }
    run_hash = config_hash(config)
    summary = ImportSummary(run_id=None, imported=len(rows), skipped=problems, models=models, surveys=[survey.id])
    previous = _previous_import(store, run_hash)
    if previous:
        summary.run_id, summary.imported, summary.already = previous, 0, True
        return summary
    if not rows:
        return summary
    run_id = str(ULID())
    recorder = StoreRecorder(store)
    with recorded_run(recorder, run_id, config, run_hash, package_versions()):  # all of it, or nothing
        with recorder.session():
            recorder.record_survey(survey, digest, None)
            recorder.record_trials(run_id, digest, trials)
            for name in models:
                recorder.record_model(run_id, name, {"backend": "import", "resolved_name": name, "source_format": fmt,
                                                     "source_file": source.name})
        for start in range(0, len(rows), 5000):
            recorder.record_results([row.with_(run_id=run_id) for row in rows[start:start + 5000]])
    summary.run_id = run_id
    return summary


def _finish(problems: list[RowProblem], skip_bad: bool, on_problem: Callable[[RowProblem], None] | None) -> None:
    problems.sort(key=lambda p: p.line)
    if problems and not skip_bad:
        raise BadRows(problems)
    if on_problem:
        for problem in problems:
            on_problem(problem)


# -- judgments ---------------------------------------------------------------------------------------------

def _check_judgment(data: Any) -> str | None:
    if not isinstance(data, dict):
        return "each line must be a JSON object"
    unknown = sorted(set(data) - JUDGMENT_FIELDS)
    if unknown:
        return f"unknown field(s) {unknown}; allowed: {sorted(JUDGMENT_FIELDS)}"
    for name in ("judge", "question", "model_a", "model_b"):
        if not isinstance(data.get(name), (str, int)) or data.get(name) == "":
            return f"missing or empty {name!r}"
    if str(data["model_a"]) == str(data["model_b"]):
        return "model_a and model_b are the same model"
    if data.get("first") not in ("model_a", "model_b"):
        return "'first' must be model_a or model_b (which answer was shown first, as assistant A)"
    if ("verdict" in data) == ("probs" in data):
        return "give exactly one of verdict or probs"
    if "verdict" in data and str(data["verdict"]).upper() not in VERDICTS:
        return "'verdict' must be A, B, C or tie (as shown: A = the answer shown first)"
    if "probs" in data:
        probs = data["probs"]
        if (not isinstance(probs, list) or len(probs) not in (2, 3)
                or not all(isinstance(p, (int, float)) and not isinstance(p, bool) and p >= 0 for p in probs) or sum(probs) <= 0):
            return "'probs' must be [P(A), P(B)] or [P(A), P(B), P(tie)] as shown, non-negative, not all 0"
    sample = data.get("sample", 0)
    if not isinstance(sample, int) or isinstance(sample, bool) or sample < 0:
        return "'sample' must be a whole number >= 0"
    return None


def import_judgments(path: str | Path, *, store: Store | str | Path = DEFAULT_STORE,
                     skip_bad: bool = False, on_problem: Callable[[RowProblem], None] | None = None) -> ImportSummary:
    """Import judgments made elsewhere as a pairwise survey and one run (its models are the judges)."""
    source = Path(path)
    if not source.exists():
        raise ImportRefused(f"{source}: file not found")
    store_obj = store if isinstance(store, Store) else Store(store)
    problems: list[RowProblem] = []
    good: list[tuple[int, dict[str, Any]]] = []
    for number, data, error in iter_jsonl(source):
        message = f"invalid JSON ({error}); write one JSON object per line" if error is not None else _check_judgment(data)
        if message:
            problems.append(RowProblem(str(source), number, message))
        else:
            good.append((number, data))
    surveys = {str(d.get("survey", "judgments")) for _n, d in good}
    if len(surveys) > 1:
        raise ImportRefused(f"the file names several surveys ({', '.join(sorted(surveys))}): import one survey per file")
    survey_id = surveys.pop() if surveys else "judgments"
    tie = any(str(d.get("verdict", "")).upper() in ("C", "TIE") or len(d.get("probs") or []) == 3 for _n, d in good)
    items: dict[str, dict[str, Any]] = {}
    for _number, data in good:
        a, b = sorted((str(data["model_a"]), str(data["model_b"])))
        question = str(data["question"])
        item_id = f"{question}|{a}|{b}"
        texts = {str(data["model_a"]): data.get("answer_a"), str(data["model_b"]): data.get("answer_b")}
        item = items.setdefault(item_id, {
            "id": item_id, "fields": {"question": str(data.get("question_text") or question)},
            "options": [{"text": str(texts[a] or f"(the answer of {a})"), "id": a},
                        {"text": str(texts[b] or f"(the answer of {b})"), "id": b}],
            "meta": {"question_id": question, "models": [a, b]}})
        if data.get("category"):
            item["meta"]["category"] = str(data["category"])
    survey = Survey.model_validate({
        "id": survey_id, "kind": "pairwise", "title": f"Judgments imported from {source.name}",
        "description": "Pairwise judgments made elsewhere (probekit import, format judgments); the prompts were not "
                       "recorded, so each trial stands for 'the pair shown in this order'.",
        "labels": "letters", "pairwise": {"tie": tie},
        "templates": [{"id": "imported", "user": "{question}\n\n[A]\n{option_1}\n\n[B]\n{option_2}"}],
        "items": sorted(items.values(), key=lambda i: i["id"])})
    trials = {(t.item_id, t.order[0]): t for t in expand(survey)}
    rows: list[ResultRow] = []
    seen: dict[tuple[str, str, int], int] = {}
    for number, data in good:
        a, b = sorted((str(data["model_a"]), str(data["model_b"])))
        first_model = str(data[str(data["first"])])
        trial = trials[(f"{data['question']}|{a}|{b}", 0 if first_model == a else 1)]
        n = trial.n_options
        if "verdict" in data:
            position = VERDICTS[str(data["verdict"]).upper()]
            choice = trial.order[position]
            answer: dict[str, Any] = {"mode": "sample", "choice": choice, "distribution": [1.0 if k == choice else 0.0 for k in range(n)]}
        else:
            shown = [float(p) for p in data["probs"]] + [0.0] * (n - len(data["probs"]))
            total = sum(shown)
            canonical = [0.0] * n
            for position, canonical_index in enumerate(trial.order):
                canonical[canonical_index] = shown[position] / total
            answer = {"mode": "logprob", "distribution": canonical, "valid_mass": total,
                      "choice": max(range(n), key=lambda k: canonical[k])}
        key = (trial.trial_id, str(data["judge"]), int(data.get("sample", 0)))
        if key in seen:
            problems.append(RowProblem(str(source), number, f"duplicate of line {seen[key]} (same judge, pair, order and sample)"))
            continue
        seen[key] = number
        rows.append(ResultRow(trial_id=trial.trial_id, model=str(data["judge"]), sample_index=int(data.get("sample", 0)),
                              raw_text=data.get("raw_text"), attempts=0, status="ok", **answer))
    _finish(problems, skip_bad, on_problem)
    used = {r.trial_id for r in rows}
    return _record(store_obj, source, "judgments", survey, [t for t in trials.values() if t.trial_id in used], rows, problems)


# -- answers -----------------------------------------------------------------------------------------------

def _answer_lines(source: Path, models: Sequence[str] | None,
                  problems: list[RowProblem]) -> list[tuple[int, str | None, str, str, int, str]]:
    """(line, survey id or None, item, model, sample, text) of an answers file in either shape."""
    wanted = set(models) if models is not None else None
    out: list[tuple[int, str | None, str, str, int, str]] = []
    for number, data, error in iter_jsonl(source):
        if error is not None or not isinstance(data, dict):
            problems.append(RowProblem(str(source), number, "invalid JSON object; write one JSON object per line"))
            continue
        if "answers" in data and "turns" in data:  # MT-Bench: one question, every model's two turns
            answers = data["answers"]
            if "question_id" not in data or not isinstance(answers, dict):
                problems.append(RowProblem(str(source), number, "an MT-Bench line needs question_id and answers {model: [turns]}"))
                continue
            for model, turns in sorted(answers.items()):
                if wanted is not None and model not in wanted:
                    continue
                if not isinstance(turns, list) or not turns or not isinstance(turns[0], str):
                    problems.append(RowProblem(str(source), number, f"answers[{model!r}] must be a list of turn texts"))
                    continue
                out.append((number, None, str(data["question_id"]), str(model), 0, turns[0]))
            continue
        if (not isinstance(data.get("item"), (str, int)) or not isinstance(data.get("model"), str)
                or not isinstance(data.get("answer"), str)):
            problems.append(RowProblem(str(source), number, "an answer line needs item, model and answer (text)"))
            continue
        if wanted is not None and data["model"] not in wanted:
            continue
        sample = data.get("sample", 0)
        if not isinstance(sample, int) or isinstance(sample, bool) or sample < 0:
            problems.append(RowProblem(str(source), number, "'sample' must be a whole number >= 0"))
            continue
        out.append((number, data.get("survey"), str(data["item"]), data["model"], sample, data["answer"]))
    return out


def import_answers(path: str | Path, *, store: Store | str | Path = DEFAULT_STORE,
                   survey: Survey | None = None, models: Sequence[str] | None = None, skip_bad: bool = False,
                   on_problem: Callable[[RowProblem], None] | None = None) -> ImportSummary:
    """Import free answers made elsewhere as `generate` results of one run (only `models`, when given). The
    survey: `survey`, else the id the lines name (stored spec, else bundled surveys/<id>.yaml), else the bundled
    MT-Bench survey for MT-Bench lines."""
    source = Path(path)
    if not source.exists():
        raise ImportRefused(f"{source}: file not found")
    store_obj = store if isinstance(store, Store) else Store(store)
    problems: list[RowProblem] = []
    lines = _answer_lines(source, models, problems)
    if survey is None:
        named = {s for _n, s, *_rest in lines if s is not None}
        if len(named) > 1:
            raise ImportRefused(f"the file names several surveys ({', '.join(sorted(named))}): import one survey per file")
        survey_id = named.pop() if named else "mtbench"
        stored = _stored_survey(store_obj, survey_id)
        if stored is not None:
            survey = stored[0]
        elif (REPO_SURVEYS / f"{survey_id}.yaml").exists():
            from probekit.survey.loader import load_survey

            survey = load_survey(REPO_SURVEYS / f"{survey_id}.yaml")
        else:
            raise ImportRefused(f"survey {survey_id!r} is not in the store nor bundled: pass --survey FILE")
    if survey.kind != "generate":
        raise ImportRefused(f"answers answer a generate survey; {survey.id!r} is {survey.kind}")
    by_item: dict[str, Trial] = {}
    for form in expand(survey, policy="identity", reasoning_modes=["direct"]):
        by_item.setdefault(form.item_id, form)  # the first form of each item (its first template)
    rows: list[ResultRow] = []
    seen: dict[tuple[str, str, int], int] = {}
    for number, _survey, item, model, sample, text in lines:
        matched = by_item.get(item)
        if matched is None:
            problems.append(RowProblem(str(source), number, f"survey {survey.id!r} has no item {item!r}"))
            continue
        trial = matched
        key = (trial.trial_id, model, sample)
        if key in seen:
            problems.append(RowProblem(str(source), number, f"duplicate answer of {model} to {item} (line {seen[key]})"))
            continue
        seen[key] = number
        rows.append(ResultRow(trial_id=trial.trial_id, model=model, sample_index=sample, mode="generate",
                              status="ok" if text.strip() else "invalid", raw_text=text, attempts=0))
    _finish(problems, skip_bad, on_problem)
    used = {r.trial_id for r in rows}
    return _record(store_obj, source, "answers", survey, [t for t in by_item.values() if t.trial_id in used], rows, problems,
                   {"models_requested": sorted(models) if models is not None else None})
