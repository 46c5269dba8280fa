"""The existing analysis tables read one persona context at a time (default: no persona), never pooling personas
as if they were rewordings of the question; `--persona ID` / `analyze(persona=...)` picks one, 'all' pools them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from persona_helpers import write
from typer.testing import CliRunner

import probekit
from probekit.analysis import analyze
from probekit.cli.main import app
from probekit.store.store import Store


def _forms_per_item(store: Path, persona: str | None) -> dict[str, int]:
    table = analyze(store, tables=["uncertainty"], n_boot=20, persona=persona)["uncertainty"]
    return dict(zip(table["item_id"], table["n_forms"]))


def test_tables_read_one_persona_context(tmp_path: Path, store_path: Path) -> None:
    spec = write(tmp_path)
    probekit.run([spec], models=["fake:a"], store=store_path, orders="reversed")
    # Per item: 2 templates x 2 orders = 4 forms in each context; 3 personas x 3 styles + the default = 10 contexts.
    assert _forms_per_item(store_path, "") == {"q1": 4, "q2": 4}
    assert _forms_per_item(store_path, "japan") == {"q1": 12, "q2": 12}  # its 3 styles
    assert _forms_per_item(store_path, None) == {"q1": 40, "q2": 40}
    # The default context's rows are exactly those of the trials without a persona.
    default = Store(store_path).query("SELECT count(*) AS n FROM trials WHERE persona_id = ''")["n"].iloc[0]
    assert default == 2 * 4
    with pytest.raises(ValueError, match="no persona 'mars'.*elder, japan, nurse"):
        analyze(store_path, tables=["uncertainty"], persona="mars")
    cli = CliRunner().invoke(app, ["analyze", "--store", str(store_path), "--tables", "uncertainty", "--persona", "japan",
                                   "--format", "json", "--n-boot", "20"])
    assert cli.exit_code == 0, cli.output
    assert {row["n_forms"] for row in _rows(json.loads(cli.output)["uncertainty"])} == {12}


def _rows(table: object) -> list[dict]:
    """The rows of one table of `analyze --format json` (a list of records, or an object holding them)."""
    if isinstance(table, dict):
        table = next(v for v in table.values() if isinstance(v, list))
    assert isinstance(table, list)
    return table
