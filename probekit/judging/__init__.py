"""Self-preference and position bias of LLM judges: a two-stage experiment in one file (docs/judges.md).

Stage 1: the models answer a `generate` survey (free answers, stored as result rows). Stage 2: each judge
compares pairs of the stored answers (its own against every other model's, or every pair) with a `pairwise`
survey, in both orders; optionally it says which answer it wrote (self-recognition). Gold verdicts come from a
panel of the other judges or a file of labels. The metrics are probekit.analysis.judges' tables.

    from probekit.judging import run_judging, judging_tables
    summary = run_judging("experiments/selfpref_mtbench.yaml", models=["smollm2", "gemma3-270m"], limit=20)
    judging_tables(summary)["judge_self_preference"]

Names are imported on first use, so `probekit validate` can ask `is_judging_file` without loading pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "JudgingSummary": "flow", "StageRun": "flow", "judging_tables": "flow", "run_judging": "flow",
    "run_judging_async": "flow", "stored_name": "flow",
    "read_gold_file": "gold", "set_gold": "gold",
    "JudgingExperiment": "spec", "LoadedJudging": "spec", "is_judging_file": "spec", "load_judging": "spec",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'probekit.judging' has no attribute {name!r}")
    return getattr(importlib.import_module(f"probekit.judging.{module}"), name)
