"""Issue 23, the Markdown report: raw HTML from model names, judge names and titles is written as text (as the
HTML report escapes everything); Markdown renderers pass raw HTML through, so it must not reach the file."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import STARTER, cli

from probekit.report.plots import Figure
from probekit.report.render import markdown
from probekit.report.sections import Part, Report, Section
from probekit.report.tables import Table

PAYLOADS = ["<script>alert(1)</script>", "<svg onload=alert(1)>", "<img src=x onerror=alert(1)>", "a & b <b>bold</b>"]
RAW_HTML = re.compile(r"<\s*(script|svg|img|b)\b", re.IGNORECASE)


def _report(payload: str) -> Report:
    table = Table(title=f"judges {payload}", frame=pd.DataFrame({f"model {payload}": [payload], "n": ["3"]}),
                  numeric=[False, True], note=f"judge {payload} and `code {payload}`")
    figure = Figure(key="k", title=f"figure {payload}", caption=f"caption {payload}", svg="<svg></svg>")
    part = Part(title=f"survey {payload}", intro=f"intro {payload}", figures=[figure], tables=[table], notes=[f"note {payload}"])
    return Report(title=f"title {payload}", scope=f"run {payload}", store="s.duckdb", generated_at=datetime.now(timezone.utc),
                  version="1", sections=[Section(key="judges", title=f"section {payload}", intro=f"intro {payload}", parts=[part])],
                  omitted=[(f"omitted {payload}", f"why {payload}")], notes=[f"report note {payload}"])


@pytest.mark.parametrize("payload", PAYLOADS)
def test_markdown_report_holds_no_raw_html(payload: str) -> None:
    text = markdown(_report(payload))
    outside_code = re.sub(r"`[^`]*`", "", text)
    assert RAW_HTML.search(outside_code) is None, outside_code
    assert "&lt;" in text  # written as text, not dropped


def test_md_keeps_code_spans_and_plain_text() -> None:
    from probekit.report.render import md

    assert md("use `probekit analyze --tables x<y`") == "use `probekit analyze --tables x<y`"
    assert md("a <b> `c <d>` e") == "a &lt;b&gt; `c <d>` e"
    assert md("unclosed ` <x>") == "unclosed ` &lt;x&gt;"
    assert md("plain words, 0.42 [0.31, 0.55]") == "plain words, 0.42 [0.31, 0.55]"


@pytest.mark.slow
def test_report_command_escapes_a_model_name_and_a_title(tmp_path: Path) -> None:
    from cli_helpers import cli_subprocess

    store = tmp_path / "s.duckdb"
    model = "fake:<script>alert(1)</script>"
    done = cli_subprocess("run", str(STARTER), "--models", model, "--limit", "2", "--store", str(store), "-q")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "r.html"
    result = cli("report", "--store", str(store), "--out", str(out), "--title", "<img src=x onerror=alert(1)>", "--n-boot", "50")
    assert result.returncode == 0, result.stderr
    text = out.with_suffix(".md").read_text()
    assert "&lt;script&gt;" in text and "&lt;img" in text
    assert RAW_HTML.search(re.sub(r"`[^`]*`", "", text)) is None
