"""The base of the tokenizer-backed engines (probekit.backends.tokenized), on a third engine written here: a
bigram model over a tiny greedy tokenizer, with the three compute methods an engine writes and nothing
else. Its numbers are checked against products of the bigram table computed independently, so the base's
bookkeeping (label forms, single-token reading, teacher forcing, continuations, greedy repetition, token
counts) is checked without loading a model. The real engines run the same base in test_hf.py and
test_vllm.py."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import numpy as np
import pytest

from probekit.backends.base import ContinuationRequest, GenerateRequest, LabelRequest, ModelInfo, Prompt, TokenLogprobs
from probekit.backends.tokenized import Generated, NextTokens, TokenizedBackend
from probekit.survey.labels import label_forms

VOCAB = ["<s>", "A", " A", "(", " (", "B", " B", "Par", "is", " Par", "par", "PAR", "IS", "Ber", "lin", " Ber", "ber",
         "BER", "LIN", "x", " ", "?", *sorted(set("ParisBerlinPARISBERLIN") - {"A", "B"})]


class TinyTokenizer:
    """Greedy longest match over VOCAB (what a Hugging Face tokenizer offers the base: call, decode)."""

    chat_template = None
    eos_token_id = None

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        ids = [0] if add_special_tokens else []
        while text:
            piece = max((v for v in VOCAB[1:] if text.startswith(v)), key=len)
            ids.append(VOCAB.index(piece))
            text = text[len(piece):]
        return {"input_ids": ids}

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(VOCAB[i] for i in ids)


def bigram_table() -> np.ndarray:
    """log P(next | previous token): a fixed random row per previous token."""
    logits = np.random.default_rng(7).normal(size=(len(VOCAB), len(VOCAB)))
    return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


class BigramEngine(TokenizedBackend):
    """A complete exact engine: load and the three compute methods, nothing else."""

    def __init__(self) -> None:
        super().__init__("bigram", max_batch=8, chat_template=None, top_logprobs=3)
        self.table = bigram_table()

    def load(self) -> ModelInfo:
        self.use_tokenizer(TinyTokenizer())
        self._info = ModelInfo(backend="bigram", resolved_name="bigram", capabilities=self.capabilities())
        return self._info

    def next_tokens(self, prompts: Sequence[Sequence[int]], wanted: Sequence[Sequence[int]], groups: Sequence[Hashable],
                    top_k: int) -> list[NextTokens]:
        rows = [self.table[prompt[-1]] for prompt in prompts]
        return [NextTokens({t: float(row[t]) for t in ids}, [(VOCAB[t], float(row[t])) for t in np.argsort(-row)[:top_k]] or None)
                for row, ids in zip(rows, wanted)]

    def continuation_logprobs_ids(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]]) -> list[list[float]]:
        return [[float(self.table[([*p, *c])[len(p) + j - 1], c[j]]) for j in range(len(c))] for p, c in pairs]

    def generate_ids(self, prompts: Sequence[Sequence[int]], requests: Sequence[GenerateRequest]) -> list[list[Generated]]:
        out = []
        for prompt, request in zip(prompts, requests):
            ids, tokens = list(prompt), []
            for _ in range(request.max_tokens):
                row = self.table[ids[-1]]
                ids.append(int(row.argmax()))
                tokens.append(TokenLogprobs(VOCAB[ids[-1]], float(row.max()), ((VOCAB[ids[-1]], float(row.max())),)))
            made = ids[len(prompt):]
            out.append([Generated(self._tok.decode(made), made, tokens)] * (request.n if request.temperature > 0 else 1))
        return out


@pytest.fixture
def engine() -> BigramEngine:
    engine = BigramEngine()
    engine.load()
    return engine


PROMPT = Prompt((("user", "x?"),), "x?")


def p_form(table: np.ndarray, prompt: list[int], form_ids: list[int]) -> float:
    """P(form | prompt) from the bigram table, independently of the base."""
    previous, logprob = prompt[-1], 0.0
    for token in form_ids:
        logprob += table[previous, token]
        previous = token
    return math.exp(logprob)


def test_single_token_forms_are_read_at_one_position_and_summed(engine: BigramEngine) -> None:
    forms = label_forms(("A", "B"))
    assert forms[0] == ("A", " A", "(A", " (A")
    (scores,) = engine.label_logprobs_sync([LabelRequest(PROMPT, ("A", "B"), forms)])
    prompt = engine.encode_prompt("x?")
    table = engine.table
    # "(A" and " (A" are two tokens each: on the single-token path only "A" and " A" count.
    expected = [math.exp(table[prompt[-1], VOCAB.index(t)]) + math.exp(table[prompt[-1], VOCAB.index(" " + t)]) for t in "AB"]
    assert scores.probs == pytest.approx(expected, rel=1e-12)
    assert scores.top is not None and len(scores.top) == 3
    assert scores.provenance.prompt_tokens == len(prompt) == 3


def test_the_engine_counts_exactly_the_forms_the_request_carries(engine: BigramEngine) -> None:
    prompt = engine.encode_prompt("x?")
    (bare,) = engine.label_logprobs_sync([LabelRequest(PROMPT, ("A", "B"))])  # no forms: each label as written
    assert bare.probs == pytest.approx([math.exp(engine.table[prompt[-1], VOCAB.index(t)]) for t in "AB"], rel=1e-12)


def test_labels_without_a_single_token_form_are_teacher_forced_over_every_form(engine: BigramEngine) -> None:
    labels = ("Paris", "Berlin")
    (scores,) = engine.label_logprobs_sync([LabelRequest(PROMPT, labels, label_forms(labels))])
    prompt = engine.encode_prompt("x?")
    expected = [sum(p_form(engine.table, prompt, engine.encode_text(form)) for form in forms) for forms in label_forms(labels)]
    assert len(label_forms(labels)[0]) == 12  # Paris, paris, PARIS, each bare, after a space, after "(" and " ("
    assert scores.probs == pytest.approx(expected, rel=1e-12)
    assert scores.top is None


def test_a_form_two_labels_share_counts_for_neither(engine: BigramEngine) -> None:
    forms = (("A", " A"), (" A", "B"))
    tokens = engine.label_tokens(forms)
    assert tokens.single == ((VOCAB.index("A"),), (VOCAB.index("B"),))
    assert tokens.sequences == (((VOCAB.index("A"),),), ((VOCAB.index("B"),),))


def test_continuations_and_greedy_generation_bookkeeping(engine: BigramEngine) -> None:
    prompt = engine.encode_prompt("x?")
    (scores,) = engine.continuation_sync([ContinuationRequest(PROMPT, (" Paris", "Berlin"))])
    assert [math.exp(sum(v)) for v in scores.token_logprobs] == pytest.approx(
        [p_form(engine.table, prompt, engine.encode_text(t)) for t in (" Paris", "Berlin")], rel=1e-12)
    greedy, plain = engine.generate_sync([GenerateRequest(PROMPT, 4, n=3, top_logprobs=1), GenerateRequest(PROMPT, 2)])
    assert len(greedy) == 3 and len({g.text for g in greedy}) == 1, "a greedy request is generated once, repeated n times"
    assert greedy[0].provenance.completion_tokens == 4 and greedy[0].tokens is not None and len(greedy[0].tokens) == 4
    assert plain[0].tokens is None, "top-k logprobs only when asked for"
