"""Issue 23, the terminal: re-running a finished command says so in lines of at most 100 columns; `run -q` on a
no-op prints the run id (scripts read it); `probekit runs` never breaks a run id, survey id or model key
inside a word; `analyze` of a run of four survey families prints a summary (one line per table), the tables
on request; `--help` shows docstring paragraphs as paragraphs (no break mid-sentence)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_helpers import REPO, STARTER, cli

LONG_MODELS = ["fake:a-rather-long-model-name-v2", "fake:another-long-model-key-2024-07-18", "fake:b"]
FAMILIES = ["pct.yaml", "ipip_bigfive_50.yaml", "moralchoice_starter.yaml", "pobs.yaml"]


def _run(store: Path, *extra: str, models: list[str] | None = None) -> str:
    done = cli("run", str(STARTER), "--models", *(models or ["fake:a"]), "--limit", "1", "--store", str(store), *extra)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_rerunning_a_finished_command_prints_lines_that_fit(tmp_path: Path) -> None:
    store = tmp_path / "a-store-directory-with-a-longish-name" / "probekit.duckdb"
    run_id = _run(store, "-q").strip()
    again = _run(store)
    assert "Nothing to do" in again and run_id in again
    too_long = [line for line in again.splitlines() if len(line) > 100 and " " in line.strip()]
    assert too_long == [], too_long
    assert f"--store {store}" in " ".join(again.split())  # the command to copy is whole


def test_run_quiet_on_a_no_op_prints_the_run_id(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    run_id = _run(store, "-q").strip()
    assert re.fullmatch(r"[0-9A-Z]{26}", run_id), run_id
    assert _run(store, "-q").strip() == run_id


def test_runs_never_breaks_ids_or_model_keys_inside_a_word(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    ids = [_run(store, "-q", models=LONG_MODELS).strip(),
           _run(store, "-q", "--new-run", models=LONG_MODELS[:1]).strip()]
    done = cli("runs", "--store", str(store))
    assert done.returncode == 0, done.stderr
    words = set(done.stdout.split())
    for whole in [*ids, *LONG_MODELS, "moralchoice_starter"]:
        assert whole in words, (whole, done.stdout)
    assert max(len(line) for line in done.stdout.splitlines()) <= 100, done.stdout


@pytest.fixture(scope="module")
def four_families(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("four") / "s.duckdb"
    done = cli("run", *(str(REPO / "surveys" / f) for f in FAMILIES), "--models", "fake:a", "fake:b", "fake:c", "fake:d",
               "--limit", "8", "--store", str(store), "-q")
    assert done.returncode == 0, done.stderr
    return store


def test_analyze_of_four_families_prints_a_summary_first(four_families: Path) -> None:
    summary = cli("analyze", "--store", str(four_families), "--n-boot", "20")
    assert summary.returncode == 0, summary.stderr
    lines = summary.stdout.splitlines()
    assert len(lines) <= 40, len(lines)
    tables = cli("analyze", "--store", str(four_families), "--n-boot", "20", "--format", "json")
    names = list(__import__("json").loads(tables.stdout))
    assert len(names) >= 12
    for name in names:  # every table named, with its row count
        assert any(line.startswith(f"== {name} (") for line in lines), name
    assert "--tables" in summary.stdout and "--all" in summary.stdout
    assert max(len(line) for line in lines) <= 100


@pytest.mark.parametrize("flags", [["--all"], ["--tables", "pct"], ["--limit", "3"], ["--format", "csv"]])
def test_analyze_flags_still_print_the_tables(four_families: Path, flags: list[str]) -> None:
    done = cli("analyze", "--store", str(four_families), "--n-boot", "20", *flags)
    assert done.returncode == 0, done.stderr
    assert ("# pct.pct" if "csv" in flags else "== pct.pct (") in done.stdout
    assert len(done.stdout.splitlines()) > 20


def test_help_shows_docstring_paragraphs_whole() -> None:
    import typer

    from probekit.cli import main as cli_main

    cli_main._unwrap_help()
    group = typer.main.get_command(cli_main.app)
    broken = {}

    def visit(command, path: str) -> None:  # type: ignore[no-untyped-def]
        text = command.help or ""
        # A line break inside a paragraph is one not followed by a blank line or a list item.
        inside = [m.start() for m in re.finditer(r"(?<!\n)\n(?!\n|- |\* |\$ )", text)
                  if not text[:m.start()].endswith(":")]
        if inside:
            broken[path] = text
        for name, sub in getattr(command, "commands", {}).items():
            visit(sub, f"{path} {name}")

    visit(group, "probekit")
    assert broken == {}, broken
