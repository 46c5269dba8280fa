"""Issue 10, specs: a survey file that is not UTF-8 text, binary, a directory, an alias bomb, nested too deeply,
with placeholders reaching into Python objects, without templates, or with an items file that is Latin-1 or a
directory: `file:line: what — fix`, exit 2 from validate, expand and run, no store created, within seconds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cli_helpers import STARTER, cli, cli_subprocess, refused

from probekit.survey.errors import SpecError
from probekit.survey.expand import expand
from probekit.survey.loader import load_survey

GOOD = STARTER.read_text(encoding="utf-8")
MINIMAL = """id: tiny
kind: choice
templates:
  - id: ab
    user: "Question: {context}\\n{options}\\nAnswer with {labels_or}."
items:
  - id: q1
    fields: {context: "You find a lost wallet."}
    options: [{text: "I return it."}, {text: "I keep it."}]
"""

BOMB = MINIMAL + """meta:
  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
  h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
  i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def _nested_flow(depth: int) -> str:
    return MINIMAL + "meta: {deep: " + "[" * depth + "]" * depth + "}\n"


def _nested_block(depth: int) -> str:
    return MINIMAL + "meta:\n" + "".join("  " * (i + 1) + "- \n" if i else "  deep:\n" for i in range(depth))


def _with_items_file(tmp: Path, data: bytes | None) -> Path:
    spec = tmp / "survey.yaml"
    spec.write_text("id: filed\nkind: choice\ntemplates: [{id: a, user: \"{context} {options}\"}]\n"
                    "options: [{text: \"yes\"}, {text: \"no\"}]\nitems_file: items.jsonl\n", encoding="utf-8")
    if data is None:
        (tmp / "items.jsonl").mkdir()
    else:
        (tmp / "items.jsonl").write_bytes(data)
    return spec


def _write(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        (tmp / name).write_bytes(data)
        return tmp / name
    return make


def _directory(tmp: Path) -> Path:
    (tmp / "specs.yaml").mkdir()
    return tmp / "specs.yaml"


BAD_SPECS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "Latin-1 text": (_write("latin1.yaml", MINIMAL.replace("wallet", "portefeuille à moi").encode("latin-1")), "not UTF-8"),
    "Windows-1252 quotes": (_write("cp1252.yaml", MINIMAL.replace("wallet", "“wallet”").encode("cp1252")), "not UTF-8"),
    "UTF-16 without BOM": (_write("u16.yaml", MINIMAL.encode("utf-16-le")), "binary file"),
    "binary": (_write("bin.yaml", bytes(range(256)) * 16), "binary file"),
    "gzip": (_write("spec.yaml.gz", b"\x1f\x8b\x08\x00" + bytes(200)), "binary file"),
    "a directory": (_directory, "is a directory"),
    "missing": (lambda tmp: tmp / "nope.yaml", "file not found"),
    "alias bomb": (_write("bomb.yaml", BOMB.encode()), "alias bomb"),
    "recursive alias": (_write("loop.yaml", (MINIMAL + "meta: &m {self: *m}\n").encode()), "recursive"),
    "nested 60 levels (flow)": (_write("deep60.yaml", _nested_flow(60).encode()), "nested more than 50"),
    "nested 600 levels (flow)": (_write("deep600.yaml", _nested_flow(600).encode()), "nested more than 50"),
    "nested 5000 levels (flow)": (_write("deep5000.yaml", _nested_flow(5000).encode()), "nesting depth"),
    "nested 70 levels (block)": (_write("block70.yaml", _nested_block(70).encode()), "nested more than 50"),
    "nested 2000 levels (block)": (_write("block2000.yaml", _nested_block(2000).encode()), "nesting depth"),
    "placeholder attribute": (_write("attr.yaml", GOOD.replace("{context}", "{context.upper}", 1).encode()),
                              "{context.upper} is not a plain name"),
    "placeholder dunder": (_write("dunder.yaml", GOOD.replace("{context}", "{context.__class__.__mro__}", 1).encode()), "not a plain name"),
    "placeholder index": (_write("index.yaml", GOOD.replace("{context}", "{context[0]}", 1).encode()), "{context[0]} is not a plain name"),
    "placeholder conversion": (_write("conv.yaml", GOOD.replace("{context}", "{context!r}", 1).encode()), "not a plain name"),
    "placeholder nested spec": (_write("spec.yaml", GOOD.replace("{context}", "{context:{options.__doc__}}", 1).encode()),
                                "not a plain name"),
    "no templates": (_write("notpl.yaml", MINIMAL.replace(
        'templates:\n  - id: ab\n    user: "Question: {context}\\n{options}\\nAnswer with {labels_or}."\n', "templates: []\n").encode()),
        "no templates"),
    "items file in Latin-1": (lambda tmp: _with_items_file(tmp, '{"id": "q1", "fields": {"context": "café"}}\n'.encode("latin-1")),
                              "not UTF-8"),
    "items file binary": (lambda tmp: _with_items_file(tmp, bytes(range(256))), "binary file"),
    "items file is a directory": (lambda tmp: _with_items_file(tmp, None), "is a directory"),
}


@pytest.mark.parametrize("kind", list(BAD_SPECS))
def test_bad_spec_is_a_file_line_problem_everywhere(tmp_path: Path, kind: str) -> None:
    make, words = BAD_SPECS[kind]
    spec = make(tmp_path)
    store = tmp_path / "store.duckdb"
    for command in (["validate", str(spec)], ["expand", str(spec)],
                    ["run", str(spec), "--models", "fake:a", "--store", str(store), "-q"]):
        first = refused(cli(*command), words, code=2)
        assert ":" in first and (spec.name in first or "items.jsonl" in first), first  # file:line
    assert not store.exists()


def test_through_the_console_script(tmp_path: Path) -> None:
    for kind in ("alias bomb", "binary", "placeholder attribute"):
        make, words = BAD_SPECS[kind]
        refused(cli_subprocess("validate", str(make(tmp_path))), words, code=2)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_a_byte_order_mark_is_honoured(tmp_path: Path, encoding: str) -> None:
    spec = tmp_path / "bom.yaml"
    spec.write_bytes(GOOD.encode(encoding))
    assert load_survey(spec) == load_survey(STARTER)
    assert cli("validate", str(spec)).returncode == 0


def test_anchors_and_merge_keys_still_load(tmp_path: Path) -> None:
    spec = tmp_path / "anchors.yaml"
    spec.write_text(MINIMAL.replace("items:\n", "options: &opts [{text: 'I return it.'}, {text: 'I keep it.'}]\nitems:\n")
                    + "  - id: q2\n    fields: {context: 'Another wallet.'}\n    options: *opts\n", encoding="utf-8")
    survey = load_survey(spec)
    assert [o.text for o in survey.items[1].options or []] == ["I return it.", "I keep it."]


def test_placeholders_never_render_python_objects(tmp_path: Path) -> None:
    spec = tmp_path / "attr.yaml"
    spec.write_text(GOOD.replace("{context}", "{context.upper}", 1), encoding="utf-8")
    with pytest.raises(SpecError, match="not a plain name"):
        load_survey(spec)
    # A Survey built in Python is checked when expanded: nothing like '<built-in method' reaches a prompt.
    survey = load_survey(STARTER)
    bad = survey.model_copy(update={"templates": [survey.templates[0].model_copy(update={"user": "{context.upper} {options}"})]})
    with pytest.raises(ValueError, match="not a plain name"):
        expand(bad)
