"""Judges whose numbers are not findings (issue 22): a win needs a margin, a judge that picks by position gets its
self-preference and self-recognition flagged, a NaN cell says which precondition failed, and PF / primacy /
recency count as Shi et al.'s script counts them (their labels: AA, AC, CA primacy; BB, BC, CB recency; AB, BA,
CC consistent). The store-backed tests use real judging runs of fake judges (no model is loaded)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from probekit.analysis.judges import (
    SHI_PRIMACY,
    SHI_RECENCY,
    TIE,
    A,
    B,
    pair_table,
    position_summary,
    self_pairs,
    self_preference_summary,
    shown_labels,
)
from probekit.analysis.quality import codes

REPO = Path(__file__).resolve().parents[2]
SURVEYS = REPO / "surveys"


def _judgment(question: str, first: int, p: list[float]) -> dict[str, object]:
    return {"judge": "J", "item_id": f"{question}|J|O", "question": question, "model_a": "J", "model_b": "O",
            "first": first, "p": np.array(p)}


def test_a_position_only_judge_wins_nothing_by_rounding_noise() -> None:
    # Always "A", with its own answer a hair more likely: s_self = 0.5005, s_other = 0.4995 (issue 22's example).
    rows = []
    for q in ("q1", "q2", "q3", "q4"):
        rows += [_judgment(q, A, [0.9995, 0.0005]), _judgment(q, B, [0.0015, 0.9985])]
    with_margin = pair_table(pd.DataFrame(rows), margin=0.05)
    assert with_margin["s_a"].tolist() == pytest.approx([0.5005] * 4)
    assert set(with_margin["w_a"]) == {0.5}
    own = self_pairs(with_margin, {item: 1.0 for item in with_margin["item_id"]})
    assert self_preference_summary(own, n_boot=50)["wr_self_all"] == 50.0
    # Without a margin (the old rule) every 0.001 difference was a win: WR_self 100.
    bare = pair_table(pd.DataFrame(rows), margin=0.0)
    assert set(bare["w_a"]) == {1.0}
    # A real preference (0.65 against 0.35) still wins.
    decided = pair_table(pd.DataFrame([_judgment("q", A, [0.9, 0.1]), _judgment("q", B, [0.4, 0.6])]), margin=0.05)
    assert decided["w_a"].tolist() == [1.0]


@pytest.mark.parametrize("first_order", ["A", "B", "C"])
@pytest.mark.parametrize("swapped_order", ["A", "B", "C"])
def test_primacy_and_recency_count_as_shi_et_al_script(first_order: str, swapped_order: str) -> None:
    """Their script (Position-Bias-Analyzer, consistency_preference_calculation.py) reads the two labels the judge
    gave, original order then swapped: AA AC CA primacy, BB BC CB recency, AB BA CC consistent."""
    shown = {"A": [0.8, 0.1, 0.1], "B": [0.1, 0.8, 0.1], "C": [0.1, 0.1, 0.8]}
    # In the swapped order response b is shown first: the label A given there is canonical b.
    canonical_swapped = {"A": [0.1, 0.8, 0.1], "B": [0.8, 0.1, 0.1], "C": [0.1, 0.1, 0.8]}
    pairs = pair_table(pd.DataFrame([_judgment("q", A, shown[first_order]), _judgment("q", B, canonical_swapped[swapped_order])]))
    labels = first_order + swapped_order
    assert shown_labels(int(pairs["v_ab"].iloc[0]), int(pairs["v_ba"].iloc[0])) == labels
    summary = position_summary(pairs, n_boot=20)
    expected = "primacy" if labels in ("AA", "AC", "CA") else "recency" if labels in ("BB", "BC", "CB") else "consistent"
    assert (summary["primacy"], summary["recency"], summary["consistent"]) == (
        int(expected == "primacy"), int(expected == "recency"), int(labels in ("AB", "BA", "CC")))
    assert summary["pf"] == {"primacy": -1.0, "recency": 1.0, "consistent": 0.0}[expected]
    # probekit's strict variant sets the half-tied pairs apart, under its own names
    half_tied = labels in ("AC", "CA", "BC", "CB")
    assert summary["other_inconsistent"] == int(half_tied)
    assert summary["pf_strict"] == (0.0 if half_tied else summary["pf"])
    assert set(SHI_PRIMACY) == {"AA", "AC", "CA"} and set(SHI_RECENCY) == {"BB", "BC", "CB"} and TIE == 2


def _experiment(folder: Path, models: list[str]) -> Path:
    spec = {"id": "degenerate", "models": models,
            "answer": {"path": str(SURVEYS / "mtbench.yaml"), "limit": 4, "scoring": {"max_tokens": 16}},
            "judge": {"path": str(SURVEYS / "mtbench_judge.yaml"), "templates": ["pair_v2_verdict"], "scoring": {"mode": "logprob"}},
            "self_recognition": {"path": str(SURVEYS / "mtbench_recognition.yaml"), "scoring": {"mode": "logprob"}}}
    path = folder / f"judges_{len(models)}.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    from probekit.judging import run_judging

    folder = tmp_path_factory.mktemp("judges")
    store = folder / "s.duckdb"
    # fake:first gives the first-shown label almost all its mass whatever it reads (gemma3-270m's behaviour)
    summary = run_judging(_experiment(folder, ["fake:a", "fake:b?self=3", "fake:first?prior=2000,1,1"]), store=store)
    assert summary.recognition_survey
    return store, summary.judge_survey, summary.recognition_survey


def _row(frame: pd.DataFrame, judge: str) -> dict[str, object]:
    rows = frame[frame["judge"] == judge].to_dict("records")
    assert len(rows) == 1
    return rows[0]


def test_position_only_judge_is_flagged_in_self_preference_and_recognition(judged: tuple[Path, str, str]) -> None:
    from probekit.analysis import analyze

    store, judge_survey, recognition_survey = judged
    tables = analyze(store, survey=judge_survey, tables=["judge_position", "judge_self_preference"], n_boot=50)
    position = _row(tables["judge_position"], "fake:first")
    assert position["pc"] < 0.5 and position["primacy"] == position["n_pairs"]
    first = _row(tables["judge_self_preference"], "fake:first")
    assert "position_only" in codes(first["flags"])
    assert first["wr_self_all"] == pytest.approx(50.0)  # no win by rounding noise: every pair a tie
    honest = _row(tables["judge_self_preference"], "fake:b")
    assert "position_only" not in codes(honest["flags"])
    recognition = analyze(store, survey=recognition_survey, tables=["self_recognition"], n_boot=50)["self_recognition"]
    assert "position_only" in codes(_row(recognition, "fake:first")["flags"])
    assert "position_only" not in codes(_row(recognition, "fake:a")["flags"])
    strict = analyze(store, survey=judge_survey, tables=["judge_self_preference"], n_boot=50, strict=True)
    assert "fake:first" not in set(strict["judge_self_preference"]["judge"])


def test_nan_cells_say_no_gold_voter_was_left(tmp_path: Path) -> None:
    """Two judges and a panel gold that leaves out both authors of a pair: nobody votes (the README's two-model
    command gave DBG, WR_gold and EO all NaN with no explanation)."""
    from probekit.analysis import analyze
    from probekit.judging import run_judging

    store = tmp_path / "s.duckdb"
    summary = run_judging(_experiment(tmp_path, ["fake:a", "fake:b?self=3"]), store=store)
    table = analyze(store, survey=summary.judge_survey, tables=["judge_self_preference"], n_boot=50)["judge_self_preference"]
    assert len(table) == 2
    for row in table.to_dict("records"):
        assert math.isnan(row["dbg"]) and math.isnan(row["wr_gold"]) and row["n_gold"] == 0
        assert "no_gold" in codes(row["flags"])
