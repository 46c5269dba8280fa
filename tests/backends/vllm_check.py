"""Runs the real vLLM engine on the real SmolLM2 in .venv-vllm and writes what it scored as JSON; the main
suite (tests/backends/test_vllm.py) compares it with the transformers backend of the main environment.

    .venv-vllm/bin/python tests/backends/vllm_check.py OUT.json [--items 25]

One engine start for everything: MMLU label distributions (the survey's 4 cyclic orders, exactly the trials
`probekit run` sends), option-text labels (teacher forcing), sequence mode (continuation logprobs), reasoning
and follow-up turns, seeded sampling twice and in another batch, greedy generation with top-k logprobs.
The engine spawns processes: hence the main guard.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[2]

# The scoring-modes spec of tests/scoring/test_modes.py with one more item (its own id, so the trial ids differ).
MODES_SPEC = ((REPO / "tests" / "scoring" / "modes.yaml").read_text(encoding="utf-8").replace("id: modes", "id: vllm-modes", 1)
              + """  - id: boiling
    fields: {question: "At sea level, water boils at"}
    options: [{text: "100 degrees Celsius"}, {text: "50 degrees Celsius"}]
""")


def score_open(backend: Any, trials: list[Any], settings: Any) -> list[list[Any]]:
    """`probekit.scoring.sync.score_sync` without its final `close()`, which stops the vLLM engine (a run's end):
    one engine serves every call here."""
    import asyncio

    from probekit.runtime import ModelRuntime, RetryPolicy
    from probekit.scoring import score_trials

    async def score() -> list[list[Any]]:
        runtime = ModelRuntime(backend, RetryPolicy(max_attempts=1))
        await runtime.start()
        return await score_trials(runtime, trials, settings)

    return asyncio.run(score())


def rows_by_trial(trials: list[Any], rows: list[list[Any]], fields: tuple[str, ...]) -> dict[str, list[dict[str, Any]]]:
    return {t.trial_id: [{f: r[f] for f in fields} for r in samples] for t, samples in zip(trials, rows)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--items", type=int, default=25, help="MMLU items, each in the survey's 4 cyclic orders")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    from probekit.backends import make_backend
    from probekit.backends.base import GenerateRequest
    from probekit.scoring import ScoringSettings, trial_prompt
    from probekit.survey.expand import expand
    from probekit.survey.loader import load_survey

    report: dict[str, Any] = {}
    started = time.perf_counter()
    backend: Any = make_backend("vllm:smollm2")
    info = backend.load()
    report["start_seconds"] = round(time.perf_counter() - started, 2)
    report["info"] = info.as_row()
    try:
        mmlu = expand(load_survey(REPO / "surveys" / "mmlu.yaml"), limit=args.items)
        started = time.perf_counter()
        rows = score_open(backend, mmlu, ScoringSettings())
        report["mmlu_seconds"] = round(time.perf_counter() - started, 2)
        report["mmlu"] = rows_by_trial(mmlu, rows, ("status", "choice", "distribution", "label_logprobs", "valid_mass",
                                                    "top_logprobs", "prompt_tokens"))

        spec = args.out.parent / "vllm_modes.yaml"
        spec.write_text(MODES_SPEC)
        modes = expand(load_survey(spec))
        pick = lambda template, reasoning="direct": [t for t in modes if t.template_id == template and t.reasoning == reasoning]  # noqa: E731
        fields = ("status", "choice", "distribution", "raw_text", "valid_mass")
        report["option_text"] = rows_by_trial(pick("repeat"), score_open(backend, pick("repeat"), ScoringSettings()), fields)
        report["sequence"] = rows_by_trial(pick("repeat"), score_open(backend, pick("repeat"), ScoringSettings(mode="sequence")),
                                           ("status", "choice", "seq_logprob_sum", "seq_logprob_mean"))
        report["reasoning"] = rows_by_trial(pick("ab", "reasoning"), score_open(backend, pick("ab", "reasoning"),
                                                                                 ScoringSettings(reasoning_max_tokens=24)), fields)
        report["followups"] = rows_by_trial(pick("reflect"), score_open(backend, pick("reflect"), ScoringSettings(max_tokens=8)), fields)

        sample = ScoringSettings(mode="sample", samples=3, temperature=1.0, max_tokens=12, seed=1)
        ab = pick("ab")
        texts = lambda rows: [[r["raw_text"] for r in samples] for samples in rows]  # noqa: E731
        report["samples"] = {
            "first": texts(score_open(backend, ab, sample)),
            "again": texts(score_open(backend, ab, sample)),
            "alone": texts(score_open(backend, ab[1:2], sample)),  # the same seeded trial in another batch
            "other_seed": texts(score_open(backend, ab, ScoringSettings(mode="sample", samples=3, temperature=1.0,
                                                                         max_tokens=12, seed=2))),
        }
        request = GenerateRequest(trial_prompt(ab[0]), max_tokens=6, top_logprobs=5)
        (generation,), = backend.generate_sync([request])
        report["greedy_top"] = {"text": generation.text, "tokens": [[t.token, t.logprob, [list(a) for a in t.top]]
                                                                    for t in generation.tokens or []]}
    finally:
        started = time.perf_counter()
        backend.shutdown()
        report["shutdown_seconds"] = round(time.perf_counter() - started, 2)
    args.out.write_text(json.dumps(report))


if __name__ == "__main__":
    main()
