"""A scriptable fake backend for fast unit tests of the runner and analysis (never for end-to-end claims).

Its answers follow a known generative model, P_obs(position i) ∝ prior(i) · content(option), so tests can
check metrics and debiasing against ground truth. It reads the trial from the request's `context` (real
engines read only the prompt). Model key: `fake:NAME?fail=0.3&delay=0.01&prior=4,2,1,1`.
- content preference: a deterministic function of (NAME, item, canonical option), or `gold=0.9` for mcq;
- `prior`: position weights (normalised);
- `fail`: probability that a call raises a rate limit (429, Retry-After 0), `fail5xx` one of a server error
  (both retryable; decided per call content and attempt, seeded);
- `fatal`: probability of a non-retryable fault; `delay`: seconds per call; `nologprobs=1`: sample only;
- `engine=api`: behave like an API model (top-k logprobs of generated tokens, probed at start, one request
  per call, no native n) instead of an exact local engine; `batch`, `concurrency`: its declared limits.
- free answers (trials without options, `generate` surveys): "[answer of fake:NAME | quality Q] ..." with Q
  a deterministic function of (NAME, item) in [0.1, 1), or `quality=Q` for every item;
- judging (options that carry such answers, `pairwise` surveys): the content preference of a response is its
  quality, times `self=K` when the judge wrote it (a scripted self-preference); a tie option weighs `tie=W`
  (default 0.05);
- `log=PATH`: append one line per request of every primitive call ("fake:NAME<TAB>kind<TAB>survey/item/trial/sample"),
  so a test can count what reached the engine, across processes too.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

from probekit.backends.base import (
    Backend,
    BackendError,
    Capabilities,
    ContinuationRequest,
    ContinuationScores,
    GenerateRequest,
    Generation,
    LabelRequest,
    LabelScores,
    ModelInfo,
    Provenance,
    TokenLogprobs,
)
from probekit.survey.expand import Trial


def _unit(*parts: object) -> float:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class FakeBackend(Backend):
    """Deterministic synthetic model with a known position prior and content preferences."""

    def __init__(self, model: str):
        from probekit.backends import fake_stored_name

        _, _, query = model.partition("?")
        # The query only scripts behaviour (faults, delay); the stored model name is 'fake:NAME' (the registry's rule).
        self.model = fake_stored_name(model)
        self.name = self.model.removeprefix("fake:")
        params = dict(parse_qsl(query))
        self.fail = float(params.get("fail", 0))
        self.fail_5xx = float(params.get("fail5xx", 0))
        self.fatal = float(params.get("fatal", 0))
        self.delay = float(params.get("delay", 0))
        self.prior = [float(x) for x in params["prior"].split(",")] if "prior" in params else None
        self.gold_strength = float(params["gold"]) if "gold" in params else None
        self.logprobs = params.get("nologprobs", "0") != "1"
        self.api = params.get("engine", "local") == "api"
        self.max_batch = int(params.get("batch", 1 if self.api else 8))
        self.concurrency = int(params.get("concurrency", 4))
        self.attempts: Counter[str] = Counter()
        self.gold: dict[str, int] = {}
        self.quality = float(params["quality"]) if "quality" in params else None
        self.self_weight = float(params.get("self", 1.0))
        self.tie_weight = float(params.get("tie", 0.05))
        self.log = params.get("log")

    async def start(self) -> ModelInfo:
        if self.api:
            capabilities = Capabilities(top_logprobs=None if self.logprobs else 0, generate=True)
        else:
            capabilities = Capabilities(label_logprobs=self.logprobs, top_logprobs=20 if self.logprobs else 0, generate=True,
                                        continuation=True, native_samples=True)
        return ModelInfo(backend="fake", resolved_name=f"fake/{self.name}", revision="1", capabilities=capabilities,
                         details={"top_logprobs": 20})

    # -- the generative model -----------------------------------------------------------------------
    def answer_text(self, trial: Trial, sample: int = 0) -> str:
        """A free answer (a trial without options): tagged with its author and a quality a judge can read."""
        quality = self.quality if self.quality is not None else 0.1 + 0.9 * _unit(self.name, "quality", trial.item_id)
        return (f"[answer of {self.model} | quality {quality:.2f}] "
                f"The answer to {trial.item_id} is {_unit(self.name, trial.item_id, sample):.6f}.")

    def _judged_weights(self, trial: Trial) -> list[float] | None:
        """Judging tagged answers: each response weighs its quality (× `self` for the judge's own), a tie `tie`."""
        texts = [trial.shown_options[trial.order.index(k)] for k in range(trial.n_options)]
        found = [_ANSWER_TAG.search(text) for text in texts]
        if not any(found):
            return None
        weights = []
        for match in found:
            if match is None:
                weights.append(self.tie_weight)
                continue
            weight = float(match.group(2))
            weights.append(weight * self.self_weight if match.group(1) == self.model else weight)
        return weights

    def content_weights(self, trial: Trial) -> list[float]:
        """Preference for each canonical option, independent of where it is shown."""
        judged = self._judged_weights(trial)
        if judged is not None:
            return judged
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

    async def _call(self, requests: Sequence[Any], kind: str) -> None:
        """Delay and scripted faults for one call (decided by its content and attempt number)."""
        if self.delay:
            await asyncio.sleep(self.delay)
        key = kind + ":" + ",".join(f"{_need(r).trial_id}/{getattr(r, 'sample', 0)}" for r in requests)
        self.attempts[key] += 1
        if self.log:
            with open(self.log, "a", encoding="utf-8") as handle:
                handle.writelines(f"{self.model}\t{kind}\t{_need(r).survey_id}/{_need(r).item_id}/{_need(r).trial_id}/"
                                  f"{getattr(r, 'sample', 0)}\n" for r in requests)
        if _unit(self.name, "fatal", key) < self.fatal:
            raise BackendError("bad_request", "fake: invalid request (injected)", retryable=False)
        draw = _unit(self.name, "fail", key, self.attempts[key])
        if draw < self.fail:
            raise BackendError("rate_limit", "fake: 429 Too Many Requests (injected)", retryable=True, retry_after=0.0)
        if draw < self.fail + self.fail_5xx:
            raise BackendError("server_error", "fake: 503 Service Unavailable (injected)", retryable=True)

    # -- primitives -----------------------------------------------------------------------------------
    async def label_logprobs(self, requests: list[LabelRequest]) -> list[LabelScores]:
        if not self.logprobs or self.api:
            return await super().label_logprobs(requests)
        await self._call(requests, "label")
        # Valid mass below 1: some probability goes to tokens outside the labels, as with real models.
        scores = []
        for request in requests:
            probs = [p * 0.9 for p in self.shown_probs(_need(request))]
            top = sorted(((label, math.log(p)) for label, p in zip(request.labels, probs)), key=lambda pair: -pair[1])
            scores.append(LabelScores(probs, top, Provenance(resolved_model=f"fake/{self.name}")))
        return scores

    async def generate(self, requests: list[GenerateRequest]) -> list[list[Generation]]:
        await self._call(requests, "generate")
        outputs = []
        for request in requests:
            trial = _need(request)
            if trial.n_options == 0:  # a free answer (generate surveys)
                provenance = Provenance(resolved_model=f"fake/{self.name}", prompt_tokens=10, completion_tokens=20)
                seed = request.seed if request.temperature > 0 else 0
                outputs.append([Generation(self.answer_text(trial, (seed or 0) + request.sample + k), None, provenance)
                                for k in range(request.n)])
                continue
            probs = self.shown_probs(trial)
            provenance = Provenance(resolved_model=f"fake/{self.name}", prompt_tokens=10, completion_tokens=1)
            if request.temperature <= 0:
                best = max(range(trial.n_options), key=lambda k: probs[k])
                tokens = _tokens(trial.labels, probs, best, request.top_logprobs) if request.top_logprobs and self.logprobs else None
                outputs.append([Generation(trial.labels[best], tokens, provenance)] * request.n)
                continue
            rng = random.Random(f"{request.seed}:{request.sample}")
            positions = [rng.choices(range(trial.n_options), weights=probs)[0] for _ in range(request.n)]
            outputs.append([Generation(trial.labels[p], _tokens(trial.labels, probs, p, request.top_logprobs)
                                       if request.top_logprobs and self.logprobs else None, provenance) for p in positions])
        return outputs

    async def continuation_logprobs(self, requests: list[ContinuationRequest]) -> list[ContinuationScores]:
        if self.api:
            return await super().continuation_logprobs(requests)
        await self._call(requests, "continuation")
        return [ContinuationScores([[math.log(p)] for p in self.shown_probs(_need(r))]) for r in requests]


_ANSWER_TAG = re.compile(r"\[answer of (\S+) \| quality ([0-9.]+)\]")


def _trial(request: Any) -> Trial | None:
    context = getattr(request, "context", None)
    return context if isinstance(context, Trial) else None


def _need(request: Any) -> Trial:
    trial = _trial(request)
    if trial is None:  # the runtime's capability probe carries no trial: answer "A" with logprobs
        return _PROBE
    return trial


def _tokens(labels: Sequence[str], probs: Sequence[float], chosen: int, top_k: int) -> list[TokenLogprobs]:
    top = sorted(((label, math.log(p)) for label, p in zip(labels, probs)), key=lambda pair: -pair[1])[:top_k]
    return [TokenLogprobs(labels[chosen], math.log(probs[chosen]), tuple(top))]


_PROBE = Trial(trial_id="probe", survey_id="probe", item_id="probe", template_id="probe", paraphrase_id="p0", order=(0, 1),
               label_scheme="letters", labels=("A", "B"), shown_options=("A", "B"), reasoning="direct", messages=(),
               completion_prompt="", answer_prefix="Answer:")
