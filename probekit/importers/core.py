"""Match imported responses to a survey's trials and store them as one run, like probekit's own results.

All-or-nothing: every bad row is reported with its line; unless `skip_bad` is set nothing is written. One call
imports any number of files and directories (a directory: every .jsonl, .json and .csv file below it) as one
run. Re-importing is a no-op by content: a row whose answer an earlier import already stored (same trial, model
and sample) is not stored again, whatever the file looks like; the same key with another answer is a bad row.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probekit.defaults import DEFAULT_STORE
from probekit.errors import ProbekitError
from probekit.hashing import config_hash
from probekit.importers.itemtext import ItemTexts
from probekit.importers.records import Parsed, Response, RowProblem
from probekit.store.recorder import StoreRecorder, recorded_run
from probekit.store.rows import ResultRow
from probekit.store.store import Store
from probekit.survey.expand import Trial, build_trial, expand, item_options
from probekit.survey.schema import Survey

FORMATS = ("generic", "pobs", "moralchoice", "judgments", "answers")
"""judgments and answers (judge data) are imported by probekit.importers.judgments."""
REPO_SURVEYS = Path(__file__).resolve().parents[2] / "surveys"


class ImportRefused(ProbekitError):
    """The import cannot start (unknown format, survey not found ...): message says what to do."""


class BadRows(ProbekitError):
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
    """True when every row was imported before (the earlier run id is returned, nothing is written)."""
    files: int = 1
    """Files read."""
    already_stored: int = 0
    """Rows an earlier import had stored with the same answer (not stored again)."""
    repeated: int = 0
    """Rows given twice in this import (overlapping files) with the same answer: stored once."""
    polarity_overridden: int = 0
    """POBs answers whose recorded polarity differs from the survey's, imported with the survey's polarity
    (`trust_spec_polarity`)."""
    ignored_files: list[str] = field(default_factory=list)
    """Files in the directories given whose extension is no import format (README.md ...)."""
    respondents: int = 0
    """Distinct named respondents among the rows stored (0: every row is the model itself)."""


IMPORT_SUFFIXES = (".jsonl", ".json", ".csv")
SURVEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def expand_sources(paths: str | Path | Sequence[str | Path]) -> tuple[list[Path], list[str]]:
    """The files to import from the paths given, in order: a file as is, a directory as every .jsonl/.json/.csv
    file below it (sorted, hidden ones skipped). Returns (files, ignored files of the directories). Raises
    ImportRefused for a missing path, a device, or a directory without such files."""
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not items:
        raise ImportRefused("no file given: name one or more files or directories to import")
    files: list[Path] = []
    ignored: list[str] = []
    for item in map(Path, items):
        if item.is_dir():
            below = sorted(p for p in item.rglob("*")
                           if p.is_file() and not any(part.startswith(".") for part in p.relative_to(item).parts))
            chosen = [p for p in below if p.suffix.lower() in IMPORT_SUFFIXES]
            ignored.extend(str(p) for p in below if p.suffix.lower() not in IMPORT_SUFFIXES)
            if not chosen:
                raise ImportRefused(f"{item}: a directory with no {', '.join(IMPORT_SUFFIXES)} files to import")
            files.extend(chosen)
        elif not item.exists():
            raise ImportRefused(f"{item}: file not found")
        elif not item.is_file():
            raise ImportRefused(f"{item}: not a regular file (a device, pipe or socket)")
        else:
            files.append(item)
    unique = list(dict.fromkeys(p.resolve() for p in files))
    return [next(p for p in files if p.resolve() == u) for u in unique], ignored


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
        if survey_id is not None and not SURVEY_ID.fullmatch(survey_id):
            continue  # not an id (a path?): reported per row, never looked up as a file
        if survey_id is None:
            if given is None and "pobs" in fmt.split(","):
                # the published POBs files carry their questions, options and polarities: the survey is built from them
                from probekit.importers.pobs import survey_from_files

                try:
                    found[None] = (survey_from_files(sorted({Path(r.source) for r in parsed.responses if r.source})), None)
                except ValueError as error:
                    raise ImportRefused(f"these rows name no survey and {error}") from None
                continue
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
        if response.shown is not None:
            # Compare with the named template's forms first, so a mismatch lists that template's options.
            named = [t for t in candidates if t.template_id == form.get("template")] or candidates
            by_shown = self._filter_shown(named, response.shown)
            if isinstance(by_shown, str):
                return by_shown
            if "order" in form and not any(list(t.order) == form["order"] for t in by_shown):
                # two statements of the shown order that disagree: neither may win silently
                return (f"form.order {form['order']} disagrees with shown {response.shown} (order "
                        f"{list(by_shown[0].order)}): give one of them")
            candidates = by_shown
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

    def _filter_shown(self, trials: list[Trial], shown: list[str]) -> list[Trial] | str:
        """The forms whose options, listed in the order the source showed them, are `shown`: each form in that
        order (built as probekit renders it when the spec's policy does not list the order)."""
        from probekit.importers.labels import order_from_texts

        kept: dict[str, Trial] = {}
        for trial in trials:
            template = self.templates[trial.template_id]
            canonical = [o.text for o in item_options(self.survey, self.items[trial.item_id])]
            for texts in ([template.option_texts] if template.option_texts is not None else []) + [canonical]:
                order = order_from_texts(shown, texts)
                if order is not None:
                    chosen = trial if list(trial.order) == order else self._with_order([trial], tuple(order))[0]
                    kept.setdefault(chosen.trial_id, chosen)
                    break
        if not kept:
            options = trials[0].shown_options if trials else ()
            return (f"shown {shown} are not the options of item {trials[0].item_id if trials else '?'!r} in some order "
                    f"(its options: {', '.join(map(repr, options))}; case and punctuation are ignored)")
        return list(kept.values())

    @staticmethod
    def _axes(trials: list[Trial]) -> dict[str, set[Any]]:
        return {
            "template": {t.template_id for t in trials}, "paraphrase": {t.paraphrase_id for t in trials},
            "order": {t.order for t in trials}, "reasoning": {t.reasoning for t in trials},
            **{name: {t.factors.get(name) for t in trials} for name in {n for t in trials for n in t.factors}},
        }

    def _filter(self, trials: list[Trial], key: str, value: Any) -> list[Trial] | str:
        if key == "template":
            chosen = [t for t in trials if t.template_id == value]
            if not chosen and value not in self.templates:
                return f"template {value!r} is not a template of survey {self.survey.id!r}: use one of {', '.join(self.templates)}"
            return chosen
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
            levels = list(self.survey.factors[name])
            source_ids = self.survey.meta.get(f"{name}_source_ids")
            if value not in levels and isinstance(source_ids, dict):
                # the source's own ids of the levels (PCT forcing: jail-01 ... jail-05), as in the published data
                value = next((level for level, source in source_ids.items() if source == value), value)
            if value not in levels:
                known = ", ".join(map(str, levels))
                if isinstance(source_ids, dict) and source_ids:
                    known += " (or the source's ids " + ", ".join(str(source_ids[k]) for k in levels if k in source_ids) + ")"
                return f"{name}={value!r} is not a level of factor {name!r}: use one of {known}"
            return [t for t in trials if t.factors.get(name) == value]
        return (f"unknown form key {key!r}; use template, paraphrase, order, reasoning, setup or a factor "
                f"({', '.join(self.survey.factors) or 'none'})")

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


def _answer(response: Response, trial: Trial, survey: Survey, trust_spec_polarity: bool = False,
            overridden: list[int] | None = None) -> dict[str, Any] | str:
    """The stored answer fields of a row, or why it cannot be stored. With `trust_spec_polarity` an answer whose
    recorded polarity differs from the chosen option's is stored with the option (its polarity is the survey's)
    and counted in `overridden`."""
    n = trial.n_options
    field_name = response.answer_key or "selected"
    if response.label is not None:
        from probekit.importers.labels import is_positional, shown_choice

        stated = "order" in response.form or "template" in response.form or response.shown is not None
        if response.label_needs_order and not stated and is_positional(response.label, trial):
            # The same "A" is option 0 under one prompt and option 4 under a reversed one: never guess.
            return (f"{field_name} {response.label!r} is a position in the order the options were shown, and the row does "
                    "not say which order that was: add form.order (canonical indices in shown order, e.g. "
                    f"{list(reversed(range(n)))} for a reversed scale), shown (the option texts as shown) or "
                    "form.template (the template whose order it was)")
        texts = [o.text for o in item_options(survey, next(i for i in survey.items if i.id == trial.item_id))]
        resolved = shown_choice(response.label, trial, texts)
        if isinstance(resolved, str):
            return f"{field_name} {response.label!r} {resolved}"
        response.choice = resolved
    if response.choice is not None:
        if response.choice >= n:
            return f"choice {response.choice} is outside 0..{n - 1} (item has {n} options)"
        if response.check_polarity is not None:
            option = item_options(survey, next(i for i in survey.items if i.id == trial.item_id))[response.choice]
            if option.polarity is not None and abs(option.polarity - response.check_polarity) > 1e-6:
                if trust_spec_polarity:
                    if overridden is not None:
                        overridden.append(response.line)
                else:
                    shown = response.label if response.label is not None else f"option {response.choice}"
                    polarity_key = "reconsidered_polarity" if field_name == "reconsidered_selection" else "answer_polarity"
                    return (f"{polarity_key} {response.check_polarity:g} disagrees with {field_name} {shown} "
                            f"({option.text!r}, polarity {option.polarity:g} in the survey): is --survey the spec these "
                            "answers came from? (--trust-spec-polarity imports them with the survey's polarity)")
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
    path: str | Path | Sequence[str | Path],
    *,
    fmt: str | None = None,
    survey_file: str | Path | None = None,
    skip_bad: bool = False,
    store_path: str | Path = DEFAULT_STORE,
    model: str | None = None,
    on_problem: Callable[[RowProblem], None] | None = None,
    trust_spec_polarity: bool = False,
    new_run: bool = False,
    match_items: str = "id",
) -> ImportSummary:
    """Import files (and directories of files) of responses into the store as one run. Raises BadRows (nothing
    written) when a row is bad and `skip_bad` is False, ImportRefused when the import cannot start.

    `trust_spec_polarity`: POBs answers whose recorded polarity differs from the survey's option are imported
    with the survey's polarity (the published files code non-polar answers differently from file to file).
    `new_run`: store every row as a new run even if an earlier import stored the same answers.
    `match_items`: "id" (rows name the spec's item ids; a row's item_text must be that item's text) or "text" (rows
    are matched to the item whose text their item_text is: a source numbered differently from the spec)."""
    from probekit.importers.itemtext import MATCH_MODES

    if match_items not in MATCH_MODES:
        raise ImportRefused(f"--match-items {match_items!r}: use {' or '.join(MATCH_MODES)}")
    from probekit.importers.judgments import FORMATS as JUDGE_FORMATS
    from probekit.importers.judgments import import_judge_file, sniff_format

    sources, ignored = expand_sources(path)

    def sniff(source: Path) -> str | None:
        try:
            return sniff_format(source)
        except ValueError:  # not UTF-8 text: the format's own reader reports it line by line
            return None

    formats = {source: fmt or sniff(source) or detect_format(source) for source in sources}
    judged = [s for s, f in formats.items() if f in JUDGE_FORMATS]
    if judged:  # pairwise judgments, or the free answers judges compare
        if len(sources) > 1:
            raise ImportRefused(f"{judged[0]} holds judge data ({formats[judged[0]]}): import judge files one at a time")
        return import_judge_file(sources[0], formats[sources[0]], store_path=store_path, survey_file=survey_file,
                                 skip_bad=skip_bad, models=[model] if model else None, on_problem=on_problem)
    store = Store(store_path)
    store.check_writable()
    parsed = Parsed()
    for source in sources:
        one = _parse(source, formats[source], model)
        for response in one.responses:
            response.source = str(source)
        parsed.responses.extend(one.responses)
        parsed.problems.extend(one.problems)
    summary = _match_and_store(parsed, sources, formats, survey_file, store, skip_bad=skip_bad, on_problem=on_problem,
                               trust_spec_polarity=trust_spec_polarity, new_run=new_run, match_items=match_items)
    summary.ignored_files = ignored
    return summary


