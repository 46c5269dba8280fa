"""Human reference distributions of a survey: read the sidecar table, check every distribution against its item,
and build the rows of the store's `human_distributions` table (docs/human-alignment.md).

An item carries `human: {group_var: {group: {shares, n}}}` inline, or a sidecar table (CSV or Parquet, named by the
survey's `human.file`) gives one row per question x group x option. Either way the load checks, and reports as
file:line — fix like every other spec problem: shares are finite, non-negative and sum to 1 within the tolerance,
they name the item's options (a list as long as the options, or option ids / texts), the groups are the declared
ones, the question ids exist, no distribution is given twice, and refusal options carry no ordinal position. The
survey that comes back has every distribution as a list in canonical option order, renormalised to sum 1.
"""

from __future__ import annotations

import csv
import difflib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probekit.survey.errors import SpecProblem
from probekit.survey.schema import HumanGroup, Item, Option, Survey

if TYPE_CHECKING:
    from probekit.survey.yamlfile import Locator

SIDECAR_COLUMNS = ("question_id", "group_var", "group", "option", "share")
"""Required columns of a sidecar table; `n` is optional."""
REFUSAL_TEXTS = ("refused", "don't know", "dont know", "dk/refused", "no answer", "not sure", "missing; not available",
                 "dk", "refuse", "don’t know", "prefer not to say")
"""Option texts that importers mark as refusals (compared lower-cased, without surrounding space)."""
MAX_PROBLEMS = 50


def is_refusal_text(text: str) -> bool:
    """True for option texts such as 'Refused', "Don't know", 'DK/Refused', 'No answer'."""
    return text.strip().lower() in REFUSAL_TEXTS


@dataclass(frozen=True)
class SidecarRow:
    """One row of a sidecar table, with where it was read."""

    line: int
    question_id: str
    group_var: str
    group: str
    option: str
    share: float
    n: float | None


def _number(text: Any) -> float:
    if text is None or (isinstance(text, str) and not text.strip()):
        return float("nan")
    return float(text)


