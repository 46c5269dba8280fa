"""Scoring: the modes (logprob, sample, sequence, reasoning, follow-ups) written once over the backend
primitives, and the pure helpers that turn raw numbers and texts into stored fields."""

from probekit.scoring.answers import (
    ScoringSettings,
    distribution_fields,
    match_answer,
    one_hot,
    sample_fields,
    trial_seed,
)
from probekit.scoring.modes import MODES, label_max_tokens, score_trials, supported_modes, trial_prompt

__all__ = [
    "MODES", "ScoringSettings", "distribution_fields", "label_max_tokens", "match_answer", "one_hot", "sample_fields",
    "score_trials", "supported_modes", "trial_prompt", "trial_seed",
]
