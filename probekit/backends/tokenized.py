"""A base for engines that hold the model's own tokenizer (transformers, vLLM), as lm-evaluation-harness's
`TemplateLM` is for its local models.

Written once here, so every such engine scores the same tokens the same way:
- the prompt text (the tokenizer's chat template, or the plain completion prompt; then the start of the
  answer the prompt carries) and its token ids;
- the token ids of each label's surface forms (`LabelRequest.forms`, decided by the scoring layer);
- P(label): when every label has a single-token form, the single-token forms' probabilities at the next
  position, summed; otherwise every form teacher-forced as a continuation, summed;
- continuation and generation bookkeeping (token counts, latency shares, a greedy request generated once
  and repeated n times), the capabilities.

An engine writes only `load()` (which calls `use_tokenizer` and returns its `ModelInfo` with
`self.capabilities()`) and three compute methods over token ids: `next_tokens`, `continuation_logprobs_ids`
and `generate_ids`.
"""

from __future__ import annotations

import math
import time
from abc import abstractmethod
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from probekit.backends.base import (
    BlockingBackend,
    Capabilities,
    ContinuationRequest,
    ContinuationScores,
    GenerateRequest,
    Generation,
    LabelRequest,
    LabelScores,
    Prompt,
    Provenance,
    TokenLogprobs,
)

TOP_LOGPROBS = 20
"""Top-k tokens an engine returns per generated token, and the evidence stored with each label row."""

T = TypeVar("T", int, tuple[int, ...])
Forms = tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class NextTokens:
    """The position right after one prompt."""

    logprobs: dict[int, float]
    """log P(token | prompt) for each token id asked for."""
    top: list[tuple[str, float]] | None = None
    """The k most likely tokens there (text, logprob), best first, when asked for."""


@dataclass(frozen=True, slots=True)
class Generated:
    """One continuation as the engine made it."""

    text: str
    token_ids: Sequence[int]
    """The generated tokens (an end-of-sequence token included, padding not)."""
    tokens: list[TokenLogprobs] | None = None
    """Per generated token its logprob and the top-k alternatives, when the request asked for them."""


@dataclass(frozen=True, slots=True)
class LabelTokens:
    """The token ids of one request's label forms (cached per label set)."""

    sequences: tuple[tuple[tuple[int, ...], ...], ...]
    """Per label, its forms' token ids; a sequence two labels share counts for neither."""
    single: tuple[tuple[int, ...], ...] | None
    """Per label, the ids of its single-token forms; None when some label has no single-token form."""


def exclusive(per_label: Sequence[set[T]]) -> list[list[T]]:
    """Each label's items without those another label also has (they would count twice)."""
    shared = {item for i, a in enumerate(per_label) for b in per_label[i + 1:] for item in a & b}
    return [sorted(items - shared) for items in per_label]


