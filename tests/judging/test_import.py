"""Judge data made elsewhere: judgments from JSONL give the position consistency a hand computation from the
file gives; published answers import as generate results; bad lines are reported with their line numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from selfpref_helpers import ENV, MTBENCH_ANSWERS, REPO

from probekit.analysis import analyze
from probekit.importers import BadRows, import_responses
from probekit.store.store import Store

JUDGMENTS = [
    # judge, question, model_a, model_b, first, answer (verdict letter or probabilities as shown)
    ("J1", "q1", "m1", "m2", "model_a", "A"), ("J1", "q1", "m1", "m2", "model_b", "B"),           # m1 both: consistent
    ("J1", "q2", "m1", "m2", "model_a", "A"), ("J1", "q2", "m1", "m2", "model_b", "A"),           # first shown: primacy
    ("J1", "q3", "m1", "m2", "model_a", "C"), ("J1", "q3", "m1", "m2", "model_b", "tie"),         # tie both: consistent
    ("J1", "q1", "m1", "m3", "model_a", [0.2, 0.8]), ("J1", "q1", "m1", "m3", "model_b", [0.6, 0.3, 0.1]),  # m3 both
    ("J1", "q2", "m1", "m3", "model_a", "B"),                                                     # one order only
    ("J2", "q1", "m2", "m1", "model_a", "B"), ("J2", "q1", "m2", "m1", "model_b", "B"),           # second shown: recency
    ("J2", "q2", "m1", "m2", "model_a", "A"), ("J2", "q2", "m1", "m2", "model_b", "B"),           # m1 both
]


def write_judgments(path: Path, rows: list[tuple[str, str, str, str, str, object]] = JUDGMENTS) -> Path:
    with path.open("w") as handle:
        for judge, question, a, b, first, answer in rows:
            line = {"judge": judge, "question": question, "model_a": a, "model_b": b, "first": first}
            line.update({"probs": answer} if isinstance(answer, list) else {"verdict": answer})
            handle.write(json.dumps(line) + "\n")
    return path


def hand_position_consistency(path: Path) -> dict[str, float]:
    """PC per judge straight from the file: the winner of each line by model name, pairs seen in both orders."""
    winners: dict[tuple[str, str, frozenset[str]], dict[str, str]] = defaultdict(dict)
    for raw in path.read_text().splitlines():
        line = json.loads(raw)
        shown = [line[line["first"]], line["model_b" if line["first"] == "model_a" else "model_a"]]
        if "verdict" in line:
            letter = line["verdict"].upper()
            winner = {"A": shown[0], "B": shown[1]}.get(letter, "tie")
        else:
            p = line["probs"] + [0.0] * (3 - len(line["probs"]))
            winner = shown[0] if p[0] > max(p[1], p[2]) else shown[1] if p[1] > max(p[0], p[2]) else "tie"
        winners[(line["judge"], line["question"], frozenset(shown))][shown[0]] = winner
    pc: dict[str, list[bool]] = defaultdict(list)
    for (judge, _q, _pair), by_first in winners.items():
        if len(by_first) == 2:
            pc[judge].append(len(set(by_first.values())) == 1)
    return {judge: sum(flags) / len(flags) for judge, flags in pc.items()}


def test_imported_judgments_give_the_hand_computed_position_consistency(tmp_path: Path) -> None:
    source = write_judgments(tmp_path / "judgments.jsonl")
    store = tmp_path / "s.duckdb"
    done = subprocess.run([sys.executable, "-m", "probekit.cli.main", "import", str(source), "--store", str(store)],
                          capture_output=True, text=True, env=ENV, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "imported 13 response(s) of J1, J2 for judgments" in done.stdout
    hand = hand_position_consistency(source)
    assert hand == {"J1": 0.75, "J2": 0.5}
    tables = analyze(store, survey="judgments", tables=["judge_position"], n_boot=200)
    position = tables["judge_position"].set_index("judge")
    assert position["pc"].to_dict() == hand
    assert position.loc["J1", "primacy"] == 1 and position.loc["J1", "n_incomplete"] == 1
    assert position.loc["J2", "recency"] == 1 and position.loc["J2", "pf"] == pytest.approx(0.5)
    again = subprocess.run([sys.executable, "-m", "probekit.cli.main", "import", str(source), "--store", str(store)],
                           capture_output=True, text=True, env=ENV, cwd=REPO, timeout=300)
    assert again.returncode == 0 and "already imported" in again.stdout
    # The probabilities were stored as given (canonical order: m1, m3, tie); verdicts as one-hot samples.
    rows = Store(store).query("SELECT r.mode, r.distribution, t.option_order FROM results r JOIN trials t USING (trial_id) "
                              "WHERE t.item_id = 'q1|m1|m3' ORDER BY t.option_order")
    assert [list(d) for d in rows["distribution"]] == [pytest.approx([0.2, 0.8, 0.0]), pytest.approx([0.3, 0.6, 0.1])]
    assert set(rows["mode"]) == {"logprob"}


def test_self_preference_of_imported_judgments(tmp_path: Path) -> None:
    # Three judges who also wrote the answers: A always prefers its own; B and C judge the A-pairs for the panel.
    rows: list[tuple[str, str, str, str, str, object]] = []
    for q in ("q1", "q2"):
        for first in ("model_a", "model_b"):
            own_first = first == "model_a"
            rows.append(("A", q, "A", "B", first, "A" if own_first else "B"))   # A picks A in both orders
            rows.append(("C", q, "A", "B", first, "B" if own_first else "A"))   # C picks B in both orders
            rows.append(("B", q, "A", "C", first, "B" if own_first else "A"))   # B (panel of A-C) picks C
            rows.append(("A", q, "A", "C", first, "A" if own_first else "B"))   # A picks A
    source = write_judgments(tmp_path / "j.jsonl", rows)
    store = tmp_path / "s.duckdb"
    import_responses(source, store_path=store)
    table = analyze(store, survey="judgments", tables=["judge_self_preference"], n_boot=200)["judge_self_preference"]
    a = table.set_index("judge").loc["A"]
    assert (a["n_pairs"], a["n_gold"], a["wr_self"], a["wr_gold"], a["dbg"]) == (4, 4, 100.0, 0.0, 100.0)
    assert a["eo_bias"] != a["eo_bias"]  # NaN: the gold never prefers A's own answer


def test_bad_judgment_lines_are_reported_by_line(tmp_path: Path) -> None:
    source = tmp_path / "bad.jsonl"
    pair = {"judge": "J", "question": 1, "model_a": "x", "model_b": "y"}
    source.write_text(json.dumps({**pair, "first": "model_a", "verdict": "A"}) + "\n"
                      + json.dumps({**pair, "first": "x", "verdict": "A"}) + "\n"
                      + json.dumps({**pair, "first": "model_a", "verdict": "D"}) + "\n"
                      + json.dumps({**pair, "first": "model_a", "verdict": "B"}) + "\n")
    with pytest.raises(BadRows) as error:
        import_responses(source, store_path=tmp_path / "s.duckdb")
    messages = [str(p) for p in error.value.problems]
    assert messages == [f"{source}:2: 'first' must be model_a or model_b (which answer was shown first, as assistant A)",
                        f"{source}:3: 'verdict' must be A, B, C or tie (as shown: A = the answer shown first)",
                        f"{source}:4: duplicate of line 1 (same judge, pair, order and sample)"]
    assert not (tmp_path / "s.duckdb").exists()


@pytest.mark.skipif(not MTBENCH_ANSWERS.exists(), reason="needs ../shared/data/selfpref")
def test_published_mtbench_answers_import_as_generate_results(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    summary = import_responses(MTBENCH_ANSWERS, store_path=store, model="gpt-4")
    assert summary.imported == 80 and summary.models == ["gpt-4"] and summary.surveys == ["mtbench"]
    rows = Store(store).query("SELECT t.item_id, r.mode, r.status, r.raw_text FROM results r JOIN trials t USING (trial_id) "
                              "WHERE t.item_id = '101'")
    assert rows.to_dict("records")[0]["raw_text"].startswith("If you have just overtaken the second person")
    assert set(rows["mode"]) == {"generate"}
    everything = import_responses(MTBENCH_ANSWERS, store_path=tmp_path / "all.duckdb")
    assert everything.imported == 80 * 31
    tables = analyze(tmp_path / "all.duckdb", survey="mtbench", n_boot=50)
    assert len(tables["answers"]) == 31 and set(tables["answers"]["n_items"]) == {80}
