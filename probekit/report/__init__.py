"""Reports: one self-contained HTML file with the papers' plots (and the same tables as Markdown).

    from probekit.report import report
    written = report("outputs/probekit.duckdb", "outputs/report.html", run="01J...")   # or survey="pct"
    written.html, written.markdown, written.sections

Modules: gather (store → runs, models, usage, every applicable analysis table, drift), plots (matplotlib →
inline SVG, Okabe–Ito palette, hover tooltips), tables (CI-merged, rounded text tables), sections (what
each section shows), render (HTML and Markdown). See docs/report.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Written", "report"]


@dataclass
class Written:
    """What `report` wrote."""

    html: Path
    markdown: Path
    sections: list[str]
    """Keys of the sections in the report (summary, moral, compass, personality, pobs, selection, judges, drift)."""
    omitted: list[tuple[str, str]]
    """(section title, why it is not in the report)."""
    figures: int


def report(
    store: str | Path,
    out: str | Path = "outputs/report.html",
    *,
    run: str | Sequence[str] | None = None,
    survey: str | Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    markdown: str | Path | None = None,
    title: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    drift_by: str = "version",
    with_drift: bool = True,
) -> Written:
    """Write the HTML report of a run (default: the newest), several runs, or survey ids (every run that asked
    them), and its tables as Markdown (`markdown`, default: `out` with the suffix .md)."""
    from probekit.report.gather import gather
    from probekit.report.render import html
    from probekit.report.render import markdown as to_markdown
    from probekit.report.sections import build

    runs = [run] if isinstance(run, str) else list(run or [])
    surveys = [survey] if isinstance(survey, str) else list(survey or [])
    data = gather(store, runs=runs, surveys=surveys, models=models, n_boot=n_boot, seed=seed, drift_by=drift_by,
                  with_drift=with_drift)
    built = build(data, title=title)
    html_path = Path(out)
    md_path = Path(markdown) if markdown is not None else html_path.with_suffix(".md")
    html_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(html(built), encoding="utf-8")
    md_path.write_text(to_markdown(built), encoding="utf-8")
    return Written(html=html_path, markdown=md_path, sections=[s.key for s in built.sections], omitted=built.omitted,
                   figures=sum(len(p.figures) for s in built.sections for p in s.parts))
