"""The report's "Whose opinions?" section (issue 24, step 6): sorted similarity bars with CIs, the steerability
scatter with its diagonal, the most and least aligned questions side by side, and the tables behind them."""

from __future__ import annotations

from pathlib import Path

import probekit
from probekit.report import report
from tests.human.helpers import SPEC, write_survey
from tests.human.test_store_tables import PERSONAS


def test_the_section_draws_groups_steering_and_questions(tmp_path: Path) -> None:
    spec = write_survey(tmp_path / "spec", spec=SPEC.replace("items:\n", PERSONAS + "items:\n", 1))
    store = tmp_path / "s.duckdb"
    probekit.run([spec], store=store, models=["fake:a", "fake:b"])
    written = report(store, tmp_path / "r.html", n_boot=100)
    assert "human" in written.sections
    html = written.html.read_text(encoding="utf-8")
    for key in ("human-similarity", "human-steerability", "human-questions"):
        assert f'data-plot="{key}"' in html, key
    assert "no lift (y = x)" in html  # the diagonal of the scatter
    markdown = written.markdown.read_text(encoding="utf-8")
    for title in ("Similarity per group", "Representativeness (OpinionQA) and refusals", "Steerability",
                  "Questions, least aligned first"):
        assert title in markdown, title
    section = markdown.split("Whose opinions?")[1]
    assert "Germany" in section and "Japan" in section and "Peru" in section


def test_no_human_data_no_section(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    probekit.run([Path(__file__).resolve().parents[2] / "surveys" / "moralchoice_starter.yaml"], store=store,
                 models=["fake:a"], limit=2)
    written = report(store, tmp_path / "r.html", n_boot=50)
    assert "human" not in written.sections
    assert any(title == "Whose opinions?" for title, _why in written.omitted)
