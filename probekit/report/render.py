"""Render a `Report` as one self-contained HTML file (inline CSS and SVG, no script, no external resource; a
Content-Security-Policy that forbids loading anything) and as Markdown with the same tables."""

from __future__ import annotations

from html import escape

from probekit.report.plots import scope_ids
from probekit.report.sections import Part, Report, Section
from probekit.report.tables import Table

CSS = """
:root { --ink: #1a1a1a; --muted: #5a5a5a; --rule: #d9d9d9; --band: #f4f6f8; --accent: #0072B2; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink);
       background: #fff; }
header, main, footer { max-width: 1180px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 28px; border-bottom: 1px solid var(--rule); padding-bottom: 12px; }
h1 { font-size: 26px; margin: 0 0 6px; }
h2 { font-size: 21px; margin: 36px 0 6px; padding-top: 8px; border-top: 3px solid var(--accent); }
h3 { font-size: 17px; margin: 24px 0 6px; }
h4 { font-size: 14px; margin: 18px 0 4px; }
.meta { color: var(--muted); font-size: 13px; margin: 2px 0; }
.meta code { font-size: 12px; }
nav ol { display: flex; flex-wrap: wrap; gap: 4px 22px; list-style: none; padding: 0; margin: 10px 0 4px; }
nav a { color: var(--accent); text-decoration: none; }
nav a:hover { text-decoration: underline; }
.omitted { color: var(--muted); font-size: 13px; }
.intro { color: var(--muted); margin: 2px 0 10px; max-width: 80ch; }
figure { margin: 14px 0 18px; padding: 10px 12px; background: var(--band); border-radius: 6px; }
figure svg { display: block; margin: 0 auto; background: #fff; }
figcaption { font-size: 13px; color: var(--muted); margin-bottom: 6px; max-width: 100ch; }
figcaption strong { color: var(--ink); }
.table-wrap { overflow-x: auto; margin: 6px 0 4px; }
table { border-collapse: collapse; font-size: 12.5px; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 9px; border-bottom: 1px solid var(--rule); text-align: left; white-space: nowrap; vertical-align: top; }
th { background: var(--band); font-weight: 600; position: sticky; top: 0; }
td.num { text-align: right; }
tbody tr:hover { background: #fbf6e9; }
tr.flagged td { color: #8a8a8a; background: repeating-linear-gradient(135deg, #fff, #fff 6px, #f3f3f3 6px, #f3f3f3 12px); }
td.flags, th.flags { position: sticky; right: 0; background: #fff; color: #b35900; white-space: normal; min-width: 9em;
                     box-shadow: -4px 0 4px -2px rgba(0, 0, 0, 0.15); }
th.flags { background: var(--band); color: var(--ink); }
tr.flagged td.flags { color: #b35900; }
figure[data-flagged] figcaption .flag { color: #b35900; }
.note { font-size: 12px; color: var(--muted); margin: 2px 0 12px; max-width: 110ch; }
details { margin: 8px 0 14px; }
summary { cursor: pointer; color: var(--accent); font-weight: 600; font-size: 14px; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
footer { color: var(--muted); font-size: 12px; border-top: 1px solid var(--rule); margin-top: 40px; padding: 12px 24px 30px; }
@media print { figure { break-inside: avoid; } details { display: block; } }
"""

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
"""Nothing may be fetched: a report that tried would show errors in the browser console (and tests look)."""


