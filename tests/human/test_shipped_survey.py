"""The shipped human-comparison survey (issue 24, step 3): NTIA Internet Use, Nov 2021, by group. Built from the
public-domain table by surveys/build/ntia_internet_use.py; runnable with no download."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from probekit.survey.loader import load_survey

REPO = Path(__file__).resolve().parents[2]
SURVEY = REPO / "surveys" / "ntia_internet_use.yaml"
SOURCE = REPO.parent / "shared" / "data" / "human" / "ntia_internet_use" / "ntia_nov2021_by_group.csv"


def test_the_survey_holds_every_published_share_with_attribution() -> None:
    survey = load_survey(SURVEY)
    assert len(survey.items) == 82
    assert "NTIA" in survey.source.attribution and "Public domain" in survey.source.license
    assert "public domain" in SURVEY.read_text(encoding="utf-8").split("\nid:")[0]
    groups = {(var, g) for item in survey.items for var, gs in item.human.items() for g in gs}
    assert len(groups) == 35 and ("overall", "all") in groups
    if SOURCE.is_file():  # the table it was built from: every share as published
        items = {item.id: item for item in survey.items}
        with SOURCE.open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert sum(len(gs) for item in survey.items for gs in item.human.values()) == len(rows) == 2804
        for row in rows:
            shares = items[f"{row['variable']}.{row['universe']}"].human[row["group_var"]][row["group_value"]].shares
            assert shares == pytest.approx(json.loads(row["proportions"]), abs=1e-6)


@pytest.mark.slow  # loads smollm2 and drives the CLI in subprocesses
def test_run_and_analyze_give_a_human_alignment_table(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-m", "probekit.cli.main", "run", str(SURVEY), "--models", "smollm2", "--limit", "3",
                          "--store", str(store)], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    out = tmp_path / "tables"
    analyze = subprocess.run([sys.executable, "-m", "probekit.cli.main", "analyze", "--store", str(store), "--format", "csv",
                              "--out", str(out)], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert analyze.returncode == 0, analyze.stderr[-2000:]
    with (out / "human_similarity.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert 30 <= len(rows) <= 35 and all(0 <= float(r["similarity"]) <= 1 for r in rows)  # age 3-14: no adult items
    assert {r["n_questions"] for r in rows} <= {"1", "2", "3"}
