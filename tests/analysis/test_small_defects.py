"""The small defects of issue 22, each reproduced: a likert table crashed on a respondent whose only answer was
invalid (pd.NA, not None); drift listed items "moved" from [0.50, 0.50] to [0.50, 0.50] when the noise floor
was exactly 0; logprob mode on a free-answer survey was accepted (a model loaded, an invalid row stored, exit 0);
a `shown` mismatch listed another template's options in its error."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "importers"))
from import_helpers import mini_spec, write_lines  # noqa: E402

from probekit.analysis import analyze  # noqa: E402
from probekit.analysis import drift as D  # noqa: E402
from probekit.importers import BadRows, import_responses  # noqa: E402
from probekit.store.store import Store  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def test_likert_tables_survive_a_respondent_with_only_an_invalid_answer(tmp_path: Path) -> None:
    spec = mini_spec(tmp_path / "mini.yaml")
    rows: list[object] = [{"defaults": {"survey": "mini_traits", "model": "people", "form": {"template": "agree"}}},
                          {"item": "e1", "respondent": "p1", "choice": 4},
                          {"item": "e1", "respondent": "p2", "status": "invalid"},
                          {"item": "e2", "respondent": "p2", "status": "refusal"}]
    store = tmp_path / "s.duckdb"
    import_responses(write_lines(tmp_path / "rows.jsonl", rows), survey_file=spec, store_path=store)
    tables = analyze(store, survey="mini_traits", tables=["likert_traits", "likert_alpha", "likert_respondents"], n_boot=20)
    traits = tables["likert_traits"]
    assert traits.set_index("trait").loc["E", "score"] == pytest.approx(5.0) and traits["n_items"].tolist() == [1]
    assert tables["likert_respondents"]["respondent"].tolist() == ["p1"]


def _deterministic(run_id: str, flipped: bool) -> D.RunData:
    """A deterministic model (every sample the same) on two forms of each item whose position bias sends form 1 to
    option 0 and form 2 to option 1: the item's marginal is [0.5, 0.5]. `flipped`: the forms swap answers, the
    marginal stays [0.5, 0.5]."""
    rows = []
    for item in ("q1", "q2", "q3"):
        for form, choice in ((f"{item}-f1", 0), (f"{item}-f2", 1)):
            chosen = 1 - choice if flipped and item != "q3" else choice
            for sample in range(3):
                rows.append((item, form, sample, "ok", chosen, [1.0 - chosen, float(chosen)]))
    frame = pd.DataFrame(rows, columns=["item_id", "trial_id", "sample_index", "status", "choice", "dist"])
    frame["dist"] = [np.array(d, dtype=float) for d in frame["dist"]]
    return D.prepare(run_id, frame)


def test_drift_with_a_zero_noise_floor_lists_no_item_whose_answers_did_not_move() -> None:
    a, b = _deterministic("a", False), _deterministic("b", True)
    noise = [(_deterministic("n1", False), _deterministic("n2", False))]  # repeated runs: distance exactly 0
    result = D.compare(a, b, n_options={"q1": 2, "q2": 2, "q3": 2}, noise_pairs=noise, n_boot=100)
    items = result.items.set_index("item_id")
    assert items.loc["q1", "distance"] > 0.5  # every form changed its answer ...
    assert np.allclose(items.loc["q1", "marginal_a"], [0.5, 0.5]) and np.allclose(items.loc["q1", "marginal_b"], [0.5, 0.5])
    assert not items["moved"].any() and result.summary["n_moved"] == 0  # ... but no item's answers moved


def test_logprob_mode_on_a_free_answer_survey_is_refused_before_anything_runs(tmp_path: Path) -> None:
    import probekit

    store = tmp_path / "s.duckdb"
    with pytest.raises(ValueError, match="generate survey is scored with mode 'generate', not 'logprob'"):
        probekit.run(str(REPO / "surveys" / "mtbench.yaml"), models=["fake:a"], store=store, mode="logprob", limit=2)
    assert not store.exists() or Store(store).query("SELECT count(*) AS n FROM results")["n"][0] == 0


def test_a_shown_mismatch_lists_the_named_templates_options(tmp_path: Path) -> None:
    row = {"survey": "ipip_neo_120", "item": "1", "model": "m", "form": {"template": "numeric_original"},
           "shown": ["one", "two", "three", "four", "five"], "label": "A"}
    with pytest.raises(BadRows) as caught:
        import_responses(write_lines(tmp_path / "rows.jsonl", [row]), store_path=tmp_path / "s.duckdb")
    message = str(caught.value)
    assert "'agree', 'slightly agree'" in message  # numeric_original's options, as it shows them
    assert "Very Accurate" not in message  # not mpi_original's (the item's first template)