def _match_and_store(parsed: Parsed, sources: list[Path], formats: dict[Path, str], survey_file: str | Path | None,
                     store: Store, *, skip_bad: bool, on_problem: Callable[[RowProblem], None] | None,
                     trust_spec_polarity: bool, new_run: bool, match_items: str = "id") -> ImportSummary:
    from ulid import ULID

    from probekit.provenance import package_versions, survey_hash

    problems = list(parsed.problems)
    surveys = _surveys(parsed, ",".join(sorted(set(formats.values()))), Path(survey_file) if survey_file else None, store)
    indexes = {key: _TrialIndex(survey) for key, (survey, _p) in surveys.items()}
    texts: dict[str | None, ItemTexts] = {}
    rows: list[ResultRow] = []
    lines: list[tuple[str, int]] = []
    used: dict[str | None, dict[str, Trial]] = {}
    seen: dict[tuple[str, str, str, int], tuple[str, int, tuple[Any, ...]]] = {}
    repeated = 0
    overridden: list[int] = []
    for response in parsed.responses:
        where = response.source or str(sources[0])
        index = indexes.get(response.survey)
        if index is None:
            if response.survey is not None and not SURVEY_ID.fullmatch(response.survey):
                message = f"survey {response.survey[:60]!r} is not a survey id (letters, digits, _ . -; no path)"
            else:
                message = f"survey {response.survey!r} is not in the store, not bundled in surveys/, and not given with --survey"
            problems.append(RowProblem(where, response.line, message))
            continue
        if response.survey not in texts:
            texts[response.survey] = ItemTexts(index.survey)
        identity = _identify_item(response, texts[response.survey], match_items)
        if identity:
            problems.append(RowProblem(where, response.line, identity, kind=_kind(identity)))
            continue
        trial = index.match(response)
        if isinstance(trial, str):
            problems.append(RowProblem(where, response.line, trial, kind=_kind(trial)))
            continue
        if response.prompt is not None or response.prompt_template is not None:
            trial = _source_prompt(response, trial, index.survey)
            if isinstance(trial, str):
                problems.append(RowProblem(where, response.line, trial, kind=_kind(trial)))
                continue
        answer = _answer(response, trial, index.survey, trust_spec_polarity, overridden)
        if isinstance(answer, str):
            problems.append(RowProblem(where, response.line, answer, kind=_kind(answer)))
            continue
        key = (trial.trial_id, response.model, response.respondent, response.sample)
        same = _answer_of(answer["status"], answer.get("choice"), answer.get("distribution"))
        if key in seen:
            first = seen[key]
            if first[2] == same:  # the same row twice (overlapping files): stored once
                repeated += 1
                continue
            at = f"line {first[1]}" if first[0] == where else f"{first[0]}:{first[1]}"
            problems.append(RowProblem(where, response.line, f"duplicate of {at} (same item, form, model, respondent and "
                                       "sample) with another answer",
                                       kind="two answers for the same item, form, model, respondent and sample"))
            continue
        seen[key] = (where, response.line, same)
        used.setdefault(response.survey, {})[trial.trial_id] = trial
        rows.append(ResultRow(trial_id=trial.trial_id, model=response.model, respondent=response.respondent,
                              sample_index=response.sample, raw_text=response.raw_text, attempts=0, **answer))
        lines.append((where, response.line))
    stored_before, conflicts = ({}, {}) if new_run else _stored_imports(store, rows)
    for row, (where, line) in zip(rows, lines):
        previous = conflicts.get(_row_key(row))
        if previous:
            problems.append(RowProblem(where, line, f"run {previous} (an earlier import) stored another answer for this "
                                       "item, form, model, respondent and sample; import it as a separate run with "
                                       "--new-run", kind="another answer already imported for the same key"))
    order = {str(source): k for k, source in enumerate(sources)}
    problems.sort(key=lambda p: (order.get(p.path, len(order)), p.line))
    if problems and not skip_bad:
        raise BadRows(problems)
    if on_problem:
        for problem in problems:
            on_problem(problem)
    conflicted = {_row_key(row) for row in rows if _row_key(row) in conflicts}
    fresh = [row for row in rows if _row_key(row) not in stored_before and _row_key(row) not in conflicted]
    digests = {key: survey_hash(survey) for key, (survey, _p) in surveys.items()}
    models = sorted({r.model for r in fresh})
    summary = ImportSummary(run_id=None, imported=len(fresh), skipped=problems, models=models,
                            surveys=sorted({surveys[k][0].id for k in used}), files=len(sources),
                            already_stored=len(rows) - len(fresh) - len(conflicted), repeated=repeated,
                            polarity_overridden=len(overridden))
    if not fresh:
        if stored_before:
            summary.run_id, summary.already = sorted(set(stored_before.values()))[0], True
            summary.models = sorted({r.model for r in rows})
        return summary
    trials_needed = {row.trial_id for row in fresh}
    config: dict[str, Any] = {
        "surveys": sorted(({"id": surveys[k][0].id, "hash": digests[k]} for k in used), key=lambda s: s["id"]),
        "models": models,
        "import": {"format": ",".join(sorted(set(formats.values()))), "files": [s.name for s in sources][:1000],
                   "n_files": len(sources), "rows": len(fresh), "skipped": len(problems),
                   "content": _content_digest(fresh), "trust_spec_polarity": trust_spec_polarity},
    }
    if match_items != "id":
        config["import"]["match_items"] = match_items
    respondents = sorted({row.respondent for row in fresh} - {""})
    if respondents:
        config["import"]["respondents"] = summary.respondents = len(respondents)
    if len(sources) == 1:
        config["import"]["file"] = sources[0].name
    run_hash = config_hash(config)
    run_id = str(ULID())
    recorder = StoreRecorder(store)
    try:
        with recorded_run(recorder, run_id, config, run_hash, package_versions()), recorder.session():
            for survey_key, trials in used.items():
                survey, survey_path = surveys[survey_key]
                recorder.record_survey(survey, digests[survey_key], survey_path)
                recorder.record_trials(run_id, digests[survey_key], [t for t in trials.values() if t.trial_id in trials_needed])
            for name in models:
                recorder.record_model(run_id, name, {"backend": "import", "resolved_name": name,
                                                     "source_format": config["import"]["format"],
                                                     "source_file": sources[0].name if len(sources) == 1 else f"{len(sources)} files"})
            for start in range(0, len(fresh), 5000):
                recorder.record_results([row.with_(run_id=run_id) for row in fresh[start:start + 5000]])
    except Exception as error:  # the run was discarded: nothing of a failed import stays behind
        raise ImportRefused(f"the store refused the rows ({str(error).splitlines()[0]}); nothing was imported") from None
    summary.run_id = run_id
    return summary


