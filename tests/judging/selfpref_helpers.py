"""Helpers for the judging tests: small two-stage experiment files over the shipped MT-Bench surveys."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
SURVEYS = REPO / "surveys"
SELFPREF = REPO.parent / "shared" / "data" / "selfpref"
MTBENCH_ANSWERS = SELFPREF / "mtbench_80q_31models_answers.jsonl"
ENV = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "TOKENIZERS_PARALLELISM": "false"}


def write_experiment(folder: Path, name: str = "exp", **overrides: Any) -> Path:
    """A judging experiment file in `folder` (survey paths absolute): 4 questions, one-letter verdicts, panel gold."""
    spec: dict[str, Any] = {
        "id": name,
        "models": ["fake:a", "fake:b", "fake:c"],
        "answer": {"path": str(SURVEYS / "mtbench.yaml"), "limit": 4, "scoring": {"max_tokens": 16}},
        "judge": {"path": str(SURVEYS / "mtbench_judge.yaml"), "templates": ["pair_v2_verdict"], "scoring": {"mode": "logprob"}},
        "analyses": ["judge_position", "judge_self_preference"],
    }
    for key, value in overrides.items():
        if value is None:
            spec.pop(key, None)
        elif isinstance(value, dict) and isinstance(spec.get(key), dict):
            spec[key] = {**spec[key], **value}
        else:
            spec[key] = value
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path
