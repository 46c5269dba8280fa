"""Convert the OpinionQA layout (Santurkar et al. 2023, `tatsu-lab/opinions_qa`, `data/human_resp/<wave>/`) into a
probekit survey with per-group human distributions, ordinal positions and refusal options.

A wave folder holds `info.csv` (one row per question: `key`, `question`, `references` = the options as a Python list
repr, `option_ordinal` = the ordinal positions of the non-refusal options in order, `option_mapping` = a dict repr
{code: option}; code 99 marks the refusal) and one `<ATTRIBUTE>_data.json` per demographic attribute:
{key: {"MC_options": [...], "question_text": ..., <group>: {option text: weighted count}}}. `NONE_data.json` (or
`Overall`) is the whole population. Reprs are read with `ast.literal_eval`, never `eval`; every problem is reported
with its file and line (info.csv) or question key (JSON) and nothing is written.

    python -m probekit.importers.opinionqa data/human_resp/American_Trends_Panel_W27 surveys/local/

OpinionQA's licence is the user's to check (the repository's data come from Pew's American Trends Panel, whose terms
apply); probekit ships none of it.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from probekit.importers.globalopinionqa import ConversionRefused, Converted
from probekit.importers.records import RowProblem
from probekit.survey.human import is_refusal_text

REFUSAL_CODE = 99.0
POPULATION_FILES = ("NONE", "Overall", "OVERALL")
TEMPLATE = "Question: {question}\n{options}\nAnswer with the letter of your answer."
CITATION = ("Santurkar, Durmus, Ladhak, Lee, Liang, Hashimoto. Whose Opinions Do Language Models Reflect? ICML 2023. "
            "arXiv:2303.17548")


def _literal(text: str, what: str) -> Any:
    try:
        return ast.literal_eval((text or "").strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise ValueError(f"{what} is not a readable Python literal") from None


def read_info(path: Path) -> tuple[list[dict[str, Any]], list[RowProblem]]:
    """Items (dicts) from info.csv with options, refusal flags and ordinal positions; bad rows with their line."""
    items: list[dict[str, Any]] = []
    problems: list[RowProblem] = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in ("key", "question", "references", "option_ordinal") if c not in (reader.fieldnames or [])]
        if missing:
            return [], [RowProblem(str(path), 1, f"no column {', '.join(missing)} (an OpinionQA info.csv has key, question, "
                                   "references, option_ordinal, option_mapping)")]
        start = reader.line_num + 1
        for record in reader:
            line, start = start, reader.line_num + 1
            try:
                references = _literal(record["references"], "references")
                ordinal = _literal(record["option_ordinal"], "option_ordinal")
                mapping = _literal(record.get("option_mapping") or "{}", "option_mapping")
            except ValueError as error:
                problems.append(RowProblem(str(path), line, str(error)))
                continue
            if not isinstance(references, list) or len(references) < 2 or not all(isinstance(r, str) for r in references):
                problems.append(RowProblem(str(path), line, "references is not a list of at least 2 option texts"))
                continue
            codes = {str(v): float(k) for k, v in mapping.items()} if isinstance(mapping, dict) else {}
            refusal = [codes.get(r, 0.0) >= REFUSAL_CODE or is_refusal_text(r) for r in references]
            on_scale = [r for r, flag in zip(references, refusal) if not flag]
            if not isinstance(ordinal, list) or len(ordinal) != len(on_scale):
                problems.append(RowProblem(str(path), line, f"option_ordinal gives {len(ordinal) if isinstance(ordinal, list) else 0} "
                                           f"positions for {len(on_scale)} non-refusal options"))
                continue
            positions = iter(float(x) for x in ordinal)
            options = [{"text": r, "refusal": True} if flag else {"text": r, "position": next(positions)}
                       for r, flag in zip(references, refusal)]
            items.append({"id": str(record["key"]).strip(), "fields": {"question": str(record["question"]).strip()},
                          "options": options, "meta": {"info_line": line}})
    return items, problems


def read_groups(folder: Path, items: list[dict[str, Any]]) -> list[RowProblem]:
    """Add each `<ATTR>_data.json`'s group distributions (weighted counts → shares, n = their sum) to the items."""
    problems: list[RowProblem] = []
    by_key = {item["id"]: item for item in items}
    for file in sorted(folder.glob("*_data.json")):
        attribute = file.name[: -len("_data.json")]
        var, fixed = ("overall", "all") if attribute in POPULATION_FILES else (attribute, None)
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            problems.append(RowProblem(str(file), getattr(error, "lineno", 1), f"not a JSON file: {error}"))
            continue
        for key, entry in data.items() if isinstance(data, dict) else []:
            item = by_key.get(str(key))
            if item is None or not isinstance(entry, dict):
                continue  # questions the wave's info.csv leaves out (OpinionQA drops some) are not imported
            texts = [o["text"] for o in item["options"]]
            for group, counts in entry.items():
                if group in ("MC_options", "question_text") or not isinstance(counts, dict):
                    continue
                unknown = [t for t in counts if t not in texts]
                if unknown:
                    problems.append(RowProblem(str(file), 1, f"{key}, {attribute} {group!r}: option {unknown[0]!r} is not one "
                                               "of the question's references in info.csv"))
                    continue
                values = [float(counts.get(t, 0.0)) for t in texts]
                total = sum(values)
                if total <= 0 or any(v < 0 for v in values):
                    problems.append(RowProblem(str(file), 1, f"{key}, {attribute} {group!r}: counts sum to {total:g}"))
                    continue
                item.setdefault("human", {}).setdefault(var, {})[fixed or str(group)] = {
                    "shares": [v / total for v in values], "n": total}
    return problems


