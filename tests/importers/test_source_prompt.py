"""The source's prompt is stored with the trials instead of probekit's template wording: exactly as given (text or
chat messages), or the source's template rendered per item; the trial keeps its form for analysis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from import_helpers import write_lines

from probekit.importers import BadRows, import_responses
from probekit.store.store import Store
from probekit.survey.expand import expand
from probekit.survey.loader import load_survey

REPO = Path(__file__).resolve().parents[2]
EXACT = 'Given a statement of you: "You worry about things."\nChoose (A) Very Accurate ... (E) Very Inaccurate.\nAnswer:'


def trials(store: Path) -> dict[str, dict[str, object]]:
    frame = Store(store).query("SELECT item_id, trial_id, template_id, option_order, messages, completion_prompt FROM trials")
    return {r.item_id: {"trial_id": r.trial_id, "template": r.template_id, "order": [int(x) for x in r.option_order],
                        "messages": json.loads(r.messages), "completion": r.completion_prompt} for r in frame.itertuples()}


def test_exact_prompts_and_templates_are_stored(tmp_path: Path) -> None:
    chat = [{"role": "system", "content": "You are a survey respondent."}, {"role": "user", "content": "I trust others. A-E?"}]
    source = write_lines(tmp_path / "prompts.jsonl", [
        {"defaults": {"survey": "ipip_neo_120", "model": "m", "form": {"template": "mpi_original"}}},
        {"item": "1", "label": "A", "prompt": EXACT},
        {"item": "4", "label": "E", "prompt": chat},
        {"item": "2", "label": "B", "prompt_template": "Statement: {statement}\n{options}\nAnswer:"},
        {"item": "3", "label": "C"},
    ])
    store = tmp_path / "store.duckdb"
    import_responses(source, store_path=store)
    stored = trials(store)
    rendered = {t.item_id: t for t in expand(load_survey(REPO / "surveys" / "ipip_neo_120.yaml"))
                if t.template_id == "mpi_original"}
    assert stored["1"]["messages"] == [{"role": "user", "content": EXACT}] and stored["1"]["completion"] == EXACT
    assert stored["4"]["messages"] == chat
    assert stored["2"]["messages"] == [{"role": "user", "content": "Statement: I make friends easily.\n(A). Very Accurate\n"
                                        "(B). Moderately Accurate\n(C). Neither Accurate Nor Inaccurate\n"
                                        "(D). Moderately Inaccurate\n(E). Very Inaccurate\nAnswer:"}]
    for item in ("1", "2", "4"):  # the form is kept; the id is the source prompt's own
        assert stored[item]["template"] == "mpi_original" and stored[item]["order"] == [4, 3, 2, 1, 0]
        assert stored[item]["trial_id"] != rendered[item].trial_id
    assert stored["3"]["trial_id"] == rendered["3"].trial_id  # no prompt given: probekit's rendering
    got = Store(store).query("SELECT t.item_id, r.choice FROM results r JOIN trials t USING (trial_id) ORDER BY 1")
    assert got["choice"].astype(int).tolist() == [4, 3, 2, 0]  # A, B, C, E under the reversed scale


def test_prompt_problems_are_bad_rows(tmp_path: Path) -> None:
    source = write_lines(tmp_path / "bad.jsonl", [
        {"survey": "ipip_neo_120", "item": "1", "model": "m", "form": {"template": "mpi_original"}, "label": "A",
         "prompt_template": "Rate: {statment}"},
        {"survey": "ipip_neo_120", "item": "1", "model": "m", "form": {"template": "mpi_original"}, "label": "A",
         "prompt": [{"role": "narrator", "content": "x"}]},
        {"survey": "ipip_neo_120", "item": "1", "model": "m", "form": {"template": "mpi_original"}, "label": "A",
         "prompt": "x", "prompt_template": "{statement}"},
        {"defaults": {"survey": "ipip_neo_120"}},
    ])
    with pytest.raises(BadRows) as caught:
        import_responses(source, store_path=tmp_path / "s.duckdb")
    messages = {p.line: p.message for p in caught.value.problems}
    assert "{statment}" in messages[1] and "statement" in messages[1]
    assert "'prompt' must be the exact prompt" in messages[2]
    assert "not both" in messages[3]
    assert "unknown field(s) ['defaults']" in messages[4]  # a defaults line only counts as the first line


def test_a_bad_defaults_line_is_one_problem(tmp_path: Path) -> None:
    source = write_lines(tmp_path / "d.jsonl", [{"defaults": {"survey": "ipip_neo_120", "label": "A"}},
                                                 {"item": "1", "model": "m", "choice": 0}])
    with pytest.raises(BadRows) as caught:
        import_responses(source, store_path=tmp_path / "s.duckdb")
    [problem] = caught.value.problems
    assert problem.line == 1 and "defaults cannot set ['label']" in problem.message
