"""`probekit report` on scripted fake models (no model is loaded): every section with data has its plot and its
table, sections without data are left out and named, the file is self-contained (no script, nothing fetched,
unique ids, valid SVG), plots carry tooltips and the Okabe–Ito palette, the Markdown holds the same tables,
numbers agree with `probekit analyze`, and the command's messages."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
from report_helpers import FakeStore
from report_outline import outline
from typer.testing import CliRunner

from probekit.cli.main import app, expand_multi_value_options
from probekit.report import Written, report
from probekit.report.plots import OKABE_ITO, clean_svg, scope_ids
from probekit.report.tables import cell, display_table, number

N_BOOT = 100
FAMILY_SECTIONS = ["summary", "moral", "compass", "personality", "pobs", "selection"]


@pytest.fixture(scope="module")
def families(fake_store: FakeStore, tmp_path_factory: pytest.TempPathFactory) -> tuple[Written, str, str]:
    out = tmp_path_factory.mktemp("families") / "report.html"
    written = report(fake_store.path, out, run=fake_store.families_run, n_boot=N_BOOT)
    return written, out.read_text(encoding="utf-8"), written.markdown.read_text(encoding="utf-8")


def test_every_family_section_has_its_plot_and_its_table(families: tuple[Written, str, str]) -> None:
    written, html, _md = families
    assert written.sections == FAMILY_SECTIONS
    shape = outline(html)
    assert list(shape.sections) == FAMILY_SECTIONS
    for section, tags in shape.sections.items():
        assert tags["figure"] >= 1 and tags["svg"] >= 1, f"{section}: no plot"
        assert tags["table"] >= 1, f"{section}: no table"
    assert "status" in shape.plots["summary"]
    assert {"moral_scatter", "moral_qfc", "moral_ambiguity"} <= set(shape.plots["moral"])
    assert shape.plots["compass"] == ["compass"]
    assert shape.plots["personality"] == ["traits"]
    assert shape.plots["pobs"] == ["pobs"]
    assert {"position_heatmap", "rstd"} <= set(shape.plots["selection"])
    assert {"moralchoice", "uncertainty_summary"} <= set(shape.tables["moral"])
    assert {"pct", "pct_spread"} <= set(shape.tables["compass"])
    assert "likert_traits" in shape.tables["personality"] and "pobs" in shape.tables["pobs"]
    assert {"position_bias", "position_prior", "selection_bias"} <= set(shape.tables["selection"])


def test_sections_without_data_are_left_out_and_named(families: tuple[Written, str, str]) -> None:
    written, html, md = families
    assert [title for title, _why in written.omitted] == ["Whose opinions?", "Judges", "Drift over time"]
    assert 'data-section="judges"' not in html and 'data-section="drift"' not in html
    assert "Judges (no judging survey in scope)" in html.split("Not in this report: ")[1].split("</p>")[0]
    assert "Judges (no judging survey in scope)" in md.split("Not in this report: ")[1].split("\n")[0]


def test_run_summary_names_models_versions_rates_tokens_and_cost(families: tuple[Written, str, str]) -> None:
    _written, html, md = families
    summary = html.split('data-section="summary"')[1].split("</section>")[0]
    for text in ("fake:alpha", "fake:beta", "fake/alpha", "revision 1", "valid", "refusal", "invalid", "error", "prompt tokens",
                 "completion tokens", "cost (USD)", "Cost: unknown", "moralchoice_starter", "100.0 %"):
        assert text in summary, text
    assert "| fake:alpha | moralchoice_starter | 1 | 120 | 120 | 100.0 % |" in md


def test_judges_section_pc_pf_and_dbg(fake_store: FakeStore, tmp_path: Path) -> None:
    written = report(fake_store.path, tmp_path / "judges.html", survey=["mtbench", fake_store.judge_survey], n_boot=N_BOOT)
    html = (tmp_path / "judges.html").read_text(encoding="utf-8")
    assert written.sections == ["summary", "judges"]
    shape = outline(html)
    assert shape.plots["judges"] == ["judge_position", "self_preference"]
    assert {"judge_position", "judge_self_preference"} <= set(shape.tables["judges"])
    assert "answers" in shape.tables["summary"]  # the free answers the judges compared
    judges = html.split('data-section="judges"')[1]
    for text in ("PC (95 % CI)", "PF (95 % CI)", "WR_self (%) (95 % CI)", "WR_gold (%) (95 % CI)", "DBG (pp) (95 % CI)",
                 "WR_self = WR_gold"):
        assert text in judges, text
    # fake:b prefers its own answers (self=3): the largest DBG, above the diagonal in the plot
    table = written.markdown.read_text(encoding="utf-8").split("#### Self-preference")[1]
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| fake:")}
    dbg = {judge: float(line.split("|")[9].split("[")[0]) for judge, line in rows.items()}
    assert max(dbg, key=lambda k: dbg[k]) == "fake:b" and dbg["fake:b"] > 0


def test_drift_section_reuses_the_tracking_timeline(fake_store: FakeStore, tmp_path: Path) -> None:
    written = report(fake_store.path, tmp_path / "drift.html", survey=fake_store.drift_survey, models=[fake_store.drift_model],
                     n_boot=N_BOOT)
    html = (tmp_path / "drift.html").read_text(encoding="utf-8")
    assert "drift" in written.sections
    shape = outline(html)
    assert shape.plots["drift"] == ["drift"] and shape.sections["drift"]["table"] == 2
    drift = html.split('data-section="drift"')[1]
    assert "distance from S1" in drift            # the title plot_drift draws
    assert "noise floor, 95 % CI" in drift        # its legend
    assert "changed" in drift and "S2" in drift
    no_drift = report(fake_store.path, tmp_path / "nodrift.html", survey=fake_store.drift_survey, models=[fake_store.drift_model],
                      n_boot=N_BOOT, with_drift=False)
    assert "drift" not in no_drift.sections


def test_the_file_is_self_contained(families: tuple[Written, str, str]) -> None:
    _written, html, _md = families
    shape = outline(html)
    assert shape.tags["script"] == 0 and shape.tags["link"] == 0 and shape.tags["img"] == 0 and shape.tags["iframe"] == 0
    inline = ("#", "data:image/png;base64,")  # in-page references; heatmaps are images inlined by matplotlib
    assert all(url.startswith(inline) for url in shape.urls), [u[:60] for u in shape.urls if not u.startswith(inline)][:5]
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    duplicated = [i for i, n in shape.ids.items() if n > 1]
    assert not duplicated, duplicated[:5]
    referenced = set(re.findall(r'(?:href="#|url\(#)([^")]+)', html))
    assert referenced <= set(shape.ids), sorted(referenced - set(shape.ids))[:5]
    svgs = re.findall(r"<svg\b.*?</svg>", html, flags=re.S)
    assert len(svgs) == outline(html).tags["svg"] >= 8
    for svg in svgs:
        ET.fromstring(svg)  # well-formed XML
        assert "<metadata>" not in svg and "<?xml" not in svg


def test_plots_have_tooltips_labelled_axes_and_the_okabe_ito_palette(families: tuple[Written, str, str]) -> None:
    _written, html, _md = families
    figures = dict(re.findall(r'data-plot="([^"]+)"[^>]*>(.*?)</figure>', html, flags=re.S))
    for key, body in figures.items():
        assert body.count("<title>") >= 2, f"{key}: no tooltips"
        colours = {c.upper() for c in re.findall(r"(?:fill|stroke): (#[0-9a-fA-F]{6})", body)}
        assert "#1F77B4" not in colours and "#FF7F0E" not in colours, f"{key}: matplotlib's default colours"
    compass = figures["compass"]
    assert "economic (PCT score, −10 left … +10 right)" in compass and "social (PCT score" in compass
    assert re.search(r"<title>fake:alpha: centroid of 6 points \(1\.\d\d, 1\.\d\d\)", compass)
    assert "template templ-02 · forcing job" in compass
    assert {OKABE_ITO[0].lower(), OKABE_ITO[1].lower()} <= set(re.findall(r"#[0-9a-f]{6}", compass.lower()))
    assert "marginal entropy H[A | scenario] (bits)" in figures["moral_scatter"]
    assert "displayed position (1 = shown first)" in figures["position_heatmap"]
    assert "trait score (scale points), 1–5" in figures["traits"]
    assert re.search(r"<title>fake:alpha · [^<]*position 1: pick rate per displayed position \d+\.\d %", figures["position_heatmap"])
    assert re.search(r"\[95 % CI [-\d.]+, [-\d.]+\]", figures["pobs"])  # bars: the CI in the tooltip


def test_markdown_holds_the_same_tables(families: tuple[Written, str, str]) -> None:
    _written, html, md = families
    titles = re.findall(r"<h4>([^<]+)</h4>", html) + re.findall(r"<summary>(.+?) \(\d+ rows\)</summary>", html)
    md_titles = re.findall(r"^#### (.+)$", md, flags=re.M)
    assert sorted(t.replace("&#x27;", "'").strip() for t in titles) == sorted(md_titles)
    assert md.count("*Figure ") == len(re.findall(r'<figure class="plot"', html))
    for section in ("## 1. Run summary", "## 2. Moral dilemmas", "## 3. Political compass", "## 4. Personality",
                    "## 5. Opinions (POBs)", "## 6. Selection bias"):
        assert section in md


def test_numbers_agree_with_probekit_analyze(fake_store: FakeStore, families: tuple[Written, str, str]) -> None:
    from probekit.analysis import analyze

    _written, html, md = families
    tables = analyze(fake_store.path, run=fake_store.families_run, all_tables=True, n_boot=N_BOOT)
    pct = tables["pct.pct"].iloc[0]
    expected = f"{cell(pct['economic'])} [{cell(pct['economic_ci_low'])}, {cell(pct['economic_ci_high'])}]"
    assert f"| {pct['model']} | {pct['template']} | {pct['template_group']} | {pct['forcing']} | direct | {expected} |" in md
    pobs = tables["pobs.pobs"].iloc[0]
    assert f"{cell(pobs['nni'])} [{cell(pobs['nni_ci_low'])}, {cell(pobs['nni_ci_high'])}]" in html
    rstd = tables["mmlu.selection_bias"].set_index("model").loc["fake:alpha", "rstd"]
    assert f"RStd = {rstd:.1f}" in html  # the bar's tooltip


def test_a_survey_scope_shows_only_its_families(fake_store: FakeStore, tmp_path: Path) -> None:
    written = report(fake_store.path, tmp_path / "mmlu.html", survey="mmlu", models=["fake:alpha"], n_boot=N_BOOT)
    assert written.sections == ["summary", "selection"]
    html = written.html.read_text(encoding="utf-8")
    assert "fake:beta" not in html
    assert "survey mmlu, every run that asked it" in html


@pytest.mark.slow  # the CLI in a subprocess
def test_report_command(fake_store: FakeStore, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli" / "report.html"
    args = ["report", "--store", str(fake_store.path), "--run", fake_store.families_run, "-o", str(out), "--n-boot", "50",
            "--models", "fake:alpha", "fake:beta", "--title", "Families"]
    result = runner.invoke(app, expand_multi_value_options(args))
    assert result.exit_code == 0, result.output
    assert f"wrote {out} (" in result.output and "sections: summary, moral, compass, personality, pobs, selection" in result.output
    assert "not in the report: Judges (no judging survey in scope)" in result.output
    assert out.exists() and out.with_suffix(".md").exists()
    assert "<h1>Families</h1>" in out.read_text(encoding="utf-8")
    assert "report" in runner.invoke(app, ["--help"]).output


@pytest.mark.parametrize(("args", "message"), [
    (["--run", "NOPE"], "no run NOPE with trials"),
    (["--survey", "nope"], "no survey 'nope'"),
    (["--drift-by", "week"], "unknown --drift-by 'week': use one of version, fingerprint, run, day"),
    (["-m", "fake:zz"], "no results in scope"),
])
def test_report_command_errors(fake_store: FakeStore, tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["report", "--store", str(fake_store.path), "-o", str(tmp_path / "r.html"), *args])
    assert result.exit_code == 1 and message in result.output, result.output
    assert not (tmp_path / "r.html").exists()


def test_report_command_without_a_store(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", "--store", str(tmp_path / "none.duckdb"), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 1 and "no store at" in result.output and "probekit run" in result.output
    result = CliRunner().invoke(app, ["report", "--store", str(tmp_path / "none.duckdb"), "-o", str(tmp_path)])
    assert result.exit_code == 1 and "is a directory" in result.output


# -- units ----------------------------------------------------------------------------------------------------
def test_numbers_and_cells() -> None:
    assert number(3) == "3" and number(3.0) == "3.000" and number(0.12345) == "0.123" and number(43.75) == "43.75"
    assert number(123.456) == "123.5" and number(12345.6) == "12,346" and number(-1e-17) == "0.000"
    assert number(float("nan")) == "–" and number(None) == "–" and number(0.256, percent=True) == "25.6 %"
    assert cell([0.75, 0.25]) == "[0.750, 0.250]" and cell(list(range(10))).endswith(", …]") and cell(True) == "yes"


def test_display_table_merges_cis_and_cuts_long_tables() -> None:
    frame = pd.DataFrame({"model": ["a", "b", "c"], "x": [0.5, 0.25, 0.125], "x_ci_low": [0.4, float("nan"), 0.1],
                          "x_ci_high": [0.6, float("nan"), 0.2], "n": [2.0, 3.0, 4.0], "rate": [0.5, 1.0, 0.0],
                          "recall": [1.0, 0.0, 1.0], "completion_tokens": [0.0, 0.0, 0.0]})
    table = display_table(frame, "T", percent=["rate"], more="probekit analyze --tables t", max_rows=2)
    assert list(table.frame.columns) == ["model", "x (95 % CI)", "n", "rate", "recall", "completion_tokens"]
    assert table.frame["x (95 % CI)"].tolist() == ["0.500 [0.400, 0.600]", "0.250"]
    assert table.frame["n"].tolist() == ["2", "3"] and table.frame["rate"].tolist() == ["50.0 %", "100.0 %"]
    assert table.frame["recall"].tolist() == ["1.000", "0.000"]  # shares that happen to be 0 or 1 keep their decimals
    assert table.frame["completion_tokens"].tolist() == ["0", "0"]  # a count by its name
    assert table.numeric == [False, True, True, True, True, True]
    assert table.note == "First 2 of 3 rows; every row: `probekit analyze --tables t`." and table.total_rows == 3


def test_svg_ids_are_scoped_and_tooltips_inserted() -> None:
    raw = ('<?xml version="1.0"?>\n<!DOCTYPE svg>\n<svg width="100pt" height="50pt" viewBox="0 0 100 50"><metadata>x</metadata>'
           '<defs><clipPath id="p1"/><path id="m1"/></defs><g id="tip-1"><use xlink:href="#m1" clip-path="url(#p1)"/></g></svg>')
    svg = clean_svg(raw, {"tip-1": "a < b & c"})
    assert svg.startswith("<svg") and "metadata" not in svg and 'width="100pt"' not in svg and "max-width:133px" in svg
    assert '<g id="tip-1"><title>a &lt; b &amp; c</title>' in svg
    scoped = scope_ids(svg, "f3-")
    assert 'id="f3-p1"' in scoped and 'href="#f3-m1"' in scoped and "url(#f3-p1)" in scoped and 'id="f3-tip-1"' in scoped


def test_flagged_rows_are_greyed_and_explained(families: tuple[Written, str, str]) -> None:
    """Issue 22: the families run asks 8 of 62 PCT propositions and 10 of 50 IPIP items (2 per trait): the compass
    and α rows are flagged, greyed, and the reason is written under the table, figure and heading."""
    _written, html, md = families
    assert "[partly asked: 8 of 62 items]" in html and "[partly asked: 10 of 50 items]" in html
    alpha = html[html.index("Internal consistency (Cronbach&#x27;s α)"):]
    alpha = alpha[:alpha.index("</table>") + 300]
    assert '<tr class="flagged">' in alpha and "few_items" in alpha
    assert "few_items: fewer than 3 items: Cronbach&#x27;s α is not meaningful" in alpha
    compass = re.search(r'<figure class="plot" data-plot="compass" data-flagged[^>]*>(.*?)</figure>', html, flags=re.S)
    assert compass and "partial_survey" in compass.group(1) and "FLAGGED, not a finding" in compass.group(1)
    assert "| flags |" in md and "partial_survey" in md
    assert ">label mass</th>" in html