def read_sidecar(path: Path) -> tuple[list[SidecarRow], list[SpecProblem]]:
    """The rows of a CSV (line = the file's line) or Parquet (line = 1-based row + 1, as if it had a header) table."""
    shown = str(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as error:  # noqa: BLE001 - pyarrow raises several types for a file that is no Parquet
            return [], [SpecProblem(shown, 1, f"cannot read the Parquet table: {error}", "write a Parquet file with "
                                    f"columns {', '.join(SIDECAR_COLUMNS)}[, n]")]
        records = table.to_pylist()
        columns = list(table.column_names)
        numbered: Iterator[tuple[int, dict[str, Any]]] = ((index + 2, record) for index, record in enumerate(records))
    else:
        from probekit.survey.yamlfile import read_text

        text = read_text(path, what="human distribution table", fix="give a CSV or Parquet table")
        reader = csv.DictReader(text.splitlines())
        columns = list(reader.fieldnames or [])

        def lines() -> Iterator[tuple[int, dict[str, Any]]]:
            for record in reader:
                yield reader.line_num, record

        numbered = lines()
    missing = [c for c in SIDECAR_COLUMNS if c not in columns]
    if missing:
        return [], [SpecProblem(shown, 1, f"the table has no column {', '.join(missing)}",
                                f"give columns {', '.join(SIDECAR_COLUMNS)} and optionally n (found: {', '.join(columns)})")]
    rows: list[SidecarRow] = []
    problems: list[SpecProblem] = []
    for line, record in numbered:
        try:
            share = _number(record["share"])
            n = _number(record.get("n")) if "n" in columns else float("nan")
        except (TypeError, ValueError):
            problems.append(SpecProblem(shown, line, f"share {record.get('share')!r} or n {record.get('n')!r} is not a number",
                                        "write plain decimal numbers"))
            continue
        texts = [str(record[c] if record[c] is not None else "").strip() for c in ("question_id", "group_var", "group", "option")]
        if not all(texts):
            problems.append(SpecProblem(shown, line, "empty question_id, group_var, group or option",
                                        "fill every key column of the row"))
            continue
        question_id, group_var, group, option = texts
        rows.append(SidecarRow(line, question_id, group_var, group, option, share, None if math.isnan(n) else n))
        if len(problems) >= MAX_PROBLEMS:
            break
    return rows, problems


def _option_index(options: Sequence[Option], name: str) -> int | None:
    """Index of the option whose id, or else text, is `name`."""
    for index, option in enumerate(options):
        if option.id == name:
            return index
    for index, option in enumerate(options):
        if option.text == name:
            return index
    return None


def _hint(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    listing = ", ".join(repr(k) for k in list(known)[:12]) + (" ..." if len(known) > 12 else "")
    return f"did you mean {close[0]!r}?" if close else f"known: {listing}"


def check_shares(shares: list[float] | dict[str, float], options: Sequence[Option], tolerance: float
                 ) -> tuple[list[float] | None, str | None, str]:
    """(shares as a renormalised list in canonical order, None) or (None, problem, fix)."""
    k = len(options)
    if isinstance(shares, dict):
        values = [0.0] * k
        for name, share in shares.items():
            index = _option_index(options, str(name))
            if index is None:
                return None, f"unknown option {str(name)!r}", _hint(str(name), [o.id or o.text for o in options])
            values[index] += float(share)
    else:
        if len(shares) != k:
            return None, f"{len(shares)} shares for {k} options", "give one share per option, in the item's option order"
        values = [float(v) for v in shares]
    if not all(math.isfinite(v) for v in values):
        return None, "a share is not a finite number", "write every share as a number between 0 and 1"
    if any(v < 0 for v in values):
        return None, f"negative share {min(values)}", "shares are proportions between 0 and 1"
    total = sum(values)
    if abs(total - 1.0) > tolerance:
        return None, f"shares sum to {total:.6g}, not 1 (tolerance {tolerance:g})", (
            "give proportions (not percentages or counts) that sum to 1, or raise human.tolerance for rounded tables")
    return [v / total for v in values], None, ""


def _options(survey: Survey, item: Item) -> list[Option]:
    from probekit.survey.expand import item_options

    return item_options(survey, item)


def attach_human(survey: Survey, path: str, locate: Locator, item_lines: list[tuple[str, int]], n_inline: int
                 ) -> tuple[Survey, list[SpecProblem]]:
    """Read the sidecar table (if any) into the items and check every distribution. Returns the survey with each
    distribution a renormalised list in canonical option order, and the problems found (file:line — fix).
    `item_lines[i]` is where item i is written; the first `n_inline` items are in the YAML file itself."""
    reference = survey.human
    tolerance = reference.tolerance if reference else 0.01
    declared = reference.groups if reference else {}
    problems: list[SpecProblem] = []

    def where(index: int, *loc: str) -> tuple[str, int]:
        if index < n_inline:
            return path, locate.line(["items", index, "human", *loc])
        return item_lines[index] if index < len(item_lines) else (path, 1)

    # Inline distributions first: (item index, var, group) -> (shares, n, where)
    found: dict[tuple[int, str, str], tuple[list[float], float | None, tuple[str, int]]] = {}
    for index, item in enumerate(survey.items):
        options = _options(survey, item)
        for option_index, option in enumerate(options):
            at = (path, locate.line(["items", index, "options", option_index])) if index < n_inline else where(index)
            if option.refusal and option.position is not None:
                problems.append(SpecProblem(*at, f"item {item.id!r}: refusal option {option.text!r} has ordinal position "
                                            f"{option.position}", "remove the position (refusals are off the scale)"))
            if option.position is not None and not math.isfinite(option.position):
                problems.append(SpecProblem(*at, f"item {item.id!r}: option {option_index} position is not finite",
                                            "give a finite number"))
        for var, groups in item.human.items():
            for group, dist in groups.items():
                shares, problem, fix = check_shares(dist.shares, options, tolerance)
                if problem is not None:
                    problems.append(SpecProblem(*where(index, var, group), f"item {item.id!r}, {var} {group!r}: {problem}", fix))
                    continue
                if dist.n is not None and not (math.isfinite(dist.n) and dist.n >= 0):
                    problems.append(SpecProblem(*where(index, var, group), f"item {item.id!r}, {var} {group!r}: n {dist.n} "
                                                "is not a non-negative number", "give the number of respondents"))
                    continue
                assert shares is not None
                found[(index, var, group)] = (shares, dist.n, where(index, var, group))

    if reference is not None and reference.file:
        sidecar = (Path(path).parent / reference.file).resolve()
        ref_line = locate.line(["human", "file"])
        if not sidecar.is_file():
            problems.append(SpecProblem(path, ref_line, f"human.file {reference.file!r} not found",
                                        f"create {sidecar} or fix the path (relative to the survey file)"))
        else:
            problems.extend(_merge_sidecar(survey, sidecar, found, tolerance))

    # Declared groups: every group named must be one of them.
    if declared:
        for (index, var, group), (_shares, _n, at) in sorted(found.items(), key=lambda entry: entry[0][0]):
            allowed = declared.get(var)
            if allowed is None:
                problems.append(SpecProblem(*at, f"item {survey.items[index].id!r}: unknown group variable "
                                            f"{var!r}", f"{_hint(var, sorted(declared))} (human.groups declares the variables)"))
            elif group not in allowed:
                problems.append(SpecProblem(*at, f"item {survey.items[index].id!r}: unknown {var} "
                                            f"group {group!r}", f"{_hint(group, allowed)} (or add it to human.groups.{var})"))
    if reference is not None and reference.population is not None:
        var, _, group = reference.population.partition(":")
        if not group or not any(v == var and g == group for (_i, v, g) in found):
            problems.append(SpecProblem(path, locate.line(["human", "population"]),
                                        f"human.population {reference.population!r} names no group of the data",
                                        "write group_var:group of a group the distributions give, e.g. overall:all"))
    if problems:
        return survey, problems[:MAX_PROBLEMS]
    by_item: dict[int, dict[str, dict[str, HumanGroup]]] = {}
    for (index, var, group), (shares, n, _at) in found.items():
        by_item.setdefault(index, {}).setdefault(var, {})[group] = HumanGroup(shares=shares, n=n)
    if not by_item:
        return survey, []
    items = [item.model_copy(update={"human": by_item[i]}) if i in by_item else item for i, item in enumerate(survey.items)]
    return survey.model_copy(update={"items": items}), []


def _merge_sidecar(survey: Survey, sidecar: Path,
                   found: dict[tuple[int, str, str], tuple[list[float], float | None, tuple[str, int]]],
                   tolerance: float) -> list[SpecProblem]:
    """Add the sidecar's distributions to `found` (in place); problems name the table's lines."""
    shown = str(sidecar)
    rows, problems = read_sidecar(sidecar)
    index_of = {item.id: i for i, item in enumerate(survey.items)}
    grouped: dict[tuple[int, str, str], list[SidecarRow]] = {}
    for row in rows:
        index = index_of.get(row.question_id)
        if index is None:
            problems.append(SpecProblem(shown, row.line, f"unknown question_id {row.question_id!r}",
                                        f"{_hint(row.question_id, list(index_of))} (ids of the survey's items)"))
            continue
        grouped.setdefault((index, row.group_var, row.group), []).append(row)
        if len(problems) >= MAX_PROBLEMS:
            return problems
    for key, members in grouped.items():
        index, var, group = key
        item = survey.items[index]
        first = members[0].line
        if key in found:
            problems.append(SpecProblem(shown, first, f"item {item.id!r}, {var} {group!r} is also given inline in the survey",
                                        "give each distribution once (inline or in the table)"))
            continue
        options = _options(survey, item)
        seen: dict[str, int] = {}
        shares: dict[str, float] = {}
        bad = False
        for row in members:
            if row.option in seen:
                problems.append(SpecProblem(shown, row.line, f"item {item.id!r}, {var} {group!r}: option {row.option!r} "
                                            f"given twice (first at line {seen[row.option]})", "keep one row per option"))
                bad = True
                continue
            seen[row.option] = row.line
            shares[row.option] = row.share
        ns = {row.n for row in members if row.n is not None}
        if len(ns) > 1:
            problems.append(SpecProblem(shown, first, f"item {item.id!r}, {var} {group!r}: rows give different n "
                                        f"({', '.join(f'{n:g}' for n in sorted(ns))})", "give the group's n on every row"))
            bad = True
        if bad:
            continue
        values, problem, fix = check_shares(shares, options, tolerance)
        if problem is not None:
            line = next((r.line for r in members if problem.endswith(repr(r.option))), first)
            problems.append(SpecProblem(shown, line, f"item {item.id!r}, {var} {group!r}: {problem}", fix))
            continue
        assert values is not None
        n = next(iter(ns)) if ns else None
        if n is not None and n < 0:
            problems.append(SpecProblem(shown, first, f"item {item.id!r}, {var} {group!r}: negative n {n:g}",
                                        "give the number of respondents"))
            continue
        found[key] = (values, n, (shown, first))
    return problems


# -- store rows -------------------------------------------------------------------------------------------------
HUMAN_COLUMNS = ("survey_hash", "survey_id", "item_id", "group_var", "group_value", "shares", "n", "option_positions",
                 "option_refusal")


def human_rows(survey: Survey, digest: str) -> list[dict[str, Any]]:
    """One `human_distributions` row per item x group (shares in canonical option order, as checked on load)."""
    rows = []
    for item in survey.items:
        if not item.human:
            continue
        options = _options(survey, item)
        positions = [o.position for o in options]
        refusal = [o.refusal for o in options]
        for var, groups in item.human.items():
            for group, dist in groups.items():
                shares = dist.shares if isinstance(dist.shares, list) else list(check_shares(dist.shares, options, 1.0)[0] or [])
                rows.append({"survey_hash": digest, "survey_id": survey.id, "item_id": item.id, "group_var": var,
                             "group_value": group, "shares": [float(s) for s in shares], "n": dist.n,
                             "option_positions": positions, "option_refusal": refusal})
    return rows


def has_human(survey: Survey) -> bool:
    """Whether any item carries a human distribution."""
    return any(item.human for item in survey.items)
