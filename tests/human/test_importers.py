"""Importers of the published layouts (issue 24, step 2): GlobalOpinionQA's CSV (the licensed excerpt in
../shared/data/human, read in place, never copied into the package) and the OpinionQA wave layout (a small
hand-made folder in the same format). Bad rows are refused with their line and nothing is written."""

from __future__ import annotations

import ast
import csv
import io
import json
from pathlib import Path

import pytest

from probekit.importers.globalopinionqa import ConversionRefused, convert, parse_options, parse_selections
from probekit.importers.opinionqa import convert as convert_opinionqa
from probekit.survey.loader import load_survey

REPO = Path(__file__).resolve().parents[2]
EXCERPT = REPO.parent / "shared" / "data" / "human" / "globalopinionqa" / "global_opinions_excerpt.csv"
needs_excerpt = pytest.mark.skipif(not EXCERPT.is_file(), reason="the GlobalOpinionQA excerpt (../shared/data/human) is absent")


@needs_excerpt
def test_the_excerpt_imports_whole(tmp_path: Path) -> None:
    done = convert(EXCERPT, tmp_path)
    assert (done.questions, done.distributions, len(done.countries)) == (60, 78, 36)
    survey = load_survey(done.survey)
    assert len(survey.items) == 60
    with EXCERPT.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for item, row in zip(survey.items, rows):
        text = row["selections"]
        expected = ast.literal_eval(text[text.index("{"):text.rindex("}") + 1])  # an independent reading of the repr
        options = ast.literal_eval(row["options"])
        assert [o.text for o in item.options or []] == options
        assert set(item.human["country"]) == set(expected)
        for country, shares in expected.items():
            assert item.human["country"][country].shares == pytest.approx([s / sum(shares) for s in shares], abs=1e-12)
        assert item.meta["source"] == row["source"]
    refusals = [o for item in survey.items for o in item.options or [] if o.refusal]
    assert refusals and all(o.text == "DK/Refused" and o.position is None for o in refusals)


def test_reprs_are_parsed_without_eval() -> None:
    assert parse_selections("defaultdict(<class 'list'>, {'Peru': [0.25, 0.75], 'Chile': [1, 0]})") == {
        "Peru": [0.25, 0.75], "Chile": [1.0, 0.0]}
    assert parse_options("['Yes', \"Don't know\"]") == ["Yes", "Don't know"]
    for bad in ("defaultdict(<class 'list'>, {'Peru': __import__('os').getcwd()})", "{'Peru': [1.0]}",
                "defaultdict(<class 'list'>, {'Peru': [0.5, 'x']})", "defaultdict(<class 'list'>, {'Peru': [0.5, 0.5]"):
        with pytest.raises(ValueError):
            parse_selections(bad)


def _csv(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["question", "selections", "options", "source"])
    writer.writerows(rows)
    return buffer.getvalue()


GOOD = ["Is it good?", "defaultdict(<class 'list'>, {'Peru': [0.25, 0.75]})", "['Yes', 'No']", "GAS"]
MULTILINE = ["A question\nover two lines?", "defaultdict(<class 'list'>, {'Chile': [0.5, 0.3, 0.2]})",
             "['Yes', 'No', 'DK/Refused']", "GAS"]


