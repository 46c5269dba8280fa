"""Spec validation: every malformed spec fails before any model call with file:line: what — fix."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from probekit.survey.errors import SpecError
from probekit.survey.loader import load_survey

GOOD = """\
id: tiny
kind: choice
templates:
  - id: ab
    user: "Question: {context}\\n{options}\\nAnswer with {labels_or}."
items:
  - id: q1
    fields: {context: "Pick one."}
    options:
      - text: "Yes, do it."
      - text: "No, do not."
  - id: q2
    fields: {context: "Pick again."}
    options:
      - text: "Left"
      - text: "Right"
"""


def write(tmp_path: Path, text: str, name: str = "survey.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_survey(path)
    return [str(p) for p in caught.value.problems]


def test_good_spec_loads(tmp_path: Path) -> None:
    survey = load_survey(write(tmp_path, GOOD))
    assert [item.id for item in survey.items] == ["q1", "q2"]


# (description, replacement applied to GOOD, expected line, words the message must contain)
BAD_CASES = [
    ("yaml syntax", ("  - id: q2\n", "  - id: q2\n   bad: [unclosed\n"), None, ["YAML syntax error"]),
    ("unknown field", ("kind: choice\n", "kind: choice\ntitel: oops\n"), 3, ["unknown field 'titel'", "did you mean 'title'"]),
    ("duplicate item id", ("  - id: q2\n", "  - id: q1\n"), 12, ["duplicate item id 'q1'", "first at", "unique"]),
    ("missing placeholder", ("{context}", "{contex}"), 5, ["{contex}", "did you mean {context}"]),
    ("too few options", ("      - text: \"Right\"\n", ""), 12, ["has 1 option(s)", "at least 2"]),
    ("unknown label scheme", ("    user:", "    labels: greek\n    user:"), 5, ["invalid value 'greek'", "letters"]),
]


@pytest.mark.parametrize("name,edit,line,words", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_spec_names_file_line_and_fix(tmp_path: Path, name: str, edit: tuple[str, str], line: int | None, words: list[str]) -> None:
    old, new = edit
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    found = problems(path)
    text = "\n".join(found)
    assert str(path) in text
    for word in words:
        assert word in text, text
    if line is not None:
        assert any(p.startswith(f"{path}:{line}:") for p in found), text
    assert all(" — " in p for p in found), "every problem says how to fix it"


def test_items_file_errors_point_at_the_jsonl_line(tmp_path: Path) -> None:
    (tmp_path / "items.jsonl").write_text(
        '{"id": "a", "fields": {"context": "x"}, "options": [{"text": "1"}, {"text": "2"}]}\n'
        '{"id": "b", "fields": {"context": "y"}, "options": [{"text": "1"}, {"text": "2"}], "colour": "red"}\n'
        "not json\n"
    )
    spec = GOOD.split("items:")[0] + "items_file: items.jsonl\n"
    found = problems(write(tmp_path, spec))
    items_path = str((tmp_path / "items.jsonl").resolve())
    assert any(p.startswith(f"{items_path}:2:") and "colour" in p for p in found), found
    assert any(p.startswith(f"{items_path}:3:") and "invalid JSON" in p for p in found), found


def test_duplicate_yaml_keys_are_reported(tmp_path: Path) -> None:
    found = problems(write(tmp_path, GOOD.replace("kind: choice\n", "kind: choice\nkind: likert\n")))
    assert any(":3:" in p and "duplicate key 'kind'" in p for p in found), found


def test_mcq_needs_gold_in_range(tmp_path: Path) -> None:
    spec = GOOD.replace("kind: choice", "kind: mcq").replace("  - id: q2\n", "  - id: q2\n    gold: 5\n")
    found = problems(write(tmp_path, spec))
    assert any("no gold answer" in p for p in found)
    assert any("gold 5 is outside 0..1" in p for p in found)


def test_yesno_needs_two_options(tmp_path: Path) -> None:
    spec = GOOD.replace("    user:", "    labels: yesno\n    user:").replace(
        '      - text: "Right"\n', '      - text: "Right"\n      - text: "Middle"\n')
    found = problems(write(tmp_path, spec))
    assert any("'yesno' needs exactly 2 options" in p for p in found), found


def test_bad_policy(tmp_path: Path) -> None:
    found = problems(write(tmp_path, GOOD + "permutations: {policy: 'random:x'}\n"))
    assert any("random:K" in p for p in found), found
