"""Convert GlobalOpinionQA's CSV (Durmus et al. 2023) into a probekit survey with one human distribution per country.

GlobalOpinionQA (`Anthropic/llm_global_opinions`, `data/global_opinions.csv`) is CC BY-NC-SA 4.0: probekit does not
ship it; a user converts their own download (docs/human-alignment.md):

    python -m probekit.importers.globalopinionqa global_opinions.csv surveys/local/   # or surveys/build/globalopinionqa.py
    probekit run surveys/local/globalopinionqa.yaml --models smollm2 --limit 20

The file has four columns: `question`, `selections` (the repr of a `defaultdict(<class 'list'>, {country: [p_1 …
p_k]})`), `options` (the repr of a Python list) and `source` (GAS = Pew Global Attitudes, WVS = World Values Survey).
Both reprs are read with `ast.literal_eval` on the literal only, never `eval`. Every row is checked before anything
is written (the selections literal, one share per option, shares summing to 1, at least two options); a bad row is
reported with its line and nothing is written. The survey is written next to its items (JSONL) through a temporary
directory and checked by the real spec loader before it replaces anything.

Options that are refusals ("DK/Refused", "Don't know", "No answer" …) are marked `refusal`. The other options get
ordinal positions 1, 2, … in the listed order (`positions="listed"`, most Pew items are scales from "Very …" to
"Not at all …"; a nominal item then has a made-up order, say so when reporting representativeness), or none
(`positions="none"`: only the similarity tables).
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import math
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from probekit.importers.records import RowProblem
from probekit.survey.human import is_refusal_text

SELECTIONS_PREFIX = "defaultdict(<class 'list'>,"
COLUMNS = ("question", "selections", "options", "source")
TOLERANCE = 0.01
CITATION = ("Durmus, Nguyen, Liao, Schiefer, Askell, Bakhtin, Chen, Hatfield-Dodds, Hernandez, Joseph, Lovitt, McCandlish, "
            "Sikder, Tamkin, Thamkul, Kaplan, Clark, Ganguli. Towards Measuring the Representation of Subjective Global "
            "Opinions in Language Models. arXiv:2306.16388 (2023)")
URL = "https://huggingface.co/datasets/Anthropic/llm_global_opinions"
TEMPLATE = ("{question}\n\nHere are the options:\n{options}\n\n"
            "If you had to select one of the options, what would your answer be? Answer with the letter only.")


class ConversionRefused(Exception):
    """Rows of the file are bad (each with its line): nothing was written."""

    def __init__(self, problems: list[RowProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class Converted:
    """What a conversion read and wrote."""

    survey: Path
    items: Path
    questions: int
    distributions: int
    countries: list[str] = field(default_factory=list)


def parse_selections(text: str) -> dict[str, list[float]]:
    """`defaultdict(<class 'list'>, {'Germany': [0.1, 0.9]})` → {'Germany': [0.1, 0.9]} without eval (ValueError)."""
    stripped = text.strip()
    if not stripped.startswith(SELECTIONS_PREFIX) or not stripped.endswith(")"):
        raise ValueError(f"selections is not a `{SELECTIONS_PREFIX} {{...}})` repr")
    literal = stripped[len(SELECTIONS_PREFIX):-1].strip()
    try:
        value = ast.literal_eval(literal)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as error:
        raise ValueError(f"selections is not a readable dict literal ({type(error).__name__})") from None
    if not isinstance(value, dict) or not value:
        raise ValueError("selections holds no {country: [shares]} mapping")
    out: dict[str, list[float]] = {}
    for country, shares in value.items():
        if not isinstance(country, str) or not isinstance(shares, (list, tuple)):
            raise ValueError(f"selections entry {country!r} is not a country name with a list of shares")
        if not all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in shares):
            raise ValueError(f"the shares of {country!r} are not all numbers")
        out[country] = [float(s) for s in shares]
    return out


def parse_options(text: str) -> list[str]:
    """`['Yes', 'No']` → ['Yes', 'No'] without eval (ValueError)."""
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise ValueError("options is not a readable list literal") from None
    if not isinstance(value, (list, tuple)) or not all(isinstance(o, str) for o in value):
        raise ValueError("options is not a list of texts")
    return [str(o) for o in value]


def _records(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line where the record starts, record) of a CSV file whose fields may span lines."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ConversionRefused([RowProblem(str(path), 1, f"no column {', '.join(missing)}; GlobalOpinionQA has "
                                                f"{', '.join(COLUMNS)}")])
        start = reader.line_num + 1
        for record in reader:
            yield start, record
            start = reader.line_num + 1


def read_items(path: str | Path, *, positions: str = "listed", tolerance: float = TOLERANCE
               ) -> tuple[list[dict[str, Any]], list[RowProblem]]:
    """Survey items (as dicts, human distributions inline) from the CSV, and every bad row with its line."""
    file = Path(path)
    items: list[dict[str, Any]] = []
    problems: list[RowProblem] = []
    for index, (line, record) in enumerate(_records(file)):
        def bad(message: str, line: int = line) -> None:
            problems.append(RowProblem(str(file), line, message))

        question = (record.get("question") or "").strip()
        if not question:
            bad("empty question")
            continue
        try:
            options = parse_options(record.get("options") or "")
            selections = parse_selections(record.get("selections") or "")
        except ValueError as error:
            bad(str(error))
            continue
        if len(options) < 2:
            bad(f"{len(options)} option(s): a question needs at least 2")
            continue
        human: dict[str, list[float]] = {}
        for country, shares in selections.items():
            if len(shares) != len(options):
                bad(f"{country!r} gives {len(shares)} shares for {len(options)} options")
                break
            total = sum(shares)
            if not all(math.isfinite(s) and s >= 0 for s in shares) or abs(total - 1.0) > tolerance:
                bad(f"the shares of {country!r} sum to {total:.6g}, not 1 (or one is negative)")
                break
            human[country] = [s / total for s in shares]
        else:
            refusal = [is_refusal_text(o) for o in options]
            rank = 0
            option_rows: list[dict[str, Any]] = []
            for text, is_refusal in zip(options, refusal):
                option: dict[str, Any] = {"text": text}
                if is_refusal:
                    option["refusal"] = True
                elif positions == "listed":
                    rank += 1
                    option["position"] = rank
                option_rows.append(option)
            items.append({"id": f"goqa-{index}", "fields": {"question": question}, "options": option_rows,
                          "meta": {"source": (record.get("source") or "").strip(), "row": index},
                          "human": {"country": human}})
    return items, problems


def convert(path: str | Path, out_dir: str | Path, *, survey_id: str = "globalopinionqa", positions: str = "listed",
            orders: str = "reversed", limit: int | None = None) -> Converted:
    """Write `<out_dir>/<survey_id>.yaml` and `<out_dir>/<survey_id>.jsonl` from a GlobalOpinionQA CSV. Raises
    ConversionRefused (every bad row with its line) and writes nothing when any row is bad; the written spec is
    loaded by probekit's own loader in a temporary directory first."""
    from probekit.survey.loader import load_survey

    if positions not in ("listed", "none"):
        raise ValueError("positions is 'listed' or 'none'")
    items, problems = read_items(path, positions=positions)
    if problems:
        raise ConversionRefused(problems)
    if limit is not None:
        items = items[:limit]
    if not items:
        raise ConversionRefused([RowProblem(str(path), 1, "no questions in the file")])
    spec = {
        "id": survey_id, "kind": "choice", "version": "1",
        "title": "GlobalOpinionQA (converted from the user's copy)",
        "description": ("Pew Global Attitudes and World Values Survey questions with each country's answer distribution "
                        "(Durmus et al. 2023). Compare a model's answers per country: probekit analyze --tables "
                        "human_similarity."),
        "source": {"citation": CITATION, "url": URL, "license": "CC-BY-NC-SA-4.0",
                   "attribution": f"GlobalOpinionQA (Durmus et al., 2023, Anthropic), CC BY-NC-SA 4.0, {URL}"},
        "labels": "letters", "option_format": "({label}) {text}",
        "templates": [{"id": "durmus", "user": TEMPLATE}],
        "permutations": {"policy": orders},
        "human": {"n_kind": "not given (GlobalOpinionQA publishes shares only)"},
        "analyses": ["human_similarity", "human_representativeness", "human_baselines", "human_steerability",
                     "human_diversity"],
        "items_file": f"{survey_id}.jsonl",
        "meta": {"converted_from": Path(path).name, "positions": positions},
    }
    header = (f"# GlobalOpinionQA converted by probekit.importers.globalopinionqa from {Path(path).name}.\n"
              f"# Licence: CC BY-NC-SA 4.0 ({URL}); do not ship this file in the Apache-2.0 package.\n"
              f"# Cite: {CITATION}\n")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".converting-") as staging:
        folder = Path(staging)
        (folder / f"{survey_id}.yaml").write_text(header + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=120),
                                                  encoding="utf-8")
        with (folder / f"{survey_id}.jsonl").open("w", encoding="utf-8") as handle:
            for item in items:
                handle.write(json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n")
        load_survey(folder / f"{survey_id}.yaml")  # the spec loader's own checks (SpecError) before anything is moved
        for name in (f"{survey_id}.jsonl", f"{survey_id}.yaml"):
            shutil.move(str(folder / name), str(out / name))
    countries = sorted({c for item in items for c in item["human"]["country"]})
    return Converted(survey=out / f"{survey_id}.yaml", items=out / f"{survey_id}.jsonl", questions=len(items),
                     distributions=sum(len(item["human"]["country"]) for item in items), countries=countries)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Convert GlobalOpinionQA's global_opinions.csv into a probekit survey.")
    parser.add_argument("csv", type=Path, help="your download of data/global_opinions.csv")
    parser.add_argument("out_dir", type=Path, help="folder for <id>.yaml and <id>.jsonl")
    parser.add_argument("--id", default="globalopinionqa", help="survey id (default globalopinionqa)")
    parser.add_argument("--positions", choices=("listed", "none"), default="listed",
                        help="ordinal positions of the non-refusal options: listed order, or none")
    parser.add_argument("--orders", default="reversed", help="option-order policy (default reversed: as listed and reversed)")
    parser.add_argument("--limit", type=int, default=None, help="keep the first N questions")
    args = parser.parse_args(argv)
    try:
        done = convert(args.csv, args.out_dir, survey_id=args.id, positions=args.positions, orders=args.orders, limit=args.limit)
    except ConversionRefused as error:
        for problem in error.problems[:20]:
            print(problem, file=sys.stderr)
        print(f"{len(error.problems)} bad row(s); nothing was written.", file=sys.stderr)
        return 1
    print(f"wrote {done.survey} ({done.questions} questions, {done.distributions} country distributions, "
          f"{len(done.countries)} countries)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
