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
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from probekit.errors import ProbekitError
from probekit.exporting import EXPORT_FORMAT, EXPORT_FORMAT_VERSION, REQUIRED_FOR_IMPORT, manifest_relative_path
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
    try:
        manifest = json.loads(found.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ExportImportRefused(f"{found}: line {error.lineno} column {error.colno}: not valid JSON ({error.msg}); the "
                                  "manifest is damaged or truncated: export the runs again") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ExportImportRefused(f"{found}: cannot be read ({error})") from None
    if not isinstance(manifest, dict):
        raise ExportImportRefused(f"{found}: a JSON {type(manifest).__name__}, not the object `probekit export` writes")
    if manifest.get("format") != EXPORT_FORMAT:
        raise ExportImportRefused(f"{found}: not a probekit export manifest")
    if int(manifest.get("format_version", 0)) > EXPORT_FORMAT_VERSION:
        raise ExportImportRefused(f"{found}: export format version {manifest.get('format_version')} is newer than "
                                  f"this probekit reads ({EXPORT_FORMAT_VERSION}); upgrade probekit")
    tables = manifest.get("tables") or {}
    if not isinstance(tables, dict):
        raise ExportImportRefused(f"{found}: 'tables' is a {type(tables).__name__}, not an object of tables")
    missing = [t for t in REQUIRED_FOR_IMPORT if t not in tables]
    if missing:
        what = "an analysis export" if "analysis" in manifest and not tables else f"tables {', '.join(missing)} are missing"
        raise ExportImportRefused(f"{found.parent}: cannot restore runs from it ({what}); export with --tables all "
                                  "to move runs between stores")
    for name, table in tables.items():
        _check_table_entry(found, name, table)
    return found.parent, manifest


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _check_table_entry(found: Path, name: str, table: object) -> None:
    """One table of the manifest has the shape `probekit export` writes, and its paths stay in the directory."""
    where = f"{found} (table {name})"
    if not isinstance(table, dict):
        raise ExportImportRefused(f"{where}: a {type(table).__name__}, not a table entry")
    rows, files, columns = table.get("rows"), table.get("files", []), table.get("columns")
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
        raise ExportImportRefused(f"{where}: 'rows' is {rows!r}, not a row count")
    if not isinstance(columns, list) or not all(isinstance(c, dict) and isinstance(c.get("name"), str)
                                                 and isinstance(c.get("type"), str) for c in columns):
        raise ExportImportRefused(f"{where}: 'columns' is not a list of {{name, type}}")
    partition_by = table.get("partition_by", [])
    if not isinstance(partition_by, list) or not all(isinstance(c, str) for c in partition_by):
        raise ExportImportRefused(f"{where}: 'partition_by' is not a list of column names")
    try:
        if "path" in table:
            manifest_relative_path(found.parent, str(table["path"]).rstrip("/") or ".", where)
        if not isinstance(files, list):
            raise ValueError(f"{where}: 'files' is not a list")
        for entry in files:
            if not isinstance(entry, dict):
                raise ValueError(f"{where}: a file entry is a {type(entry).__name__}, not {{path, bytes, sha256}}")
            manifest_relative_path(found.parent, entry.get("path"), where)
            if not isinstance(entry.get("bytes"), int) or isinstance(entry.get("bytes"), bool):
                raise ValueError(f"{where}: file {entry.get('path')!r} has no byte count ('bytes')")
            if not isinstance(entry.get("sha256"), str) or not _SHA256.fullmatch(entry["sha256"]):
                raise ValueError(f"{where}: file {entry.get('path')!r} has no sha256 (64 hex digits); every file of an "
                                 "export is checked against it, so one without cannot be imported")
    except ValueError as error:
        raise ExportImportRefused(str(error)) from None


def _check_files(root: Path, name: str, table: dict[str, Any]) -> list[Path]:
    paths = []
    for entry in table.get("files", []):
        try:
            path = manifest_relative_path(root, entry["path"], f"{root / 'manifest.json'} (table {name})")
        except ValueError as error:
            raise ExportImportRefused(str(error)) from None
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
            if name == "runs" and "config" in arrow.column_names:
                arrow = _redacted_configs(arrow)
            data[name] = arrow
    finally:
        con.close()
    return manifest, data


_SECRET_KEY = re.compile(r"(?i)([a-z0-9]+[_-])?(api[_-]?key|secret|password|passwd|credentials?|private[_-]?key)"
                         r"|(access|auth|bearer|api|refresh|session)[_-]?token|token")
"""Configuration keys whose values are credentials (matched whole: `api_key`, `openai_api_key`, `token`;
not `api_key_env` or `stop_token`)."""


def redact_config(value: Any) -> Any:
    """A run configuration with credentials removed: values of keys named like one (`api_key`, `token`,
    `secret` ...; `api_key_env`, a variable's NAME, is kept) and key-shaped text anywhere
    (`probekit.backends.errors.redact`). A store never holds a key, whatever an imported file says."""
    from probekit.backends.errors import redact

    if isinstance(value, dict):
        return {k: ("***" if isinstance(v, str) and v and _SECRET_KEY.fullmatch(str(k)) else redact_config(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_config(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value


def _redacted_configs(arrow: Any) -> Any:
    import pyarrow as pa

    texts = arrow["config"].to_pylist()
    cleaned: list[str | None] = []
    for text in texts:
        if text is None:
            cleaned.append(None)
            continue
        try:
            parsed = json.loads(text)
        except (TypeError, ValueError):
            from probekit.backends.errors import redact

            cleaned.append(redact(str(text)))
            continue
        redacted = redact_config(parsed)
        cleaned.append(text if redacted == parsed else json.dumps(redacted, sort_keys=True))
    if cleaned == texts:
        return arrow
    index = arrow.column_names.index("config")
    return arrow.set_column(index, arrow.schema.field(index), pa.array(cleaned, type=arrow.schema.field(index).type))


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
