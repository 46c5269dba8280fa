"""Issue 10, imports: bad types, encodings, binary files, directories and devices are FILE:LINE messages (exit 1 for
bad rows, 2 when the import cannot start), never a traceback and never a partial write; many files and
directories in one call; re-importing is a no-op by content; many rows with one problem are summarised; PCT
rows may name the source's forcing ids; the published POBs layout imports whole when the survey's polarity is
trusted, and its opinion change is reported over the polar topics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import cli, cli_subprocess, digest, refused
from pobs_release import MODELS, write_release

from probekit.importers import BadRows, import_responses
from probekit.store.store import Store

SURVEY = "moralchoice_starter"
GOOD = {"survey": SURVEY, "item": "H_001", "model": "m", "form": {"template": "ab", "order": [0, 1]}, "choice": 0}


def _row(**changes: Any) -> dict[str, Any]:
    row = json.loads(json.dumps(GOOD))
    for key, value in changes.items():
        if key.startswith("form_"):
            row["form"][key.removeprefix("form_")] = value
        elif value is _DROP:
            row.pop(key, None)
        else:
            row[key] = value
    return row


_DROP = object()

# (case, JSONL line (an object, or raw text), words of the message)
BAD_ROWS: list[tuple[str, Any, str]] = [
    ("model is a number", _row(model=3), "'model' must be the model's name as a string"),
    ("model is null", _row(model=None), "missing or empty 'model'"),
    ("model is a list", _row(model=["a"]), "'model' must be the model's name as a string"),
    ("model is blank", _row(model="  "), "missing or empty 'model'"),
    ("item is an object", _row(item={"id": 1}), "'item' must be an item id"),
    ("item is a boolean", _row(item=True), "'item' must be an item id"),
    ("order mixes types", _row(form_order=[1, "0"]), "form.order must be a list of whole numbers"),
    ("order is a string", _row(form_order="10"), "form.order must be a list of whole numbers"),
    ("order repeats", _row(form_order=[0, 0]), "is not an order of the 2 canonical option indices"),
    ("order of booleans", _row(form_order=[True, False]), "form.order must be a list of whole numbers"),
    ("template is a number", _row(form_template=5), "form.template must be a string"),
    ("unknown template", _row(form_template="nope"), "template 'nope' is not a template"),
    ("paraphrase is an object", _row(form_paraphrase={"p": 1}), "form.paraphrase must be"),
    ("factor level is a list", _row(form_forcing=["x"]), "form.forcing must be a factor level"),
    ("sample is huge", _row(sample=2**40), "'sample' must be a whole number from 0 to 2147483647"),
    ("sample is negative", _row(sample=-1), "'sample' must be a whole number"),
    ("sample is fractional", _row(sample=1.5), "'sample' must be a whole number"),
    ("raw_text is an object", _row(raw_text={"text": "A"}), "'raw_text' must be the answer's text"),
    ("raw_text is a list", _row(raw_text=["A"]), "'raw_text' must be the answer's text"),
    ("survey is a path", _row(survey="../../etc/passwd"), "is not a survey id"),
    ("survey has a slash", _row(survey="surveys/pct"), "is not a survey id"),
    ("survey is hidden", _row(survey=".hidden"), "is not a survey id"),
    ("survey is a number", _row(survey=7), "'survey' must be a survey id"),
    ("choice is a float", _row(choice=1.0), "'choice' must be a canonical 0-based option index"),
    ("choice is huge", _row(choice=2**40), "'choice' must be a canonical 0-based option index"),
    ("choice outside the options", _row(choice=5), "choice 5 is outside 0..1"),
    ("distribution of strings", _row(choice=_DROP, distribution=["0.5", "0.5"]), "'distribution' must be a list"),
    ("distribution wrong length", _row(choice=_DROP, distribution=[0.2, 0.3, 0.5]), "distribution has 3 entries"),
    ("status unknown", _row(choice=_DROP, status="maybe"), "'status' must be one of"),
    ("two answers", _row(status="refusal"), "give exactly one of choice, distribution or status"),
    ("unknown field", _row(extra=1), "unknown field(s) ['extra']"),
    ("not an object", [1, 2], "each line must be a JSON object"),
    ("not JSON", "{survey: moralchoice_starter", "invalid JSON"),
    ("Latin-1 text", '{"survey": "moralchoice_starter", "item": "H_001", "model": "café", "choice": 0}'.encode("latin-1"), "not UTF-8"),
]


@pytest.mark.parametrize("case,line,words", BAD_ROWS, ids=[c[0] for c in BAD_ROWS])
def test_a_bad_row_is_a_file_line_message_and_nothing_is_written(tmp_path: Path, small_store: Path, case: str, line: Any,
                                                                 words: str) -> None:
    source = tmp_path / "answers.jsonl"
    good = json.dumps(_row(item="H_002")).encode() + b"\n"
    payload = line if isinstance(line, bytes) else (line if isinstance(line, str) else json.dumps(line)).encode()
    source.write_bytes(good + payload + b"\n")
    store = tmp_path / "s.duckdb"
    shutil.copy(small_store, store)
    before = digest(store)
    first = refused(cli("import", str(source), "--store", str(store)), words, code=1)
    assert first.startswith(f"{source}:2: "), first
    assert digest(store) == before


# (case, file name, bytes, words, exit code)
BAD_FILES: list[tuple[str, str, bytes | None, str, int]] = [
    ("binary JSONL", "a.jsonl", bytes(range(256)) * 8, "binary file", 1),
    ("binary CSV", "a.csv", b"\x00\x01\x02" * 100, "binary file", 1),
    ("Latin-1 CSV", "a.csv", ("scenario_id,model_id,question_type,question_ordering,decision,eval_sample_nb\n"
                             "H_001,modèle,ab,0,action1,0\n").encode("latin-1"), "not UTF-8", 1),
    ("short CSV row", "a.csv", b"scenario_id,model_id,question_type,question_ordering,decision,eval_sample_nb\nH_001,m\n",
     "field(s) where the header has 6", 1),
    ("CSV of something else", "a.csv", b"name,age\nbob,3\n", "header lacks column(s)", 1),
    ("binary POBs", "POBS_m_1.json", bytes(range(256)), "binary file", 1),
    ("Latin-1 POBs", "POBS_m_1.json", '{"questions": [{"id": "q", "selected": "é"}]}'.encode("latin-1"), "not UTF-8", 1),
    ("POBs not JSON", "POBS_m_1.json", b"{not json", "invalid JSON", 1),
    ("POBs run number huge", "POBS_m_99999999999.json", b'{"questions": []}', "outside 1..", 1),
    ("POBs answer is an object", "POBS_m_1.json", b'{"survey": {"topics": [{"name": "A vs. B", "questions": [{"id": "q1", '
     b'"options": ["(A) x", "(B) y"], "options_polarity": [1, -1], "selected": {"x": 1}}]}]}}', "selected must be an option letter", 1),
    ("empty JSONL", "a.jsonl", b"", "no rows to import", 1),
    ("unknown extension", "a.txt", b"hello", "cannot tell the format", 2),
    ("a directory without data", "emptydir", None, "a directory with no .jsonl, .json, .csv files", 2),
    ("missing", "missing.jsonl", b"-", "file not found", 2),
]


@pytest.mark.parametrize("case,name,data,words,code", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_a_bad_file_is_a_message_not_a_traceback(tmp_path: Path, case: str, name: str, data: bytes | None, words: str,
                                                 code: int) -> None:
    path = tmp_path / name
    if data is None:
        path.mkdir()
        (path / "README.md").write_text("notes")
    elif case != "missing":
        path.write_bytes(data)
    store = tmp_path / "s.duckdb"
    refused(cli("import", str(path), "--store", str(store)), words, code=code)
    assert not store.exists()


def test_devices_and_the_console_script(tmp_path: Path) -> None:
    refused(cli("import", "/dev/null", "--store", str(tmp_path / "s.duckdb")), "not a regular file", code=2)
    path = tmp_path / "a.jsonl"
    path.write_bytes(bytes(range(256)) * 8)
    refused(cli_subprocess("import", str(path), "--store", str(tmp_path / "s.duckdb")), "binary file", code=1)
    assert not (tmp_path / "s.duckdb").exists()


def _write(path: Path, rows: list[dict[str, Any]], tail: str = "\n") -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + tail, encoding="utf-8")
    return path


FOUR = [_row(item=item, form_order=order) for item in ("H_001", "H_002") for order in ([0, 1], [1, 0])]


def test_reimport_is_a_no_op_by_content(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    first = cli("import", str(_write(tmp_path / "a.jsonl", FOUR)), "--store", str(store))
    assert first.returncode == 0 and "imported 4" in first.stdout, first.stderr
    # the same rows from files that differ only by a trailing newline, or by the order of the lines
    for name, rows, tail in (("b.jsonl", FOUR, "\n\n"), ("c.jsonl", FOUR[::-1], ""), ("d.jsonl", FOUR, "\r\n")):
        again = cli("import", str(_write(tmp_path / name, rows, tail)), "--store", str(store))
        assert again.returncode == 0 and "already imported" in again.stdout, (name, again.stdout, again.stderr)
    assert Store(store).query("SELECT count(*) AS n FROM results")["n"][0] == 4
    assert len(Store(store).runs()) == 1
    # a superset: only the new rows are stored
    more = FOUR + [_row(item="H_003")]
    grown = cli("import", str(_write(tmp_path / "e.jsonl", more)), "--store", str(store))
    assert grown.returncode == 0 and "imported 1 " in grown.stdout and "4 row(s) already imported" in grown.stdout
    keys = Store(store).query("SELECT trial_id, model, sample_index, count(*) AS n FROM results GROUP BY ALL")
    assert len(keys) == 5 and (keys["n"] == 1).all()
    # the same key with another answer: a bad row naming the earlier run; --new-run stores it as a run of its own
    changed = [dict(FOUR[0], choice=1)]
    conflict = cli("import", str(_write(tmp_path / "f.jsonl", changed)), "--store", str(store))
    refused(conflict, "stored another answer", "--new-run", code=1)
    forced = cli("import", str(tmp_path / "f.jsonl"), "--store", str(store), "--new-run")
    assert forced.returncode == 0 and "imported 1 " in forced.stdout


def test_many_files_and_directories_in_one_call(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    (folder / "nested").mkdir(parents=True)
    _write(folder / "one.jsonl", FOUR[:2])
    _write(folder / "nested" / "two.jsonl", FOUR[2:])
    (folder / "README.md").write_text("not data")
    (folder / ".hidden.jsonl").write_text("ignored")
    extra = _write(tmp_path / "three.jsonl", [_row(item="H_004")])
    store = tmp_path / "s.duckdb"
    result = cli("import", str(folder), str(extra), str(folder / "one.jsonl"), "--store", str(store))
    assert result.returncode == 0, result.stderr
    assert "imported 5 " in result.stdout and "from 3 file(s)" in result.stdout and "ignored 1 file" in result.stderr
    assert len(Store(store).runs()) == 1
    # a bad row in one file of the batch: nothing of the batch is imported
    _write(folder / "nested" / "bad.jsonl", [_row(item="H_005", model=3)])
    store2 = tmp_path / "s2.duckdb"
    refused(cli("import", str(folder), "--store", str(store2)), "bad.jsonl:1:", code=1)
    assert not store2.exists()


def test_many_bad_rows_are_listed_twenty_then_summarised(tmp_path: Path) -> None:
    rows = [_row(item=f"H_{k % 10 + 1:03d}", sample=k, form_forcing="jail-04") for k in range(300)]
    result = cli("import", str(_write(tmp_path / "a.jsonl", rows)), "--store", str(tmp_path / "s.duckdb"))
    refused(result, "300 bad row(s)", "280 more. By kind:", code=1)
    assert result.stderr.count("unknown form key 'forcing'") == 21  # 20 listed, then one summary line
    assert "300 × unknown form key 'forcing'" in result.stderr


def test_pct_rows_may_name_the_sources_forcing_ids(tmp_path: Path) -> None:
    rows = [{"survey": "pct", "item": "pc-01", "model": "m", "form": {"template": "templ-01", "forcing": forcing}, "choice": 1}
            for forcing in ("jail-01", "jail-04", "pick")]
    store = tmp_path / "s.duckdb"
    result = cli("import", str(_write(tmp_path / "pct.jsonl", rows)), "--store", str(store))
    assert result.returncode == 0 and "imported 3 " in result.stdout, result.stderr
    levels = Store(store).query("SELECT DISTINCT factors FROM trial_results ORDER BY 1")
    assert len(levels) == 3
    bad = cli("import", str(_write(tmp_path / "bad.jsonl", [dict(rows[0], form={"template": "templ-01", "forcing": "jail-09"})])),
              "--store", str(store))
    refused(bad, "forcing='jail-09' is not a level of factor 'forcing'", "none, label, pick, job, grandmother", "jail-01", code=1)


# -- the published POBs release ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_release(tmp_path_factory.mktemp("pobs"))


def test_pobs_files_coded_plus_minus_half_import_whole_when_the_survey_is_trusted(release: Path, tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    strict = cli("import", str(release), "--store", str(store))
    refused(strict, "disagrees with", "--trust-spec-polarity", "61 bad row(s)", code=1)
    assert not store.exists()
    with pytest.raises(BadRows) as error:
        import_responses([release], store_path=store)
    assert len({p.path for p in error.value.problems}) == 8  # the 8 files that code non-polar answers ±0.5/±1
    trusted = cli("import", str(release), "--store", str(store), "--trust-spec-polarity")
    assert trusted.returncode == 0, trusted.stderr
    assert "imported 1200 response(s)" in trusted.stdout and "from 20 file(s)" in trusted.stdout
    assert "61 answer(s) recorded a polarity other than the survey's" in trusted.stderr
    counts = Store(store).query("SELECT model, count(*) AS n FROM results GROUP BY ALL ORDER BY 1")
    assert counts["n"].tolist() == [600, 600] and counts["model"].tolist() == sorted(MODELS)
    again = cli("import", str(release), "--store", str(store), "--trust-spec-polarity")
    assert again.returncode == 0 and "already imported" in again.stdout


def test_opinion_change_is_reported_over_the_polar_topics(release: Path, tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    assert cli("import", str(release), "--store", str(store), "--trust-spec-polarity").returncode == 0
    result = cli("analyze", "--store", str(store), "--survey", "pobs_published", "--tables", "pobs_opinion_change",
                 "--format", "json", "--n-boot", "200")
    assert result.returncode == 0, result.stderr
    rows = {(r["model"], r["setup_from"], r["setup_to"]): r for r in json.loads(result.stdout)["pobs_opinion_change"]}
    deepseek = rows[("DeepSeek_V2.5", "reasoning", "reflection")]
    assert deepseek["n_pairs"] == 160 and deepseek["share_changed"] == pytest.approx(5 / 160)      # 3.1 %, polar
    assert deepseek["n_pairs_all_topics"] == 200 and deepseek["share_changed_all_topics"] == pytest.approx(27 / 200)


def test_one_path_from_published_files_to_numbers(release: Path, tmp_path: Path) -> None:
    from probekit.analysis.pobs import opinion_change, pobs_table
    from probekit.importers.pobs import import_pobs_files

    store = tmp_path / "s.duckdb"
    assert cli("import", str(release), "--store", str(store), "--trust-spec-polarity").returncode == 0
    result = cli("analyze", "--store", str(store), "--survey", "pobs_published", "--tables", "pobs", "--format", "json",
                 "--n-boot", "200")
    cli_rows = {(r["model"], r["setup"]): r for r in json.loads(result.stdout)["pobs"]}
    answers = import_pobs_files([release], trust_spec_polarity=True)
    library = pobs_table(answers, n_boot=200)
    assert len(library) == len(cli_rows) == 6
    for row in library.itertuples():
        other = cli_rows[(row.model, row.setup)]
        for column in ("nni", "tci", "reliability", "n_answers", "n_invalid", "refusal_rate"):
            assert getattr(row, column) == pytest.approx(other[column]), column
    change = opinion_change(answers, n_boot=200).set_index(["model", "setup_from", "setup_to"])
    assert change.loc[("DeepSeek_V2.5", "reasoning", "reflection"), "share_changed"] == pytest.approx(5 / 160)


def test_reflection_errors_name_each_answers_line_and_letter(tmp_path: Path, release: Path) -> None:
    source = next((release / "POBS_V11_reasoning_reflection").glob("POBS_llama_3_3_70b_instruct_1.json"))
    data = json.loads(source.read_text())
    question = data["survey"]["topics"][0]["questions"][0]
    question["reconsidered_selection"] = "Z"
    question2 = data["survey"]["topics"][0]["questions"][1]
    question2["answer_polarity"] = 0.25
    broken = tmp_path / source.name
    broken.write_text(json.dumps(data, indent=4), encoding="utf-8")
    lines = broken.read_text().splitlines()
    selected_line = next(k for k, line in enumerate(lines, 1) if '"reconsidered_selection": "Z"' in line)
    result = cli("import", str(broken), "--store", str(tmp_path / "s.duckdb"))
    refused(result, f"{broken}:{selected_line}: reconsidered_selection 'Z' is not one of the labels", code=1)
    polarity = [line for line in result.stderr.splitlines() if "answer_polarity 0.25" in line]
    assert polarity and "disagrees with selected " in polarity[0]
    reported = int(polarity[0].split(":")[1])
    assert '"selected"' in lines[reported - 1]  # the line of that question's "selected", not of its id


def test_import_responses_accepts_paths_and_directories(release: Path, tmp_path: Path) -> None:
    summary = import_responses([release / "POBS_V11_direct"], store_path=tmp_path / "s.duckdb", trust_spec_polarity=True)
    assert summary.files == 10 and summary.imported == 400 and summary.surveys == ["pobs_published"]
