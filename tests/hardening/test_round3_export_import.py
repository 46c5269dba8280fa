"""Issue 23, export and import: a manifest's paths are never followed out of the export directory (`..`,
absolute paths, partition paths, symbolic links); a damaged manifest (a JSON list, no sha256, truncated) is
refused with a message naming the file; a key-like `api_key` in an imported run's configuration is redacted
before it is stored (so it is never re-exported); `export --overwrite` replaces only what the earlier export
wrote; an export into a place that cannot be written says so."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_helpers import cli, digest, refused

from probekit.exporting import export

SECRET = "sk-live-0123456789abcdefXYZ"


@pytest.fixture()
def exported(tmp_path: Path, small_store: Path) -> Path:
    out = tmp_path / "export"
    export(out, store=small_store, format="jsonl", partition=True)
    return out


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest(out: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((out / "manifest.json").read_text())


def _save(out: Path, manifest: dict) -> None:  # type: ignore[type-arg]
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))


def _first_file(manifest: dict, table: str = "runs") -> dict:  # type: ignore[type-arg]
    return manifest["tables"][table]["files"][0]


# -- paths out of the directory -----------------------------------------------------------------------------
def _dotdot(out: Path) -> str:
    """A copy of the runs file beside the export, named through '..' (same bytes, so only the path is wrong)."""
    manifest = _manifest(out)
    entry = _first_file(manifest)
    shutil.copy(out / entry["path"], out.parent / "outside.jsonl")
    entry["path"] = "../outside.jsonl"
    _save(out, manifest)
    return "'..'"


def _absolute(out: Path) -> str:
    manifest = _manifest(out)
    entry = _first_file(manifest)
    shutil.copy(out / entry["path"], out.parent / "outside.jsonl")
    entry["path"] = str(out.parent / "outside.jsonl")
    _save(out, manifest)
    return "absolute"


def _partition(out: Path) -> str:
    manifest = _manifest(out)
    entry = _first_file(manifest, "results")
    source = out / entry["path"]
    target = out.parent / "x" / "survey_id=s" / "model=m" / source.name
    target.parent.mkdir(parents=True)
    shutil.copy(source, target)
    entry["path"] = "results/../../x/survey_id=s/model=m/" + source.name
    _save(out, manifest)
    return "'..'"


def _table_path(out: Path) -> str:
    manifest = _manifest(out)
    manifest["tables"]["results"]["path"] = "../../elsewhere/"
    _save(out, manifest)
    return "'..'"


def _symlink(out: Path) -> str:
    manifest = _manifest(out)
    entry = _first_file(manifest)
    shutil.move(out / entry["path"], out.parent / "outside.jsonl")
    (out / entry["path"]).symlink_to(out.parent / "outside.jsonl")
    _save(out, manifest)
    return "outside"


ESCAPES: dict[str, Callable[[Path], str]] = {"file path with ..": _dotdot, "absolute file path": _absolute,
                                             "partition path with ../..": _partition, "table path with ../..": _table_path,
                                             "symbolic link out": _symlink}


@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_import_refuses_manifest_paths_out_of_the_directory(exported: Path, tmp_path: Path, case: str) -> None:
    words = ESCAPES[case](exported)
    store = tmp_path / "target.duckdb"
    refused(cli("import", str(exported), "--store", str(store)), "manifest.json", words)
    assert not store.exists()


# -- damaged manifests ------------------------------------------------------------------------------------------
def _as_list(out: Path) -> str:
    _save(out, [_manifest(out)])  # type: ignore[arg-type]
    return "list"


def _no_sha(out: Path) -> str:
    manifest = _manifest(out)
    del _first_file(manifest, "results")["sha256"]
    _save(out, manifest)
    return "sha256"


def _truncated(out: Path) -> str:
    text = (out / "manifest.json").read_text()
    (out / "manifest.json").write_text(text[: len(text) // 2])
    return "not valid JSON"


def _files_not_a_list(out: Path) -> str:
    manifest = _manifest(out)
    manifest["tables"]["runs"]["files"] = "runs.jsonl"
    _save(out, manifest)
    return "files"


DAMAGED: dict[str, Callable[[Path], str]] = {"a JSON list": _as_list, "no sha256": _no_sha, "truncated": _truncated,
                                             "files not a list": _files_not_a_list}


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_import_names_the_manifest_when_it_is_damaged(exported: Path, tmp_path: Path, case: str) -> None:
    words = DAMAGED[case](exported)
    store = tmp_path / "target.duckdb"
    first = refused(cli("import", str(exported), "--store", str(store)), words)
    assert str(exported / "manifest.json") in first, first
    assert not store.exists()


# -- keys in an imported configuration ------------------------------------------------------------------------------
def test_an_api_key_in_an_imported_configuration_is_redacted(tmp_path: Path, small_store: Path) -> None:
    out = tmp_path / "export"
    export(out, store=small_store, format="jsonl")
    manifest = _manifest(out)
    entry = _first_file(manifest)
    runs = out / entry["path"]
    rows = [json.loads(line) for line in runs.read_text().splitlines()]
    for row in rows:
        config = json.loads(row["config"])
        config["api_key"] = SECRET
        config["endpoints"] = {"openai/x": {"api_key": SECRET, "api_key_env": "OPENAI_API_KEY", "note": f"Bearer {SECRET}"}}
        row["config"] = json.dumps(config)
    runs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    entry["sha256"], entry["bytes"] = _sha(runs), runs.stat().st_size
    _save(out, manifest)
    store = tmp_path / "target.duckdb"
    done = cli("import", str(out), "--store", str(store))
    assert done.returncode == 0, done.stderr
    assert SECRET not in store.read_bytes().decode("latin-1")
    configs = [json.loads(r[0]) for r in __import__("duckdb").connect(str(store), read_only=True)
               .execute("SELECT config FROM runs").fetchall()]
    assert all(c["api_key"] == "***" and c["endpoints"]["openai/x"]["api_key_env"] == "OPENAI_API_KEY" for c in configs)
    again = tmp_path / "again"
    export(again, store=store, format="jsonl")
    assert all(SECRET not in p.read_text() for p in again.rglob("*") if p.is_file())


# -- export --overwrite ------------------------------------------------------------------------------------------
def test_overwrite_replaces_only_the_earlier_exports_files(tmp_path: Path, small_store: Path) -> None:
    out = tmp_path / "export"
    export(out, store=small_store, format="parquet", partition=True)
    old_files = {p.relative_to(out) for p in out.rglob("*") if p.is_file()}
    mine = {out / "notes.txt": "my notes", out / "plots" / "figure.svg": "<svg/>", out / "results" / "README-mine.md": "x"}
    for path, text in mine.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    done = cli("export", "-o", str(out), "--store", str(small_store), "--format", "csv", "--overwrite")
    assert done.returncode == 0, done.stderr
    assert all(path.read_text() == text for path, text in mine.items())
    now = {p.relative_to(out) for p in out.rglob("*") if p.is_file()}
    assert not {p for p in old_files if p.suffix == ".parquet"} & now
    assert _manifest(out)["file_format"] == "csv"
    listed = {f["path"] for t in _manifest(out)["tables"].values() for f in t["files"]}
    assert {p.as_posix() for p in now} == listed | {"manifest.json", "README.md"} | {p.relative_to(out).as_posix() for p in mine}


def test_overwrite_refuses_to_replace_a_file_the_earlier_export_did_not_write(tmp_path: Path, small_store: Path) -> None:
    out = tmp_path / "export"
    export(out, store=small_store, format="parquet")
    (out / "runs.csv").write_text("my own spreadsheet")
    before = {p: digest(p) for p in out.rglob("*") if p.is_file()}
    refused(cli("export", "-o", str(out), "--store", str(small_store), "--format", "csv", "--overwrite"),
            "runs.csv", "not a file of the earlier export", code=1)
    assert {p: digest(p) for p in out.rglob("*") if p.is_file()} == before
    assert not list(tmp_path.glob(".export.*"))


def test_overwrite_never_deletes_what_a_tampered_manifest_names_outside(tmp_path: Path, small_store: Path) -> None:
    out = tmp_path / "export"
    export(out, store=small_store, format="parquet")
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    manifest = _manifest(out)
    manifest["tables"]["runs"]["files"].append({"path": "../precious.txt", "bytes": 7, "sha256": "0" * 64})
    _save(out, manifest)
    refused(cli("export", "-o", str(out), "--store", str(small_store), "--overwrite"), "'..'", code=1)
    assert victim.read_text() == "keep me"


# -- places that cannot be written ------------------------------------------------------------------------------------
def _immutable(tmp_path: Path) -> Path:
    locked = tmp_path / "locked"
    locked.mkdir()
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(locked)], capture_output=True).returncode:
        if os.geteuid() == 0:
            pytest.skip("chattr +i is not available here")
        locked.chmod(0o555)
    return locked


@pytest.mark.parametrize("where", ["immutable directory", "inside an immutable directory", "under /dev/null",
                                   "read-only file system"])
def test_export_into_a_place_that_cannot_be_written_says_so(tmp_path: Path, small_store: Path, where: str) -> None:
    if where == "under /dev/null":
        out = Path("/dev/null/export")
    elif where == "read-only file system":
        out = Path("/proc/sys/probekit-export")
    else:
        locked = _immutable(tmp_path)
        out = locked if where == "immutable directory" else locked / "export"
    try:
        first = refused(cli("export", "-o", str(out), "--store", str(small_store)), "cannot write the export", code=1)
        assert str(out) in first
    finally:
        subprocess.run(["chattr", "-i", str(tmp_path / "locked")], capture_output=True)
        if (tmp_path / "locked").exists():
            (tmp_path / "locked").chmod(0o755)
    assert not [p for p in tmp_path.rglob(".*partial*")]
