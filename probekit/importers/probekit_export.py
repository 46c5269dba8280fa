"""Restore a `probekit export` directory into a store: the runs with their ids, timestamps, statuses and rows
unchanged, so two stores can be merged (docs/export.md).

    from probekit.importers.probekit_export import import_export
    summary = import_export("share/", store_path="other.duckdb")   # a second call inserts nothing

Every file is checked against the manifest (size, sha256, row count) and decoded back to the store's types
(CSV list columns from their JSON arrays, JSON columns from their text, timestamps in UTC) before anything is
written; then all tables are written in one transaction through `StoreRecorder.record_restored`. Rows whose
key is already in the store are kept as stored (importing twice is a no-op; a store's other runs are
untouched); stored rows that differ from the exported ones are counted in the summary.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from probekit.errors import ProbekitError
from probekit.exporting import EXPORT_FORMAT, EXPORT_FORMAT_VERSION, REQUIRED_FOR_IMPORT
from probekit.store.recorder import StoreRecorder
from probekit.store.store import DEFAULT_STORE, Store

MAX_FIELD_BYTES = 1 << 30  # a survey's whole spec is one CSV field / JSON value


class ExportImportRefused(ProbekitError, ValueError):
    """The directory is not a restorable probekit export (or it was changed since it was written)."""


@dataclass
class RestoreSummary:
    """What an import of an export did."""

    source: Path
    runs: list[str]
    inserted: dict[str, int]
    """Rows written per table."""
    rows: dict[str, int]
    """Rows in the export per table."""
    differing: dict[str, int] = field(default_factory=dict)
    """Per table: rows whose key was already stored with other values (kept as stored, or replaced)."""
    replaced: bool = False
    """True when the differing rows took the export's values (`replace=True`)."""

    @property
    def already(self) -> bool:
        """True when nothing was new: every row of the export was already in the store as exported."""
        return not any(self.inserted.values()) and not (self.replaced and self.differing)


def manifest_path(path: str | Path) -> Path | None:
    """The manifest of a probekit export at `path` (the directory or its manifest.json), or None."""
    candidate = Path(path)
    if candidate.is_dir():
        candidate = candidate / "manifest.json"
    if candidate.name != "manifest.json" or not candidate.is_file():
        return None
    try:
        with candidate.open(encoding="utf-8") as handle:
            head = handle.read(4096)
    except OSError:
        return None
    return candidate if f'"{EXPORT_FORMAT}"' in head else None


def is_probekit_export(path: str | Path) -> bool:
    return manifest_path(path) is not None


