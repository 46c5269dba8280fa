"""The shape of a report page: per section, its figures (data-plot), SVGs, tables (data-table); every id, tag
and URL of the page."""

from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser


class Outline(HTMLParser):
    """Sections of the report: per section id, its figures (data-plot), SVGs, tables (data-table) and <title>s."""

    def __init__(self) -> None:
        super().__init__()
        self.section: str | None = None
        self.sections: dict[str, Counter[str]] = {}
        self.plots: dict[str, list[str]] = {}
        self.tables: dict[str, list[str]] = {}
        self.ids: Counter[str] = Counter()
        self.tags: Counter[str] = Counter()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags[tag] += 1
        if a.get("id"):
            self.ids[str(a["id"])] += 1
        for key in ("src", "href", "xlink:href", "action", "data"):
            if a.get(key):
                self.urls.append(str(a[key]))
        if tag == "section":
            self.section = a.get("data-section")
            self.sections[str(self.section)] = Counter()
            self.plots[str(self.section)] = []
            self.tables[str(self.section)] = []
        elif self.section is not None:
            self.sections[self.section][tag] += 1
            if tag == "figure" and a.get("data-plot"):
                self.plots[self.section].append(str(a["data-plot"]))
            if tag == "table":
                self.tables[self.section].append(str(a.get("data-table") or ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self.section = None


def outline(html: str) -> Outline:
    parser = Outline()
    parser.feed(html)
    return parser
