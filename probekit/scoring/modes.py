"""The scoring modes, written once over the backend primitives (probekit.backends.base).

- logprob: the label distribution at the answer position. Engines with exact next-token logprobs are asked
  for P(label) directly (`label_logprobs`); engines that return top-k logprobs of generated tokens (APIs)
  generate a few greedy tokens and the distribution is read where the answer starts
  (probekit.scoring.reading).
- sample: n generations per trial with a per-trial seed, each parsed into an option, refusal or invalid.
- sequence: the log-likelihood of each option text as the continuation (lm-evaluation-harness style).
- reasoning (a trial axis): the model first writes its reasoning; the label is read after the answer
  prefix (exact engines: generate, then score the label after "reasoning + prefix"; top-k engines: one
  generation, read after the prefix).
- follow-up turns (multi-turn forms): the model's own greedy first answer is appended, then the turns with
  `{previous_answer}` filled, before the mode above applies.

Every function here goes through a `Primitives` object (the runtime: retries, cache, concurrency), never a
backend directly. A primitive's failure fails the whole batch (the runner stores error rows for it).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any, Protocol

from probekit.backends.base import (
    BackendError,
    Capabilities,
    ContinuationRequest,
    ContinuationScores,
    GenerateRequest,
    Generation,
    LabelRequest,
    LabelScores,
    Prompt,
    Provenance,
)
from probekit.scoring.answers import ScoringSettings, distribution_fields, sample_fields, trial_seed
from probekit.scoring.reading import answer_start_index, read_labels
from probekit.store.rows import ResultRow
from probekit.survey.expand import Trial
from probekit.survey.labels import label_forms
from probekit.survey.permutations import to_canonical


class Primitives(Protocol):
    """What the scoring layer calls (implemented by probekit.runtime.ModelRuntime)."""

    model: str
    capabilities: Capabilities

    async def label_logprobs(self, requests: list[LabelRequest]) -> list[LabelScores]: ...

    async def generate(self, requests: list[GenerateRequest]) -> list[list[Generation]]: ...

    async def continuation_logprobs(self, requests: list[ContinuationRequest]) -> list[ContinuationScores]: ...


MODES = ("logprob", "sample", "sequence", "generate")


def supported_modes(capabilities: Capabilities) -> set[str]:
    """The scoring modes an engine with these capabilities can run."""
    modes = set()
    if capabilities.label_logprobs or (capabilities.top_logprobs or 0) > 0:
        modes.add("logprob")
    if capabilities.generate:
        modes.update(("sample", "generate"))
    if capabilities.continuation:
        modes.add("sequence")
    return modes


def trial_prompt(trial: Trial) -> Prompt:
    return Prompt(tuple((m.role, m.content) for m in trial.messages), trial.completion_prompt)


def prefix_group(trial: Trial) -> Hashable:
    """The option orders of one item in one form share their prompt up to the first option."""
    return (trial.item_id, trial.template_id, trial.paraphrase_id, tuple(sorted(trial.factors.items())), trial.reasoning)


def label_max_tokens(labels: Sequence[str]) -> int:
    """Tokens enough to reach the decision point in a generated answer: a short preamble ("Answer: ", "**")
    plus the labels' shared prefix (≈ 1 token per 3 characters, rounded up generously)."""
    lowered = [label.lower() for label in labels]
    first, last = min(lowered), max(lowered)
    shared = 0
    while shared < min(len(first), len(last)) and first[shared] == last[shared]:
        shared += 1
    return 6 + shared // 2


async def score_trials(runtime: Primitives, trials: list[Trial], settings: ScoringSettings) -> list[list[ResultRow]]:
    """Score a batch of trials: for each trial, one row per sample (one row in logprob/sequence mode).
    Rows carry the trial id and the results; the runner adds run, model and attempts."""
    if settings.mode not in supported_modes(runtime.capabilities):
        raise BackendError("unsupported_mode", f"{runtime.model} cannot run {settings.mode} mode (it supports "
                           f"{', '.join(sorted(supported_modes(runtime.capabilities))) or 'nothing'})", retryable=False)
    if settings.mode == "generate":  # free-text answers (probekit.scoring.generation)
        from probekit.scoring.generation import score_generate

        return await score_generate(runtime, trials, settings)
    prompts, first_answers = await _with_followups(runtime, trials, settings)
    if settings.mode == "logprob":
        if runtime.capabilities.label_logprobs:
            return await _logprob_exact(runtime, trials, prompts, first_answers, settings)
        return await _logprob_generated(runtime, trials, prompts, first_answers, settings)
    if settings.mode == "sample":
        return await _sample(runtime, trials, prompts, settings)
    return await _sequence(runtime, trials, prompts)


async def _with_followups(runtime: Primitives, trials: list[Trial], settings: ScoringSettings) -> tuple[list[Prompt], dict[int, str]]:
    """Prompts per trial; multi-turn forms first get the model's own greedy answer and the further turns."""
    prompts = [trial_prompt(t) for t in trials]
    multi = [i for i, t in enumerate(trials) if t.followups]
    first_answers: dict[int, str] = {}
    if not multi:
        return prompts, first_answers
    generated = await runtime.generate([
        GenerateRequest(prompts[i], settings.max_tokens, 0.0, seed=settings.seed, context=trials[i]) for i in multi])
    for i, outputs in zip(multi, generated):
        answer = outputs[0].text.strip()
        first_answers[i] = answer
        turns = [("assistant", answer)] + [(t.role, t.content.replace("{previous_answer}", answer)) for t in trials[i].followups]
        prompts[i] = prompts[i].with_turns(turns)
    return prompts, first_answers


