"""Item identity checked by text: a row whose item_text is another item's is reported with both texts (case, spacing
and punctuation differences are not mismatches); `--match-items text` matches rows to items by their text when the
source numbers items differently (here: IPIP-NEO-300 numbers for the 120-item survey)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from import_helpers import probekit, write_lines

from probekit.importers import BadRows, ImportRefused, import_responses
from probekit.store.store import Store

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "personality"


def row(item: str, text: str, **extra: object) -> dict[str, object]:
    return {"survey": "ipip_neo_120", "item": item, "model": "m", "form": {"template": "mpi_mirrored"},
            "item_text": text, "label": "C", **extra}


def test_item_32_with_another_items_text_is_reported_with_both_texts(tmp_path: Path) -> None:
    source = write_lines(tmp_path / "answers.jsonl", [
        row("1", "  i WORRY about things "),        # the spec's text, re-typed: fine
        row("2", "Make friends easily."),           # the inventory's own phrasing (meta.ipip_text): fine
        row("32", "I worry about things."),         # item 1's text under number 32
    ])
    with pytest.raises(BadRows) as caught:
        import_responses(source, store_path=tmp_path / "store.duckdb")
    [problem] = caught.value.problems
    assert problem.line == 3
    assert ("item '32': the source's text 'I worry about things.' is not the survey's 'I feel comfortable around "
            "people.'; that is the text of item '1'") in problem.message
    assert "--match-items text" in problem.message


def ipip_300_numbered(count: int = 12) -> list[dict[str, object]]:
    """Rows numbered as in IPIP-NEO-300, for items of the 120-item form whose numbers differ in the two forms."""
    with open(DATA / "ipip_neo_120.csv", encoding="utf-8") as handle:
        items = [r for r in csv.DictReader(handle) if r["item_num_300"] != r["item_num_120"]][:count]
    return [{"survey": "ipip_neo_120", "item": r["item_num_300"], "item_text": r["text"], "model": "m",
             "form": {"template": "mpi_mirrored"}, "choice": k % 5, "_expected": r["item_num_120"]}
            for k, r in enumerate(items)]


def test_match_items_text_imports_a_source_numbered_differently(tmp_path: Path) -> None:
    rows = ipip_300_numbered()
    expected = {r.pop("_expected"): r["choice"] for r in rows}
    source = write_lines(tmp_path / "neo300_numbers.jsonl", rows)
    store = tmp_path / "store.duckdb"
    with pytest.raises(BadRows) as caught:  # by id: every row is the wrong item, or none
        import_responses(source, store_path=store)
    assert len(caught.value.problems) == len(rows)
    summary = import_responses(source, store_path=store, match_items="text")
    assert summary.imported == len(rows)
    got = Store(store).query("SELECT t.item_id, r.choice FROM results r JOIN trials t USING (trial_id)")
    assert dict(zip(got["item_id"], got["choice"].astype(int))) == expected
    assert import_responses(source, store_path=store, match_items="text").already


def test_match_items_text_problems(tmp_path: Path) -> None:
    source = write_lines(tmp_path / "a.jsonl", [
        {"survey": "ipip_neo_120", "model": "m", "form": {"template": "mpi_mirrored"}, "item_text": "I juggle.", "choice": 0},
        {"survey": "ipip_neo_120", "item": "1", "model": "m", "form": {"template": "mpi_mirrored"}, "choice": 0},
    ])
    with pytest.raises(BadRows) as caught:
        import_responses(source, store_path=tmp_path / "s.duckdb", match_items="text")
    first, second = caught.value.problems
    assert first.line == 1 and "no item of survey 'ipip_neo_120' has the text 'I juggle.'" in first.message
    assert second.line == 2 and "this row has none: add item_text" in second.message
    with pytest.raises(ImportRefused, match="--match-items 'name'"):
        import_responses(source, store_path=tmp_path / "s.duckdb", match_items="name")


@pytest.mark.slow
def test_cli_reports_both_texts_and_imports_with_match_items_text(tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    wrong = write_lines(tmp_path / "wrong.jsonl", [row("31", "I worry about things."), row("32", "Worry about things.")])
    refused = probekit("import", str(wrong), "--store", str(store))
    assert refused.returncode == 1
    assert (f"{wrong}:2: item '32': the source's text 'Worry about things.' is not the survey's 'I feel comfortable "
            "around people.'") in refused.stderr
    rows = ipip_300_numbered(4)
    for r in rows:
        r.pop("_expected")
    source = write_lines(tmp_path / "neo300.jsonl", rows)
    done = probekit("import", str(source), "--match-items", "text", "--store", str(store))
    assert done.returncode == 0 and "imported 4 response(s)" in done.stdout, done.stderr
    bad = probekit("import", str(source), "--match-items", "number", "--store", str(store))
    assert bad.returncode == 2 and "use id or text" in bad.stderr
