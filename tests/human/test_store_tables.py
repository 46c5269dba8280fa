"""The human-alignment tables read from a real store: model distributions imported from a generic JSONL file give
the same per-country similarities as computing them by hand from that file (issue 24)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from probekit.analysis import analyze
from probekit.importers import import_responses
from probekit.survey.loader import load_survey
from tests.human.helpers import write_survey


def test_imported_distributions_give_the_hand_computed_similarities(tmp_path: Path) -> None:
    spec = write_survey(tmp_path / "spec")
    survey = load_survey(spec)
    rng = np.random.default_rng(11)
    lines = []
    model_dists: dict[tuple[str, str], np.ndarray] = {}
    for model in ("gpt-x", "gpt-y"):
        for item in survey.items:
            dist = rng.dirichlet(np.ones(len(item.options or [])))
            dist = np.round(dist, 6)
            dist[-1] = 1 - dist[:-1].sum()
            model_dists[(model, item.id)] = dist
            lines.append(json.dumps({"survey": "htest", "item": item.id, "model": model, "distribution": list(dist)}))
    responses = tmp_path / "responses.jsonl"
    responses.write_text("\n".join(lines) + "\n", encoding="utf-8")
    store = tmp_path / "store.duckdb"
    summary = import_responses([responses], survey_file=spec, store_path=store)
    assert summary.imported == 4
    tables = analyze(store, tables=["human_similarity", "human_representativeness", "human_items"], n_boot=200)
    similarity = tables["human_similarity"].set_index(["model", "group_value"])
    file_rows = [json.loads(line) for line in responses.read_text().splitlines()]
    for model in ("gpt-x", "gpt-y"):
        for country in ("Germany", "Japan", "Peru"):
            by_hand = []
            for row in file_rows:
                item = next(i for i in survey.items if i.id == row["item"])
                group = item.human.get("country", {}).get(country)
                if row["model"] == model and group is not None:
                    by_hand.append(1 - jensenshannon(np.array(row["distribution"]), np.array(group.shares)))
            assert similarity.loc[(model, country), "similarity"] == pytest.approx(np.mean(by_hand), abs=1e-9)
            assert similarity.loc[(model, country), "n_questions"] == len(by_hand)
    items = tables["human_items"]
    assert set(items.columns) >= {"model_dist", "human_dist", "question", "similarity", "representativeness"}
    row = items[(items["model"] == "gpt-x") & (items["item_id"] == "q2") & (items["group_value"] == "Germany")].iloc[0]
    assert row["model_dist"] == pytest.approx(list(model_dists[("gpt-x", "q2")]), abs=1e-12)
    assert row["human_dist"] == pytest.approx([0.7, 0.3]) and row["question"] == "Is it fine?"
    rep = tables["human_representativeness"]
    assert set(rep["group_value"]) == {"Germany", "Japan", "Peru"}  # q1 is ordinal; q2 is not


def test_default_tables_of_a_human_survey(tmp_path: Path) -> None:
    import probekit

    spec = write_survey(tmp_path / "spec")
    store = tmp_path / "store.duckdb"
    probekit.run([spec], store=store, models=["fake:a"])
    tables = analyze(store, all_tables=True, n_boot=100)
    for name in ("human_similarity", "human_representativeness", "human_baselines", "human_diversity"):
        assert name in tables and not tables[name].empty, name
    assert "human_steerability" not in tables  # no personas: nothing to say
    baselines = tables["human_baselines"]
    assert set(baselines["reference"]) == {"country:Germany"}


PERSONAS = """personas:
  styles: [qa, bio, portray]
  people:
    - {id: de, attributes: {country: Germany}}
    - {id: jp, attributes: {country: Japan}}
    - {id: pe, attributes: {country: Peru}}
"""


def test_steerability_and_diversity_read_the_persona_axis(tmp_path: Path) -> None:
    """The persona contract: trials.persona_id / persona_style, results.respondent = persona id, personas table with
    attributes {group_var: group}: the steerability table compares each country's personas with the default context,
    recomputed here from the stored per-trial distributions."""
    import probekit
    from probekit.store.store import Store
    from tests.human.helpers import SPEC

    spec = write_survey(tmp_path / "spec", spec=SPEC.replace("items:\n", PERSONAS + "items:\n", 1))
    store = tmp_path / "store.duckdb"
    probekit.run([spec], store=store, models=["fake:a"])
    tables = analyze(store, all_tables=True, n_boot=100)
    steer = tables["human_steerability"]
    sim = steer[steer["metric"] == "similarity"].set_index("group_value")
    assert set(sim.index) == {"Germany", "Japan", "Peru"} and (sim["n_contexts"] == 3).all()
    # By hand from the store: per persona context the mean over forms of each trial's distribution
    rows = Store(store).query(
        "SELECT t.persona_id, t.persona_style, t.item_id, r.distribution FROM results r JOIN trials t USING (trial_id) "
        "WHERE r.status = 'ok'")
    survey = load_survey(spec)
    best: dict[str, float] = {}
    default: dict[str, float] = {}
    for country, persona in (("Germany", "de"), ("Japan", "jp"), ("Peru", "pe")):
        scores = {}
        for (pid, style), block in rows.groupby(["persona_id", "persona_style"]):
            if pid not in ("", persona):
                continue
            values = []
            for item in survey.items:
                group = item.human.get("country", {}).get(country)
                dists = [np.asarray(d) for d in block[block["item_id"] == item.id]["distribution"]]
                if group is not None and dists:
                    values.append(1 - jensenshannon(np.mean(dists, axis=0), np.array(group.shares)))
            scores[(pid, style)] = float(np.mean(values))
        default[country] = scores[("", "")]
        best[country] = max(v for k, v in scores.items() if k != ("", ""))
        assert sim.loc[country, "rep_default"] == pytest.approx(default[country], abs=1e-9)
        assert sim.loc[country, "rep_best"] == pytest.approx(best[country], abs=1e-9)
    diversity = tables["human_diversity"].iloc[0]
    assert diversity["n_contexts"] == 10  # the default context and 3 personas x 3 styles


def test_snapshots_compute_the_human_tables_per_run(tmp_path: Path) -> None:
    """The snapshot axis takes the registered tables as they are: per-run similarity per country, which a new
    model version's change is read against (docs/human-alignment.md)."""
    import probekit
    from probekit.analysis.snapshots import analyze_snapshots

    spec = write_survey(tmp_path / "spec")
    store = tmp_path / "store.duckdb"
    for seed in (1, 2):
        probekit.run([spec], store=store, models=["fake:a"], new_run=True, seed=seed)
    tables = analyze_snapshots(store, survey="htest", model="fake:a", by="run", tables=["human_similarity"],
                               n_boot=50)
    frame = tables["human_similarity"]
    assert frame["snapshot"].nunique() == 2
    assert set(frame["group_value"]) == {"Germany", "Japan", "Peru"} and len(frame) == 6
