"""The names of the analysis tables, known without importing the analysis layer.

A spec's `analyses:` list (survey, experiment, judging experiment) names tables of probekit.analysis, and
validating a spec must neither import the layer above it nor start slowly (pandas, scipy). So the names are
read as data: the `@register("name", ...)` lines of the analysis package's source files (found through the
import system, not imported), plus the names registered in this process (probekit.analysis.registry.register
adds each here, e.g. a table a notebook or a plug-in registers).
"""

from __future__ import annotations

import difflib
import importlib.util
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

ANALYSIS_PACKAGE = "probekit.analysis"
_REGISTER_CALL = re.compile(r"""^[ \t]*@register\(\s*["']([^"']+)["']""", re.MULTILINE)
_registered: set[str] = set()


def add_registered(name: str) -> None:
    """Record a table registered in this process (called by probekit.analysis.registry.register)."""
    _registered.add(name)


def declared() -> set[str]:
    """Every table name a `@register("name", ...)` line of the analysis package declares."""
    spec = importlib.util.find_spec(ANALYSIS_PACKAGE)
    names: set[str] = set()
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        for source in sorted(Path(folder).glob("*.py")):
            if not source.name.startswith("_"):
                names.update(_REGISTER_CALL.findall(source.read_text(encoding="utf-8")))
    return names


def known() -> set[str]:
    """The declared names and those registered in this process."""
    return declared() | _registered


def closest(name: str, known: Iterable[str]) -> str | None:
    """A likely intended table: a near spelling, else the longest table the name extends
    ('pct_coordinates' → 'pct'), else one that contains it ('opinion_change' → 'pobs_opinion_change')."""
    ordered = sorted(known)
    close = difflib.get_close_matches(name, ordered, n=1)
    if close:
        return close[0]
    prefixes = [k for k in ordered if name.startswith(f"{k}_")]
    if prefixes:
        return max(prefixes, key=len)
    return next((k for k in ordered if name in k), None)


def unknown_names(names: Sequence[str], known_names: Iterable[str] | None = None) -> list[tuple[int, str, str]]:
    """(index, message, fix) for each entry of an `analyses:` list that names no table of `known_names`
    (default: `known()`)."""
    table_set = set(known() if known_names is None else known_names)
    listing = ", ".join(sorted(table_set))
    problems = []
    for index, name in enumerate(names):
        if name not in table_set:
            close = closest(str(name), table_set)
            hint = f"did you mean {close!r}? " if close else ""
            problems.append((index, f"unknown analysis {name!r}", f"{hint}known: {listing}"))
    return problems
