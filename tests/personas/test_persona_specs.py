"""Persona specs: inline and file personas load; every bad one is refused as file:line — fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from persona_helpers import SURVEY, write
from typer.testing import CliRunner

from probekit.cli.main import app
from probekit.experiment import load_experiment
from probekit.survey.errors import SpecError
from probekit.survey.expand import expand
from probekit.survey.loader import load_survey


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the n-th line containing `needle`."""
    hits = [number for number, line in enumerate(text.splitlines(), start=1) if needle in line]
    return hits[occurrence - 1]


def problems(path: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_survey(path)
    return [str(p) for p in caught.value.problems]


PEOPLE = "  people:\n"


def with_people(extra: str) -> str:
    """SURVEY with `extra` (persona lines) added after the inline people."""
    return SURVEY.replace("      attributes: {country: Brazil, age: 70, religion: Catholic}\n",
                          "      attributes: {country: Brazil, age: 70, religion: Catholic}\n" + extra)


# (name, spec text, needle on the expected line (occurrence), words the message must contain)
BAD_SPECS = [
    ("unknown style", SURVEY.replace("styles: [qa, bio, portray]", "styles: [qa, biography]"),
     ("styles:", 1), ["invalid value 'biography'", "'qa'", "'portray'"]),
    ("duplicate id", SURVEY.replace("    - id: nurse\n", "    - id: japan\n"),
     ("- id: japan", 2), ["duplicate persona id 'japan'", "first at", "its own id"]),
    ("empty bio", SURVEY.replace('bio: "I am a retired nurse from Ohio."', 'bio: "  "'),
     ("bio:", 1), ["bio is empty"]),
    ("missing file", SURVEY.replace(PEOPLE, "  file: missing.csv\n" + PEOPLE),
     ("file: missing.csv", 1), ["persona file 'missing.csv' not found", "relative to survey.yaml"]),
    ("no attributes and no bio", with_people("    - id: blank\n"),
     ("- id: blank", 1), ["neither attributes nor a bio"]),
    ("empty attribute", with_people("    - id: blank\n      attributes: {country: ''}\n"),
     ("attributes: {country: ''}", 1), ["attribute 'country' is empty"]),
    ("id with a comma", with_people("    - id: 'a,b'\n      bio: I am here.\n"),
     ("- id: 'a,b'", 1), ["without commas"]),
    ("unknown persona field", with_people("    - id: typo\n      attribute: {country: Peru}\n"),
     ("attribute: {country: Peru}", 1), ["unknown field 'attribute'", "did you mean 'attributes'"]),
    ("no styles", SURVEY.replace("styles: [qa, bio, portray]", "styles: []"), ("styles:", 1), ["no styles"]),
    ("a style twice", SURVEY.replace("styles: [qa, bio, portray]", "styles: [qa, qa]"), ("styles:", 1), ["listed twice"]),
    ("no people", SURVEY.split("  people:")[0] + "items:" + SURVEY.split("items:")[1], ("personas:", 1), ["no personas"]),
    ("phrasing of an unknown attribute", SURVEY.replace(PEOPLE, "  phrasing:\n    contry: {bio: 'I live in {value}.'}\n" + PEOPLE),
     ("contry:", 1), ["phrasing for attribute 'contry'", "country"]),
    ("bad phrasing placeholder", SURVEY.replace(PEOPLE, "  phrasing:\n    country: {bio: 'I live in {val}.'}\n" + PEOPLE),
     ("country: {bio:", 1), ["unknown placeholder {val}"]),
]


@pytest.mark.parametrize("name,text,where,words", BAD_SPECS, ids=[case[0] for case in BAD_SPECS])
def test_bad_inline_personas_name_the_line(tmp_path: Path, name: str, text: str, where: tuple[str, int], words: list[str]) -> None:
    path = write(tmp_path, text)
    found = problems(path)
    expected = f"{path}:{line_of(text, *where)}: "
    assert any(p.startswith(expected) and all(w in p for w in words) for p in found), (name, expected, found)
    assert all(" — " in p for p in found), "every problem says how to fix it"


def test_personas_from_each_file_type_follow_the_inline_ones(tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text('id,bio,country,age\nperu,,Peru,30\nwriter,"I write.\nA lot.",,\nkenya,,Kenya,\n')
    (tmp_path / "people.yaml").write_text("- id: peru\n  attributes: {country: Peru, age: 30}\n- id: writer\n  bio: I write.\n")
    (tmp_path / "people.json").write_text(json.dumps({"people": [{"id": "peru", "attributes": {"country": "Peru"}}]}, indent="\t"))
    (tmp_path / "people.jsonl").write_text('{"id": "peru", "attributes": {"country": "Peru"}}\n\n{"id": "writer", "bio": "I write."}\n')
    loaded = {}
    for name in ("people.csv", "people.yaml", "people.json", "people.jsonl"):
        survey = load_survey(write(tmp_path, SURVEY.replace(PEOPLE, f"  file: {name}\n" + PEOPLE), f"s-{name}.yaml"))
        assert survey.personas is not None
        loaded[name] = [(p.id, p.attributes, p.bio) for p in survey.personas.people]
    inline = [("japan", {"country": "Japan"}, None), ("nurse", {}, "I am a retired nurse from Ohio."),
              ("elder", {"country": "Brazil", "age": "70", "religion": "Catholic"}, None)]
    assert loaded["people.csv"] == inline + [("peru", {"country": "Peru", "age": "30"}, None), ("writer", {}, "I write.\nA lot."),
                                             ("kenya", {"country": "Kenya"}, None)]
    assert loaded["people.yaml"] == inline + [("peru", {"country": "Peru", "age": "30"}, None), ("writer", {}, "I write.")]
    assert loaded["people.json"] == inline + [("peru", {"country": "Peru"}, None)]
    assert loaded["people.jsonl"] == inline + [("peru", {"country": "Peru"}, None), ("writer", {}, "I write.")]


BAD_FILES = [
    # (file name, content, line in the persona file, words)
    ("dup.csv", "id,country\nperu,Peru\njapan,Japan\n", 3, ["duplicate persona id 'japan'", "first at"]),
    ("multiline.csv", 'id,bio,country\nw,"two\nlines",\nempty,,\n', 4, ["neither attributes nor a bio"]),
    ("ragged.csv", "id,country\nperu,Peru,extra\n", 2, ["3 fields, the header has 2"]),
    ("noid.csv", "name,country\nperu,Peru\n", 1, ["no 'id' column"]),
    ("dup.yaml", "- id: peru\n  bio: I am.\n- id: peru\n  bio: Me too.\n", 3, ["duplicate persona id 'peru'"]),
    ("bad.yaml", "- id: peru\n  bio: ''\n", 1, ["bio is empty"]),
    ("field.json", '[\n  {"id": "peru", "bio": "I am."},\n  {"id": "x", "bios": "typo"}\n]\n', 3, ["unknown field 'bios'"]),
    ("bad.jsonl", '{"id": "peru", "bio": "I am."}\n{"id": \n', 2, ["invalid JSON"]),
    ("notalist.yaml", "id: peru\n", 1, ["holds a list of personas"]),
]


@pytest.mark.parametrize("name,content,line,words", BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_bad_persona_files_name_their_line(tmp_path: Path, name: str, content: str, line: int, words: list[str]) -> None:
    (tmp_path / name).write_text(content)
    found = problems(write(tmp_path, SURVEY.replace(PEOPLE, f"  file: {name}\n" + PEOPLE)))
    expected = f"{(tmp_path / name).resolve()}:{line}: "
    assert any(p.startswith(expected) and all(w in p for w in words) for p in found), (expected, found)


def test_unknown_file_type_and_directory(tmp_path: Path) -> None:
    (tmp_path / "people.txt").write_text("peru\n")
    (tmp_path / "folder").mkdir()
    for name, words in (("people.txt", "unknown type '.txt'"), ("folder", "is a directory")):
        text = SURVEY.replace(PEOPLE, f"  file: {name}\n" + PEOPLE)
        path = write(tmp_path, text)
        found = problems(path)
        assert any(p.startswith(f"{path}:{line_of(text, 'file:')}: ") and words in p for p in found), found


EXPERIMENT = """\
id: steer_exp
surveys:
  - path: survey.yaml
    templates: [plain]
    personas:
      styles: [portray]
      include_default: true
      file: countries.csv
"""


def test_experiment_personas_block(tmp_path: Path) -> None:
    plain = SURVEY.split("personas:")[0] + "items:" + SURVEY.split("items:")[1]
    write(tmp_path, plain)
    (tmp_path / "countries.csv").write_text("id,country\nperu,Peru\nkenya,Kenya\n")
    experiment_path = write(tmp_path, EXPERIMENT, "experiment.yaml")
    _experiment, surveys = load_experiment(experiment_path)
    trials = expand(surveys[0])
    assert {(t.persona_id, t.persona_style) for t in trials} == {("", ""), ("peru", "portray"), ("kenya", "portray")}
    assert len(trials) == 2 * 3, "2 items x (default + 2 personas in one style), one template"
    (tmp_path / "countries.csv").unlink()
    with pytest.raises(SpecError) as caught:
        load_experiment(experiment_path)
    first = str(caught.value.problems[0])
    assert first.startswith(f"{experiment_path}:{line_of(EXPERIMENT, 'file: countries.csv')}: ") and "not found" in first
    write(tmp_path, EXPERIMENT.replace("[portray]", "[portrait]"), "experiment.yaml")
    with pytest.raises(SpecError) as caught:
        load_experiment(experiment_path)
    assert str(caught.value.problems[0]).startswith(f"{experiment_path}:{line_of(EXPERIMENT, 'styles:')}: ")


def test_validate_and_expand_cli_refuse_bad_personas_with_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    text = SURVEY.replace("    - id: nurse\n", "    - id: japan\n")
    bad = write(tmp_path, text)
    for command in ("validate", "expand"):
        result = runner.invoke(app, [command, str(bad)])
        assert result.exit_code == 2, result.output
        assert f"{bad}:{line_of(text, '- id: japan', 2)}: duplicate persona id 'japan'" in result.output