def _code(text: str) -> str:
    """Escape, turning `backticks` into <code>."""
    parts = escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def table_html(table: Table) -> str:
    flags_class = ' class="flags"'
    head = "".join(f'<th scope="col"{flags_class if c == "flags" else ""}>{escape(str(c))}</th>' for c in table.frame.columns)
    numeric = table.numeric or [False] * len(table.frame.columns)
    cells = ('<td class="num">', "<td>")
    opening = [cells[0] if num else '<td class="flags">' if column == "flags" else cells[1]
               for num, column in zip(numeric, table.frame.columns)]
    flagged = table.flagged or [False] * len(table.frame)
    body = "\n".join(
        ('<tr class="flagged">' if bad else "<tr>")
        + "".join(f"{start}{escape(str(v))}</td>" for v, start in zip(row, opening)) + "</tr>"
        for row, bad in zip(table.frame.itertuples(index=False), flagged))
    source = f' data-table="{escape(table.source)}"' if table.source else ""
    html = (f'<div class="table-wrap"><table{source}><caption class="sr-only">{escape(table.title)}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table></div>")
    note = f'<p class="note">{_code(table.note)}</p>' if table.note else ""
    if table.collapsed:
        return f"<details><summary>{escape(table.title)} ({table.total_rows} rows)</summary>{html}{note}</details>"
    return f"<h4>{escape(table.title)}</h4>{html}{note}"


def _part_html(section: Section, part: Part, counter: list[int]) -> str:
    out = []
    if part.title:
        out.append(f"<h3>{escape(part.title)}</h3>")
    if part.intro:
        out.append(f'<p class="intro">{_code(part.intro)}</p>')
    for figure in part.figures:
        counter[0] += 1
        svg = scope_ids(figure.svg, f"f{counter[0]}-")
        flag = f' <span class="flag">{escape(figure.flag_note)}</span>' if figure.flag_note else ""
        out.append(f'<figure class="plot" data-plot="{escape(figure.key)}"'
                   f'{" data-flagged" if figure.flag_note else ""} id="fig-{counter[0]}">'
                   f"<figcaption><strong>Figure {counter[0]}. {escape(figure.title)}.</strong> {escape(figure.caption)}{flag} "
                   f"{'Hover a mark for its exact values.' if figure.n_tips else 'The numbers are in the tables below.'}"
                   f"</figcaption>{svg}</figure>")
    for note in part.notes:
        out.append(f'<p class="note">{_code(note)}</p>')
    out += [table_html(t) for t in part.tables]
    return "\n".join(out)


def html(report: Report) -> str:
    """The report as one HTML document."""
    counter = [0]
    nav = "".join(f'<li><a href="#{s.key}">{n}. {escape(s.title)}</a></li>' for n, s in enumerate(report.sections, start=1))
    omitted = ""
    if report.omitted:
        omitted = '<p class="omitted">Not in this report: ' + "; ".join(
            f"{escape(title)} ({escape(why)})" for title, why in report.omitted) + ".</p>"
    notes = "".join(f'<p class="note">{_code(n)}</p>' for n in report.notes)
    body = []
    for number, section in enumerate(report.sections, start=1):
        parts = "\n".join(_part_html(section, part, counter) for part in section.parts)
        body.append(f'<section id="{section.key}" class="report-section" data-section="{section.key}">'
                    f"<h2>{number}. {escape(section.title)}</h2><p class=\"intro\">{_code(section.intro)}</p>\n{parts}</section>")
    when = report.generated_at.strftime("%Y-%m-%d %H:%M UTC")
    meta = (f"Scope: {escape(report.scope)} · store <code>{escape(report.store)}</code> · generated {when} "
            f"by probekit {escape(report.version)}")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="generator" content="probekit {escape(report.version)}">
<title>{escape(report.title)} — {escape(report.scope)}</title>
<style>{CSS}</style>
</head>
<body>
<header>
<h1>{escape(report.title)}</h1>
<p class="meta">{meta}
 · 95 % CIs: percentile bootstrap over items, {report.n_boot} resamples</p>
<nav aria-label="sections"><ol>{nav}</ol></nav>
{omitted}{notes}
</header>
<main>
{chr(10).join(body)}
</main>
<footer>Made by <code>probekit report</code>. Every table is also in the Markdown file written beside this one; the analysis
tables behind them: <code>probekit analyze --format json</code> (docs/analysis.md).</footer>
</body>
</html>
"""


# -- Markdown ------------------------------------------------------------------------------------------------
def md(text: object) -> str:
    """Text from the data (model and judge names, titles, notes) made inert in Markdown: Markdown renderers
    pass raw HTML through, so `<`, `>` and `&` are written as entities outside `code spans` (inside one they
    are shown as typed, never interpreted)."""
    parts = str(text).split("`")
    closed = len(parts) % 2 == 1  # an odd count of backticks leaves the last one unclosed: not a code span
    out = []
    for i, part in enumerate(parts):
        in_code = i % 2 == 1 and (closed or i < len(parts) - 1)
        out.append(part if in_code else escape(part, quote=False))
    return "`".join(out)


def _md_cell(value: object) -> str:
    return escape(str(value), quote=False).replace("|", "\\|").replace("\n", " ")


def table_markdown(table: Table) -> str:
    columns = [_md_cell(c) for c in table.frame.columns]
    numeric = table.numeric or [False] * len(columns)
    lines = [f"#### {md(table.title)}", "", "| " + " | ".join(columns) + " |",
             "|" + "|".join("---:" if num else "---" for num in numeric) + "|"]
    lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in table.frame.itertuples(index=False)]
    if table.note:
        lines += ["", md(table.note)]
    return "\n".join(lines)


def markdown(report: Report) -> str:
    """The report's tables (and figure titles) as Markdown; every text from the data through `md` (no raw
    HTML reaches the file, as in the HTML report)."""
    when = report.generated_at.strftime("%Y-%m-%d %H:%M UTC")
    out = [f"# {md(report.title)}", "", f"Scope: {md(report.scope)} · store `{report.store.replace('`', chr(39))}` · generated {when} "
           f"by probekit {md(report.version)} · 95 % CIs: percentile bootstrap over items, {report.n_boot} resamples", ""]
    if report.omitted:
        out += ["Not in this report: " + "; ".join(f"{md(title)} ({md(why)})" for title, why in report.omitted) + ".", ""]
    out += [*map(md, report.notes), ""] if report.notes else []
    counter = 0
    for number, section in enumerate(report.sections, start=1):
        out += [f"## {number}. {md(section.title)}", "", md(section.intro), ""]
        for part in section.parts:
            if part.title:
                out += [f"### {md(part.title)}", ""]
            for figure in part.figures:
                counter += 1
                out += [f"*Figure {counter}. {md(figure.title)}* (in the HTML report): {md(figure.caption)}"
                        + (f" {md(figure.flag_note)}" if figure.flag_note else ""), ""]
            out += [*map(md, part.notes), ""] if part.notes else []
            for table in part.tables:
                out += [table_markdown(table), ""]
    return "\n".join(out).rstrip() + "\n"
