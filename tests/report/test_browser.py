"""The report in a real browser: headless Chromium (Debian's `chromium`, installed by scripts/test.sh) opens the
file from disk with every host name unresolvable and a dead proxy; the page logs nothing to the console, asks
for nothing over the network, renders every section, and leaves a screenshot in outputs/report.png."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from report_browser import find_chromium, open_page
from report_helpers import REPO, FakeStore

pytestmark = pytest.mark.slow

OUTPUTS = REPO / "outputs"
EVERY_SECTION = ["summary", "moral", "compass", "personality", "pobs", "selection", "judges", "drift"]


@pytest.fixture(scope="module")
def chromium() -> str:
    found = find_chromium()
    if found is None:
        pytest.skip("chromium not found: `apt-get install -y chromium` (scripts/test.sh does it when run as root)")
    return found


def test_the_checker_catches_console_errors_and_fetches(chromium: str, tmp_path: Path) -> None:
    """A control page that throws and loads a remote image: both are seen (so a clean report means something)."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"><title>bad</title></head><body>'
                    '<img src="http://example.invalid/x.png"><script>throw new Error("boom")</script></body></html>',
                    encoding="utf-8")
    seen = open_page(page, tmp_path / "chrome", chromium=chromium)
    assert any("Uncaught Error: boom" in line for line in seen.console), seen.log[-2000:]
    assert seen.requests == ["http://example.invalid/x.png"]


def test_report_opens_in_headless_chromium(chromium: str, fake_store: FakeStore, tmp_path: Path) -> None:
    from probekit.report import report

    html_path = OUTPUTS / "report.html"
    surveys = ["moralchoice_starter", "pct", "ipip_bigfive_50", "mmlu", "pobs", "mtbench", fake_store.judge_survey]
    written = report(fake_store.path, html_path, survey=surveys, n_boot=200, title="probekit report (scripted fake models)")
    # Every section with data (this store holds no human reference distributions: that section says so).
    assert written.sections == EVERY_SECTION
    assert written.omitted == [("Whose opinions?", "no survey with human reference distributions in scope")]
    html = html_path.read_text(encoding="utf-8")

    seen = open_page(html_path, tmp_path / "chrome", screenshot=OUTPUTS / "report.png", chromium=chromium)
    assert seen.console == [], "\n".join(seen.console)
    assert seen.requests == [], seen.requests
    dom = seen.dom
    assert dom.rstrip().endswith("</html>"), seen.log[-2000:]
    assert re.findall(r'data-section="([a-z]+)"', dom) == EVERY_SECTION
    assert dom.count("<svg") == html.count("<svg") >= 12
    assert dom.count("<title>") == html.count("<title>")  # tooltips survive parsing
    assert dom.count("<table") == html.count("<table")
    shot = OUTPUTS / "report.png"
    assert shot.exists() and shot.stat().st_size > 50_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
