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


def _large_spec(n_items: int) -> tuple[str, dict[str, int]]:
    """A survey with `n_items` inline items (2–5 options, fields, meta); also the line of each item id."""
    lines = ["id: large", "kind: choice", "templates:", "  - id: ab",
             '    user: "Q: {context} ({topic})\\n{options}\\nAnswer with {labels_or}."',
             "analyses: [uncertainty, position_bias]", "items:"]
    item_line: dict[str, int] = {}
    for i in range(n_items):
        item_line[f"q{i}"] = len(lines) + 1
        lines += [f"  - id: q{i}", "    fields:", f'      context: "Scenario {i}: decide."', f"      topic: t{i % 7}", "    options:"]
        lines += [f'      - text: "Option {j} of {i}"' for j in range(2 + i % 4)]
        lines += ["    meta: {ambiguity: low}"]
    return "\n".join(lines) + "\n", item_line


def test_large_spec_loads_and_a_deep_error_names_its_line(tmp_path: Path) -> None:
    text, item_line = _large_spec(3000)
    survey = load_survey(write(tmp_path, text, "large.yaml"))
    assert len(survey.items) == 3000 and [len(i.options or []) for i in survey.items[:4]] == [2, 3, 4, 5]
    assert survey.items[2999].meta == {"ambiguity": "low"} and survey.analyses == ["uncertainty", "position_bias"]

    # a misspelt option field deep in the file: the line of that option's key
    bad = text.replace('      - text: "Option 1 of 2718"', '      - txet: "Option 1 of 2718"')
    option_line = item_line["q2718"] + 6  # id, fields, context, topic, options:, option 0, option 1
    found = problems(write(tmp_path, bad, "bad_field.yaml"))
    assert any(p.startswith(f"{tmp_path / 'bad_field.yaml'}:{option_line}: unknown field 'txet'") for p in found), found
    assert any(f":{option_line}:" in p and "missing required field 'text'" in p for p in found), found

    # a duplicate key and a duplicate item id deep in the file
    dup = text.replace("  - id: q2500\n", "  - id: q2500\n    id: q2500b\n").replace("  - id: q2900\n", "  - id: q7\n")
    found = problems(write(tmp_path, dup, "dup.yaml"))
    path = tmp_path / "dup.yaml"
    duplicate = f"{path}:{item_line['q2500'] + 1}: duplicate key 'id' (first at line {item_line['q2500']})"
    assert any(p.startswith(duplicate) for p in found), found
    moved = item_line["q2900"] + 1  # one line was added above it
    assert any(p.startswith(f"{path}:{moved}: duplicate item id 'q7' (first at {path}:{item_line['q7']})") for p in found), found


def test_unknown_analysis_names_line_and_close_match(tmp_path: Path) -> None:
    spec = GOOD.replace("items:\n", "analyses:\n  - uncertainty\n  - uncertanty\n  - consistency\nitems:\n", 1)
    found = problems(write(tmp_path, spec))
    path = tmp_path / "survey.yaml"
    typo = next(p for p in found if "'uncertanty'" in p)
    assert typo.startswith(f"{path}:8: unknown analysis 'uncertanty' — did you mean 'uncertainty'? known: ")
    assert "response_rates" in typo and "moralchoice" in typo
    assert any(p.startswith(f"{path}:9: unknown analysis 'consistency'") for p in found), found
    assert not any("'uncertainty'" in p.split(" — ")[0] for p in found)


def test_libyaml_and_pure_python_loaders_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same data, duplicate keys and error lines with libyaml and with PyYAML's pure-Python fallback."""
    import yaml

    from probekit.survey import yamlfile

    text, _lines = _large_spec(50)
    tricky = text + ("meta:\n  base: &base {a: 1, when: 2024-01-02, ok: yes, n: 0x1F, f: 1.5e3, none: ~}\n"
                     "  copy: *base\n  merged: {<<: *base, a: 2}\n")
    tricky_bad = tricky.replace("  - id: q30\n", "  - id: q30\n    id: again\n").replace("kind: choice", "kind: choise")
    seen = []
    for loader in (yamlfile.YamlLoader, yaml.SafeLoader):
        monkeypatch.setattr(yamlfile, "YamlLoader", loader)
        doc = yamlfile.parse_yaml(tricky)
        assert doc.data == yaml.safe_load(tricky)
        survey = load_survey(write(tmp_path, tricky))
        seen.append((survey.model_dump(), problems(write(tmp_path, tricky_bad))))
    assert seen[0] == seen[1]
    assert any(":2: invalid value 'choise'" in p for p in seen[0][1]), seen[0][1]


@pytest.mark.parametrize("text", [
    "a: 1\nb: [x, 2, 3.5, true, null, '7']\nc: {d: e}\n",
    "a: &x [1, 2]\nb: *x\n",                          # alias: PyYAML's constructor
    "a: &r [*r]\n",                                     # recursive alias
    "? [1, 2]\n: complex key\n",                        # non-scalar key
    "s: !!set {a, b}\nt: !!binary aGk=\nd: 2001-12-14\n",
    "a: 1\na: 2\nb: {c: 1, c: 2}\n",                    # duplicate keys (last wins, as yaml.safe_load)
    "",
])
def test_single_parse_builds_what_safe_load_builds(text: str) -> None:
    import yaml

    from probekit.survey.yamlfile import parse_yaml

    try:
        expected = yaml.safe_load(text)
    except yaml.YAMLError:
        with pytest.raises(yaml.YAMLError):
            parse_yaml(text)
        return
    if text.startswith("a: &r"):  # recursive data cannot be a spec: refused (issue 10), not built
        from probekit.survey.yamlfile import YamlLimitError

        with pytest.raises(YamlLimitError, match="recursive"):
            parse_yaml(text)
        return
    doc = parse_yaml(text)
    assert doc.data == expected
    if text.startswith("a: 1\na: 2"):
        assert [(p.line, p.message) for p in doc.duplicates] == [(2, "duplicate key 'a' (first at line 1)"),
                                                                 (3, "duplicate key 'c' (first at line 3)")]