def _identify_item(response: Response, texts: ItemTexts, match_items: str) -> str | None:
    """Set the row's item from its text (`match_items` "text"), or check its text against the item it names; the
    problem when neither works."""
    if match_items == "text":
        if response.item_text is None:
            return "--match-items text matches rows by their item_text, and this row has none: add item_text"
        try:
            response.item = texts.find(response.item_text)
        except LookupError as error:
            return str(error)
        return None
    if not response.item:
        return "the row names no item: give 'item', or match rows by their item_text with --match-items text"
    return texts.check(response.item, response.item_text) if response.item_text is not None else None


def _source_prompt(response: Response, trial: Trial, survey: Survey) -> Trial | str:
    """The trial with the prompt the source used (exact, or its template rendered for this item)."""
    from probekit.importers.prompts import unknown_placeholders, with_prompt, with_prompt_template

    if response.prompt is not None:
        return with_prompt(trial, response.prompt)
    assert response.prompt_template is not None
    unknown = unknown_placeholders(response.prompt_template, survey, trial)
    if unknown:
        return (f"prompt_template has placeholder(s) {', '.join('{' + u + '}' for u in unknown)} that item "
                f"{trial.item_id!r} cannot fill: use its fields ({', '.join(index_fields(survey, trial)) or 'none'}), "
                "{options}, {labels}, {option_1} ... or write the exact prompt as 'prompt'")
    return with_prompt_template(trial, survey, response.prompt_template)


