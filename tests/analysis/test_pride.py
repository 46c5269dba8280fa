"""PriDe against ground truth: a synthetic model with a known position prior and a known content
preference (FakeBackend: P_obs(position i) ∝ prior(i) · content(option shown at i))."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from probekit.analysis.pride import (
    debias,
    item_prior,
    kl_from_uniform,
    pride,
    store_run_priors,
)
from probekit.analysis.selection import selection_summary
from probekit.backends.fake import FakeBackend
from probekit.scoring import ScoringSettings
from probekit.scoring.sync import score_sync
from probekit.survey.expand import expand
from probekit.survey.schema import Item, Option, Survey, Template

PRIOR = [4.0, 2.0, 1.0, 1.0]
TRUE_PRIOR = np.array(PRIOR) / sum(PRIOR)


def test_item_prior_and_debias_by_hand() -> None:
    # prior (.5,.25,.125,.125) times content (.4,.3,.2,.1) seen in the 4 cyclic rotations
    prior = TRUE_PRIOR
    content = np.array([0.4, 0.3, 0.2, 0.1])
    rotations = []
    for start in range(4):
        order = [(start + k) % 4 for k in range(4)]
        shown = prior * content[order]
        rotations.append(shown / shown.sum())
    assert item_prior(np.vstack(rotations)) == pytest.approx(prior)
    # identity order: observed ∝ (.2, .075, .025, .0125): argmax position 1 either way; after debiasing the
    # content (.4,.3,.2,.1) comes back exactly
    assert debias(rotations[0], prior) == pytest.approx(content)
    assert kl_from_uniform(np.ones(4) / 4) == pytest.approx(0.0)
    assert kl_from_uniform(np.array([1.0, 0, 0, 0])) == pytest.approx(2.0)


def _survey(n_items: int) -> Survey:
    items = [Item(id=f"q{k:03d}", fields={"question": f"Question {k}?"}, gold=(k * 7) % 4,
                  options=[Option(text=f"option {k}-{j}") for j in range(4)]) for k in range(n_items)]
    return Survey(id="pride_synthetic", kind="mcq", templates=[Template(id="t", user="{question}\n{options}\nAnswer:")],
                  items=items)


def _trial_frame(survey: Survey, policy: str, gold_strength: float) -> tuple[pd.DataFrame, dict[str, int]]:
    """Score the survey's trials with the fake model whose content preference favours the gold option."""
    backend = FakeBackend(f"fake:truth?prior={','.join(str(p) for p in PRIOR)}&gold={gold_strength}")
    gold = {item.id: int(item.gold) for item in survey.items if item.gold is not None}
    backend.gold.update(gold)
    trials = expand(survey, policy=policy)
    rows = score_sync(backend, trials, ScoringSettings())
    frame = pd.DataFrame({
        "item_id": [t.item_id for t in trials], "option_order": [t.order for t in trials],
        "dist": [np.asarray(r[0]["distribution"]) for r in rows], "n_options": [t.n_options for t in trials],
    })
    return frame, gold


def test_pride_recovers_the_prior_and_beats_the_biased_accuracy() -> None:
    survey = _survey(400)
    frame, gold = _trial_frame(survey, "pride:0.1", gold_strength=0.5)
    n_cal = frame.groupby("item_id").size().eq(4).sum()
    assert 20 <= n_cal <= 60  # the seeded alpha fraction of 400 items
    result = pride(frame)
    assert result is not None
    # recovered within tolerance (exactly, up to float error: the content term cancels over rotations)
    assert result.prior == pytest.approx(TRUE_PRIOR, abs=1e-6)
    assert set(result.calibration_items) == set(frame.groupby("item_id").size().loc[lambda s: s == 4].index)
    # prompts sent: all 4 rotations on calibration items, one prompt on the rest: the cost saving shows
    assert result.prompts == len(frame) == n_cal * 4 + (400 - n_cal)
    assert result.prompts < 0.4 * 4 * 400
    summary = selection_summary(frame, gold)
    # gold content .5 vs .1667 for the others: biased, the model is right only when gold sits at position
    # 1 or 2 (prior 4 or 2 times .5 beats 4 times .1667) -> about half; debiased it is always right
    assert summary["acc_identity"] == pytest.approx(0.5, abs=0.08)
    assert summary["acc_pride"] == pytest.approx(1.0)
    assert summary["acc_pride"] > summary["acc_identity"] + 0.3
    assert summary["rstd_pride"] < summary["rstd_identity"]


def test_pride_simulated_on_a_full_cyclic_run_matches_cyclic_averaging() -> None:
    survey = _survey(200)
    frame, gold = _trial_frame(survey, "cyclic", gold_strength=0.35)
    summary = selection_summary(frame, gold, alpha=0.05)
    assert summary["pride_calibration_items"] == 10
    assert summary["prompts_pride"] == 10 * 4 + 190 and summary["prompts_cyclic"] == 800
    assert summary["pride_prior"] == pytest.approx(TRUE_PRIOR.round(4), abs=1e-4)
    assert summary["acc_cyclic"] == pytest.approx(1.0) and summary["acc_pride"] == pytest.approx(1.0)
    assert summary["acc_identity"] < 0.8


def test_prior_stored_with_the_run_and_reused_with_prior_from(store_path) -> None:
    from probekit.analysis.loader import contexts
    from probekit.analysis.registry import build_tables
    from probekit.pipeline import run
    from probekit.runner import RunOptions
    from probekit.store.store import Store

    model = "fake:m?prior=4,2,1,1"
    first = run([_survey(60)], RunOptions(models=[model], store=store_path, orders="pride:0.2"))
    stored = Store(store_path).query("SELECT * FROM position_priors WHERE run_id = ?", [first.run_id])
    assert len(stored) == 1 and stored["source_run"].isna().all()
    assert list(stored["prior"][0]) == pytest.approx(TRUE_PRIOR, abs=1e-6)
    assert store_run_priors(Store(store_path), first.run_id)[0]["n_items"] == int(stored["n_items"][0])
    # another survey, same model: no calibration prompts at all, identity order, the stored prior is used
    other = Survey(id="other_mcq", kind="mcq", templates=[Template(id="t", user="Q: {question}\n{options}\nAnswer:")],
                   items=[Item(id=f"o{k}", fields={"question": f"Other {k}?"}, gold=k % 4,
                               options=[Option(text=f"o{k}-{j}") for j in range(4)]) for k in range(12)])
    second = run([other], RunOptions(models=[model], store=store_path, prior_from=first.run_id))
    assert second.trials == 12  # one prompt per item
    copied = Store(store_path).query("SELECT * FROM position_priors WHERE run_id = ?", [second.run_id])
    assert copied["source_run"].tolist() == [first.run_id]
    (ctx,) = contexts(store_path, run=second.run_id)
    table = build_tables(ctx, only=["selection_bias"])["selection_bias"].iloc[0]
    assert table["pride_prior_source"] == first.run_id and table["prompts_pride"] == 12
    with pytest.raises(ValueError, match="no position prior for model"):
        run([other], RunOptions(models=["fake:unseen"], store=store_path, prior_from=first.run_id, new_run=True))
