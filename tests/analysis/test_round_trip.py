"""Export → import keeps everything analysis reads (issue 22): a store holding every kind of data (every survey
family on two fake models, a judging experiment with a gold file and self-recognition) is exported and restored
into a fresh store, and every analysis table of every survey is the same there, row for row. Before issue 22 the
judge gold labels were not exported: the judge tables silently fell back to the panel gold."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

import probekit
from probekit.analysis import analyze
from probekit.exporting import export
from probekit.importers.probekit_export import import_export
from probekit.store.store import Store

REPO = Path(__file__).resolve().parents[2]
SURVEYS = REPO / "surveys"


@pytest.fixture(scope="module")
def full_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    from probekit.judging import run_judging, set_gold

    folder = tmp_path_factory.mktemp("roundtrip")
    store = folder / "s.duckdb"
    families = {"id": "every_family", "surveys": [
        {"path": str(SURVEYS / "moralchoice_starter.yaml"), "limit": 6},
        {"path": str(SURVEYS / "pct.yaml"), "templates": ["templ-01", "templ-02"], "limit": 8},
        {"path": str(SURVEYS / "ipip_bigfive_50.yaml"), "limit": 15},
        {"path": str(SURVEYS / "mmlu.yaml"), "limit": 6},
        {"path": str(SURVEYS / "pobs.yaml"), "templates": ["direct"], "reasoning": ["direct"], "limit": 12},
    ]}
    (folder / "families.yaml").write_text(yaml.safe_dump(families), encoding="utf-8")
    probekit.run(str(folder / "families.yaml"), models=["fake:alpha?prior=3,1", "fake:beta?prior=1,1"], store=store)
    judging = {"id": "rt_judges", "models": ["fake:a", "fake:b?self=3", "fake:c"],
               "answer": {"path": str(SURVEYS / "mtbench.yaml"), "limit": 4, "scoring": {"max_tokens": 16}},
               "judge": {"path": str(SURVEYS / "mtbench_judge.yaml"), "templates": ["pair_v2_verdict"],
                         "scoring": {"mode": "logprob"}},
               "self_recognition": {"path": str(SURVEYS / "mtbench_recognition.yaml"), "scoring": {"mode": "logprob"}}}
    (folder / "judges.yaml").write_text(yaml.safe_dump(judging), encoding="utf-8")
    summary = run_judging(folder / "judges.yaml", store=store)
    # Gold labels from a file (human labels in a real study): every pair's first-named model wins, which differs
    # from what the panel of judges says.
    items = Store(store).query("SELECT DISTINCT meta FROM items WHERE survey_id = ?", [summary.judge_survey])
    labels = []
    for text in items["meta"]:
        meta = json.loads(text) if isinstance(text, str) else dict(text)
        labels.append({"question_id": meta["question_id"], "model_a": meta["models"][0], "model_b": meta["models"][1],
                       "winner": "model_a"})
    gold = folder / "labels.jsonl"
    gold.write_text("".join(json.dumps(row) + "\n" for row in labels), encoding="utf-8")
    set_gold(store, summary.judge_survey, file=gold)
    surveys = sorted(Store(store).query("SELECT DISTINCT survey_id FROM trials")["survey_id"])
    return store, surveys


def _all_tables(store: Path, surveys: list[str]) -> dict[str, pd.DataFrame]:
    out = {}
    for survey in surveys:
        for name, frame in analyze(store, survey=survey, all_tables=True, n_boot=50).items():
            out[f"{survey}.{name}"] = frame
    return out


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_import_keeps_every_analysis_table(full_store: tuple[Path, list[str]], tmp_path: Path, fmt: str) -> None:
    store, surveys = full_store
    out = tmp_path / "export"
    export(out, store=store, format=fmt)
    target = tmp_path / "restored.duckdb"
    import_export(out, store_path=target)
    before, after = _all_tables(store, surveys), _all_tables(target, surveys)
    assert set(before) == set(after)
    kinds = {name.rsplit(".", 1)[1] for name in before}
    assert {"judge_self_preference", "judge_position", "self_recognition", "pct", "likert_traits", "pobs",
            "moralchoice", "selection_bias", "answers"} <= kinds
    for name in sorted(before):
        pd.testing.assert_frame_equal(before[name].reset_index(drop=True), after[name].reset_index(drop=True),
                                      check_dtype=False, obj=name)
    selfpref = next(frame for name, frame in after.items() if name.endswith("judge_self_preference"))
    assert selfpref["gold"].str.startswith("file").all()  # the gold source itself came across
