"""Registry of analysis tables: which tables apply to a survey, and how each is built.

Every analysis module registers its table builders here with `@register(name, applies_to)`. A builder is
a function `(ctx: AnalysisContext) -> pd.DataFrame | None`; it reads the data it needs through the
context (`ctx.forms()`, `ctx.responses()`, `ctx.items()`, `ctx.sql(...)`) and returns one table with
snake_case columns, or None when the data hold nothing it can say (the table is then left out).

`applies_to` is a survey kind ("likert"), several kinds (("choice", "likert")), or a predicate over
`SurveyInfo` for conventions that the kind alone does not tell apart (a POBs survey and a political
compass survey are both `likert`). The predicates for the conventions of docs/survey-conventions.md
live here too, so modules written by different people agree on what "a POBs survey" is.

`build_tables` imports every module of `probekit.analysis` (so builders register themselves, including
modules added later by other people without editing a list) and runs the applicable builders in
registration order.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from probekit.tablenames import add_registered, declared, unknown_names

if TYPE_CHECKING:  # pandas only for annotations: spec validation imports this module and must start fast
    import pandas as pd

    from probekit.analysis.loader import AnalysisContext


@dataclass(frozen=True)
class SurveyInfo:
    """What an applicability predicate may look at: the survey's kind and its whole stored spec."""

    survey_id: str
    kind: str
    spec: dict[str, Any] = field(default_factory=dict)

    # -- helpers over the spec ---------------------------------------------------------------------
    def items(self) -> list[dict[str, Any]]:
        return list(self.spec.get("items") or [])

    def options(self) -> list[dict[str, Any]]:
        """Every option in the spec: shared options plus each item's own."""
        shared = list(self.spec.get("options") or [])
        own = [o for item in self.items() for o in (item.get("options") or [])]
        return shared + own

    def templates(self) -> list[dict[str, Any]]:
        return list(self.spec.get("templates") or [])

    def item_ids(self) -> list[str]:
        return [str(item.get("id")) for item in self.items()]

    def item_meta_has(self, key: str) -> bool:
        return any(key in (item.get("meta") or {}) for item in self.items())


# -- convention predicates (docs/survey-conventions.md) -----------------------------------------------
def is_pobs(info: SurveyInfo) -> bool:
    """POBs-style: likert with option polarities and a topic per item."""
    return info.kind == "likert" and any(o.get("polarity") is not None for o in info.options()) and info.item_meta_has("topic")


def is_pct(info: SurveyInfo) -> bool:
    """Political compass: likert whose items are pc-01 … pc-62."""
    ids = info.item_ids()
    return info.kind == "likert" and bool(ids) and all(i.startswith("pc-") for i in ids)


def is_personality(info: SurveyInfo) -> bool:
    """Likert inventory with scale values and trait (domain) metadata; not POBs, not PCT."""
    has_values = any(o.get("value") is not None for o in info.options())
    return info.kind == "likert" and has_values and info.item_meta_has("domain") and not is_pobs(info) and not is_pct(info)


def is_moralchoice(info: SurveyInfo) -> bool:
    """MoralChoice: a choice survey whose items carry an ambiguity level."""
    return info.kind == "choice" and info.item_meta_has("ambiguity")


def is_dailydilemmas(info: SurveyInfo) -> bool:
    """DailyDilemmas: a choice survey whose options carry value lists."""
    return info.kind == "choice" and any("values" in (o.get("meta") or {}) for o in info.options())


Applies = Callable[[SurveyInfo], bool]
Builder = Callable[["AnalysisContext"], "pd.DataFrame | None"]


@dataclass(frozen=True)
class TableSpec:
    """One registered table."""

    name: str
    applies: Applies
    build: Builder
    description: str = ""
    detail: bool = False
    """Detail tables (one row per trial, say) are built only when asked for by name."""


_REGISTRY: dict[str, TableSpec] = {}


def _as_predicate(applies_to: str | Iterable[str] | Applies) -> Applies:
    if callable(applies_to):
        return applies_to
    kinds = {applies_to} if isinstance(applies_to, str) else set(applies_to)
    if "*" in kinds:
        return lambda info: True
    return lambda info: info.kind in kinds


def register(
    name: str, applies_to: str | Iterable[str] | Applies, *, description: str = "", detail: bool = False
) -> Callable[[Builder], Builder]:
    """Decorator: register `fn` as the builder of table `name` for the surveys `applies_to` accepts.

    Table names are unique; registering the same name again (a module re-imported) replaces the entry.
    `detail=True` marks a large table that `build_tables` makes only when it is named in `only`.
    """

    def decorator(fn: Builder) -> Builder:
        doc = description or (fn.__doc__ or "").strip().split("\n")[0]
        add_registered(name)  # spec validation knows it without importing this layer
        _REGISTRY[name] = TableSpec(
            name=name, applies=_as_predicate(applies_to), build=fn, description=doc, detail=detail
        )
        return fn

    return decorator


def load_all_modules() -> None:
    """Import every module of probekit.analysis so that all builders are registered."""
    import probekit.analysis as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name.startswith("_"):
            continue
        importlib.import_module(f"probekit.analysis.{module.name}")


def table_names() -> set[str]:
    """Every table name `registered()` would list, without importing the analysis modules (pandas, scipy):
    the `@register("name", ...)` lines of probekit/analysis/*.py (probekit.tablenames), plus tables registered
    in this process."""
    return declared() | set(_REGISTRY)


def unknown_tables(names: Sequence[str]) -> list[tuple[int, str, str]]:
    """(index, message, fix) for each entry of an `analyses:` list that names no registered table.

    The cheap source scan decides almost always; a name it does not find is looked up in the full
    registry (importing every analysis module) before it is reported, so a table registered some other
    way is never refused."""
    known = table_names()
    if any(name not in known for name in names):
        known |= set(registered())
    return unknown_names(names, known)


def registered() -> dict[str, TableSpec]:
    """All registered tables (after importing every analysis module)."""
    load_all_modules()
    return dict(_REGISTRY)


def applicable(info: SurveyInfo) -> list[TableSpec]:
    """The tables that apply to a survey, in registration order."""
    return [spec for spec in registered().values() if spec.applies(info)]


def build_tables(ctx: AnalysisContext, only: Iterable[str] | None = None) -> dict[str, pd.DataFrame]:
    """Build every applicable non-detail table for the context's survey (or only the named ones).

    Tables whose builder returns None are left out; errors propagate, because a table that silently
    disappears would read as "not applicable". Every table goes through the quality layer
    (`probekit.analysis.quality.apply`): each row carries the codes of its failed preconditions in `flags`.
    """
    from probekit.analysis.quality import apply as with_flags

    wanted = set(only) if only is not None else None
    tables: dict[str, pd.DataFrame] = {}
    for spec in applicable(ctx.info):
        if (wanted is not None and spec.name not in wanted) or (wanted is None and spec.detail):
            continue
        table = spec.build(ctx)
        if table is not None:
            tables[spec.name] = with_flags(spec.name, table.reset_index(drop=True), ctx)
    return tables
