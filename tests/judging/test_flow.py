"""The two-stage judging flow on the scripted fake engine: stage 2 reads stored answers, nothing stored is sent
again, models added later answer alone, answers made elsewhere and gold labels from a file, self-recognition,
and the judge tables (a self-preferring judge has DBG > 0, a position-biased one PF < 0)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from selfpref_helpers import MTBENCH_ANSWERS, write_experiment

from probekit.judging import judging_tables, load_judging, run_judging
from probekit.store.store import Store

N_BOOT = 200


def log_counts(log: Path) -> Counter[tuple[str, str, str]]:
    """(model, kind, survey) → requests, from the fake engine's log."""
    counts: Counter[tuple[str, str, str]] = Counter()
    if log.exists():
        for line in log.read_text().splitlines():
            model, kind, where = line.split("\t")
            counts[(model, kind, where.split("/")[0])] += 1
    return counts


def test_answers_then_judgments_then_nothing_is_sent_again(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    models = [f"fake:a?self=3&log={log}", f"fake:b?engine=api&log={log}", f"fake:c?log={log}"]
    store = tmp_path / "s.duckdb"
    first = run_judging(write_experiment(tmp_path), models=models, store=store)
    answer = [s for s in first.stages if s.stage == "answer"]
    judge = [s for s in first.stages if s.stage == "judge"]
    assert [(s.trials, s.missing, s.ok) for s in answer] == [(4, 4, 4)] * 3
    # Panel gold: every judge judges all 3 pairs of 4 questions (its own 2 and the pair it may vote on), both orders.
    assert first.pairs == {"fake:a": 12, "fake:b": 12, "fake:c": 12}
    assert [(s.trials, s.ok, s.errors) for s in judge] == [(24, 24, 0)] * 3
    sent = log_counts(log)
    assert sent[("fake:a", "generate", "mtbench")] == 4 and sent[("fake:a", "label", "exp.judge")] == 24
    results = Store(store).query("SELECT count(*) AS n FROM results")["n"][0]

    again = run_judging(write_experiment(tmp_path), models=models, store=store)
    assert all(s.skipped and s.calls == 0 for s in again.stages)
    assert [s.run_id for s in again.stages] == [s.run_id for s in first.stages]
    assert log_counts(log) == sent, "a second run sends nothing"
    assert Store(store).query("SELECT count(*) AS n FROM results")["n"][0] == results

    tables = judging_tables(again, n_boot=N_BOOT)
    preference = tables["judge_self_preference"].set_index("judge")
    assert list(preference.index) == ["fake:a", "fake:b", "fake:c"]
    assert (preference["n_pairs"] == 8).all() and (preference["n_missing_gold"] == 0).all()
    # fake:a triples its own answers' weight; the others judge by quality alone, like the panel.
    assert preference.loc["fake:a", "dbg"] > 0 and preference.loc["fake:a", "wr_self"] > preference.loc["fake:a", "wr_gold"]
    assert preference.loc["fake:b", "dbg"] == 0 and preference.loc["fake:c", "dbg"] == 0
    assert (preference["dbg_ci_low"] <= preference["dbg"]).all() and (preference["dbg"] <= preference["dbg_ci_high"]).all()
    assert (tables["judge_position"]["pc"] == 1.0).all()


def test_stage_2_compares_the_stored_answers(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    experiment = write_experiment(tmp_path)
    run_judging(load_judging(experiment), models=["fake:a", "fake:b"], store=store, stages=["answer"])
    Store(store).query("SELECT 1")  # the store exists
    import duckdb

    con = duckdb.connect(str(store))
    con.execute("UPDATE results SET raw_text = 'EDITED ANSWER' WHERE model = 'fake:b' AND mode = 'generate'")
    con.close()
    summary = run_judging(experiment, models=["fake:a", "fake:b"], store=store)
    assert all(s.skipped for s in summary.stages if s.stage == "answer")
    items = Store(store).query("SELECT option_texts, meta FROM items WHERE survey_id = 'exp.judge'")
    assert len(items) == 4
    for texts, meta in zip(items["option_texts"], items["meta"]):
        assert json.loads(meta)["models"] == ["fake:a", "fake:b"]
        assert list(texts)[1:] == ["EDITED ANSWER", "Tie"] and list(texts)[0].startswith("[answer of fake:a")


def test_a_model_added_later_answers_alone(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    store = tmp_path / "s.duckdb"
    a, b, c = (f"fake:{n}?log={log}" for n in "abc")
    run_judging(write_experiment(tmp_path), models=[a, b], store=store)
    before = log_counts(log)
    summary = run_judging(write_experiment(tmp_path), models=[a, b, c], store=store)
    after = log_counts(log) - before
    assert [(s.model, s.skipped) for s in summary.stages if s.stage == "answer"] == [(a, True), (b, True), (c, False)]
    assert after[("fake:a", "generate", "mtbench")] == after[("fake:b", "generate", "mtbench")] == 0
    assert after[("fake:c", "generate", "mtbench")] == 4


def test_published_answers_as_others_and_gold_labels_from_a_file(tmp_path: Path) -> None:
    if not MTBENCH_ANSWERS.exists():
        pytest.skip("needs ../shared/data/selfpref")
    questions = [item.id for item in load_judging(write_experiment(tmp_path)).answer.items[:4]]
    labels = tmp_path / "labels.jsonl"
    # gpt-4 beats fake:a on every question; fake:a vs fake:b is a tie on the first question (two labels: a, b).
    lines = [{"question_id": int(q), "model_a": "gpt-4", "model_b": "fake:a", "winner": "model_a"} for q in questions]
    lines += [{"question_id": int(questions[0]), "model_a": "fake:a", "model_b": "fake:b", "winner": w, "judge": f"h{k}"}
              for k, w in enumerate(["model_a", "model_b"])]
    labels.write_text("".join(json.dumps(line) + "\n" for line in lines))
    experiment = write_experiment(tmp_path, judge={"others": ["gpt-4", "vicuna-13b-v1.3"], "others_from": str(MTBENCH_ANSWERS)},
                                  gold={"file": str(labels)})
    store = tmp_path / "s.duckdb"
    summary = run_judging(experiment, models=["fake:a", "fake:b"], store=store)
    imported = Store(store).query("SELECT model, count(*) AS n FROM results r JOIN runs x USING (run_id) "
                                  "WHERE json_extract_string(x.config, '$.import.format') = 'answers' GROUP BY ALL ORDER BY 1")
    assert imported.to_dict("records") == [{"model": "gpt-4", "n": 80}, {"model": "vicuna-13b-v1.3", "n": 80}]
    # File gold: no panel duty, each judge judges its own answer against the 3 others, 4 questions.
    assert summary.pairs == {"fake:a": 12, "fake:b": 12} and summary.gold["rows"] == 5
    items = Store(store).query("SELECT option_texts FROM items WHERE item_id LIKE ? AND survey_id = 'exp.judge'",
                               [f"{questions[0]}|fake:a|gpt-4|%"])
    published = json.loads(next(line for line in MTBENCH_ANSWERS.read_text().splitlines()
                                if json.loads(line)["question_id"] == int(questions[0])))["answers"]["gpt-4"][0]
    assert list(items["option_texts"][0])[1] == published
    preference = judging_tables(summary, n_boot=N_BOOT)["judge_self_preference"].set_index("judge")
    assert preference.loc["fake:a", "n_gold"] == 5 and preference.loc["fake:a", "n_missing_gold"] == 7
    assert preference.loc["fake:a", "wr_gold"] == pytest.approx(100 * 0.5 / 5)  # four losses to gpt-4, one tie
    assert preference.loc["fake:a", "gold"].startswith("file labels.jsonl")
    assert preference.loc["fake:b", "n_gold"] == 1 and preference.loc["fake:b", "wr_gold"] == 50.0


def test_self_recognition_is_asked_on_the_judges_own_pairs(tmp_path: Path) -> None:
    recognition = Path(__file__).resolve().parents[2] / "surveys" / "mtbench_recognition.yaml"
    experiment = write_experiment(tmp_path, self_recognition={"path": str(recognition)})
    summary = run_judging(experiment, models=["fake:a?self=5", "fake:b", "fake:c"], store=tmp_path / "s.duckdb")
    judge = {s.model: s.trials for s in summary.stages if s.stage == "judge"}
    assert judge == {"fake:a?self=5": 24 + 16, "fake:b": 24 + 16, "fake:c": 24 + 16}  # + 2 own pairs × 4 questions × 2 orders
    recognition = judging_tables(summary, n_boot=N_BOOT)["exp.recognition.self_recognition"].set_index("judge")
    assert (recognition["n_pairs"] == 8).all()
    assert recognition.loc["fake:a", "accuracy"] == 100.0  # it favours its own answers whatever their quality


def test_a_judge_with_a_position_prior_shows_primacy(tmp_path: Path) -> None:
    summary = run_judging(write_experiment(tmp_path), models=["fake:a?prior=20,1", "fake:b", "fake:c"], store=tmp_path / "s.duckdb")
    position = judging_tables(summary, n_boot=N_BOOT)["judge_position"].set_index("judge")
    assert position.loc["fake:a", "primacy"] > 0 and position.loc["fake:a", "recency"] == 0
    assert position.loc["fake:a", "pf"] < 0 and position.loc["fake:a", "pc"] < 1
    assert position.loc["fake:b", "pc"] == 1.0


def test_the_analysis_of_a_judge_run_names_its_experiment_tables(tmp_path: Path) -> None:
    from probekit.analysis import analyze

    store = tmp_path / "s.duckdb"
    summary = run_judging(write_experiment(tmp_path), models=["fake:a", "fake:b", "fake:c"], store=store)
    newest = analyze(store, run=summary.judge_runs()[-1], n_boot=N_BOOT)
    assert set(newest) == {"judge_position", "judge_self_preference"}  # the experiment's analyses
    assert list(newest["judge_self_preference"]["judge"]) == ["fake:c"]  # one judge's run; its gold from the others
    assert newest["judge_self_preference"]["n_gold"][0] == 8