class TokenizedBackend(BlockingBackend):
    """A local model with its tokenizer: prompts and labels become token ids here; the engine computes."""

    def __init__(self, model: str, *, max_batch: int, chat_template: bool | None, top_logprobs: int = TOP_LOGPROBS):
        self.model = model
        self.max_batch = max_batch
        self.concurrency = 1  # one model, one compute stream: parallel calls would only contend
        self.top_logprobs = top_logprobs
        """Top-k evidence tokens stored with each label row (0: none)."""
        self._chat_template = chat_template
        """None: use the tokenizer's chat template when it has one; False: plain completion prompts (as
        lm-evaluation-harness sends them by default); True: require the chat template."""
        self._tok: Any = None
        self._label_tokens: dict[Forms, LabelTokens] = {}

    # -- what an engine writes ----------------------------------------------------------------------
    @abstractmethod
    def next_tokens(self, prompts: Sequence[Sequence[int]], wanted: Sequence[Sequence[int]], groups: Sequence[Hashable],
                    top_k: int) -> list[NextTokens]:
        """For each prompt, log P(token | prompt) of the `wanted` token ids at the next position, and the
        `top_k` most likely tokens there (top_k = 0: none). Prompts with the same group share most of their
        tokens (the option orders of one item): an engine may compute that prefix once."""

    @abstractmethod
    def continuation_logprobs_ids(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]]) -> list[list[float]]:
        """Per-token log P(continuation | prompt) for each (prompt ids, continuation ids) pair."""

    @abstractmethod
    def generate_ids(self, prompts: Sequence[Sequence[int]], requests: Sequence[GenerateRequest]) -> list[list[Generated]]:
        """Each request's generations from its prompt's ids: one for a greedy request (temperature 0), n
        for a sampled one (seeded requests repeat themselves whatever they are batched with); per-token
        top-k logprobs when `request.top_logprobs` > 0."""

    # -- loading ------------------------------------------------------------------------------------
    def use_tokenizer(self, tokenizer: Any) -> None:
        """The model's tokenizer (called by `load`); refuses `chat_template: true` for a model without one."""
        if self._chat_template is True and not getattr(tokenizer, "chat_template", None):
            raise ValueError(f"{self.model} has no chat template but chat_template: true was asked for; "
                             "drop the option to use plain completion prompts")
        self._tok = tokenizer
        self._label_tokens.clear()

    def capabilities(self) -> Capabilities:
        return Capabilities(label_logprobs=True, top_logprobs=TOP_LOGPROBS, generate=True, continuation=True,
                            continuation_separator="" if self.is_chat else " ", native_samples=True)

    @property
    def is_chat(self) -> bool:
        if self._chat_template is False:
            return False
        return bool(getattr(self._tok, "chat_template", None))

    # -- prompt and label tokens --------------------------------------------------------------------
    def prompt_text(self, prompt: Prompt) -> str:
        """The exact text the model sees before the answer (chat template when the model has one), followed
        by the start of the answer the prompt carries."""
        if self.is_chat:
            text = str(self._tok.apply_chat_template(prompt.message_dicts(), add_generation_prompt=True, tokenize=False))
        else:
            text = prompt.completion
        return text + prompt.assistant_prefix

    def encode_prompt(self, text: str) -> list[int]:
        # Chat-template text already holds its special tokens; plain prompts get the tokenizer's BOS.
        return list(self._tok(text, add_special_tokens=not self.is_chat)["input_ids"])

    def encode_text(self, text: str) -> list[int]:
        """Tokens of text that follows a prompt (a label form, a continuation): no special tokens."""
        return list(self._tok(text, add_special_tokens=False)["input_ids"])

    def label_tokens(self, forms: Forms) -> LabelTokens:
        cached = self._label_tokens.get(forms)
        if cached is None:
            encoded = [{tuple(self.encode_text(form)) for form in label_forms} for label_forms in forms]
            singles = [{sequence[0] for sequence in sequences if len(sequence) == 1} for sequences in encoded]
            cached = LabelTokens(
                tuple(tuple(s) for s in exclusive(encoded)),
                None if not all(singles) else tuple(tuple(ids) for ids in exclusive(singles)))
            self._label_tokens[forms] = cached
        return cached

    # -- primitives (BlockingBackend runs these in a worker thread) ---------------------------------
    def label_logprobs_sync(self, requests: Sequence[LabelRequest]) -> list[LabelScores]:
        """P(label) per request: single-token forms read at one next position (the request's labels all
        have one), or every form teacher-forced as a continuation."""
        started = time.perf_counter()
        encoded = [self.encode_prompt(self.prompt_text(r.prompt)) for r in requests]
        tokens = [self.label_tokens(r.label_forms()) for r in requests]
        probs: list[list[float]] = [[] for _ in requests]
        tops: list[list[tuple[str, float]] | None] = [None] * len(requests)
        fast = [(i, t.single) for i, t in enumerate(tokens) if t.single is not None]
        if fast:
            wanted = [sorted({t for ids in single for t in ids}) for _i, single in fast]
            found = self.next_tokens([encoded[i] for i, _ in fast], wanted, [requests[i].group for i, _ in fast],
                                     self.top_logprobs)
            for (i, single), position in zip(fast, found):
                probs[i] = [sum(math.exp(position.logprobs[t]) for t in ids) for ids in single]
                tops[i] = position.top
        forced = [i for i, t in enumerate(tokens) if t.single is None]
        for i, values in self.teacher_forced_label_probs([tokens[i] for i in forced], [encoded[i] for i in forced]).items():
            probs[forced[i]] = values
        share = (time.perf_counter() - started) * 1000 / max(1, len(requests))
        return [LabelScores(probs[i], tops[i], self._provenance(len(encoded[i]), 0, share)) for i in range(len(requests))]

    def teacher_forced_label_probs(self, tokens: Sequence[LabelTokens], prompts: Sequence[list[int]]) -> dict[int, list[float]]:
        """P(label) as the sum over its forms of P(form as the continuation of the prompt), per request."""
        pairs: list[tuple[list[int], tuple[int, ...]]] = []
        owners: list[tuple[int, int]] = []
        for i, (label_tokens, prompt) in enumerate(zip(tokens, prompts)):
            for position, sequences in enumerate(label_tokens.sequences):
                pairs.extend((prompt, sequence) for sequence in sequences)
                owners.extend([(i, position)] * len(sequences))
        probs = {i: [0.0] * len(t.sequences) for i, t in enumerate(tokens)}
        for (i, position), values in zip(owners, self.continuation_logprobs_ids(pairs) if pairs else []):
            probs[i][position] += math.exp(sum(values))
        return probs

    def continuation_sync(self, requests: Sequence[ContinuationRequest]) -> list[ContinuationScores]:
        started = time.perf_counter()
        encoded = [self.encode_prompt(self.prompt_text(r.prompt)) for r in requests]
        pairs = [(encoded[i], self.encode_text(text)) for i, r in enumerate(requests) for text in r.continuations]
        values = self.continuation_logprobs_ids(pairs)
        share = (time.perf_counter() - started) * 1000 / max(1, len(requests))
        out, cursor = [], 0
        for i, request in enumerate(requests):
            out.append(ContinuationScores(values[cursor: cursor + len(request.continuations)],
                                          self._provenance(len(encoded[i]), 0, share)))
            cursor += len(request.continuations)
        return out

    def generate_sync(self, requests: Sequence[GenerateRequest]) -> list[list[Generation]]:
        """A greedy request is generated once and its text repeated n times; a sampled one n times."""
        started = time.perf_counter()
        prompts = [self.encode_prompt(self.prompt_text(r.prompt)) for r in requests]
        produced = self.generate_ids(prompts, requests)
        share = (time.perf_counter() - started) * 1000 / max(1, sum(len(made) for made in produced))
        out: list[list[Generation]] = []
        for request, prompt, made in zip(requests, prompts, produced):
            generations = [Generation(g.text, g.tokens if request.top_logprobs > 0 else None,
                                      self._provenance(len(prompt), len(g.token_ids), share)) for g in made]
            out.append(generations if request.temperature > 0 else generations[:1] * request.n)
        return out

    def _provenance(self, prompt_tokens: int, completion_tokens: int, latency_ms: float) -> Provenance:
        return Provenance(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, latency_ms=latency_ms,
                          resolved_model=self.model)


__all__ = ["Generated", "NextTokens", "TOP_LOGPROBS", "TokenizedBackend"]
