"""Data out: the store's tables (or the analysis tables) as Parquet, CSV or JSON lines, with a manifest.

    import probekit
    probekit.export("share/", store="outputs/probekit.duckdb", run=run_id)             # Parquet, every table
    probekit.export("share_csv/", survey="pct", models=["smollm2"], format="csv")
    probekit.export("tables/", run=run_id, analysis=True)                              # `probekit analyze` tables

An export is a directory: one file per table (`results.parquet` ...; with `partition=True` a hive-partitioned
directory per table, `results/survey_id=pct/model=smollm2/data_0.parquet`), `manifest.json` (row counts,
probekit and schema versions, each run's configuration, every survey's license and attribution, each file's
size and sha256, each table's columns and store types) and a short README.md. `probekit import DIR` restores
the runs into another store (`probekit.importers.probekit_export`). Format and encodings: docs/export.md.

The store is read in one short read-only session (all tables of the export from one snapshot, the file held
only while they are copied into memory as Arrow); the files are written after the file is released, so a run
writing to the store waits at most for that copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from probekit.errors import ProbekitError
from probekit.store.store import DEFAULT_STORE, Store

EXPORT_FORMAT = "probekit-export"
EXPORT_FORMAT_VERSION = 1
FORMATS = ("parquet", "csv", "jsonl")
STORE_TABLES = ("runs", "models", "surveys", "items", "trials", "run_trials", "results", "position_priors",
                "human_distributions", "personas", "judge_gold_sources", "judge_gold")
"""The store tables an export can hold (`tables="all"`: every one). Other tables (e.g. the tracking scheduler's
state) belong to their store and are not exported."""
REQUIRED_FOR_IMPORT = ("runs", "models", "surveys", "items", "trials", "run_trials", "results")
PARTITION_COLUMNS = ("survey_id", "model")
EXTENSIONS = {"parquet": "parquet", "csv": "csv", "jsonl": "jsonl"}
SORT_KEYS = {
    "runs": ["started_at", "run_id"], "models": ["run_id", "model"], "surveys": ["survey_id", "survey_hash"],
    "items": ["survey_id", "survey_hash", "item_id"], "trials": ["survey_id", "item_id", "trial_id"],
    "run_trials": ["run_id", "trial_id"], "results": ["run_id", "model", "trial_id", "sample_index"],
    "position_priors": ["run_id", "model", "survey_id", "reasoning", "n_options"],
    "human_distributions": ["survey_id", "survey_hash", "item_id", "group_var", "group_value"],
    "personas": ["survey_id", "survey_hash", "persona_id"],
    "judge_gold_sources": ["survey_id"], "judge_gold": ["survey_id", "question_id", "model_a", "model_b"],
}
ENCODING = {
    "parquet": "Store types kept: lists as Parquet lists, timestamps as UTC timestamps (microseconds); JSON "
               "columns as JSON text (strings).",
    "csv": "UTF-8, comma-separated, header row, RFC 4180 quoting. List columns as JSON arrays (doubles in "
           "shortest round-trip form, NaN/Infinity as NaN, Infinity, -Infinity), JSON columns as their JSON "
           "text, timestamps as 'YYYY-MM-DD HH:MM:SS.ffffff+00' (UTC), booleans true/false. NULL is an empty "
           "field; an empty string is a quoted empty field (\"\").",
    "jsonl": "One JSON object per line (UTF-8). Lists as arrays, JSON columns as strings holding their JSON "
             "text, timestamps as strings 'YYYY-MM-DD HH:MM:SS.ffffff+00' (UTC), NULL as null; non-finite "
             "doubles as NaN, Infinity, -Infinity.",
}
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)", re.IGNORECASE)


class ExportError(ProbekitError, ValueError):
    """The export cannot be made (unknown table or format, nothing in scope, output directory in use ...)."""


def manifest_relative_path(root: Path, path: object, what: str) -> Path:
    """`root / path` for a path a manifest names, refused (ValueError naming `what`) unless it is a plain
    relative path that stays inside `root`: not absolute, no `..`, no backslash or drive, not reaching out
    through a symbolic link. A manifest is data from elsewhere; its paths are never followed out of the
    export directory (by `probekit import`, or by `export --overwrite` removing an earlier export's files)."""
    import ntpath
    from pathlib import PurePosixPath

    if not isinstance(path, str) or not path.strip():
        raise ValueError(f"{what}: the path {path!r} is not a relative file path")
    pure = PurePosixPath(path)
    if pure.is_absolute() or ntpath.isabs(path) or ntpath.splitdrive(path)[0] or "\\" in path:
        raise ValueError(f"{what}: the path {path!r} is absolute; a manifest names files inside its directory only")
    if any(part == ".." for part in pure.parts) or "\x00" in path:
        raise ValueError(f"{what}: the path {path!r} leads out of the export directory ('..'); refused")
    target = root / pure
    try:
        inside = target.resolve().is_relative_to(root.resolve())
    except OSError:
        inside = False
    if not inside:
        raise ValueError(f"{what}: the path {path!r} resolves outside the export directory (a symbolic link?); refused")
    return target


@dataclass
class ExportSummary:
    """What an export wrote."""

    out_dir: Path
    format: str
    runs: list[str]
    tables: dict[str, int]
    """Rows per table written (store tables, or analysis tables with `analysis=True`)."""
    files: list[Path]
    bytes: int
    seconds: float
    held_seconds: float
    """How long the store file was held open (the read session); a writing run waits at most this long."""
    manifest: dict[str, Any]
    unfinished: list[str] = field(default_factory=list)
    """Runs that were still running (or interrupted) when exported: export them again when they finish."""


# -- reading the store ------------------------------------------------------------------------------
def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_IN_RUNS = "run_id IN (SELECT unnest($runs::VARCHAR[]))"
_SCOPED_TRIALS = f"SELECT trial_id FROM run_trials WHERE {_IN_RUNS}"
_SURVEY_TRIALS = "SELECT trial_id FROM trials WHERE survey_id = $survey"
_MODEL = "($models IS NULL OR list_contains($models::VARCHAR[], model))"
_SURVEY_OF_TRIAL = f"($survey IS NULL OR trial_id IN ({_SURVEY_TRIALS}))"
_SURVEY = "($survey IS NULL OR survey_id = $survey)"
_HASHES = f"SELECT DISTINCT survey_hash FROM trials WHERE trial_id IN ({_SCOPED_TRIALS}) AND {_SURVEY}"
_SURVEYS_IN_SCOPE = f"SELECT DISTINCT survey_id FROM trials WHERE trial_id IN ({_SCOPED_TRIALS}) AND {_SURVEY}"

_TABLE_SQL = {
    "runs": f"SELECT * FROM runs WHERE {_IN_RUNS}",
    "models": f"SELECT * FROM models WHERE {_IN_RUNS} AND {_MODEL}",
    "surveys": f"SELECT * FROM surveys WHERE survey_hash IN ({_HASHES})",
    "items": f"SELECT * FROM items WHERE survey_hash IN ({_HASHES})",
    "trials": f"SELECT * FROM trials WHERE trial_id IN ({_SCOPED_TRIALS}) AND {_SURVEY}",
    "run_trials": f"SELECT * FROM run_trials WHERE {_IN_RUNS} AND {_SURVEY_OF_TRIAL}",
    "results": f"SELECT * FROM results WHERE {_IN_RUNS} AND {_MODEL} AND {_SURVEY_OF_TRIAL}",
    "position_priors": f"SELECT * FROM position_priors WHERE {_IN_RUNS} AND {_MODEL} AND {_SURVEY}",
    "human_distributions": f"SELECT * FROM human_distributions WHERE survey_hash IN ({_HASHES})",
    "personas": f"SELECT * FROM personas WHERE survey_hash IN ({_HASHES})",
    # The gold verdicts of the pairwise surveys in scope: the judge tables read them (a restore without them would
    # silently fall back to the panel gold).
    "judge_gold_sources": f"SELECT * FROM judge_gold_sources WHERE survey_id IN ({_SURVEYS_IN_SCOPE})",
    "judge_gold": f"SELECT * FROM judge_gold WHERE survey_id IN ({_SURVEYS_IN_SCOPE})",
}
_RESULTS_WITH_SURVEY = (
    "SELECT r.*, t.survey_id FROM results r LEFT JOIN trials t USING (trial_id) "
    f"WHERE r.{_IN_RUNS} AND ($models IS NULL OR list_contains($models::VARCHAR[], r.model)) "
    "AND ($survey IS NULL OR t.survey_id = $survey)"
)


def _params(sql: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The named parameters a statement uses (DuckDB refuses others)."""
    return {name: value for name, value in params.items() if f"${name}" in sql}


def _as_list(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value)
    out = [part for entry in items for part in entry.replace(",", " ").split()]
    return out or None


def _select_runs(con: duckdb.DuckDBPyConnection, runs: list[str] | None, survey: str | None,
                 models: list[str] | None, path: Path) -> list[str]:
    """The run ids in scope, oldest first: the given runs (each must exist), those that asked `survey`, those
    with rows of `models`; every run when nothing narrows the scope."""
    stored = [str(r[0]) for r in con.execute("SELECT run_id FROM runs ORDER BY started_at, run_id").fetchall()]
    if runs is not None:
        unknown = [r for r in runs if r not in stored]
        if unknown:
            raise ExportError(f"no run {', '.join(map(repr, unknown))} in {path}; `probekit runs` lists them")
        chosen = [r for r in stored if r in set(runs)]
    else:
        chosen = stored
    if survey is not None:
        asked = {str(r[0]) for r in con.execute(
            "SELECT DISTINCT rt.run_id FROM run_trials rt JOIN trials t USING (trial_id) WHERE t.survey_id = ?",
            [survey]).fetchall()}
        chosen = [r for r in chosen if r in asked]
    if models is not None:
        having = {str(r[0]) for r in con.execute(
            "SELECT DISTINCT run_id FROM models WHERE list_contains(?::VARCHAR[], model) "
            "UNION SELECT DISTINCT run_id FROM results WHERE list_contains(?::VARCHAR[], model)",
            [models, models]).fetchall()}
        chosen = [r for r in chosen if r in having]
    if not chosen:
        scope = ", ".join(filter(None, [f"runs {runs}" if runs else "", f"survey {survey!r}" if survey else "",
                                        f"models {models}" if models else ""])) or "any run"
        raise ExportError(f"nothing to export: no run in {path} matches {scope}")
    return chosen


@dataclass
class _Snapshot:
    runs: list[str]
    schema_version: int
    columns: dict[str, list[tuple[str, str]]]
    data: dict[str, Any]  # table -> pyarrow.Table
    run_rows: list[dict[str, Any]]
    run_models: dict[str, list[str]]
    survey_rows: list[dict[str, Any]]
    held_seconds: float


def _read(store: Store, wanted: list[str] | None, runs: list[str] | None, survey: str | None,
          models: list[str] | None, partition: bool) -> _Snapshot:
    """Everything the export needs, in one read-only session of the store file (one consistent snapshot)."""
    start = time.perf_counter()
    with store.connect(read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        described: dict[str, list[tuple[str, str]]] = {}
        for table, column, kind in con.execute(
                "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'main' "
                "AND table_name IN (SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
                "AND table_type = 'BASE TABLE') ORDER BY table_name, ordinal_position").fetchall():
            described.setdefault(str(table), []).append((str(column), str(kind)))
        if not {"runs", "schema_migrations"} <= set(described):
            raise ExportError(f"{store.path} holds no probekit runs yet")
        version_row = con.execute("SELECT max(version) FROM schema_migrations").fetchall()[0]
        chosen = _select_runs(con, runs, survey, models, store.path)
        params = {"runs": chosen, "models": models, "survey": survey}
        available = [t for t in STORE_TABLES if t in described]
        names = available if wanted is None else wanted
        missing = [t for t in names if t not in described]
        if missing:
            raise ExportError(f"no table {', '.join(missing)} in {store.path} (schema version "
                              f"{version_row[0]}); tables: {', '.join(available)}")
        data: dict[str, Any] = {}
        for table in names:
            sql = _RESULTS_WITH_SURVEY if table == "results" and partition else _TABLE_SQL[table]
            data[table] = con.sql(sql, params=_params(sql, params)).to_arrow_table()
        run_rows = con.execute(
            "SELECT run_id, status, started_at, ended_at, config_hash, config, probekit_version FROM runs "
            f"WHERE {_IN_RUNS} ORDER BY started_at, run_id", {"runs": chosen}).fetchall()
        run_models: dict[str, list[str]] = {}
        for run_id, model in con.execute(
                f"SELECT DISTINCT run_id, model FROM models WHERE {_IN_RUNS} AND {_MODEL} "
                f"UNION SELECT DISTINCT run_id, model FROM results WHERE {_IN_RUNS} AND {_MODEL} ORDER BY 1, 2",
                {"runs": chosen, "models": models}).fetchall():
            run_models.setdefault(str(run_id), []).append(str(model))
        survey_rows = con.execute(
            "SELECT s.survey_id, s.survey_hash, s.version, s.kind, s.title, s.source, "
            "(SELECT count(*) FROM items i WHERE i.survey_hash = s.survey_hash) AS items "
            f"FROM surveys s WHERE survey_hash IN ({_HASHES}) ORDER BY s.survey_id, s.survey_hash",
            {"runs": chosen, "survey": survey}).fetchall()
    held = time.perf_counter() - start
    return _Snapshot(
        runs=chosen, schema_version=int(version_row[0]) if version_row and version_row[0] is not None else 0,
        columns={t: described[t] for t in names}, data=data,
        run_rows=[dict(zip(["run_id", "status", "started_at", "ended_at", "config_hash", "config", "probekit_version"], r))
                  for r in run_rows],
        run_models=run_models,
        survey_rows=[dict(zip(["survey_id", "survey_hash", "version", "kind", "title", "source", "items"], r))
                     for r in survey_rows],
        held_seconds=held,
    )


# -- writing files --------------------------------------------------------------------------------
def _is_list(kind: str) -> bool:
    return kind.endswith("]")


def _select_for(fmt: str, columns: Sequence[tuple[str, str]], extra: Sequence[str]) -> str:
    """The SELECT list that encodes a table's columns for a format (docs/export.md)."""
    parts = []
    for name, kind in columns:
        column = _q(name)
        if kind == "JSON":
            parts.append(f"CAST({column} AS VARCHAR) AS {column}")
        elif fmt == "csv" and _is_list(kind):
            parts.append(f"CAST(to_json({column}) AS VARCHAR) AS {column}")
        else:
            parts.append(column)
    parts.extend(_q(name) for name in extra)
    return ", ".join(parts)


def _copy_options(fmt: str) -> str:
    if fmt == "parquet":
        return "FORMAT PARQUET, COMPRESSION ZSTD"
    if fmt == "csv":
        return "FORMAT CSV, HEADER true, DELIMITER ',', QUOTE '\"', ESCAPE '\"'"
    return "FORMAT JSON"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_entries(root: Path, paths: Iterable[Path]) -> list[dict[str, Any]]:
    return [{"path": p.relative_to(root).as_posix(), "bytes": p.stat().st_size, "sha256": _sha256(p)}
            for p in sorted(paths)]


def _write_store_tables(snapshot: _Snapshot, folder: Path, fmt: str, partition: bool) -> dict[str, dict[str, Any]]:
    """Write each table (outside the store's read session) and describe it for the manifest."""
    ext = EXTENSIONS[fmt]
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        described: dict[str, dict[str, Any]] = {}
        for table, arrow in snapshot.data.items():
            columns = snapshot.columns[table]
            names = [c for c, _ in columns]
            parts = [c for c in PARTITION_COLUMNS if c in arrow.column_names] if partition else []
            derived = [c for c in parts if c not in names]
            view = f"export_{table}"
            con.register(view, arrow)
            order = [c for c in SORT_KEYS.get(table, names[:1]) if c in names] or names[:1]
            sql = f"SELECT {_select_for(fmt, columns, derived)} FROM {view} ORDER BY {', '.join(map(_q, order))}"
            if parts and arrow.num_rows:
                target = folder / table
                con.execute(f"COPY ({sql}) TO '{_sql_path(target)}' ({_copy_options(fmt)}, "
                            f"PARTITION_BY ({', '.join(map(_q, parts))}), FILE_EXTENSION '{ext}')")
                files = sorted(p for p in target.rglob(f"*.{ext}") if p.is_file())
                location = f"{table}/"
            elif parts:
                files, location = [], f"{table}/"  # nothing to partition: no files
            else:
                target = folder / f"{table}.{ext}"
                con.execute(f"COPY ({sql}) TO '{_sql_path(target)}' ({_copy_options(fmt)})")
                files, location = [target], target.name
            con.unregister(view)
            described[table] = {
                "rows": arrow.num_rows, "path": location,
                "columns": [{"name": n, "type": k} for n, k in columns],
                **({"partition_by": parts} if parts else {}),
                **({"derived_columns": derived} if derived else {}),
                "files": _file_entries(folder, files),
            }
    finally:
        con.close()
    return described


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _write_analysis_tables(tables: Mapping[str, Any], folder: Path, fmt: str) -> dict[str, dict[str, Any]]:
    """The `probekit analyze` tables, serialised by probekit.analysis.export (list cells as JSON text in CSV
    and Parquet; JSON lines hold the rows of the JSON contract of docs/analysis.md)."""
    from probekit.analysis.export import tables_to_json, write_tables

    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        contract = json.loads(tables_to_json(tables))
        paths = {}
        for name, rows in contract.items():
            path = folder / f"{name}.jsonl"
            path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
            paths[name] = path
    else:
        written = write_tables(tables, folder, formats=[fmt])
        paths = dict(zip(tables, written))
    root = folder.parent
    return {name: {"rows": int(len(frame)), "path": paths[name].relative_to(root).as_posix(),
                   "columns": [{"name": str(c), "type": str(t)} for c, t in frame.dtypes.items()],
                   "files": _file_entries(root, [paths[name]])}
            for name, frame in tables.items()}


# -- the manifest ---------------------------------------------------------------------------------
def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    return str(value)


def _key_names(config: Any) -> set[str]:
    """Names of the environment variables a configuration says hold keys (`api_key_env`)."""
    names: set[str] = set()
    if isinstance(config, dict):
        for key, value in config.items():
            if key == "api_key_env" and isinstance(value, str):
                names.add(value)
            else:
                names |= _key_names(value)
    elif isinstance(config, list):
        for value in config:
            names |= _key_names(value)
    return names


def _check_no_keys(text: str, configs: Sequence[Any]) -> None:
    """Refuse to write a manifest that holds the value of a key: configurations hold only the NAMES of key
    variables; the value of every variable they name, and of any variable named like a key, must not appear."""
    names = set().union(*(_key_names(c) for c in configs)) if configs else set()
    names |= {n for n in os.environ if _SECRET_NAME.search(n)}
    for name in sorted(names):
        value = os.environ.get(name, "")
        if len(value) >= 8 and value in text:
            raise ExportError(f"the value of ${name} appears in the runs' configuration; refusing to export a key "
                              "(configurations should hold only the variable's name)")


def _manifest(snapshot: _Snapshot, *, store: Store, fmt: str, partition: bool, scope: dict[str, Any],
              tables: dict[str, dict[str, Any]], analysis: dict[str, Any] | None) -> dict[str, Any]:
    from probekit import __version__

    runs = []
    for row in snapshot.run_rows:
        rows = {}
        if "results" in snapshot.data:
            import pyarrow.compute as pc

            arrow = snapshot.data["results"]
            rows["results"] = int(pc.sum(pc.equal(arrow["run_id"], row["run_id"])).as_py() or 0)
        runs.append({
            "run_id": row["run_id"], "status": row["status"], "started_at": _iso(row["started_at"]),
            "ended_at": _iso(row["ended_at"]), "config_hash": row["config_hash"],
            "probekit_version": row["probekit_version"], "models": snapshot.run_models.get(row["run_id"], []),
            **({"rows": rows} if rows else {}),
            "config": json.loads(row["config"]) if row["config"] else None,
        })
    surveys = []
    for row in snapshot.survey_rows:
        source = json.loads(row["source"]) if row["source"] else {}
        surveys.append({
            "survey_id": row["survey_id"], "survey_hash": row["survey_hash"], "version": row["version"],
            "kind": row["kind"], "title": row["title"], "items": int(row["items"]),
            "license": source.get("license", ""), "attribution": source.get("attribution", ""),
            "citation": source.get("citation", ""), "url": source.get("url", ""),
        })
    return {
        "format": EXPORT_FORMAT, "format_version": EXPORT_FORMAT_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(), "probekit_version": __version__,
        "schema_version": snapshot.schema_version, "store": store.path.name, "file_format": fmt,
        "encoding": ENCODING[fmt], "partitioned": partition, "scope": scope,
        "tables": tables, **({"analysis": analysis} if analysis is not None else {}),
        "runs": runs, "surveys": surveys,
    }


def _readme(manifest: dict[str, Any]) -> str:
    lines = [f"# probekit export ({manifest['file_format']})", "",
             f"Written by probekit {manifest['probekit_version']} on {manifest['created_at']} from "
             f"`{manifest['store']}` (store schema version {manifest['schema_version']}). `manifest.json` lists every "
             "file with its size and sha256, each table's columns and types, and each run's configuration.", ""]
    if manifest["tables"]:
        lines += ["| table | rows | path |", "|---|---|---|"]
        lines += [f"| {name} | {t['rows']} | `{t['path']}` |" for name, t in manifest["tables"].items()]
        lines += ["", f"Encoding: {manifest['encoding']}", "",
                  "Restore into a probekit store: `probekit import THIS_DIR --store other.duckdb` (ids and rows unchanged; "
                  "importing twice adds nothing).", ""]
    if "analysis" in manifest:
        lines += ["Analysis tables (`probekit analyze`; columns documented in probekit's docs/analysis.md):", ""]
        lines += [f"- `{t['path']}`: {t['rows']} row(s)" for t in manifest["analysis"]["tables"].values()]
        lines.append("")
    lines += ["## Surveys: sources and licenses", ""]
    for s in manifest["surveys"]:
        lines.append(f"- **{s['survey_id']}** {s['version'] or ''} — license: {s['license'] or 'not stated'}"
                     + (f"; {s['attribution']}" if s["attribution"] else "")
                     + (f"; cite: {s['citation']}" if s["citation"] else "") + (f" ({s['url']})" if s["url"] else ""))
    lines += ["", "## Runs", ""]
    lines += [f"- {r['run_id']} ({r['status']}): models {', '.join(r['models']) or '-'}" for r in manifest["runs"]]
    return "\n".join(lines) + "\n"


# -- the output directory -------------------------------------------------------------------------
def _cannot_write(out_dir: Path, error: OSError) -> ExportError:
    where = error.filename or out_dir
    return ExportError(f"cannot write the export to {out_dir}: {where}: {error.strerror or error}; "
                       "pass --out a directory you can write (not under a file, a device or a read-only place)")


def _previous_export(out_dir: Path) -> set[str]:
    """The files (relative paths) the export already in `out_dir` wrote, per its manifest: `--overwrite`
    replaces these and nothing else (the user's own files there stay)."""
    found = out_dir / "manifest.json"
    try:
        manifest = json.loads(found.read_text(encoding="utf-8"))
        sections = [manifest.get("tables") or {}, (manifest.get("analysis") or {}).get("tables") or {}]
        files = {"manifest.json", "README.md"}
        for section in sections:
            for name, table in section.items():
                for entry in table.get("files", []):
                    target = manifest_relative_path(out_dir, entry.get("path"), f"{found} (table {name})")
                    files.add(target.relative_to(out_dir).as_posix())
    except (OSError, ValueError, AttributeError, TypeError) as error:
        raise ExportError(f"{out_dir}: --overwrite replaces only the files an earlier export wrote, as its manifest "
                          f"lists them, and {found} cannot be read as one ({error}); choose a new directory") from None
    return files


def _staging(out_dir: Path, overwrite: bool) -> tuple[Path, set[str] | None]:
    """A fresh staging directory beside `out_dir`, and the earlier export's files when one is replaced."""
    previous: set[str] | None = None
    try:
        if out_dir.exists():
            if not out_dir.is_dir():
                raise ExportError(f"{out_dir} exists and is not a directory")
            if any(out_dir.iterdir()):
                if not (overwrite and (out_dir / "manifest.json").exists()):
                    raise ExportError(f"{out_dir} is not empty; choose a new directory"
                                      + ("" if overwrite else " (or pass overwrite=True / --overwrite to replace an earlier export there)"))
                previous = _previous_export(out_dir)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
    except OSError as error:
        raise _cannot_write(out_dir, error) from None
    return staging, previous


def _publish(staging: Path, out_dir: Path, previous: set[str] | None) -> None:
    """Move the finished export into place. Into a new or empty directory: one rename. Over an earlier
    export: its files (per its manifest) are replaced, other files in the directory are left alone, and a
    file of the new export that would replace one of those refuses the export before anything changes."""
    if previous is None:
        if out_dir.exists():
            out_dir.rmdir()  # empty (checked by _staging)
        staging.rename(out_dir)
        return
    new = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
    clash = [rel for rel in new if rel not in previous and os.path.lexists(out_dir / rel)]
    if clash:
        raise ExportError(f"{out_dir / clash[0]} is not a file of the earlier export (its manifest does not list it) and "
                          "the new export would replace it; move it away or export into another directory")
    # The old manifest goes first: a directory left half-replaced by a crash is then no export (never one
    # whose manifest lists files that changed).
    for rel in ["manifest.json", *sorted(previous - {"manifest.json"})]:
        path = out_dir / rel
        if path.is_file() or path.is_symlink():
            path.unlink()
    for rel in sorted(previous, key=lambda r: -r.count("/")):  # directories only the old export filled
        parent = (out_dir / rel).parent
        while parent != out_dir and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
    for rel in [*(r for r in new if r != "manifest.json"), "manifest.json"]:
        target = out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / rel, target)
    shutil.rmtree(staging, ignore_errors=True)


# -- the entry point ------------------------------------------------------------------------------
def export(
    out_dir: str | Path,
    *,
    store: str | Path | Store = DEFAULT_STORE,
    run: str | Sequence[str] | None = None,
    survey: str | None = None,
    models: str | Sequence[str] | None = None,
    tables: str | Sequence[str] | None = "all",
    format: str = "parquet",
    partition: bool = False,
    analysis: bool = False,
    all_tables: bool = False,
    seed: int = 0,
    n_boot: int = 1000,
    overwrite: bool = False,
) -> ExportSummary:
    """Export runs to `out_dir` (a new or empty directory) as `format` (parquet | csv | jsonl).

    Scope: the runs given (`run`, one id or several), those that asked `survey` (rows of other surveys left
    out), only the rows of `models`; every run of the store when none is given. `tables`: store tables
    ("all", or names such as "results,trials"); `partition=True` writes each table with a survey_id / model
    column as a hive-partitioned directory. With `analysis=True` the `probekit analyze` tables instead (`run`
    one id, default the newest run; `tables` then names analysis tables, `all_tables` every applicable one).
    """
    started = time.perf_counter()
    fmt = format.lower()
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {format!r}: use {', '.join(FORMATS)}")
    target = Path(out_dir)
    source = store if isinstance(store, Store) else Store(store)
    if not source.path.exists():
        raise ExportError(f"no store at {source.path}: run a survey first or pass --store PATH")
    run_list = _as_list(run)
    model_list = _as_list(models)
    table_list = _as_list(tables)
    if table_list in (None, ["all"]):
        table_list = None
    scope: dict[str, Any] = {"runs": run_list, "survey": survey, "models": model_list}
    analysis_meta: dict[str, Any] | None = None
    if analysis:
        if run_list is not None and len(run_list) > 1:
            raise ExportError("an analysis export takes one run (or a survey id); export the runs one by one")
        if partition:
            raise ExportError("partitioning applies to store tables, not to analysis tables")
        from probekit.analysis import analyze

        if run_list is None and survey is None:  # analyze's default scope: the newest run (named, so both agree)
            newest = source.query("SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1")
            if newest.empty:
                raise ExportError(f"no runs in {source.path}")
            run_list = [str(newest["run_id"][0])]
            scope["runs"] = run_list
        try:
            result = analyze(source.path, run=run_list[0] if run_list else None, survey=survey, models=model_list,
                             tables=table_list, all_tables=all_tables, seed=seed, n_boot=n_boot)
        except KeyError as error:
            raise ExportError(str(error.args[0] if error.args else error)) from None
        if not result:
            raise ExportError("no analysis table applies to the results in scope (no valid answers?)")
        snapshot = _read(source, [], run_list, survey, model_list, False)
        staging, previous = _staging(target, overwrite)
        try:
            described = _write_analysis_tables(result, staging / "analysis", fmt)
        except BaseException as error:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(error, OSError):
                raise _cannot_write(target, error) from None
            raise
        analysis_meta = {"tables": described, "seed": seed, "n_boot": n_boot,
                         "contract": "docs/analysis.md (the JSON of `probekit analyze --format json`)"}
        store_tables: dict[str, dict[str, Any]] = {}
    else:
        if table_list is not None:
            unknown = [t for t in table_list if t not in STORE_TABLES]
            if unknown:
                raise ExportError(f"unknown table(s) {', '.join(unknown)}: use {', '.join(STORE_TABLES)} or all "
                                  "(the schema version is in the manifest)")
            table_list = list(dict.fromkeys(table_list))
        snapshot = _read(source, table_list, run_list, survey, model_list, partition)
        staging, previous = _staging(target, overwrite)
        try:
            store_tables = _write_store_tables(snapshot, staging, fmt, partition)
        except BaseException as error:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(error, OSError):
                raise _cannot_write(target, error) from None
            if isinstance(error, duckdb.IOException):
                raise ExportError(f"cannot write the export to {target}: {str(error).splitlines()[0]}") from None
            raise
    try:
        manifest = _manifest(snapshot, store=source, fmt=fmt, partition=partition, scope=scope,
                             tables=store_tables, analysis=analysis_meta)
        text = json.dumps(manifest, indent=2, ensure_ascii=False, default=str)
        _check_no_keys(text, [r["config"] for r in manifest["runs"]])
        (staging / "manifest.json").write_text(text + "\n", encoding="utf-8")
        (staging / "README.md").write_text(_readme(manifest), encoding="utf-8")
        _publish(staging, target, previous)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, OSError):
            raise _cannot_write(target, error) from None
        raise
    written = store_tables if not analysis else (analysis_meta or {}).get("tables", {})
    files = [target / f["path"] for t in written.values() for f in t["files"]]
    return ExportSummary(
        out_dir=target, format=fmt, runs=snapshot.runs,
        tables={name: int(t["rows"]) for name, t in written.items()}, files=files,
        bytes=sum(f["bytes"] for t in written.values() for f in t["files"]),
        seconds=time.perf_counter() - started, held_seconds=snapshot.held_seconds, manifest=manifest,
        unfinished=[r["run_id"] for r in manifest["runs"] if r["status"] in ("running", "interrupted")],
    )


__all__ = ["EXPORT_FORMAT", "EXPORT_FORMAT_VERSION", "FORMATS", "STORE_TABLES", "ExportError", "ExportSummary", "export"]
