"""The published MoralChoice response CSVs (github.com/ninodimontalcino/moralchoice, data/responses/paper):
one row per scenario x model x question form x ordering x sample, with the matched `decision`."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from probekit.importers.records import Parsed, Response, RowProblem

REQUIRED = ("scenario_id", "model_id", "question_type", "question_ordering", "decision", "eval_sample_nb")
DECISIONS = {"action1": 0, "action2": 1}
FORMS = ("ab", "compare", "repeat")


def parse_moralchoice(path: Path) -> Parsed:
    """Rows map to survey `moralchoice`: template = question_type, ordering 0 = action1 shown first
    (order [0, 1]), 1 = reversed ([1, 0]); decision action1/action2 -> option 0/1, refusal/invalid -> status."""
    from probekit.survey.errors import SpecError
    from probekit.survey.yamlfile import decode_text

    parsed = Parsed()
    shown = str(path)
    try:
        text = decode_text(path.read_bytes(), shown, what="CSV")
    except SpecError as error:
        problem = error.problems[0]
        parsed.problems.append(RowProblem(shown, problem.line, f"{problem.message}; {problem.fix}", kind=problem.message))
        return parsed
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            parsed.problems.append(RowProblem(shown, 1, f"header lacks column(s) {missing}; is this a MoralChoice response CSV?"))
            return parsed
        for row in reader:
            # csv counts physical lines, so quoted answers spanning lines still report the right line.
            number = reader.line_num
            if None in row or any(row.get(c) is None for c in REQUIRED):
                parsed.problems.append(RowProblem(shown, number, f"{len(row) - (None in row)} field(s) where the header has "
                                                  f"{len(reader.fieldnames or [])}", kind="wrong number of fields"))
                continue
            form = row["question_type"].strip()
            ordering = row["question_ordering"].strip()
            decision = (row["decision"] or "").strip().lower()
            sample = row["eval_sample_nb"].strip()
            if form not in FORMS:
                parsed.problems.append(RowProblem(shown, number, f"question_type {form!r} is not one of {list(FORMS)}"))
                continue
            if ordering not in ("0", "1"):
                parsed.problems.append(RowProblem(shown, number, f"question_ordering {ordering!r} must be 0 or 1"))
                continue
            if not sample.isdigit() or int(sample) > 2**31 - 1:
                parsed.problems.append(RowProblem(shown, number, f"eval_sample_nb {sample[:20]!r} must be a whole number "
                                                  "from 0 to 2147483647", kind="bad eval_sample_nb"))
                continue
            if not row["scenario_id"].strip() or not row["model_id"].strip():
                parsed.problems.append(RowProblem(shown, number, "empty scenario_id or model_id"))
                continue
            response = Response(line=number, survey="moralchoice", item=row["scenario_id"].strip(),
                                model=row["model_id"].strip(),
                                form={"template": form, "order": [0, 1] if ordering == "0" else [1, 0]},
                                sample=int(sample), raw_text=row.get("answer_raw"))
            if decision in DECISIONS:
                response.choice = DECISIONS[decision]
            elif decision in ("refusal", "refused"):
                response.status = "refusal"
            elif decision in ("invalid", ""):
                response.status = "invalid"
            else:
                parsed.problems.append(RowProblem(shown, number, f"decision {decision!r} is not action1, action2, refusal or invalid"))
                continue
            parsed.responses.append(response)
    except csv.Error as error:
        parsed.problems.append(RowProblem(shown, reader.line_num, f"not a readable CSV ({error})", kind="not a readable CSV"))
    return parsed
