"""The judging experiment on real engines (small): smollm2 and gemma3-270m through transformers and SmolLM2 behind
the real llama.cpp server through litellm answer 2 MT-Bench questions, then judge every pair in both orders with
logprob verdicts (exact label probabilities locally, top-k logprobs from the server); a second run sends no
request to the server. The full 20-question run is tests/judging/real_run.py (minutes on 2 CPU cores)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from selfpref_helpers import write_experiment

from probekit.judging import judging_tables, run_judging
from probekit.runner import RunOptions
from probekit.store.store import Store


@pytest.mark.slow
def test_three_real_models_answer_and_judge_then_a_rerun_sends_nothing(tmp_path: Path, llama_server, dummy_key) -> None:  # type: ignore[no-untyped-def]
    from fault_proxy import FaultProxy

    proxy = FaultProxy(upstream=llama_server.api_base.removesuffix("/v1")).start()
    api = llama_server.model
    options = RunOptions(backend_options={api: {"api_base": proxy.api_base, "api_key_env": dummy_key, "concurrency": 2}})
    models = ["smollm2", "gemma3-270m", api]
    experiment = write_experiment(tmp_path, answer={"limit": 2, "scoring": {"max_tokens": 24}})
    store = tmp_path / "s.duckdb"
    try:
        summary = run_judging(experiment, models=models, store=store, options=options)
        sent = proxy.stats["requests"]
        again = run_judging(experiment, models=models, store=store, options=options)
        assert proxy.stats["requests"] == sent, "the second run sent nothing to the server"
    finally:
        proxy.stop()
    assert all(s.skipped for s in again.stages) and not any(s.skipped for s in summary.stages)
    assert [(s.stage, s.ok, s.errors) for s in summary.stages] == [("answer", 2, 0)] * 3 + [("judge", 12, 0)] * 3
    answers = Store(store).query("SELECT model, raw_text, resolved_model, completion_tokens FROM results WHERE mode = 'generate'")
    assert len(answers) == 6 and all(text.strip() for text in answers["raw_text"])
    assert set(answers["resolved_model"].notna()) == {True}
    # Verdicts are label distributions over A, B and the tie (C), mapped to canonical order.
    verdicts = Store(store).query("SELECT model, mode, distribution FROM results WHERE mode <> 'generate'")
    assert set(verdicts["mode"]) == {"logprob"} and len(verdicts) == 36
    assert all(len(d) == 3 and abs(sum(d) - 1) < 1e-6 for d in verdicts["distribution"])
    tables = judging_tables(summary, n_boot=200)
    position, preference = tables["judge_position"], tables["judge_self_preference"]
    assert list(position["judge"]) == sorted(models) and (position["n_pairs"] == 6).all()
    assert list(preference["judge"]) == sorted(models) and (preference["n_pairs"] == 4).all()
    # Gold from the panel: for a judge's own pair, the third model alone (both authors left out).
    assert (preference["n_gold"] == 4).all()
    for column in ("pc", "pf"):
        assert np.all((position[f"{column}_ci_low"] <= position[column]) & (position[column] <= position[f"{column}_ci_high"]))
    assert np.allclose(preference["dbg"], preference["wr_self"] - preference["wr_gold"])
