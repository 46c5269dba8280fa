"""docs/schema.md is generated from the migrations and must match them."""

from pathlib import Path

from probekit.store.schema_doc import render

REPO = Path(__file__).resolve().parents[2]


def test_schema_doc_is_current() -> None:
    assert (REPO / "docs" / "schema.md").read_text() == render(), "run: python -m probekit.store.schema_doc > docs/schema.md"
