"""IPIP-NEO-300 ships beside the 120- and 50-item forms: 300 items, 30 facets × 10 items, 5 domains, keys, facets
and texts as in the source table (shared/data/personality), attribution and licence in the spec."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
from import_helpers import probekit

from probekit.survey.loader import load_survey

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "surveys" / "ipip_neo_300.yaml"
DATA = REPO.parent / "shared" / "data" / "personality"


def table(name: str) -> list[dict[str, str]]:
    with open(DATA / name, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_ipip_neo_300_items_facets_domains_and_keys() -> None:
    survey = load_survey(SPEC)
    assert survey.kind == "likert" and len(survey.items) == 300
    assert [i.id for i in survey.items] == [str(n) for n in range(1, 301)]
    facets = Counter(i.meta["facet"] for i in survey.items)
    assert len(facets) == 30 and set(facets.values()) == {10}
    assert Counter(i.meta["domain"] for i in survey.items) == {d: 60 for d in "NEOAC"}
    source = {r["item_num_300"]: r for r in table("ipip_neo_300.csv")}
    for item in survey.items:
        row = source[item.id]
        assert item.keyed == int(row["key"]), item.id
        assert (item.meta["domain"], item.meta["facet"], item.meta["facet_name"]) == (row["domain"], row["facet"], row["facet_name"])
        assert item.meta["ipip_text"] == row["text"]
        assert item.fields["statement"].rstrip(".") == row["text_first_person"].rstrip(".")
        n = int(item.id)  # the IPIP-NEO numbering rule (METRICS.md §4)
        assert item.meta["facet"] == f"{'NEOAC'[(n - 1) % 5]}{((n - 1) % 30) // 5 + 1}"
    assert sum(i.keyed < 0 for i in survey.items) == 148  # reversed items, as SOURCE.md counts them
    for facet in table("ipip_neo_facets.csv"):
        assert sorted(int(i.id) for i in survey.items if i.meta["facet"] == facet["facet"]) == \
            [int(x) for x in facet["items_300"].split()]
    assert "Public domain" in (survey.source.license or "") and "ipip.ori.org" in (survey.source.url or "")


def test_the_120_item_form_is_the_300_items_it_names() -> None:
    long = {i.id: i for i in load_survey(SPEC).items}
    short = load_survey(REPO / "surveys" / "ipip_neo_120.yaml")
    assert sum("item_num_120" in i.meta for i in long.values()) == 120
    for item in short.items:
        twin = long[str(item.meta["item_num_300"])]
        assert twin.meta["item_num_120"] == int(item.id)
        assert (twin.fields, twin.keyed, twin.meta["facet"]) == (item.fields, item.keyed, item.meta["facet"])
    assert [t.model_dump() for t in load_survey(SPEC).templates] == [t.model_dump() for t in short.templates]


@pytest.mark.slow
def test_probekit_validate_ipip_neo_300() -> None:
    result = probekit("validate", str(SPEC))
    assert result.returncode == 0, result.stderr
    assert "likert, 300 items, 6 templates" in result.stdout