def index_fields(survey: Survey, trial: Trial) -> list[str]:
    return list(next(i for i in survey.items if i.id == trial.item_id).fields)


def _kind(message: str) -> str:
    """A message without the item it names, to summarise many rows with one problem."""
    return re.sub(r"item '[^']*'", "item …", re.sub(r"line \d+", "line …", message))


def _row_key(row: ResultRow) -> tuple[str, str, str, int]:
    return (row.trial_id, row.model, row.respondent, int(row.sample_index))


def _answer_of(status: Any, choice: Any, distribution: Any) -> tuple[Any, ...]:
    """What an answer is, comparable across a ResultRow and a stored row."""
    import math

    dist = tuple(round(float(p), 9) for p in distribution) if distribution is not None and not (
        isinstance(distribution, float) and math.isnan(distribution)) else None
    return (str(status), None if choice is None or (isinstance(choice, float) and math.isnan(choice)) else int(choice), dist)


def _content_digest(rows: list[ResultRow]) -> str:
    """The rows' content (key and answer), independent of their order and of the file's bytes."""
    # The respondent enters only when there is one, so imports without respondents keep the digest they had.
    keys = sorted(json.dumps([*(_row_key(r) if r.respondent else (r.trial_id, r.model, int(r.sample_index))),
                              *_answer_of(r.status, r.choice, r.distribution)]) for r in rows)
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()


