"""Reading a label distribution from the tokens an API returned with `top_logprobs` (pure functions).

A local model is scored at one known position (right after the prompt). An API model generates a few
tokens and returns, per generated position, the top-k alternatives. Chat models often write something
before the label ("Answer: B", "I choose B"), and multi-token labels (repeating an option's text) are
only decided where the options' texts diverge. So the reader walks the generated tokens:

- the answer starts at the first generated token that begins some label, under the surface-form policy
  that exact engines get in their requests (`probekit.survey.labels`: what may stand before a label,
  `strip_label_prefix`, and which spellings count, `label_cores`);
- the decision position is the first position from there at which the generated text so far matches
  exactly one label;
- at that position every top-k alternative that, appended to the answer so far, matches exactly one label
  adds its probability to that label (token variants merged); labels with no matching alternative get no
  mass and are counted as missing; the probability of the shared prefix multiplies all labels (it does
  not change the renormalised distribution, only `valid_mass`).

When no generated token starts a label, the distribution is read at the first position, which is what
the transformers backend does; `found` is False then.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from probekit.backends.base import TokenLogprobs
from probekit.survey.labels import label_cores, strip_label_prefix


@dataclass(frozen=True)
class LabelReading:
    """P(label) per shown position read at one generated position."""

    probs: list[float]
    position: int
    """Index of the generated token where the labels were told apart."""
    start: int
    """Index of the generated token where the answer starts (> 0 when text precedes the label)."""
    missing: int
    """Labels that got no mass (absent from the top-k)."""
    found: bool
    """False when no generated token began a label and position 0 was read instead."""


def _matches(text: str, labels: tuple[str, ...]) -> tuple[int, ...]:
    """Labels that `text` (normalised) equals, or is a proper prefix of (word labels only)."""
    return _matches_cached(text, labels) if text else ()


@lru_cache(maxsize=65536)
def _matches_cached(text: str, labels: tuple[str, ...]) -> tuple[int, ...]:
    # Cached: the same few tokens (' A', 'The', 'Yes') are looked up for every response of a run.
    hits = []
    for k, label in enumerate(labels):
        for core in label_cores(label):
            if text == core or (len(label) > 1 and core.startswith(text)):
                hits.append(k)
                break
    return tuple(hits)


def _decide(tokens: Sequence[TokenLogprobs], start: int, labels: tuple[str, ...]) -> int | None:
    """Position at which the generated text from `start` matches exactly one label, or None."""
    answer = ""
    for index in range(start, len(tokens)):
        text = strip_label_prefix(answer + tokens[index].token)
        if not text:  # a bare space or '(' before the label
            answer += tokens[index].token
            continue
        hits = _matches(text, labels)
        if not hits:
            return None
        if len(hits) == 1:
            return index
        answer += tokens[index].token
    return None


def read_labels(tokens: Sequence[TokenLogprobs], labels: Sequence[str], *, min_start: int = 0) -> LabelReading:
    """The label distribution of one response (see the module docstring). `min_start` skips tokens
    before it (reasoning text before the answer prefix)."""
    labels = tuple(labels)
    start, position, found = min_start, None, False
    for candidate in range(min_start, len(tokens)):
        position = _decide(tokens, candidate, labels)
        if position is not None:
            start, found = candidate, True
            break
    if position is None:
        start = position = min(min_start, max(0, len(tokens) - 1))
    probs = [0.0] * len(labels)
    if not tokens:
        return LabelReading(probs, 0, 0, len(labels), False)
    prefix_tokens = tokens[start:position]
    answer = "".join(t.token for t in prefix_tokens)
    prefix_prob = math.exp(sum(t.logprob for t in prefix_tokens))
    chosen = tokens[position]
    alternatives = dict(chosen.top)
    alternatives.setdefault(chosen.token, chosen.logprob)  # a sampled token may fall outside the top-k
    for token, logprob in alternatives.items():
        hits = _matches(strip_label_prefix(answer + token), labels)
        if len(hits) == 1:
            probs[hits[0]] += math.exp(logprob) * prefix_prob
    missing = sum(1 for p in probs if p <= 0)
    return LabelReading(probs, position, start, missing, found)


def answer_start_index(tokens: Sequence[TokenLogprobs], prefix: str) -> int:
    """Index of the first token after the last occurrence of `prefix` in the generated text (0 if absent)."""
    text = "".join(t.token for t in tokens)
    cut = text.rfind(prefix) if prefix else -1
    if cut < 0:
        return 0
    target = cut + len(prefix)
    offset = 0
    for index, token in enumerate(tokens):
        if offset >= target:
            return index
        offset += len(token.token)
    return len(tokens)
