"""The POBs release as published (issue 22): its non-polar questions carry no `options_polarity`; the documented
`probekit import POBS_v11_model_responses/` imports every answer with and without --trust-spec-polarity, opinion
change is the paper's figure (pairs with a Refused left out) with the complex-encoded variant beside it, and a
--skip-bad import that dropped answers is flagged instead of silently averaging fewer topics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pobs_published import (
    MODEL,
    N_POLAR_PAIRS,
    NONPOLAR,
    PAPER_SHARE,
    POLAR,
    REFUSAL_PAIRS,
    RUNS,
    WITH_REFUSALS_SHARE,
    write_release,
)

from probekit.analysis import analyze
from probekit.analysis.quality import codes
from probekit.importers import BadRows, import_responses

N_QUESTIONS = len(POLAR) * 4 + len(NONPOLAR) * 3
ANSWERS = len(RUNS) * N_QUESTIONS * 3  # direct, reasoning, reflection


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_release(tmp_path_factory.mktemp("pobs"))


@pytest.mark.parametrize("trust", [False, True])
def test_the_release_imports_whole_with_its_non_polar_questions(release: Path, tmp_path: Path, trust: bool) -> None:
    store = tmp_path / "s.duckdb"
    summary = import_responses(release, fmt="pobs", store_path=store, trust_spec_polarity=trust)
    assert summary.imported == ANSWERS and not summary.skipped
    tables = analyze(store, survey="pobs_published", tables=["pobs", "pobs_topics"], n_boot=50)
    pobs = tables["pobs"]
    assert set(pobs["n_topics"]) == {len(POLAR) + len(NONPOLAR)} and set(pobs["n_polar_topics"]) == {len(POLAR)}
    assert set(pobs["n_questions"]) == {N_QUESTIONS} and (pobs["n_invalid"] == 0).all()
    assert all(not codes(f) for f in pobs["flags"])
    topics = tables["pobs_topics"]
    assert set(topics.loc[~topics["polar"], "topic"]) == set(NONPOLAR)
    # The non-polar questions count in reliability (substantive options coded 1, Refused 0.5i): never NaN.
    reliability = topics.loc[~topics["polar"], "reliability"]
    assert reliability.between(0, 1).all() and len(reliability) == len(NONPOLAR) * 3


def test_opinion_change_is_the_papers_figure_with_the_variant_beside_it(release: Path, tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    import_responses(release, fmt="pobs", store_path=store)
    change = analyze(store, survey="pobs_published", tables=["pobs_opinion_change"], n_boot=50)["pobs_opinion_change"]
    row = change.set_index(["model", "setup_from", "setup_to"]).loc[(MODEL, "reasoning", "reflection")]
    assert row["share_changed"] == pytest.approx(PAPER_SHARE)  # 3 of 22
    assert row["n_pairs"] == N_POLAR_PAIRS - len(REFUSAL_PAIRS) and row["n_pairs_refused"] == len(REFUSAL_PAIRS)
    assert row["share_changed_with_refusals"] == pytest.approx(WITH_REFUSALS_SHARE)  # 5 of 24, named as the variant


def test_skip_bad_is_flagged_not_a_silent_partial_mean(release: Path, tmp_path: Path) -> None:
    broken = tmp_path / "release"
    import shutil

    shutil.copytree(release, broken)
    path = broken / "POBS_V11_direct" / f"POBS_{MODEL}_1.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    for topic in data["survey"]["topics"]:
        if topic["name"] == NONPOLAR[0]:
            for question in topic["questions"]:
                question["selected"] = {"bad": 1}  # every answer of a topic unreadable in this file
    path.write_text(json.dumps(data), encoding="utf-8")
    store = tmp_path / "s.duckdb"
    with pytest.raises(BadRows):
        import_responses(broken, fmt="pobs", store_path=store)
    summary = import_responses(broken, fmt="pobs", store_path=store, skip_bad=True)
    assert len(summary.skipped) == 3
    pobs = analyze(store, survey="pobs_published", tables=["pobs"], n_boot=50)["pobs"]
    direct = pobs[pobs["setup"] == "direct"].iloc[0]
    assert "skipped_rows" in codes(direct["flags"])