def _stored_imports(store: Store, rows: list[ResultRow]) -> tuple[dict[tuple[str, str, str, int], str],
                                                                   dict[tuple[str, str, str, int], str]]:
    """Rows earlier imports stored with the same trial, model, respondent and sample: ({key: run} where the answer is
    the same, {key: run} where it differs)."""
    if not rows or not store.path.exists():
        return {}, {}
    import pandas as pd

    wanted = pd.DataFrame([_row_key(r) for r in rows], columns=["trial_id", "model", "respondent", "sample_index"])
    with store.connect(read_only=True) as con:
        con.register("wanted_rows", wanted)
        try:
            stored = con.execute(
                "SELECT r.trial_id, r.model, r.respondent, r.sample_index, r.status, r.choice, "
                "CAST(r.distribution AS DOUBLE[]), r.run_id "
                "FROM results r JOIN wanted_rows w USING (trial_id, model, respondent, sample_index) JOIN runs u USING (run_id) "
                "WHERE json_extract(u.config, '$.import') IS NOT NULL ORDER BY u.started_at").fetchall()
        finally:
            con.unregister("wanted_rows")
    answers = {_row_key(r): _answer_of(r.status, r.choice, r.distribution) for r in rows}
    same: dict[tuple[str, str, str, int], str] = {}
    differ: dict[tuple[str, str, str, int], str] = {}
    for trial_id, model, respondent, sample, status, choice, distribution, run_id in stored:
        key = (str(trial_id), str(model), str(respondent), int(sample))
        if _answer_of(status, choice, distribution) == answers.get(key):
            same.setdefault(key, str(run_id))
        else:
            differ.setdefault(key, str(run_id))
    return same, {key: run for key, run in differ.items() if key not in same}


def _previous_import(store: Store, config_hash: str) -> str | None:
    """The run of an identical earlier import (same file bytes, survey and models), so re-importing is a no-op."""
    if not store.path.exists():
        return None
    frame = store.query("SELECT run_id FROM runs WHERE config_hash = ? ORDER BY started_at LIMIT 1", [config_hash])
    return None if frame.empty else str(frame["run_id"][0])
