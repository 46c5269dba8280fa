"""Analysis tables out of Python: the JSON interface of docs/analysis.md, CSV, Parquet.

    from probekit.analysis import analyze, write_tables
    write_tables(analyze("outputs/probekit.duckdb"), "results/")   # results/<table>.csv, .parquet, .json

JSON is one object mapping table names to lists of rows (snake_case keys, NaN/inf as null, list cells as
arrays); a table's own `.json` file holds its list of rows. CSV and Parquet hold list and dict cells as
JSON text. Table names become file names as they are (`pct.pct.csv` for a prefixed table).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("csv", "parquet", "json")


def _plain(value: Any) -> Any:
    """JSON-safe scalars: NaN/inf → null, numpy types → Python, arrays → lists."""
    import numpy as np

    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    if value is None:
        return None
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def _rows_json(frame: pd.DataFrame) -> str:
    """One table as a JSON list of rows. pandas writes the rows (fast for large tables); numpy values
    inside list columns are made plain first."""
    ready = frame.copy()
    for column in ready.columns:
        if ready[column].dtype == object:
            ready[column] = [_plain(v) for v in ready[column]]
    return str(ready.to_json(orient="records", double_precision=15, date_format="iso", default_handler=str))


def tables_to_json(tables: Mapping[str, pd.DataFrame]) -> str:
    """{table: [row, ...]} with NaN as null: the stable JSON interface (docs/analysis.md)."""
    return "{" + ", ".join(f"{json.dumps(name)}: {_rows_json(frame)}" for name, frame in tables.items()) + "}"


def flat_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose list, array and dict cells are JSON text, as CSV and Parquet writers need."""
    out = frame.copy()
    for column in out.columns:
        if out[column].map(lambda v: isinstance(v, (list, tuple, dict)) or hasattr(v, "tolist")).any():
            out[column] = [json.dumps(_plain(v)) for v in out[column]]
    return out


def to_csv_text(frame: pd.DataFrame) -> str:
    """One table as CSV text (header first), list cells as JSON."""
    return str(flat_frame(frame).to_csv(index=False))


def write_tables(tables: Mapping[str, pd.DataFrame], out_dir: str | Path,
                 formats: Iterable[str] = FORMATS) -> list[Path]:
    """Write every table to `out_dir/<name>.<format>` (csv, parquet, json; the directory is created) and
    return the paths written, table by table in the order of `formats`."""
    wanted = list(dict.fromkeys(formats))
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown table format(s) {unknown}: use {', '.join(FORMATS)}")
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, frame in tables.items():
        flat = flat_frame(frame) if {"csv", "parquet"} & set(wanted) else frame
        for fmt in wanted:
            path = folder / f"{name}.{fmt}"
            if fmt == "csv":
                flat.to_csv(path, index=False)
            elif fmt == "parquet":
                flat.to_parquet(path, index=False)
            else:
                path.write_text(_rows_json(frame), encoding="utf-8")
            written.append(path)
    return written
