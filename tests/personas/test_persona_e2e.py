"""End to end: `probekit run` (a real subprocess, the embedded smollm2) of an experiment that adds personas to the
bundled Political Compass survey, then `probekit analyze` and `probekit query` on the store it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.slow  # loads a model and drives the CLI

REPO = Path(__file__).resolve().parents[2]
EXPERIMENT = f"""\
id: pct_personas
surveys:
  - path: {REPO / "surveys" / "pct.yaml"}
    templates: [templ-01]
    factors: {{forcing: [none]}}
    orders: identity
    personas:
      styles: [qa, bio, portray]
      file: countries.csv
"""


def _probekit(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, "-m", "probekit.cli.main", *args], capture_output=True, text=True,
                          timeout=900, env=env, cwd=REPO)


def test_run_smollm2_with_personas_then_analyze(tmp_path: Path) -> None:
    (tmp_path / "countries.csv").write_text("id,country\njapan,Japan\nnigeria,Nigeria\nbrazil,Brazil\n")
    experiment = tmp_path / "experiment.yaml"
    experiment.write_text(EXPERIMENT)
    store = tmp_path / "store.duckdb"
    done = _probekit("run", str(experiment), "--models", "smollm2", "--limit", "2", "--personas", "japan,nigeria",
                     "--store", str(store))
    assert done.returncode == 0, done.stderr
    # 2 items x 1 template x 1 forcing level x (default + 2 personas x 3 styles) contexts x 1 order
    assert "14 trials per model" in done.stdout and "smollm2: 14 ok" in done.stdout, done.stdout
    con = duckdb.connect(str(store), read_only=True)
    try:
        rows = con.execute("SELECT t.item_id, t.persona_id, t.persona_style, r.respondent, r.distribution, t.messages "
                           "FROM results r JOIN trials t USING (trial_id) ORDER BY ALL").fetchall()
        personas = con.execute("SELECT persona_id, attributes FROM personas ORDER BY persona_id").fetchall()
    finally:
        con.close()
    assert len(rows) == 14 and all(respondent == persona for _item, persona, _style, respondent, _d, _m in rows)
    assert {(persona, style) for _i, persona, style, *_rest in rows} == {
        ("", ""), *((p, s) for p in ("japan", "nigeria") for s in ("qa", "bio", "portray"))}
    assert personas == [("brazil", '{"country": "Brazil"}'), ("japan", '{"country": "Japan"}'),
                        ("nigeria", '{"country": "Nigeria"}')], "the spec's personas, not only those run"
    for _item, _persona, _style, _respondent, distribution, _messages in rows:
        assert len(distribution) == 4 and abs(sum(distribution) - 1) < 1e-9
    # The context reaches the model: the answer distributions of one item differ between contexts.
    first_item = [tuple(round(p, 6) for p in d) for item, *_rest, d, _m in rows if item == rows[0][0]]
    assert len(set(first_item)) > 1
    qa = json.loads(next(m for _i, persona, style, _r, _d, m in rows if persona == "japan" and style == "qa"))
    assert [m["content"] for m in qa[:2]] == ["What is your country?", "Japan"]

    analyzed = _probekit("analyze", "--store", str(store), "--format", "json", "--n-boot", "100")
    assert analyzed.returncode == 0, analyzed.stderr
    tables = json.loads(analyzed.stdout)
    assert tables and all(isinstance(rows, list) for rows in tables.values())
    assert any(row.get("model") == "smollm2" for rows in tables.values() for row in rows)
    queried = _probekit("query", "SELECT respondent, count(*) AS n FROM results GROUP BY respondent ORDER BY respondent",
                        "--store", str(store), "--format", "csv")
    assert queried.returncode == 0 and queried.stdout.splitlines() == ["respondent,n", ",2", "japan,6", "nigeria,6"]