def _provenance_fields(provenance: Provenance) -> dict[str, Any]:
    return {
        "prompt_tokens": provenance.prompt_tokens, "completion_tokens": provenance.completion_tokens,
        "latency_ms": provenance.latency_ms, "resolved_model": provenance.resolved_model,
        "system_fingerprint": provenance.system_fingerprint, "cost_usd": provenance.cost_usd,
        "attempts": provenance.attempts,
    }


async def _logprob_exact(runtime: Primitives, trials: list[Trial], prompts: list[Prompt], first_answers: dict[int, str],
                         settings: ScoringSettings) -> list[list[ResultRow]]:
    reasoning: dict[int, str] = {}
    thinking = [i for i, t in enumerate(trials) if t.reasoning == "reasoning"]
    if thinking:
        generated = await runtime.generate([
            GenerateRequest(prompts[i], settings.reasoning_max_tokens, 0.0,
                            stop=(trials[i].answer_prefix,) if trials[i].answer_prefix else (), context=trials[i])
            for i in thinking])
        for i, outputs in zip(thinking, generated):
            prefix = trials[i].answer_prefix
            text = outputs[0].text
            cut = text.find(prefix) if prefix else -1
            text = (text[:cut] if cut >= 0 else text).rstrip()
            reasoning[i] = text
            prompts[i] = prompts[i].with_prefix(f"{text}\n{prefix}")
    scores = await runtime.label_logprobs([
        LabelRequest(prompts[i], t.labels, label_forms(t.labels), group=prefix_group(t), context=t) for i, t in enumerate(trials)])
    rows = []
    for i, (trial, score) in enumerate(zip(trials, scores)):
        raw_text = reasoning.get(i)
        if i in first_answers:
            raw_text = f"[first answer] {first_answers[i]}" + (f"\n[reasoning] {raw_text}" if raw_text is not None else "")
        rows.append([ResultRow(
            trial_id=trial.trial_id, mode="logprob", missing_labels=0, raw_text=raw_text,
            top_logprobs=[[token, round(logprob, 5)] for token, logprob in score.top] if score.top is not None else None,
            **distribution_fields(score.probs, trial.order), **_provenance_fields(score.provenance))])
    return rows


async def _logprob_generated(runtime: Primitives, trials: list[Trial], prompts: list[Prompt], first_answers: dict[int, str],
                             settings: ScoringSettings) -> list[list[ResultRow]]:
    top_k = runtime.capabilities.top_logprobs or 0
    requests = []
    for trial, prompt in zip(trials, prompts):
        max_tokens = label_max_tokens(trial.labels) + (settings.reasoning_max_tokens if trial.reasoning == "reasoning" else 0)
        requests.append(GenerateRequest(prompt, max_tokens, 0.0, seed=settings.seed, top_logprobs=top_k, context=trial))
    generated = await runtime.generate(requests)
    rows = []
    for i, (trial, outputs) in enumerate(zip(trials, generated)):
        output = outputs[0]
        tokens = output.tokens or []
        start = answer_start_index(tokens, trial.answer_prefix) if trial.reasoning == "reasoning" else 0
        reading = read_labels(tokens, trial.labels, min_start=start)
        evidence = {
            "position": reading.position, "start": reading.start, "found": reading.found,
            "tokens": [[t.token, round(t.logprob, 6), [[a, round(lp, 6)] for a, lp in t.top]] for t in tokens[: reading.position + 1]],
        }
        raw_text = output.text if i not in first_answers else f"[first answer] {first_answers[i]}\n{output.text}"
        rows.append([ResultRow(
            trial_id=trial.trial_id, mode="logprob", missing_labels=reading.missing, top_logprobs=evidence, raw_text=raw_text,
            **distribution_fields(reading.probs, trial.order), **_provenance_fields(output.provenance))])
    return rows


async def _sample(runtime: Primitives, trials: list[Trial], prompts: list[Prompt], settings: ScoringSettings) -> list[list[ResultRow]]:
    requests = [
        GenerateRequest(prompt, settings.max_tokens + (settings.reasoning_max_tokens if trial.reasoning == "reasoning" else 0),
                        settings.temperature, seed=trial_seed(settings.seed, trial.trial_id), n=settings.samples, context=trial)
        for trial, prompt in zip(trials, prompts)]
    generated = await runtime.generate(requests)
    return [
        [ResultRow(trial_id=trial.trial_id, sample_index=k, mode="sample", **sample_fields(trial, output.text, settings),
                   **_provenance_fields(output.provenance)) for k, output in enumerate(outputs)]
        for trial, outputs in zip(trials, generated)]


async def _sequence(runtime: Primitives, trials: list[Trial], prompts: list[Prompt]) -> list[list[ResultRow]]:
    separator = runtime.capabilities.continuation_separator
    scores = await runtime.continuation_logprobs([
        ContinuationRequest(prompt, tuple(separator + text for text in trial.shown_options), context=trial)
        for trial, prompt in zip(trials, prompts)])
    rows = []
    for trial, score in zip(trials, scores):
        sums = [float(sum(v)) for v in score.token_logprobs]
        means = [float(sum(v) / len(v)) if v else float("-inf") for v in score.token_logprobs]
        top = max(sums)
        fields = distribution_fields([math.exp(s - top) for s in sums], trial.order)
        fields["valid_mass"] = float(sum(math.exp(s) for s in sums))
        rows.append([ResultRow(
            trial_id=trial.trial_id, mode="sequence", missing_labels=0,
            seq_logprob_sum=to_canonical(sums, trial.order), seq_logprob_mean=to_canonical(means, trial.order),
            **fields, **{**_provenance_fields(score.provenance), "completion_tokens": 0})])
    return rows
