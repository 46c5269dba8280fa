"""Match imported responses to a survey's trials and store them as one run, like probekit's own results.

All-or-nothing: every bad row is reported with its line; unless `skip_bad` is set nothing is written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probekit.importers.records import Parsed, Response, RowProblem
from probekit.store.recorder import StoreRecorder
from probekit.store.rows import ResultRow
from probekit.store.store import Store
from probekit.survey.expand import Trial, build_trial, expand, item_options
from probekit.survey.schema import Survey

FORMATS = ("generic", "pobs", "moralchoice", "judgments", "answers")
"""judgments and answers (judge data) are imported by probekit.importers.judgments."""
REPO_SURVEYS = Path(__file__).resolve().parents[2] / "surveys"


class ImportRefused(Exception):
    """The import cannot start (unknown format, survey not found ...): message says what to do."""


class BadRows(Exception):
    """Some rows are bad and --skip-bad was not given: nothing was imported."""

    def __init__(self, problems: list[RowProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class ImportSummary:
    """What an import did."""

    run_id: str | None
    imported: int
    skipped: list[RowProblem] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    surveys: list[str] = field(default_factory=list)
    already: bool = False
    """True when the same file was imported before (its run id is returned, nothing is written)."""


def detect_format(path: Path) -> str:
    """Format from the file name: .jsonl generic, .csv MoralChoice, .json POBs."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return "generic"
    if suffix == ".csv":
        return "moralchoice"
    if suffix == ".json":
        return "pobs"
    raise ImportRefused(f"cannot tell the format of {path.name}; pass --format {'|'.join(FORMATS)}")


