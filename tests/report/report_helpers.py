"""Helpers of the report tests: the fake store's description and the experiment files it is built from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SURVEYS = REPO / "surveys"
MODELS = ["fake:alpha?prior=3,1", "fake:beta?prior=1,1"]
T0 = datetime(2025, 6, 2, 15, tzinfo=timezone.utc)


@dataclass
class FakeStore:
    path: Path
    families_run: str
    """The run with moral dilemmas, compass, personality, POBs and MMLU (selection bias)."""
    judge_survey: str
    drift_survey: str
    drift_model: str


def families_experiment(folder: Path) -> Path:
    """Every family, small: MoralChoice starter (both ambiguity levels), 3 PCT paraphrases × 2 forcing levels,
    10 IPIP items in 3 styles × 2 anchor orders, 8 MMLU items in their 4 cyclic orders, 12 POBs items."""
    spec = {
        "id": "report_families",
        "surveys": [
            {"path": str(SURVEYS / "moralchoice_starter.yaml")},
            {"path": str(SURVEYS / "pct.yaml"), "templates": ["templ-01", "templ-02", "templ-03"],
             "factors": {"forcing": ["none", "job"]}, "limit": 8},
            {"path": str(SURVEYS / "ipip_bigfive_50.yaml"), "limit": 10},
            {"path": str(SURVEYS / "mmlu.yaml"), "limit": 8},
            {"path": str(SURVEYS / "pobs.yaml"), "templates": ["direct"], "reasoning": ["direct"], "limit": 12},
        ],
    }
    path = folder / "families.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def judging_experiment(folder: Path) -> Path:
    spec = {
        "id": "report_judges",
        "models": ["fake:a", "fake:b?self=3", "fake:c"],
        "answer": {"path": str(SURVEYS / "mtbench.yaml"), "limit": 4, "scoring": {"max_tokens": 16}},
        "judge": {"path": str(SURVEYS / "mtbench_judge.yaml"), "templates": ["pair_v2_verdict"], "scoring": {"mode": "logprob"}},
    }
    path = folder / "judges.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path