@pytest.mark.parametrize(("bad", "message"), [
    (["Q?", "defaultdict(<class 'list'>, {'Peru': [0.25, 0.75]", "['Yes', 'No']", "GAS"], "selections"),
    (["Q?", "defaultdict(<class 'list'>, {'Peru': [0.25, 0.5, 0.25]})", "['Yes', 'No']", "GAS"], "3 shares for 2 options"),
    (["Q?", "defaultdict(<class 'list'>, {'Peru': [0.25, 0.5]})", "['Yes', 'No']", "GAS"], "sum to 0.75"),
    (["Q?", "defaultdict(<class 'list'>, {'Peru': [0.25, 0.75]})", "['Yes', 'No'", "GAS"], "options is not"),
])
def test_bad_rows_are_refused_with_their_line_and_nothing_is_written(tmp_path: Path, bad: list[str], message: str) -> None:
    source = tmp_path / "global_opinions.csv"
    source.write_text(_csv([GOOD, MULTILINE, bad, GOOD]), encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(ConversionRefused) as caught:
        convert(source, out)
    assert len(caught.value.problems) == 1
    problem = caught.value.problems[0]
    assert problem.line == 5 and message in problem.message, str(problem)  # header, row, a row over two lines, then it
    assert not out.exists() or not any(out.iterdir())


def test_a_good_file_converts_and_runs(tmp_path: Path) -> None:
    import probekit
    from probekit.analysis import analyze

    source = tmp_path / "global_opinions.csv"
    source.write_text(_csv([GOOD, MULTILINE]), encoding="utf-8")
    done = convert(source, tmp_path / "out", positions="none")
    survey = load_survey(done.survey)
    assert survey.permutations.policy == "reversed" and all(o.position is None for i in survey.items for o in i.options or [])
    store = tmp_path / "s.duckdb"
    probekit.run([done.survey], store=store, models=["fake:a"])
    tables = analyze(store, n_boot=50)
    assert set(tables["human_similarity"]["group_value"]) == {"Peru", "Chile"}


def _write_wave(folder: Path) -> None:
    folder.mkdir(parents=True)
    rows = [
        ["key", "question", "references", "option_ordinal", "option_mapping"],
        ["CARS2_W1", "Has it been positive?", "['Mostly positive', 'Mostly negative', 'A mix of both', 'Refused']",
         "[1.0, 2.0, 1.5]", "{1.0: 'Mostly positive', 2.0: 'Mostly negative', 3.0: 'A mix of both', 99.0: 'Refused'}"],
        ["JOB_W1", "Which field?", "['Health', 'Retail', 'Other', 'Refused']", "[1, 1, 1]",
         "{1.0: 'Health', 2.0: 'Retail', 3.0: 'Other', 99.0: 'Refused'}"],
    ]
    with (folder / "info.csv").open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    (folder / "SEX_data.json").write_text(json.dumps({
        "CARS2_W1": {"MC_options": ["x"], "question_text": "Has it been positive?",
                     "Female": {"Mostly positive": 30.0, "Mostly negative": 50.0, "A mix of both": 18.0, "Refused": 2.0},
                     "Male": {"Mostly positive": 45.0, "Mostly negative": 30.0, "A mix of both": 25.0}},
        "JOB_W1": {"Female": {"Health": 5.0, "Retail": 3.0, "Other": 2.0}}}), encoding="utf-8")
    (folder / "NONE_data.json").write_text(json.dumps({
        "CARS2_W1": {"Overall": {"Mostly positive": 75.0, "Mostly negative": 80.0, "A mix of both": 43.0, "Refused": 2.0}}}),
        encoding="utf-8")


def test_opinionqa_layout_converts_with_positions_refusals_and_groups(tmp_path: Path) -> None:
    _write_wave(tmp_path / "W1")
    done = convert_opinionqa(tmp_path / "W1", tmp_path / "out")
    survey = load_survey(done.survey)
    cars = next(i for i in survey.items if i.id == "CARS2_W1")
    assert [o.position for o in cars.options or []] == [1.0, 2.0, 1.5, None]
    assert [o.refusal for o in cars.options or []] == [False, False, False, True]
    assert cars.human["SEX"]["Female"].shares == pytest.approx([0.3, 0.5, 0.18, 0.02])
    assert cars.human["SEX"]["Male"].n == 100 and cars.human["SEX"]["Male"].shares[3] == 0
    assert cars.human["overall"]["all"].shares == pytest.approx([75 / 200, 80 / 200, 43 / 200, 2 / 200])
    assert survey.human is not None and survey.human.population == "overall:all"


def test_opinionqa_bad_ordinal_is_refused_with_its_line(tmp_path: Path) -> None:
    _write_wave(tmp_path / "W1")
    info = tmp_path / "W1" / "info.csv"
    info.write_text(info.read_text(encoding="utf-8").replace('"[1.0, 2.0, 1.5]"', '"[1.0, 2.0]"'), encoding="utf-8")
    with pytest.raises(ConversionRefused) as caught:
        convert_opinionqa(tmp_path / "W1", tmp_path / "out")
    assert caught.value.problems[0].line == 2 and "2 positions for 3 non-refusal options" in caught.value.problems[0].message
    assert not (tmp_path / "out").exists()
