"""`probekit import`: small files in each format (generic JSONL, POBs response JSON, MoralChoice response
CSV), including malformed lines: bad rows are reported with their line, nothing is imported without
--skip-bad, and the imported rows land in the store in canonical order like probekit's own results."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from probekit.importers import BadRows, ImportRefused, import_responses
from probekit.store.store import Store

REPO = Path(__file__).resolve().parents[1]
POBS = REPO / "surveys" / "pobs.yaml"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.run([sys.executable, "-m", "probekit.cli.main", "import", *args],
                          capture_output=True, text=True, env=env, timeout=300)


def results(store: Path) -> list[dict[str, object]]:
    frame = Store(store).query(
        "SELECT t.survey_id, t.item_id, t.template_id, t.option_order, t.reasoning, t.factors, r.model, r.sample_index, "
        "r.status, r.mode, r.choice, r.distribution, r.raw_text FROM results r JOIN trials t USING (trial_id) "
        "ORDER BY r.model, t.item_id, t.template_id, t.reasoning, t.option_order, r.sample_index")
    rows = frame.to_dict("records")
    for row in rows:
        row["option_order"] = [int(x) for x in row["option_order"]]
        row["distribution"] = None if row["distribution"] is None else [float(x) for x in row["distribution"]]
    return rows


def write_lines(path: Path, lines: list[object]) -> Path:
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    return path


GOOD_GENERIC = [
    {"survey": "moralchoice", "item": "C_001", "model": "m1", "form": {"template": "ab", "order": [0, 1]}, "choice": 0},
    {"survey": "moralchoice", "item": "C_001", "model": "m1", "form": {"template": "ab", "order": [1, 0]}, "sample": 2,
     "choice": 1, "raw_text": "A"},
    {"survey": "moralchoice", "item": "C_003", "model": "m1", "form": {"template": "compare", "order": [1, 0]},
     "distribution": [0.25, 0.75]},
    {"survey": "moralchoice", "item": "C_003", "model": "m2", "form": {"template": "repeat", "order": [0, 1]}, "status": "refusal"},
]


@pytest.mark.slow  # drives the CLI in subprocesses
def test_generic_jsonl_through_the_cli(tmp_path: Path) -> None:
    source = write_lines(tmp_path / "answers.jsonl", [
        *GOOD_GENERIC,
        "{not json",                                                                                    # line 5
        {"survey": "moralchoice", "item": "C_001", "model": "m1", "choice": 0, "status": "refusal"},   # line 6: two answers
        {"survey": "moralchoice", "item": "NO_SUCH_1", "model": "m1", "form": {"template": "ab"}, "choice": 0},  # 7: no item
        {"survey": "moralchoice", "item": "C_001", "model": "m1", "form": {"template": "ab", "order": [0, 1]}, "choice": 2},  # 8
        {"survey": "moralchoice", "item": "C_001", "model": "m1", "form": {"template": "ab"}, "choice": 0},  # 9: ambiguous order
        {"survey": "moralchoice", "item": "C_001", "model": "m1", "form": {"template": "ab", "order": [0, 1]}, "choice": 1},  # 10: dup of 1
        {"survey": "moralchoice", "item": "C_001", "model": "m1", "form": {"template": "ab", "order": [0, 1]},
         "distribution": [0.5, 0.6]},                                                                    # 11: sums to 1.1
    ])
    store = tmp_path / "store.duckdb"
    refused = cli(str(source), "--store", str(store))
    assert refused.returncode == 1
    for line, words in [(5, "invalid JSON"), (6, "exactly one of"), (7, "no item 'NO_SUCH_1'"), (8, "outside 0..1"),
                        (9, "name order"), (10, "duplicate of line 1"), (11, "sum to 1")]:
        assert f"answers.jsonl:{line}: " in refused.stderr and words in refused.stderr, (line, refused.stderr)
    assert "nothing was imported" in refused.stderr
    assert not store.exists() or Store(store).query("SELECT count(*) AS n FROM results")["n"][0] == 0

    done = cli(str(source), "--store", str(store), "--skip-bad")
    assert done.returncode == 0, done.stderr
    assert "imported 4 response(s)" in done.stdout and "7 bad row(s) skipped" in done.stdout
    rows = results(store)
    assert [(r["model"], r["item_id"], r["template_id"], r["option_order"], r["sample_index"], r["status"], r["choice"])
            for r in rows] == [
        ("m1", "C_001", "ab", [0, 1], 0, "ok", 0),
        ("m1", "C_001", "ab", [1, 0], 2, "ok", 1),
        ("m1", "C_003", "compare", [1, 0], 0, "ok", 1),
        ("m2", "C_003", "repeat", [0, 1], 0, "refusal", None),
    ]
    assert rows[0]["distribution"] == [1.0, 0.0] and rows[2]["distribution"] == [0.25, 0.75]
    assert rows[2]["mode"] == "logprob" and rows[0]["mode"] == "sample"
    run = Store(store).query("SELECT r.config, m.backend FROM runs r JOIN models m USING (run_id) LIMIT 1")
    assert json.loads(run["config"][0])["import"]["format"] == "generic" and run["backend"][0] == "import"
    # Imported trials are the trials a probekit run of the same spec would use (same content-hash ids).
    from probekit.survey.expand import expand
    from probekit.survey.loader import load_survey

    own = {t.trial_id for t in expand(load_survey(REPO / "surveys" / "moralchoice.yaml"), limit=2)}
    stored_ids = set(Store(store).query("SELECT trial_id FROM results")["trial_id"])
    assert stored_ids <= own

    again = cli(str(source), "--store", str(store), "--skip-bad")
    assert again.returncode == 0 and "already imported" in again.stdout
    assert len(results(store)) == 4


def test_generic_with_a_user_survey_and_factor_forms(tmp_path: Path) -> None:
    survey = tmp_path / "mini.yaml"
    survey.write_text(
        "id: mini\nkind: likert\n"
        "options: [{text: 'No', value: 0}, {text: 'Maybe', value: 1}, {text: 'Yes', value: 2}]\n"
        "factors: {tone: {plain: '', polite: 'Please answer.'}}\n"
        "templates:\n  - {id: t1, user: \"{q} {tone}\\n{options}\\nAnswer:\"}\n"
        "items:\n  - {id: q1, fields: {q: 'Is it?'}}\n", encoding="utf-8")
    source = write_lines(tmp_path / "mini.jsonl", [
        {"survey": "mini", "item": "q1", "model": "x", "form": {"tone": "polite", "order": [2, 1, 0]}, "choice": 2},
        {"survey": "mini", "item": "q1", "model": "x", "form": {"tone": "plain"}, "distribution": [0.2, 0.3, 0.5]},
        {"survey": "mini", "item": "q1", "model": "x", "form": {"colour": "red"}, "choice": 0},
    ])
    store = tmp_path / "s.duckdb"
    with pytest.raises(BadRows) as error:
        import_responses(source, survey_file=survey, store_path=store)
    assert [p.line for p in error.value.problems] == [3] and "unknown form key 'colour'" in error.value.problems[0].message
    summary = import_responses(source, survey_file=survey, store_path=store, skip_bad=True)
    assert summary.imported == 2 and summary.surveys == ["mini"]
    rows = results(store)
    polite = next(r for r in rows if json.loads(str(r["factors"])) == {"tone": "polite"})
    # An order the spec's policy does not list is rendered like probekit would, stored canonically.
    assert polite["option_order"] == [2, 1, 0] and polite["choice"] == 2 and polite["distribution"] == [0.0, 0.0, 1.0]
    with pytest.raises(ImportRefused):
        import_responses(source, fmt="xml", survey_file=survey, store_path=store)


MORALCHOICE_HEADER = ["scenario_id", "model_id", "question_type", "question_ordering", "question_header", "question_text",
                      "eval_technique", "eval_top_p", "eval_temperature", "timestamp", "answer_raw", "answer", "decision",
                      "eval_sample_nb"]


@pytest.mark.slow  # drives the CLI in subprocesses
def test_moralchoice_response_csv(tmp_path: Path) -> None:
    source = tmp_path / "results_openai_gpt-4.csv"
    rows = [
        ["C_001", "openai/gpt-4", "ab", "0", "hdr", "q", "top_p_sampling", "1.0", "1.0", "t", "A", "A", "action1", "0"],
        ["C_001", "openai/gpt-4", "ab", "1", "hdr", "q", "top_p_sampling", "1.0", "1.0", "t", "A", "A", "action2", "0"],
        ["C_001", "openai/gpt-4", "compare", "1", "hdr", "q", "top_p_sampling", "1.0", "1.0", "t",
         "No.\nI would not.", "No", "action1", "1"],                                  # a quoted answer over 2 lines
        ["C_001", "openai/gpt-4", "repeat", "0", "hdr", "q", "top_p_sampling", "1.0", "1.0", "t",
         "I cannot answer this question", "", "refusal", "0"],
        ["C_001", "openai/gpt-4", "essay", "0", "hdr", "q", "", "", "", "t", "x", "", "action1", "0"],  # bad form
        ["C_003", "openai/gpt-4", "ab", "0", "hdr", "q", "", "", "", "t", "maybe", "", "perhaps", "0"],  # bad decision
        ["C_003", "openai/gpt-4", "ab", "0", "hdr", "q", "", "", "", "t", "???", "", "invalid", "0"],
    ]
    with source.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(MORALCHOICE_HEADER)
        writer.writerows(rows)
    store = tmp_path / "s.duckdb"
    refused = cli(str(source), "--store", str(store))
    assert refused.returncode == 1
    # Physical lines: the header is line 1 and the two-line answer pushes later rows down by one.
    assert f"{source.name}:7: question_type 'essay'" in refused.stderr
    assert f"{source.name}:8: decision 'perhaps'" in refused.stderr
    summary = import_responses(source, store_path=store, skip_bad=True)
    assert summary.imported == 5 and summary.models == ["openai/gpt-4"]
    got = [(r["template_id"], r["option_order"], r["sample_index"], r["status"], r["choice"]) for r in results(store)]
    assert got == [
        ("ab", [0, 1], 0, "ok", 0),          # ordering 0, decision action1 -> option 0
        ("ab", [1, 0], 0, "ok", 1),          # ordering 1 (reversed), decision action2 -> canonical option 1
        ("compare", [1, 0], 1, "ok", 0),
        ("repeat", [0, 1], 0, "refusal", None),
        ("ab", [0, 1], 0, "invalid", None),  # C_003
    ]
    assert any(r["raw_text"] == "No.\nI would not." for r in results(store))


def pobs_items() -> tuple[str, str, str]:
    """Ids of a keyed -1 statement, a keyed +1 statement and a declarative item of the bundled POBs survey."""
    return "capitalism_vs_socialism-01", "capitalism_vs_socialism-02", "capitalism_vs_socialism-decl"


@pytest.mark.slow  # drives the CLI in subprocesses
def test_pobs_direct_and_reflection_files(tmp_path: Path) -> None:
    minus, plus, decl = pobs_items()
    direct = tmp_path / "POBS_llama_3_3_70b_instruct_2.json"
    direct.write_text(json.dumps([
        # keyed -1: A = Strongly disagree = polarity +1
        {"id": minus, "selected": "A", "choice": "Strongly disagree", "answer_polarity": 1.0},
        {"id": plus, "selected": "F", "choice": "Refused", "answer_polarity": None},
        {"id": decl, "selected": None, "choice": "", "answer_polarity": None},
        {"id": plus, "selected": "Z", "choice": "?", "answer_polarity": 0.0},
    ], indent=2), encoding="utf-8")
    store = tmp_path / "s.duckdb"
    refused = cli(str(direct), "--store", str(store), "--survey", str(POBS))
    assert refused.returncode == 1
    # indent=2 puts the fourth object's "id" on line 21 and its "selected" (the line reported) on 22.
    assert f"{direct.name}:22: selected 'Z' is not one of the labels" in refused.stderr
    no_survey = cli(str(direct), "--store", str(store))
    assert no_survey.returncode == 2 and "--survey" in no_survey.stderr
    done = cli(str(direct), "--store", str(store), "--survey", str(POBS), "--skip-bad")
    assert done.returncode == 0, done.stderr
    rows = results(store)
    assert {r["model"] for r in rows} == {"llama_3_3_70b_instruct"} and {r["sample_index"] for r in rows} == {1}
    by_item = {r["item_id"]: r for r in rows}
    assert by_item[minus]["choice"] == 0 and by_item[minus]["template_id"] == "direct" and by_item[minus]["reasoning"] == "direct"
    assert by_item[plus]["choice"] == 5 and by_item[plus]["status"] == "ok"  # Refused is an option (polarity null)
    assert by_item[decl]["status"] == "invalid"

    reflect = tmp_path / "POBS_granite_3_8b_1.json"
    reflect.write_text(json.dumps({"questions": [
        {"id": minus, "selected": "E", "choice": "Strongly agree", "answer_polarity": -1.0,
         "reconsidered_selection": "D", "reconsidered_polarity": -0.5},
        {"id": plus, "selected": "B", "choice": "Disagree", "answer_polarity": 0.5,  # wrong: B is -0.5 for keyed +1
         "reconsidered_selection": "B", "reconsidered_polarity": -0.5},
    ]}), encoding="utf-8")
    with pytest.raises(BadRows) as error:
        import_responses(reflect, survey_file=POBS, store_path=store)
    assert len(error.value.problems) == 1 and "polarity 0.5 disagrees" in error.value.problems[0].message
    summary = import_responses(reflect, survey_file=POBS, store_path=store, skip_bad=True)
    assert summary.imported == 3
    granite = [r for r in results(store) if r["model"] == "granite_3_8b"]
    assert [(r["item_id"], r["template_id"], r["reasoning"], r["choice"]) for r in granite] == [
        (minus, "direct", "reasoning", 4),      # the reasoning answer
        (minus, "reflection", "reasoning", 3),  # the answer after self-reflection
        (plus, "reflection", "reasoning", 1),
    ]