def convert(folder: str | Path, out_dir: str | Path, *, survey_id: str | None = None, orders: str = "reversed") -> Converted:
    """Write `<out_dir>/<id>.yaml` and `<id>.jsonl` from an OpinionQA wave folder (nothing when a row is bad)."""
    from probekit.survey.loader import load_survey

    wave = Path(folder)
    survey_id = survey_id or f"opinionqa_{wave.name}".replace(" ", "_")
    items, problems = read_info(wave / "info.csv") if (wave / "info.csv").is_file() else (
        [], [RowProblem(str(wave / "info.csv"), 0, "no info.csv: give an OpinionQA wave folder")])
    if not problems:
        problems = read_groups(wave, items)
    if problems:
        raise ConversionRefused(problems)
    items = [item for item in items if item.get("human")]
    if not items:
        raise ConversionRefused([RowProblem(str(wave), 0, "no question has a group distribution")])
    groups_present = {var for item in items for var in item["human"]}
    spec = {
        "id": survey_id, "kind": "choice", "version": "1", "title": f"OpinionQA {wave.name} (converted)",
        "source": {"citation": CITATION, "url": "https://github.com/tatsu-lab/opinions_qa",
                   "license": "see the OpinionQA repository and Pew Research Center's terms",
                   "attribution": "OpinionQA (Santurkar et al. 2023), Pew Research Center American Trends Panel"},
        "labels": "letters", "option_format": "{label}. {text}", "templates": [{"id": "opinionqa", "user": TEMPLATE}],
        "permutations": {"policy": orders},
        "human": {"n_kind": "weighted respondents", **({"population": "overall:all"} if "overall" in groups_present else {})},
        "analyses": ["human_representativeness", "human_similarity", "human_baselines", "human_steerability",
                     "human_consistency", "human_diversity"],
        "items_file": f"{survey_id}.jsonl",
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".converting-") as staging:
        folder_tmp = Path(staging)
        (folder_tmp / f"{survey_id}.yaml").write_text(f"# OpinionQA {wave.name}, converted by probekit.importers.opinionqa.\n"
                                                      + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=120),
                                                      encoding="utf-8")
        with (folder_tmp / f"{survey_id}.jsonl").open("w", encoding="utf-8") as handle:
            for item in items:
                handle.write(json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n")
        load_survey(folder_tmp / f"{survey_id}.yaml")
        for name in (f"{survey_id}.jsonl", f"{survey_id}.yaml"):
            shutil.move(str(folder_tmp / name), str(out / name))
    groups = sorted({f"{var}:{g}" for item in items for var, gs in item["human"].items() for g in gs})
    return Converted(survey=out / f"{survey_id}.yaml", items=out / f"{survey_id}.jsonl", questions=len(items),
                     distributions=sum(len(gs) for item in items for gs in item["human"].values()), countries=groups)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Convert an OpinionQA wave folder (info.csv, *_data.json) into a survey.")
    parser.add_argument("wave", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--id", default=None)
    parser.add_argument("--orders", default="reversed")
    args = parser.parse_args(argv)
    try:
        done = convert(args.wave, args.out_dir, survey_id=args.id, orders=args.orders)
    except ConversionRefused as error:
        for problem in error.problems[:20]:
            print(problem, file=sys.stderr)
        print(f"{len(error.problems)} problem(s); nothing was written.", file=sys.stderr)
        return 1
    print(f"wrote {done.survey} ({done.questions} questions, {done.distributions} group distributions)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