def read_manifest(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """(export directory, manifest), checked: a probekit export of a known format version holding every table
    a restore needs."""
    found = manifest_path(path)
    if found is None:
        raise ExportImportRefused(f"{path}: no probekit export here (a directory with the manifest.json that "
                                  "`probekit export` writes)")
    manifest = json.loads(found.read_text(encoding="utf-8"))
    if manifest.get("format") != EXPORT_FORMAT:
        raise ExportImportRefused(f"{found}: not a probekit export manifest")
    if int(manifest.get("format_version", 0)) > EXPORT_FORMAT_VERSION:
        raise ExportImportRefused(f"{found}: export format version {manifest.get('format_version')} is newer than "
                                  f"this probekit reads ({EXPORT_FORMAT_VERSION}); upgrade probekit")
    tables = manifest.get("tables") or {}
    missing = [t for t in REQUIRED_FOR_IMPORT if t not in tables]
    if missing:
        what = "an analysis export" if "analysis" in manifest and not tables else f"tables {', '.join(missing)} are missing"
        raise ExportImportRefused(f"{found.parent}: cannot restore runs from it ({what}); export with --tables all "
                                  "to move runs between stores")
    return found.parent, manifest


def _check_files(root: Path, name: str, table: dict[str, Any]) -> list[Path]:
    paths = []
    for entry in table.get("files", []):
        path = root / entry["path"]
        if not path.is_file():
            raise ExportImportRefused(f"{path}: missing (table {name}); the export is incomplete")
        if path.stat().st_size != entry["bytes"]:
            raise ExportImportRefused(f"{path}: {path.stat().st_size} bytes, the manifest says {entry['bytes']}; "
                                      "the file changed since it was exported")
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != entry["sha256"]:
            raise ExportImportRefused(f"{path}: sha256 differs from the manifest; the file changed since it was exported")
        paths.append(path)
    return paths


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _source_sql(fmt: str, paths: list[Path], columns: list[dict[str, Any]], partition_by: list[str]) -> str:
    """A SELECT that reads a table's files and decodes every column to its store type."""
    files = "[" + ", ".join(_lit(str(p)) for p in paths) + "]"
    if fmt == "parquet":
        hive = (", hive_partitioning = true, hive_types = {" + ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in partition_by) + "}"
                if partition_by else ", hive_partitioning = false")
        source = f"read_parquet({files}{hive})"
    elif fmt == "csv":
        hive = (", hive_partitioning = true, hive_types = {" + ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in partition_by) + "}"
                if partition_by else ", hive_partitioning = false")
        source = (f"read_csv({files}, header = true, delim = ',', quote = '\"', escape = '\"', all_varchar = true, "
                  f"allow_quoted_nulls = false, auto_detect = false, max_line_size = {MAX_FIELD_BYTES}, "
                  "columns = {" + ", ".join(f"{_lit(c['name'])}: 'VARCHAR'" for c in columns if c["name"] not in partition_by)
                  + f"}}{hive})")
    else:
        hive = (", hive_partitioning = true, hive_types = {" + ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in partition_by) + "}"
                if partition_by else ", hive_partitioning = false")
        types = {c["name"]: ("VARCHAR" if c["type"] == "JSON" else c["type"]) for c in columns if c["name"] not in partition_by}
        source = (f"read_json({files}, format = 'newline_delimited', maximum_object_size = {MAX_FIELD_BYTES}, "
                  "columns = {" + ", ".join(f"{_lit(n)}: {_lit(t)}" for n, t in types.items()) + f"}}{hive})")
    parts = []
    for column in columns:
        name, kind = _q(column["name"]), column["type"]
        if kind == "JSON":
            parts.append(f"CAST({name} AS VARCHAR) AS {name}")  # the JSON text as exported
        elif fmt == "csv" and kind.endswith("]"):
            parts.append(f"CAST(CAST({name} AS JSON) AS {kind}) AS {name}")
        else:
            parts.append(f"CAST({name} AS {kind}) AS {name}")
    return f"SELECT {', '.join(parts)} FROM {source}"


def read_export_tables(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(manifest, {table: Arrow table in the store's column types}) of an export, every file checked."""
    root, manifest = read_manifest(path)
    fmt = manifest.get("file_format", "parquet")
    data: dict[str, Any] = {}
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        for name, table in manifest["tables"].items():
            paths = _check_files(root, name, table)
            derived = set(table.get("derived_columns", []))
            columns = [c for c in table["columns"] if c["name"] not in derived]
            if not paths:
                if table.get("rows"):
                    raise ExportImportRefused(f"{root}: table {name} has {table['rows']} rows but no files")
                continue
            try:
                arrow = con.sql(_source_sql(fmt, paths, columns, list(table.get("partition_by", [])))).to_arrow_table()
            except duckdb.Error as error:
                raise ExportImportRefused(f"{root / table['path']}: cannot be read as {fmt} ({error})") from None
            if arrow.num_rows != table["rows"]:
                raise ExportImportRefused(f"{root / table['path']}: {arrow.num_rows} rows, the manifest says {table['rows']}")
            data[name] = arrow
    finally:
        con.close()
    return manifest, data


def import_export(path: str | Path, *, store_path: str | Path = DEFAULT_STORE, replace: bool = False) -> RestoreSummary:
    """Restore the runs of a probekit export into the store (created when missing); returns what was new.
    Rows already stored with the same key are kept as stored; with `replace` the export's values replace
    those that differ (e.g. a run exported again after it finished)."""
    manifest, data = read_export_tables(path)
    counts = StoreRecorder(Store(store_path)).record_restored(data, replace=replace)
    return RestoreSummary(
        source=Path(path), runs=[r["run_id"] for r in manifest.get("runs", [])],
        # An empty table of a partitioned export has no file to read: it inserted nothing (and is still listed).
        inserted={t: counts.get(t, (0, 0))[0] for t in manifest["tables"]},
        rows={t: int(manifest["tables"][t]["rows"]) for t in manifest["tables"]},
        differing={t: c[1] for t, c in counts.items() if c[1]}, replaced=replace,
    )


__all__ = ["ExportImportRefused", "RestoreSummary", "import_export", "is_probekit_export", "manifest_path",
           "read_export_tables", "read_manifest"]
