"""Answers as the model saw them: a shown label ("A", "1", "Strongly agree") with the shown order (form.order,
`shown`, or the template whose order it was) imports to the same canonical choices as the hand-inverted file; a
position label whose order the row does not state is a bad row with its line, never a silent un-inverted answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from import_helpers import SCALE, mini_spec, probekit, write_lines

from probekit.importers import BadRows, import_responses
from probekit.store.store import Store

IPIP = "ipip_neo_120"
LETTERS = "ABCDE"
# Canonical options of the IPIP surveys: 0 = Very Inaccurate ... 4 = Very Accurate. The published ("original")
# MPI prompt lists them reversed: (A) Very Accurate ... (E) Very Inaccurate (template mpi_original).
ANSWERS = {"1": 4, "2": 0, "3": 3, "4": 2, "5": 1, "6": 4}  # item -> canonical choice the model meant


def stored(store: Path) -> list[tuple[str, str, list[int], int, str]]:
    frame = Store(store).query(
        "SELECT t.item_id, t.template_id, t.option_order, r.choice, r.trial_id FROM results r JOIN trials t "
        "USING (trial_id) ORDER BY t.item_id, t.template_id")
    return [(r.item_id, r.template_id, [int(x) for x in r.option_order], int(r.choice), r.trial_id)
            for r in frame.itertuples()]


def hand_inverted(path: Path) -> Path:
    """What a researcher had to write before: canonical indices, inverted by hand for the reversed prompt."""
    return write_lines(path, [{"survey": IPIP, "item": item, "model": "m", "form": {"template": "mpi_original"},
                               "choice": choice} for item, choice in ANSWERS.items()])


def shown_letter(choice: int) -> str:
    """The letter the reversed MPI prompt shows for a canonical option."""
    return LETTERS[4 - choice]


@pytest.mark.parametrize("style", ["template", "order", "shown", "text", "defaults"])
def test_shown_labels_import_like_the_hand_inverted_file(tmp_path: Path, style: str) -> None:
    reference = tmp_path / "reference.duckdb"
    import_responses(hand_inverted(tmp_path / "inverted.jsonl"), store_path=reference)
    shown_texts = ["Very Accurate", "Moderately Accurate", "Neither Accurate Nor Inaccurate", "Moderately Inaccurate",
                   "Very Inaccurate"]
    rows: list[object] = []
    if style == "defaults":
        rows.append({"defaults": {"survey": IPIP, "model": "m", "form": {"template": "mpi_original"}}})
    for item, choice in ANSWERS.items():
        row: dict[str, object] = {"survey": IPIP, "item": item, "model": "m", "label": shown_letter(choice)}
        if style == "template":
            row["form"] = {"template": "mpi_original"}
        elif style == "order":  # the template names the style, the order says what was shown where
            row["form"] = {"template": "mpi_original", "order": [4, 3, 2, 1, 0]}
        elif style == "shown":
            row.update(form={"template": "mpi_original"}, shown=[t.upper() + "." for t in shown_texts])
        elif style == "text":  # the answer's text: no order needed
            row.update(form={"template": "mpi_original"}, label=shown_texts[4 - choice].lower())
        else:
            row = {"item": item, "label": f"({shown_letter(choice)})"}
        rows.append(row)
    store = tmp_path / "store.duckdb"
    summary = import_responses(write_lines(tmp_path / "labels.jsonl", rows), store_path=store)
    assert summary.imported == len(ANSWERS)
    assert stored(store) == stored(reference)  # same trials (same ids), same canonical choices
    assert [choice for *_rest, choice, _t in stored(store)] == list(ANSWERS.values())


def test_numbers_and_a_mirrored_template(tmp_path: Path) -> None:
    """Number labels of the 'like me' style: '1' is option 4 under the original (reversed) anchors, option 0 under
    the mirrored ones."""
    rows = [{"survey": IPIP, "item": "1", "model": "m", "form": {"template": "likeme_original"}, "label": 1},
            {"survey": IPIP, "item": "1", "model": "m", "form": {"template": "likeme_mirrored"}, "label": "1"}]
    store = tmp_path / "store.duckdb"
    import_responses(write_lines(tmp_path / "numbers.jsonl", rows), store_path=store)
    assert [(template, choice) for _i, template, _o, choice, _t in stored(store)] == [
        ("likeme_mirrored", 0), ("likeme_original", 4)]


def mixed_rows() -> list[dict[str, object]]:
    """Answers to a one-template survey, some under the canonical scale and some under a reversed one."""
    return [
        {"survey": "mini_traits", "item": "e1", "model": "m", "form": {"order": [0, 1, 2, 3, 4]}, "label": "E"},  # 1
        {"survey": "mini_traits", "item": "e2", "model": "m", "label": "A"},                                       # 2
        {"survey": "mini_traits", "item": "e3", "model": "m", "form": {"order": [4, 3, 2, 1, 0]}, "label": "A"},  # 3
        {"survey": "mini_traits", "item": "e4", "model": "m", "label": "B"},                                       # 4
        {"survey": "mini_traits", "item": "n1", "model": "m", "label": "Agree"},                                   # 5
    ]


def test_a_file_that_mixes_orders_without_saying_which_is_rejected_with_the_lines(tmp_path: Path) -> None:
    spec = mini_spec(tmp_path / "mini.yaml")
    store = tmp_path / "store.duckdb"
    with pytest.raises(BadRows) as caught:
        import_responses(write_lines(tmp_path / "mixed.jsonl", mixed_rows()), survey_file=spec, store_path=store)
    problems = caught.value.problems
    assert [p.line for p in problems] == [2, 4]  # the rows whose position label has no stated order
    assert "'A' is a position in the order the options were shown" in problems[0].message
    assert "form.order" in problems[0].message and "form.template" in problems[0].message
    assert not store.exists() or Store(store).query("SELECT count(*) AS n FROM results")["n"][0] == 0
    # The stated rows map through their orders; an option's text needs none.
    fixed = [r for r in mixed_rows() if "form" in r or r["label"] == "Agree"]
    import_responses(write_lines(tmp_path / "fixed.jsonl", fixed), survey_file=spec, store_path=store)
    got = Store(store).query("SELECT t.item_id, r.choice FROM results r JOIN trials t USING (trial_id) ORDER BY 1")
    assert dict(zip(got["item_id"], got["choice"].astype(int))) == {"e1": 4, "e3": 4, "n1": SCALE.index("Agree")}


def test_a_label_that_is_no_label_nor_option_text(tmp_path: Path) -> None:
    spec = mini_spec(tmp_path / "mini.yaml")
    rows = [{"survey": "mini_traits", "item": "e1", "model": "m", "form": {"template": "agree"}, "label": "F"},
            {"survey": "mini_traits", "item": "e1", "model": "m", "form": {"template": "agree"}, "sample": 1,
             "shown": ["Agree", "Disagree"], "label": "A"}]
    with pytest.raises(BadRows) as caught:
        import_responses(write_lines(tmp_path / "bad.jsonl", rows), survey_file=spec, store_path=tmp_path / "s.duckdb")
    first, second = caught.value.problems
    assert first.line == 1 and "label 'F' is not one of the labels ['A', 'B', 'C', 'D', 'E'] nor an option's text" in first.message
    assert second.line == 2 and "are not the options of item 'e1'" in second.message


@pytest.mark.slow
def test_cli_rejects_the_mixed_file_and_imports_the_stated_one(tmp_path: Path) -> None:
    spec = mini_spec(tmp_path / "mini.yaml")
    store = tmp_path / "store.duckdb"
    mixed = write_lines(tmp_path / "mixed.jsonl", mixed_rows())
    refused = probekit("import", str(mixed), "--survey", str(spec), "--store", str(store))
    assert refused.returncode == 1, refused.stderr
    assert f"{mixed}:2: label 'A' is a position in the order the options were shown" in refused.stderr
    assert f"{mixed}:4: label 'B'" in refused.stderr and "nothing was imported" in refused.stderr
    inverted = hand_inverted(tmp_path / "inverted.jsonl")
    labels = write_lines(tmp_path / "labels.jsonl", [
        {"survey": IPIP, "item": item, "model": "m", "form": {"template": "mpi_original"}, "label": shown_letter(choice)}
        for item, choice in ANSWERS.items()])
    first = probekit("import", str(labels), "--store", str(store))
    assert first.returncode == 0 and f"imported {len(ANSWERS)} response(s)" in first.stdout, first.stderr
    # The hand-inverted file holds the same answers: nothing new (re-import by content is a no-op).
    again = probekit("import", str(inverted), "--store", str(store))
    assert again.returncode == 0 and "already imported" in again.stdout, again.stdout + again.stderr


def test_shown_and_form_order_that_disagree_are_a_bad_row(tmp_path: Path) -> None:
    spec = mini_spec(tmp_path / "mini.yaml")
    rows = [{"survey": "mini_traits", "item": "e1", "model": "m", "form": {"order": [0, 1, 2, 3, 4]},
             "shown": list(reversed(SCALE)), "label": "A"}]
    with pytest.raises(BadRows) as caught:
        import_responses(write_lines(tmp_path / "both.jsonl", rows), survey_file=spec, store_path=tmp_path / "s.duckdb")
    assert "form.order [0, 1, 2, 3, 4] disagrees with shown" in caught.value.problems[0].message
