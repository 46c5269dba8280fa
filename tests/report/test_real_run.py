"""A report from a real small run: both built-in models (SmolLM2-135M-Instruct, Gemma-3-270M) on five survey
families in one experiment (MoralChoice scenarios of both ambiguity levels, political compass paraphrases ×
forcing levels, IPIP Big-Five with original and mirrored anchors, MMLU in all cyclic orders, POBs-style opinions).
Every section with data has its plot and its table; judges and drift have no data here and are left out. When
Chromium is installed the page is also opened headless (no console line, no request) and screenshotted."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from report_browser import find_chromium, open_page
from report_helpers import REPO, SURVEYS
from report_outline import outline

pytestmark = pytest.mark.slow

OUTPUTS = REPO / "outputs"
MODELS = ["smollm2", "gemma3-270m"]
SECTIONS = ["summary", "moral", "compass", "personality", "pobs", "selection"]


def starter_both_ambiguities(folder: Path, per_level: int = 2) -> Path:
    """The MoralChoice starter with its first `per_level` low- and high-ambiguity scenarios (its item order puts
    all low-ambiguity ones first, so a plain --limit would keep only those)."""
    spec = yaml.safe_load((SURVEYS / "moralchoice_starter.yaml").read_text(encoding="utf-8"))
    low = [i for i in spec["items"] if i["meta"]["ambiguity"] == "low"][:per_level]
    high = [i for i in spec["items"] if i["meta"]["ambiguity"] == "high"][:per_level]
    spec["items"] = low + high
    path = folder / "moralchoice_starter_small.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def experiment(folder: Path) -> Path:
    spec = {
        "id": "report_real_small",
        "surveys": [
            {"path": str(starter_both_ambiguities(folder))},                                         # 4 × 3 forms × 2 orders
            {"path": str(SURVEYS / "pct.yaml"), "templates": ["templ-01", "templ-02"],              # 4 × 2 × 2
             "factors": {"forcing": ["none", "job"]}, "limit": 4},
            {"path": str(SURVEYS / "ipip_bigfive_50.yaml"), "limit": 10,                               # 10 × 2 anchor orders
             "templates": ["mpi_original", "mpi_mirrored"]},
            {"path": str(SURVEYS / "mmlu.yaml"), "limit": 4},                                          # 4 × 4 cyclic orders
            {"path": str(SURVEYS / "pobs.yaml"), "templates": ["direct"], "reasoning": ["direct"], "limit": 6},
        ],
    }
    path = folder / "experiment.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def test_report_from_a_real_small_run(tmp_path: Path) -> None:
    # Import transformers' auto classes here first: the two models start in two threads, and transformers' lazy
    # module is not safe to import from two threads at once ("cannot import name 'AutoModelForCausalLM'").
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401

    import probekit
    from probekit.report import report

    started = time.monotonic()
    summary = probekit.run(str(experiment(tmp_path)), models=MODELS, store=tmp_path / "store.duckdb")
    assert [m.error for m in summary.models] == [0, 0] and summary.trials == 82
    ran = time.monotonic()
    html_path = OUTPUTS / "report_real_run.html"
    written = report(tmp_path / "store.duckdb", html_path, run=summary.run_id, n_boot=200,
                     title="probekit report: SmolLM2-135M and Gemma-3-270M, small run")
    reported = time.monotonic()
    assert written.sections == SECTIONS
    assert [title for title, _ in written.omitted] == ["Whose opinions?", "Judges", "Drift over time"]
    html = html_path.read_text(encoding="utf-8")
    shape = outline(html)
    for section, tags in shape.sections.items():
        assert tags["figure"] >= 1 and tags["svg"] >= 1 and tags["table"] >= 1, section
    assert {"moral_scatter", "moral_qfc", "moral_ambiguity"} <= set(shape.plots["moral"])
    assert shape.plots["compass"] == ["compass"] and shape.plots["personality"] == ["traits"] and shape.plots["pobs"] == ["pobs"]
    assert {"position_heatmap", "rstd"} <= set(shape.plots["selection"])
    summary_html = html.split('data-section="summary"')[1].split("</section>")[0]
    for text in ("smollm2", "gemma3-270m", "weights sha256", "prompt tokens", "valid"):
        assert text in summary_html, text
    md = written.markdown.read_text(encoding="utf-8")
    assert "| smollm2 | ipip_bigfive_50 |" in md and "| gemma3-270m | mmlu |" in md

    chromium = find_chromium()
    if chromium is not None:  # the browser test proper is tests/report/test_browser.py
        seen = open_page(html_path, tmp_path / "chrome", screenshot=OUTPUTS / "report_real_run.png", chromium=chromium)
        assert seen.console == [] and seen.requests == [], (seen.console, seen.requests)
        assert seen.dom.count("<svg") == html.count("<svg")
    print(f"\nmodels: {[(m.model, round(m.seconds, 1)) for m in summary.models]}")
    print(f"real run {ran - started:.1f} s, report {reported - ran:.1f} s, browser {time.monotonic() - reported:.1f} s; "
          f"{written.figures} figures in {html_path}")
