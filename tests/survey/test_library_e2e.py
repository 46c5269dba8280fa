"""Each survey family end to end: a handful of items through the real runner on the embedded SmolLM2 (chat)
and Gemma-3-270M (base, no chat template) into a real DuckDB file, then the stored rows are checked.

One run covers all families so the model loads once (2 shared CPU cores)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from probekit.experiment import SurveyRun, apply_settings
from probekit.pipeline import run
from probekit.runner import RunOptions, RunSummary
from probekit.store.store import Store
from probekit.survey.loader import load_survey
from probekit.survey.schema import Survey

pytestmark = pytest.mark.slow  # every test runs the real embedded models

REPO = Path(__file__).resolve().parents[2]
SURVEYS = REPO / "surveys"


def subset(name: str, **settings: object) -> Survey:
    """A few items of a library survey, cut the way an experiment file would cut it."""
    return apply_settings(load_survey(SURVEYS / name), SurveyRun(path=name, **settings), name)  # type: ignore[arg-type]


FAMILIES = {
    "moralchoice": lambda: subset("moralchoice.yaml", limit=1),
    "dailydilemmas": lambda: subset("dailydilemmas.yaml", limit=2),
    "pct": lambda: subset("pct.yaml", limit=2, templates=["templ-01", "templ-01-rev"], factors={"forcing": ["none", "job"]}),
    "ipip_neo_120": lambda: subset("ipip_neo_120.yaml", limit=1),
    "pobs": lambda: subset("pobs.yaml", limit=1, scoring={"reasoning_max_tokens": 24, "max_tokens": 8}),
}


def stored(store: Path, run_id: str, survey_id: str) -> pd.DataFrame:
    """Result rows joined with their trials, plus the per-position label log-probabilities."""
    return Store(store).query(
        "SELECT t.item_id, t.template_id, t.factors, t.option_order, t.reasoning, t.labels, r.status, r.mode, r.choice, "
        "r.distribution, r.valid_mass, r.label_logprobs, r.raw_text, r.error_message "
        "FROM results r JOIN trials t USING (trial_id) WHERE r.run_id = ? AND t.survey_id = ? ORDER BY t.item_id, t.template_id",
        [run_id, survey_id])


@pytest.fixture(scope="module")
def smollm2_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunSummary]:
    store = tmp_path_factory.mktemp("library") / "store.duckdb"
    summary = run([make() for make in FAMILIES.values()], RunOptions(models=["smollm2"], store=store))
    return store, summary


def check_rows(frame: pd.DataFrame, n_trials: int) -> None:
    """One answer per trial, no errors, canonical distributions that agree with the per-position logprobs."""
    assert len(frame) == n_trials
    assert set(frame["status"]) <= {"ok", "invalid"}, frame["error_message"].dropna().tolist()
    ok = frame[frame.status == "ok"]
    assert len(ok) >= n_trials // 2, "most trials give a valid distribution"
    for row in ok.itertuples():
        dist = list(row.distribution)
        assert len(dist) == len(row.option_order) and math.isclose(sum(dist), 1.0, abs_tol=1e-6)
        assert row.choice == max(range(len(dist)), key=lambda k: dist[k])
        if row.mode == "logprob" and row.label_logprobs is not None and all(v is not None and not pd.isna(v) for v in row.label_logprobs):
            # label_logprobs are per shown position; the stored distribution is canonical.
            shown = [math.exp(v) for v in row.label_logprobs]
            for position, canonical in enumerate(row.option_order):
                assert math.isclose(dist[canonical], shown[position] / sum(shown), rel_tol=1e-4)


def test_run_completes_without_errors(smollm2_run: tuple[Path, RunSummary]) -> None:
    _store, summary = smollm2_run
    assert summary.errors == 0
    assert summary.trials == 6 + 4 + 8 + 6 + 4


def test_moralchoice_on_smollm2(smollm2_run: tuple[Path, RunSummary]) -> None:
    store, summary = smollm2_run
    frame = stored(store, summary.run_id, "moralchoice")
    check_rows(frame, 6)
    assert set(frame["template_id"]) == {"ab", "compare", "repeat"}
    assert {tuple(o) for o in frame["option_order"]} == {(0, 1), (1, 0)}
    items = Store(store).query("SELECT item_id, meta, option_texts FROM items WHERE survey_id = 'moralchoice' ORDER BY item_id")
    assert list(items["item_id"]) == ["C_001"]
    assert json.loads(items["meta"][0])["ambiguity"] == "low"


def test_dailydilemmas_on_smollm2(smollm2_run: tuple[Path, RunSummary]) -> None:
    store, summary = smollm2_run
    frame = stored(store, summary.run_id, "dailydilemmas")
    check_rows(frame, 2 * 2)
    assert {tuple(o) for o in frame["option_order"]} == {(0, 1), (1, 0)}
    assert {tuple(labels) for labels in frame["labels"]} == {("1", "2")}


def test_pct_on_smollm2_keeps_the_canonical_scale(smollm2_run: tuple[Path, RunSummary]) -> None:
    store, summary = smollm2_run
    frame = stored(store, summary.run_id, "pct")
    check_rows(frame, 2 * 2 * 2)
    reversed_rows = frame[frame.template_id == "templ-01-rev"]
    assert {tuple(o) for o in reversed_rows["option_order"]} == {(3, 2, 1, 0)}
    assert {json.loads(f)["forcing"] for f in frame["factors"]} == {"none", "job"}
    items = Store(store).query("SELECT option_values, meta FROM items WHERE survey_id = 'pct' ORDER BY item_id")
    assert list(items["option_values"][0]) == [0, 1, 2, 3]
    assert len(json.loads(items["meta"][0])["weights"]["economic"]) == 4


def test_personality_on_smollm2(smollm2_run: tuple[Path, RunSummary]) -> None:
    store, summary = smollm2_run
    frame = stored(store, summary.run_id, "ipip_neo_120")
    check_rows(frame, 6)
    orders = {row.template_id: tuple(row.option_order) for row in frame.itertuples()}
    assert orders["mpi_original"] == (4, 3, 2, 1, 0) and orders["mpi_mirrored"] == (0, 1, 2, 3, 4)


def test_pobs_setups_on_smollm2(smollm2_run: tuple[Path, RunSummary]) -> None:
    store, summary = smollm2_run
    frame = stored(store, summary.run_id, "pobs")
    check_rows(frame, 2 * 2)
    assert {(r.template_id, r.reasoning) for r in frame.itertuples()} == {
        ("direct", "direct"), ("direct", "reasoning"), ("reflection", "direct"), ("reflection", "reasoning")}
    # Reflection rows carry the model's own first answer; reasoning rows their reasoning text.
    for row in frame[frame.template_id == "reflection"].itertuples():
        assert row.raw_text and row.raw_text.startswith("[first answer]")
    assert frame[(frame.template_id == "direct") & (frame.reasoning == "reasoning")]["raw_text"].str.len().min() > 0
    items = Store(store).query("SELECT option_refusal, option_polarities[6] IS NULL AS refused_unpolar, "
                               "option_polarities[3] AS neutral FROM items WHERE survey_id = 'pobs'")
    assert len(items) == 1
    assert [bool(x) for x in items["option_refusal"][0]] == [False] * 5 + [True]
    assert bool(items["refused_unpolar"][0]) and items["neutral"][0] == 0


def test_gemma3_base_model_answers_from_completion_prompts(store_path: Path) -> None:
    surveys = [subset("ipip_neo_120.yaml", limit=1, templates=["mpi_original", "mpi_mirrored", "likeme_original"]),
               subset("pct.yaml", limit=1, templates=["templ-01", "templ-01-rev"], factors={"forcing": ["job"]})]
    summary = run(surveys, RunOptions(models=["gemma3-270m"], store=store_path))
    assert summary.errors == 0
    model = Store(store_path).query("SELECT details FROM models")
    assert json.loads(model["details"][0]).get("chat_template") is False
    check_rows(stored(store_path, summary.run_id, "ipip_neo_120"), 3)
    pct = stored(store_path, summary.run_id, "pct")
    check_rows(pct, 2)
    prompts = Store(store_path).query("SELECT completion_prompt FROM trials WHERE survey_id = 'ipip_neo_120'")
    assert all(p.rstrip().endswith(("Answer:", "Response:")) for p in prompts["completion_prompt"])
