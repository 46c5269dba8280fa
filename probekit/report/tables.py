"""Analysis tables made readable: a 95 % CI merged into its estimate ("0.42 [0.31, 0.55]"), numbers rounded by
magnitude, lists shortened, chosen columns and long tables cut, all as text, so the HTML and the Markdown
renderers print exactly the same cells."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

MAX_ROWS = 40
"""Rows of a table printed in a report; the rest is counted and the command that prints it all is named."""
CI_SUFFIXES = ("_ci_low", "_ci_high")


@dataclass
class Table:
    """One table of a report, already formatted: every cell is text."""

    title: str
    frame: pd.DataFrame
    """Text cells; column names are the headers."""
    numeric: list[bool] = field(default_factory=list)
    """Per column: right-align (numbers)."""
    note: str = ""
    """Shown under the table (rows left out, how to get all of them, what a column means)."""
    collapsed: bool = False
    """Secondary detail: HTML shows it folded (<details>)."""
    source: str | None = None
    """The analysis table it shows (`probekit analyze --tables NAME`), when it is one."""
    total_rows: int = 0
    flagged: list[bool] = field(default_factory=list)
    """Per shown row: it fails a precondition (its `flags` cell is not empty); HTML greys it out."""


def number(value: Any, *, percent: bool = False) -> str:
    """A number as text: integers whole, others with 3 decimals below 10, 2 below 100, 1 above; '–' for none."""
    if value is None or isinstance(value, str):
        return "–" if value is None else value
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(x):
        return "–"
    if percent:
        return f"{100 * x:.1f} %"
    if isinstance(value, (int, np.integer)) or (x.is_integer() and abs(x) < 1e6 and not isinstance(value, (float, np.floating))):
        return f"{int(x):,}" if abs(x) >= 10000 else str(int(x))
    magnitude = abs(x)
    text = f"{x:,.0f}" if magnitude >= 10000 else f"{x:.1f}" if magnitude >= 100 else f"{x:.2f}" if magnitude >= 10 else f"{x:.3f}"
    return "0.000" if text in ("-0.000", "-0.00", "-0.0") else text


def cell(value: Any, *, percent: bool = False) -> str:
    """Any analysis cell as text: lists as [a, b, …] (at most 8 entries), dicts as JSON, timestamps to the minute."""
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
        shown = ", ".join(number(v, percent=percent) if not isinstance(v, str) else v for v in items[:8])
        return f"[{shown}{', …' if len(items) > 8 else ''}]"
    if isinstance(value, dict):
        return json.dumps(value, default=str)[:80]
    if isinstance(value, (pd.Timestamp,)):
        return "–" if pd.isna(value) else value.strftime("%Y-%m-%d %H:%M")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, str):
        return value
    return number(value, percent=percent)


COUNT_NAMES = ("n_", "prompts_", "selected", "rejected", "consistent", "primacy", "recency")
"""Columns that hold counts (by name: n_items, prompt_tokens, ...), shown without decimals when whole."""


def _whole(series: pd.Series, name: str = "") -> bool:
    """A float column that only holds whole numbers (counts stored as floats): shown without decimals."""
    if not pd.api.types.is_float_dtype(series):
        return False
    values = series.to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    if not values.size or not np.all(values == np.round(values)) or not np.all(np.abs(values) < 1e12):
        return False
    # Rates and shares are whole too when they are all 0 or 1: a column counts as counts by its name, or when it
    # has a value above 1.
    return name.startswith(COUNT_NAMES) or name.endswith("_tokens") or bool(np.abs(values).max() > 1)


def _is_numeric(series: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(series)) and not pd.api.types.is_bool_dtype(series)


def display_table(
    frame: pd.DataFrame,
    title: str,
    *,
    columns: Sequence[str] | None = None,
    rename: Mapping[str, str] | None = None,
    percent: Sequence[str] = (),
    note: str = "",
    collapsed: bool = False,
    source: str | None = None,
    more: str = "",
    max_rows: int = MAX_ROWS,
) -> Table:
    """Format `frame` for a report. `columns` picks and orders columns (an estimate's `_ci_low`/`_ci_high`
    come with it and are merged into one cell, the header saying "(95 % CI)"); `percent` columns are shown
    as percentages; `more` is the command that prints every row, named when rows are cut."""
    wanted = [c for c in (columns if columns is not None else frame.columns) if c in frame.columns]
    if columns is None:
        wanted = [c for c in wanted if not c.endswith(CI_SUFFIXES) or c.rsplit("_ci_", 1)[0] not in frame.columns]
    has_flags = "flags" in frame.columns and bool((frame["flags"].fillna("") != "").any())
    # The flags column comes last; the HTML keeps it in view at the right edge while a wide table scrolls.
    wanted = [c for c in wanted if c != "flags"] + (["flags"] if has_flags else [])
    rename = dict(rename or {})
    shown = frame.head(max_rows)
    out: dict[str, list[str]] = {}
    numeric: list[bool] = []
    for column in wanted:
        pct = column in percent
        has_ci = f"{column}_ci_low" in frame.columns and f"{column}_ci_high" in frame.columns
        header = rename.get(column, column)
        if has_ci:
            header = f"{header} (95 % CI)"
            values = [
                f"{cell(v, percent=pct)} [{cell(lo, percent=pct)}, {cell(hi, percent=pct)}]"
                if cell(lo) != "–" else cell(v, percent=pct)
                for v, lo, hi in zip(shown[column], shown[f"{column}_ci_low"], shown[f"{column}_ci_high"])
            ]
        elif not pct and _whole(frame[column], column):
            values = [cell(int(v)) if pd.notna(v) else "–" for v in shown[column]]
        else:
            values = [cell(v, percent=pct) for v in shown[column]]
        if header in out:  # two columns renamed alike: keep both
            header = f"{header} ({column})"
        out[header] = values
        numeric.append(_is_numeric(frame[column]))
    notes = [note] if note else []
    flagged = [bool(f) for f in shown["flags"].fillna("")] if has_flags else [False] * len(shown)
    if has_flags:
        notes.append(flag_note(frame["flags"]))
    if len(frame) > max_rows:
        notes.append(f"First {max_rows} of {len(frame)} rows" + (f"; every row: `{more}`" if more else "") + ".")
    return Table(title=title, frame=pd.DataFrame(out, columns=list(out)), numeric=numeric, note=" ".join(notes),
                 collapsed=collapsed, source=source, total_rows=len(frame), flagged=flagged)


def flag_note(flags: Sequence[Any] | pd.Series) -> str:
    """The sentence under a table or figure with flagged rows: how many, and what each code present means."""
    from probekit.analysis.quality import describe, flags_present

    cells = ["" if not isinstance(f, str) else f for f in flags]
    n = sum(bool(c) for c in cells)
    present = flags_present([pd.DataFrame({"flags": cells})])
    reasons = "; ".join(f"{code}: {describe(code)}" for code in present)
    return (f"Flagged ({n} of {len(cells)} rows, greyed): not findings — {reasons}. "
            "`probekit analyze --strict` leaves them out (docs/quality.md).")