def _parse(path: Path, fmt: str, model: str | None) -> Parsed:
    if fmt == "generic":
        from probekit.importers.generic import parse_generic

        return parse_generic(path)
    if fmt == "moralchoice":
        from probekit.importers.moralchoice import parse_moralchoice

        return parse_moralchoice(path)
    if fmt == "pobs":
        from probekit.importers.pobs import parse_pobs

        return parse_pobs(path, model=model)
    raise ImportRefused(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def _surveys(parsed: Parsed, fmt: str, survey_file: Path | None, store: Store) -> dict[str | None, tuple[Survey, str | None]]:
    """The surveys the rows name: --survey FILE, else the store's latest spec with that id, else the bundled
    surveys/<id>.yaml. Key None = rows that name no survey (POBs files)."""
    from probekit.survey.loader import load_survey

    given: Survey | None = load_survey(survey_file) if survey_file else None
    wanted = {r.survey for r in parsed.responses}
    found: dict[str | None, tuple[Survey, str | None]] = {}
    for survey_id in wanted:
        if survey_id is None:
            if given is None:
                raise ImportRefused("these rows name no survey: pass --survey FILE (a spec whose item ids are the source's ids)")
            found[None] = (given, str(survey_file))
        elif given is not None and given.id == survey_id:
            found[survey_id] = (given, str(survey_file))
        else:
            stored = _stored_survey(store, survey_id)
            if stored is not None:
                found[survey_id] = stored
            elif (REPO_SURVEYS / f"{survey_id}.yaml").exists():
                bundled = REPO_SURVEYS / f"{survey_id}.yaml"
                found[survey_id] = (load_survey(bundled), str(bundled))
            else:
                # Reported per row below, so the user sees which lines name it.
                continue
    return found


def _stored_survey(store: Store, survey_id: str) -> tuple[Survey, str | None] | None:
    if not store.path.exists():
        return None
    frame = store.query("SELECT spec, path FROM surveys WHERE survey_id = ? ORDER BY created_at DESC LIMIT 1", [survey_id])
    if frame.empty:
        return None
    return Survey.model_validate_json(frame["spec"][0]), frame["path"][0]


class _TrialIndex:
    """A survey's trials by item, with matching of a row's `form` to exactly one trial."""

    def __init__(self, survey: Survey):
        self.survey = survey
        self.by_item: dict[str, list[Trial]] = {}
        for trial in expand(survey):
            self.by_item.setdefault(trial.item_id, []).append(trial)
        self.items = {item.id: item for item in survey.items}
        self.templates = {t.id: t for t in survey.templates}

    def _with_order(self, trials: list[Trial], order: tuple[int, ...]) -> list[Trial]:
        """Trials of the same forms shown in `order`: data collected elsewhere may use orders the spec's
        policy does not list (they are built exactly as probekit would render them)."""
        forms = {(t.template_id, t.paraphrase_id, tuple(sorted(t.factors.items())), t.reasoning): t for t in trials}
        return [build_trial(self.survey, self.items[t.item_id], self.templates[t.template_id], int(t.paraphrase_id[1:]),
                            dict(t.factors), order, t.reasoning) for t in forms.values()]

    def match(self, response: Response) -> Trial | str:
        """The one trial the row's form names, or why there is none."""
        candidates = self.by_item.get(response.item)
        if candidates is None:
            return f"survey {self.survey.id!r} has no item {response.item!r}"
        form = dict(response.form)
        for key, value in form.items():
            filtered = self._filter(candidates, key, value)
            if isinstance(filtered, str):
                return filtered
            candidates = filtered
            if not candidates:
                return f"no form of item {response.item!r} has {key}={value!r}"
        if len(candidates) > 1:
            axes = [name for name, values in self._axes(candidates).items() if len(values) > 1]
            if axes:
                return (f"form {form or '{}'} matches {len(candidates)} forms of item {response.item!r}; "
                        f"name {', '.join(axes)} in 'form'")
        return candidates[0]

    @staticmethod
    def _axes(trials: list[Trial]) -> dict[str, set[Any]]:
        return {
            "template": {t.template_id for t in trials}, "paraphrase": {t.paraphrase_id for t in trials},
            "order": {t.order for t in trials}, "reasoning": {t.reasoning for t in trials},
            **{name: {t.factors.get(name) for t in trials} for name in {n for t in trials for n in t.factors}},
        }

    def _filter(self, trials: list[Trial], key: str, value: Any) -> list[Trial] | str:
        if key == "template":
            return [t for t in trials if t.template_id == value]
        if key == "paraphrase":
            wanted = value if isinstance(value, str) else f"p{value}"
            return [t for t in trials if t.paraphrase_id == wanted]
        if key == "order":
            if not isinstance(value, list):
                return "form.order must be a list of canonical option indices in shown order, e.g. [1, 0]"
            n = trials[0].n_options if trials else 0
            if sorted(value) != list(range(n)):
                return f"form.order {value} is not an order of the {n} canonical option indices 0..{n - 1}"
            return [t for t in trials if list(t.order) == value] or self._with_order(trials, tuple(value))
        if key == "reasoning":
            return [t for t in trials if t.reasoning == value]
        if key == "setup":
            return self._setup(trials, value)
        name = key.removeprefix("factor_")
        if name in self.survey.factors:
            return [t for t in trials if t.factors.get(name) == value]
        return f"unknown form key {key!r}; use template, paraphrase, order, reasoning, setup or a factor ({', '.join(self.survey.factors) or 'none'})"

    def _setup(self, trials: list[Trial], value: Any) -> list[Trial] | str:
        """POBs setups (survey-conventions.md): reflection = a template with meta.setup reflection (after
        reasoning when the survey has that mode); reasoning / direct = the other templates in that mode."""
        if value not in ("direct", "reasoning", "reflection"):
            return f"form.setup must be direct, reasoning or reflection, not {value!r}"
        def is_reflection(t: Trial) -> bool:
            return self.templates[t.template_id].meta.get("setup") == "reflection"
        if value == "reflection":
            chosen = [t for t in trials if is_reflection(t)]
            reasoned = [t for t in chosen if t.reasoning == "reasoning"]
            return reasoned or chosen
        return [t for t in trials if not is_reflection(t) and t.reasoning == value]


def _answer(response: Response, trial: Trial, survey: Survey) -> dict[str, Any] | str:
    """The stored answer fields of a row, or why it cannot be stored."""
    n = trial.n_options
    if response.label is not None:
        matches = [k for k, label in enumerate(trial.labels) if label.lower() == response.label.lower()]
        if len(matches) != 1:
            return f"selected {response.label!r} is not one of the labels {list(trial.labels)}"
        response.choice = trial.order[matches[0]]
    if response.choice is not None:
        if response.choice >= n:
            return f"choice {response.choice} is outside 0..{n - 1} (item has {n} options)"
        if response.check_polarity is not None:
            option = item_options(survey, next(i for i in survey.items if i.id == trial.item_id))[response.choice]
            if option.polarity is not None and abs(option.polarity - response.check_polarity) > 1e-6:
                return (f"answer polarity {response.check_polarity} disagrees with option {response.choice} "
                        f"({option.text!r}, polarity {option.polarity}): is --survey the spec these answers came from?")
        return {"status": "ok", "mode": "sample", "choice": response.choice,
                "distribution": [1.0 if k == response.choice else 0.0 for k in range(n)]}
    if response.distribution is not None:
        if len(response.distribution) != n:
            return f"distribution has {len(response.distribution)} entries; item {trial.item_id!r} has {n} options"
        dist = response.distribution
        return {"status": "ok", "mode": "logprob", "distribution": dist,
                "choice": max(range(n), key=lambda k: dist[k]), "valid_mass": None}
    return {"status": response.status or "invalid", "mode": "sample", "choice": None, "distribution": None}


def import_responses(
    path: str | Path,
    *,
    fmt: str | None = None,
    survey_file: str | Path | None = None,
    skip_bad: bool = False,
    store_path: str | Path = Path("outputs/probekit.duckdb"),
    model: str | None = None,
    on_problem: Callable[[RowProblem], None] | None = None,
) -> ImportSummary:
    """Import a file of responses into the store as one run. Raises BadRows (nothing written) when a row is
    bad and `skip_bad` is False, ImportRefused when the import cannot start."""
    from ulid import ULID

    from probekit.provenance import package_versions, survey_hash

    source = Path(path)
    if not source.exists():
        raise ImportRefused(f"{source}: file not found")
    from probekit.importers.judgments import FORMATS as JUDGE_FORMATS, import_judge_file, sniff_format

    fmt = fmt or sniff_format(source) or detect_format(source)
    if fmt in JUDGE_FORMATS:  # pairwise judgments, or the free answers judges compare
        return import_judge_file(source, fmt, store_path=store_path, survey_file=survey_file, skip_bad=skip_bad,
                                 models=[model] if model else None, on_problem=on_problem)
    store = Store(store_path)
    store.check_writable()
    parsed = _parse(source, fmt, model)
    problems = list(parsed.problems)
    surveys = _surveys(parsed, fmt, Path(survey_file) if survey_file else None, store)
    indexes = {key: _TrialIndex(survey) for key, (survey, _p) in surveys.items()}
    rows: list[ResultRow] = []
    used: dict[str | None, dict[str, Trial]] = {}
    seen: dict[tuple[str, str, int], int] = {}
    for response in parsed.responses:
        index = indexes.get(response.survey)
        if index is None:
            problems.append(RowProblem(str(source), response.line,
                                       f"survey {response.survey!r} is not in the store, not bundled in surveys/, and not given with --survey"))
            continue
        trial = index.match(response)
        if isinstance(trial, str):
            problems.append(RowProblem(str(source), response.line, trial))
            continue
        answer = _answer(response, trial, index.survey)
        if isinstance(answer, str):
            problems.append(RowProblem(str(source), response.line, answer))
            continue
        key = (trial.trial_id, response.model, response.sample)
        if key in seen:
            problems.append(RowProblem(str(source), response.line,
                                       f"duplicate of line {seen[key]} (same item, form, model and sample)"))
            continue
        seen[key] = response.line
        used.setdefault(response.survey, {})[trial.trial_id] = trial
        rows.append(ResultRow(trial_id=trial.trial_id, model=response.model, sample_index=response.sample,
                              raw_text=response.raw_text, attempts=0, **answer))
    problems.sort(key=lambda p: p.line)
    if problems and not skip_bad:
        raise BadRows(problems)
    if on_problem:
        for problem in problems:
            on_problem(problem)
    digests = {key: survey_hash(survey) for key, (survey, _p) in surveys.items()}
    file_sha = hashlib.sha256(source.read_bytes()).hexdigest()
    models = sorted({r.model for r in rows})
    config: dict[str, Any] = {
        "surveys": sorted(({"id": surveys[k][0].id, "hash": digests[k]} for k in used), key=lambda s: s["id"]),
        "models": models,
        "import": {"format": fmt, "file": source.name, "sha256": file_sha, "rows": len(rows),
                   "skipped": len(problems)},
    }
    config_hash = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
    summary = ImportSummary(run_id=None, imported=len(rows), skipped=problems, models=models,
                            surveys=[s["id"] for s in config["surveys"]])
    previous = _previous_import(store, config_hash)
    if previous:
        summary.run_id, summary.imported, summary.already = previous, 0, True
        return summary
    if not rows:
        return summary
    run_id = str(ULID())
    recorder = StoreRecorder(store)
    recorder.begin_run(run_id, config, config_hash, package_versions())
    for survey_key, trials in used.items():
        survey, survey_path = surveys[survey_key]
        recorder.record_survey(survey, digests[survey_key], survey_path)
        recorder.record_trials(run_id, digests[survey_key], list(trials.values()))
    for name in models:
        recorder.record_model(run_id, name, {"backend": "import", "resolved_name": name, "source_format": fmt,
                                             "source_file": source.name})
    for start in range(0, len(rows), 5000):
        recorder.record_results([row.with_(run_id=run_id) for row in rows[start:start + 5000]])
    recorder.finish_run(run_id, "completed")
    summary.run_id = run_id
    return summary


def _previous_import(store: Store, config_hash: str) -> str | None:
    """The run of an identical earlier import (same file bytes, survey and models), so re-importing is a no-op."""
    if not store.path.exists():
        return None
    frame = store.query("SELECT run_id FROM runs WHERE config_hash = ? ORDER BY started_at LIMIT 1", [config_hash])
    return None if frame.empty else str(frame["run_id"][0])
