"""A scriptable fake backend for fast unit tests of the runner and analysis (never for end-to-end claims).

Its answers follow a known generative model, P_obs(position i) ∝ prior(i) · content(option), so tests can
check metrics and debiasing against ground truth. Model key: `fake:NAME?fail=0.3&delay=0.01&prior=4,2,1,1`.
- content preference: a deterministic function of (NAME, item, canonical option), or `gold=0.9` for mcq;
- `prior`: position weights (normalised);
- `fail`: probability that a call raises a retryable fault (decided per trial and attempt, seeded);
- `fatal`: probability of a non-retryable fault; `delay`: seconds per call; `nologprobs=1`: sample only.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections import Counter
from urllib.parse import parse_qsl

from probekit.backends.base import Backend, BackendError, ModelInfo, ResultRow
from probekit.scoring import ScoringSettings, distribution_fields, one_hot
from probekit.survey.expand import Trial


def _unit(*parts: object) -> float:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class FakeBackend(Backend):
    """Deterministic synthetic model with a known position prior and content preferences."""

    def __init__(self, model: str):
        name, _, query = model.removeprefix("fake:").partition("?")
        # The query only scripts behaviour (faults, delay); the stored model name is 'fake:NAME'.
        self.model = f"fake:{name or 'fake'}"
        self.name = name or "fake"
        params = dict(parse_qsl(query))
        self.fail = float(params.get("fail", 0))
        self.fatal = float(params.get("fatal", 0))
        self.delay = float(params.get("delay", 0))
        self.prior = [float(x) for x in params["prior"].split(",")] if "prior" in params else None
        self.gold_strength = float(params["gold"]) if "gold" in params else None
        self.logprobs = params.get("nologprobs", "0") != "1"
        self.max_batch = int(params.get("batch", 8))
        self.concurrency = int(params.get("concurrency", 4))
        self.attempts: Counter[str] = Counter()
        self.gold: dict[str, int] = {}

    async def start(self) -> ModelInfo:
        return ModelInfo(backend="fake", resolved_name=f"fake/{self.name}", revision="1", logprobs_supported=self.logprobs)

    def content_weights(self, trial: Trial) -> list[float]:
        """Preference for each canonical option, independent of where it is shown."""
        gold = self.gold.get(trial.item_id)
        if self.gold_strength is not None and gold is not None:
            rest = (1 - self.gold_strength) / max(1, trial.n_options - 1)
            return [self.gold_strength if k == gold else rest for k in range(trial.n_options)]
        return [0.05 + _unit(self.name, trial.item_id, k) for k in range(trial.n_options)]

    def shown_probs(self, trial: Trial) -> list[float]:
        content = self.content_weights(trial)
        prior = self.prior or [1.0] * trial.n_options
        weights = [prior[position % len(prior)] * content[canonical] for position, canonical in enumerate(trial.order)]
        total = sum(weights)
        return [w / total for w in weights]

    async def score(self, trials: list[Trial], settings: ScoringSettings) -> list[list[ResultRow]]:
        if self.delay:
            await asyncio.sleep(self.delay)
        key = ",".join(t.trial_id for t in trials)
        self.attempts[key] += 1
        attempt = self.attempts[key]
        if _unit(self.name, "fatal", key) < self.fatal:
            raise BackendError("bad_request", "fake: invalid request (injected)", retryable=False)
        if _unit(self.name, "fail", key, attempt) < self.fail:
            raise BackendError("rate_limit", "fake: 429 Too Many Requests (injected)", retryable=True, retry_after=0.0)
        rows: list[list[ResultRow]] = []
        for trial in trials:
            probs = self.shown_probs(trial)
            if settings.mode == "sample" or not self.logprobs:
                rng = random.Random(f"{settings.seed}:{trial.trial_id}")
                samples = []
                for k in range(settings.samples):
                    position = rng.choices(range(trial.n_options), weights=probs)[0]
                    canonical = trial.order[position]
                    samples.append({
                        "sample_index": k, "mode": "sample", "status": "ok", "choice": canonical,
                        "distribution": one_hot(trial.n_options, canonical), "raw_text": trial.labels[position],
                    })
                rows.append(samples)
            else:
                # Valid mass below 1: some probability goes to tokens outside the labels, as with real models.
                mass = 0.9
                rows.append([{**distribution_fields([p * mass for p in probs], trial.order), "sample_index": 0,
                              "mode": "logprob", "raw_text": None}])
        return rows
