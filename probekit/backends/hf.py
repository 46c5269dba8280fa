"""Local models through Hugging Face transformers (CUDA when present, CPU otherwise): the primitives only.

`label_logprobs` reads P(label) from one forward pass per prompt, computing only the last position's
logits (`logits_to_keep=1`); prompts are batched by a token budget with left padding and explicit position
ids, so a prompt's numbers do not depend on what it is batched with, and the option orders of one item
share their prompt prefix's key/value cache. `generate` and `continuation_logprobs` are batched the same
way. The scoring modes built on these live in probekit.scoring.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Hashable, Sequence
from functools import lru_cache
from typing import Any

from probekit.backends.base import (
    BlockingBackend, Capabilities, ContinuationRequest, ContinuationScores, Generation, GenerateRequest, LabelRequest, LabelScores,
    ModelInfo, Prompt, Provenance,
)
from probekit.backends.hf_loader import load_model, resolve_local
from probekit.survey.labels import label_variants

TOP_LOGPROBS = 20


class HFBackend(BlockingBackend):
    """A transformers causal LM: exact next-token label logprobs, generation, continuation log-likelihoods."""

    def __init__(self, model: str, *, token_budget: int | None = None, device: str | None = None, max_batch: int = 64,
                 share_prefix: bool = True, chat_template: bool | None = None):
        self.model = model
        self.max_batch = max_batch
        self.concurrency = 1  # one model, one compute stream: parallel calls would only contend
        self.share_prefix = share_prefix
        """Compute a prefix shared by several prompts of one batch (the option orders of one item) once."""
        self._chat_template = chat_template
        """None: use the tokenizer's chat template when it has one; False: plain completion prompts (as
        lm-evaluation-harness sends them by default); True: require the chat template."""
        self._device_request = device
        self._token_budget = token_budget
        self._lm: Any = None
        self._tok: Any = None
        self._info: ModelInfo | None = None

    # -- loading ------------------------------------------------------------------------------------
    def load(self) -> ModelInfo:
        import torch

        device = self._device_request or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        source = resolve_local(self.model)
        started = time.perf_counter()
        self._lm, self._tok, details = load_model(source, device, dtype)
        if self._chat_template is True and not getattr(self._tok, "chat_template", None):
            raise ValueError(f"{self.model} has no chat template but chat_template: true was asked for; "
                             "drop the option to use plain completion prompts")
        self.device = device
        self.token_budget = self._token_budget or (65536 if device.startswith("cuda") else 4096)
        details["load_seconds"] = round(time.perf_counter() - started, 2)
        details["chat_template"] = self.is_chat
        details["torch"] = torch.__version__
        self._info = ModelInfo(
            backend="hf",
            resolved_name=str(source.gguf_path or source.location),
            revision=details.get("weights_sha256"),
            weights_sha256=details.pop("weights_sha256", None),
            dtype=str(dtype).removeprefix("torch."),
            device=device,
            capabilities=Capabilities(label_logprobs=True, top_logprobs=TOP_LOGPROBS, generate=True, continuation=True,
                                      continuation_separator="" if self.is_chat else " ", native_samples=True),
            details=details,
        )
        return self._info

    @property
    def is_chat(self) -> bool:
        if self._chat_template is False:
            return False
        return bool(getattr(self._tok, "chat_template", None))

    # -- prompt text --------------------------------------------------------------------------------
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
        ids = self._tok(text, add_special_tokens=not self.is_chat)["input_ids"]
        return list(ids)

    # -- label tokens -------------------------------------------------------------------------------
    @lru_cache(maxsize=4096)
    def label_token_ids(self, labels: tuple[str, ...]) -> tuple[tuple[int, ...], ...] | None:
        """Single-token ids of each label's variants, or None when some label has no single-token form
        (then labels are scored as continuations)."""
        per_label: list[set[int]] = []
        for label in labels:
            ids: set[int] = set()
            for variant in label_variants(label):
                encoded = self._tok(variant, add_special_tokens=False)["input_ids"]
                if len(encoded) == 1:
                    ids.add(encoded[0])
            if not ids:
                return None
            per_label.append(ids)
        # A token shared by two labels would count twice; drop it from both.
        shared = {t for i, a in enumerate(per_label) for b in per_label[i + 1:] for t in a & b}
        return tuple(tuple(sorted(ids - shared)) for ids in per_label)

    # -- batched compute ----------------------------------------------------------------------------
    def _batches(self, lengths: Sequence[int]) -> list[list[int]]:
        """Indices grouped so that batch size × longest prompt stays within the token budget."""
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        batches: list[list[int]] = []
        current: list[int] = []
        for index in order:
            longest = max([lengths[index]] + [lengths[i] for i in current])
            if current and longest * (len(current) + 1) > self.token_budget:
                batches.append(current)
                current = []
            current.append(index)
        if current:
            batches.append(current)
        return batches

    def _pad(self, sequences: Sequence[Sequence[int]]) -> tuple[Any, Any, Any]:
        import torch

        width = max(len(s) for s in sequences)
        pad = self._tok.pad_token_id
        ids = torch.full((len(sequences), width), pad, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, sequence in enumerate(sequences):
            ids[row, width - len(sequence):] = torch.tensor(sequence, dtype=torch.long)
            mask[row, width - len(sequence):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        return ids.to(self.device), mask.to(self.device), positions.to(self.device)

    def next_token_logprobs(self, prompts: Sequence[Sequence[int]], groups: Sequence[Hashable] | None = None) -> Any:
        """log P(next token | prompt) for each prompt: a [N, vocab] float32 tensor.

        Prompts with the same `groups` key (e.g. the option orders of one item) usually share a long token
        prefix (chat preamble, question stem). With `share_prefix`, that prefix goes through the model once
        per group and its key/value cache is reused by every member, which then computes only its own
        suffix; the numbers equal the unshared computation (test: within 1e-4).
        """
        import torch

        out = torch.empty((len(prompts), self._lm.config.vocab_size), dtype=torch.float32)
        shared, singles = self._prefix_plan(prompts, groups) if groups is not None and self.share_prefix else ([], list(range(len(prompts))))
        with torch.inference_mode():
            for batch in self._tight_batches([len(prompts[i]) for i in singles]):
                rows = [singles[i] for i in batch]
                ids, mask, positions = self._pad([prompts[i] for i in rows])
                logits = self._lm(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=1, use_cache=False).logits
                out[rows] = torch.log_softmax(logits[:, -1, :].float(), dim=-1).cpu()
            for group_batch in self._group_batches(prompts, shared):
                self._shared_prefix_batch(prompts, group_batch, out)
        return out

    # Below this many common tokens a group is scored without sharing (the bookkeeping would cost more).
    MIN_SHARED_PREFIX = 8

    def _prefix_plan(self, prompts: Sequence[Sequence[int]], groups: Sequence[Hashable]) -> tuple[list[tuple[int, list[int]]], list[int]]:
        """Split prompts into prefix-sharing groups [(shared length, member indices)] and single prompts.

        The shared length is the longest common *token* prefix of the members (computed on the final token
        ids, so a tokenizer merge across the boundary can never make the two computations differ), capped so
        that every member keeps at least one token of its own."""
        members: dict[Hashable, list[int]] = {}
        for index, key in enumerate(groups):
            members.setdefault(key, []).append(index)
        window = getattr(self._lm.config, "sliding_window", None)
        shared: list[tuple[int, list[int]]] = []
        singles: list[int] = []
        for indices in members.values():
            sequences = [prompts[i] for i in indices]
            limit = min(len(s) for s in sequences) - 1
            length = 0
            first = sequences[0]
            while length < limit and all(s[length] == first[length] for s in sequences[1:]):
                length += 1
            # Sliding-window caches keep only the last `window` tokens: share only when nothing is dropped.
            too_long = window is not None and max(len(s) for s in sequences) >= window
            if len(indices) < 2 or length < self.MIN_SHARED_PREFIX or too_long:
                singles.extend(indices)
            else:
                shared.append((length, indices))
        return shared, sorted(singles)

    # Padding is computed too: a batch is closed when more than this share of it would be padding.
    MAX_PADDING = 0.25

    def _tight_batches(self, lengths: Sequence[int]) -> list[list[int]]:
        """Indices sorted by length and cut into batches within the token budget and with at most
        MAX_PADDING of padding (prompts of one runner batch differ a lot in length)."""
        batches: list[list[int]] = []
        current: list[int] = []
        total = 0
        for index in sorted(range(len(lengths)), key=lambda i: lengths[i]):
            width = lengths[index]  # ascending: the newcomer is the longest
            rows = len(current) + 1
            over = rows * width > self.token_budget or (total + width) < (1 - self.MAX_PADDING) * rows * width
            if current and over:
                batches.append(current)
                current, total = [], 0
            current.append(index)
            total += width
        if current:
            batches.append(current)
        return batches

    def _group_batches(self, prompts: Sequence[Sequence[int]], shared: list[tuple[int, list[int]]]) -> list[list[tuple[int, list[int]]]]:
        """Groups batched for the prefix pass (groups × longest prefix within the budget, little padding)."""
        return [[shared[i] for i in batch] for batch in self._tight_batches([length for length, _members in shared])]

    def _shared_prefix_batch(self, prompts: Sequence[Sequence[int]], batch: list[tuple[int, list[int]]], out: Any) -> None:
        """One batch of prefix-sharing groups: the prefix pass fills a KV cache; then the members, sorted by
        suffix length into tight sub-batches, each get a cache made of their group's rows and run only their
        suffix over [prefix cache | left-padded suffix] with explicit positions."""
        import torch
        from transformers import DynamicCache

        prefix_ids, prefix_mask, prefix_pos = self._pad([prompts[members[0]][:length] for length, members in batch])
        output = self._lm(input_ids=prefix_ids, attention_mask=prefix_mask, position_ids=prefix_pos,
                          use_cache=True, logits_to_keep=1)
        cache = getattr(output, "cache", None) or output.past_key_values
        layers = [(layer.keys, layer.values) for layer in cache.layers]
        prefix_lengths = prefix_mask.sum(-1)
        # transformers renamed `past_key_values` to `cache` (the old name warns, and goes in 5.40).
        cache_argument = "cache" if "cache" in inspect.signature(self._lm.forward).parameters else "past_key_values"
        members = [(g, i) for g, (_length, group) in enumerate(batch) for i in group]
        suffix_lengths = [len(prompts[i]) - batch[g][0] for g, i in members]
        for sub in self._tight_batches(suffix_lengths):
            owner = [members[k][0] for k in sub]
            rows = [members[k][1] for k in sub]
            index = torch.tensor(owner, dtype=torch.long, device=prefix_ids.device)
            sub_cache = DynamicCache(
                ddp_cache_data=[(k.index_select(0, index) if k is not None else None,
                                 v.index_select(0, index) if v is not None else None) for k, v in layers],
                config=self._lm.config)
            suffix_ids, suffix_mask, suffix_pos = self._pad([prompts[i][batch[g][0]:] for g, i in zip(owner, rows)])
            mask = torch.cat([prefix_mask.index_select(0, index), suffix_mask], dim=1)
            # A member's suffix continues right after its own prefix, whatever padding sits between them.
            positions = prefix_lengths.index_select(0, index)[:, None] + suffix_pos
            logits = self._lm(input_ids=suffix_ids, attention_mask=mask, position_ids=positions, use_cache=True,
                              logits_to_keep=1, **{cache_argument: sub_cache}).logits
            out[rows] = torch.log_softmax(logits[:, -1, :].float(), dim=-1).cpu()

    def continuation_logprobs_ids(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]]) -> list[list[float]]:
        """Per-token log P(continuation | prompt) for each (prompt ids, continuation ids) pair."""
        import torch

        results: list[list[float]] = [[] for _ in pairs]
        full = [list(p) + list(c) for p, c in pairs]
        with torch.inference_mode():
            for batch in self._batches([len(f) for f in full]):
                keep = max(len(pairs[i][1]) for i in batch) + 1
                ids, mask, positions = self._pad([full[i] for i in batch])
                logits = self._lm(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep, use_cache=False).logits
                logprobs = torch.log_softmax(logits.float(), dim=-1)
                for row, index in enumerate(batch):
                    continuation = pairs[index][1]
                    m = len(continuation)
                    window = logprobs[row, keep - m - 1: keep - 1, :]
                    target = torch.tensor(continuation, dtype=torch.long, device=window.device)
                    results[index] = window.gather(1, target[:, None]).squeeze(1).cpu().tolist()
        return results

    def generate_ids(self, prompts: Sequence[Sequence[int]], *, max_new_tokens: int, temperature: float,
                 num_return_sequences: int = 1, seed: int | None = None) -> list[list[str]]:
        """Generated continuations (decoded), `num_return_sequences` per prompt."""
        import torch

        outputs: list[list[str]] = [[] for _ in prompts]
        sample = temperature > 0
        with torch.inference_mode():
            for batch in self._batches([len(p) * max(1, num_return_sequences) for p in prompts]):
                ids, mask, _ = self._pad([prompts[i] for i in batch])
                if seed is not None:
                    torch.manual_seed(seed)
                generated = self._lm.generate(
                    input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=sample,
                    temperature=temperature if sample else None, top_p=None, top_k=None,
                    num_return_sequences=num_return_sequences if sample else 1,
                    pad_token_id=self._tok.pad_token_id,
                )
                new_tokens = generated[:, ids.shape[1]:]
                texts = self._tok.batch_decode(new_tokens, skip_special_tokens=True)
                per = num_return_sequences if sample else 1
                for row, index in enumerate(batch):
                    chunk = texts[row * per:(row + 1) * per]
                    outputs[index] = chunk * (num_return_sequences if not sample else 1)
        return outputs

    # -- primitives (BlockingBackend runs these in a worker thread) ---------------------------------------
    def label_logprobs_sync(self, requests: Sequence[LabelRequest]) -> list[LabelScores]:
        """P(label) per request from one forward pass (single-token labels: all token variants of a label
        summed) or by teacher forcing (labels without a single-token form)."""
        started = time.perf_counter()
        encoded = [self.encode_prompt(self.prompt_text(r.prompt)) for r in requests]
        single = [self.label_token_ids(r.labels) for r in requests]
        fast = [i for i, ids in enumerate(single) if ids is not None]
        slow = [i for i, ids in enumerate(single) if ids is None]
        probs: list[list[float]] = [[] for _ in requests]
        tops: list[list[tuple[str, float]] | None] = [None] * len(requests)
        if fast:
            logprobs = self.next_token_logprobs([encoded[i] for i in fast], [requests[i].group for i in fast])
            for row_index, i in enumerate(fast):
                vector = logprobs[row_index]
                label_ids = single[i]
                assert label_ids is not None
                probs[i] = [float(vector[list(ids)].exp().sum()) if ids else 0.0 for ids in label_ids]
                top = vector.topk(TOP_LOGPROBS)
                tops[i] = [(self._tok.decode([int(t)]), float(v)) for v, t in zip(top.values, top.indices)]
        for i, values in self.teacher_forced_label_probs(requests, encoded, slow).items():
            probs[i] = values
        share = (time.perf_counter() - started) * 1000 / max(1, len(requests))
        return [LabelScores(probs[i], tops[i], self._provenance(len(encoded[i]), 0, share)) for i in range(len(requests))]

    def teacher_forced_label_probs(self, requests: Sequence[LabelRequest], encoded: Sequence[list[int]],
                                   indices: Sequence[int]) -> dict[int, list[float]]:
        """P(label) for requests whose labels have no single-token form: each label (and its space-prefixed
        variant, summed) scored as a continuation of the prompt. Shared with the vLLM backend, which supplies
        its own `continuation_logprobs_ids`."""
        pairs: list[tuple[list[int], list[int]]] = []
        owners: list[tuple[int, int]] = []
        for i in indices:
            for position, label in enumerate(requests[i].labels):
                for variant in {label, " " + label}:
                    pairs.append((encoded[i], self._tok(variant, add_special_tokens=False)["input_ids"]))
                    owners.append((i, position))
        probs = {i: [0.0] * len(requests[i].labels) for i in indices}
        if pairs:
            for (i, position), values in zip(owners, self.continuation_logprobs_ids(pairs)):
                probs[i][position] += math.exp(sum(values))
        return probs

    def generate_sync(self, requests: Sequence[GenerateRequest]) -> list[list[Generation]]:
        """Greedy requests are batched; seeded sampling runs request by request (its random stream must not
        depend on what it is batched with). `stop` is applied by the caller (the text is cut there)."""
        outputs: list[list[Generation]] = [[] for _ in requests]
        greedy: dict[int, list[int]] = {}
        for index, request in enumerate(requests):
            if request.temperature <= 0:
                greedy.setdefault(request.max_tokens, []).append(index)
            else:
                outputs[index] = self._generate_ids([self.encode_prompt(self.prompt_text(request.prompt))], request)[0]
        for max_tokens, indices in greedy.items():
            prompts = [self.encode_prompt(self.prompt_text(requests[i].prompt)) for i in indices]
            for i, generations in zip(indices, self._generate_ids(prompts, requests[indices[0]])):
                outputs[i] = generations * requests[i].n
        return outputs

    def _generate_ids(self, prompts: Sequence[Sequence[int]], request: GenerateRequest) -> list[list[Generation]]:
        started = time.perf_counter()
        sample = request.temperature > 0
        per = request.n if sample else 1
        texts = self.generate_ids(prompts, max_new_tokens=request.max_tokens, temperature=request.temperature,
                                  num_return_sequences=per, seed=request.seed if sample else None)
        share = (time.perf_counter() - started) * 1000 / max(1, len(prompts) * per)
        return [[Generation(text, None, self._provenance(len(prompt), len(self._tok(text, add_special_tokens=False)["input_ids"]), share))
                 for text in chunk] for prompt, chunk in zip(prompts, texts)]

    def continuation_sync(self, requests: Sequence[ContinuationRequest]) -> list[ContinuationScores]:
        started = time.perf_counter()
        encoded = [self.encode_prompt(self.prompt_text(r.prompt)) for r in requests]
        pairs = [(encoded[i], self._tok(text, add_special_tokens=False)["input_ids"])
                 for i, r in enumerate(requests) for text in r.continuations]
        values = self.continuation_logprobs_ids(pairs)
        share = (time.perf_counter() - started) * 1000 / max(1, len(requests))
        out, cursor = [], 0
        for i, request in enumerate(requests):
            out.append(ContinuationScores(values[cursor: cursor + len(request.continuations)], self._provenance(len(encoded[i]), 0, share)))
            cursor += len(request.continuations)
        return out

    def _provenance(self, prompt_tokens: int, completion_tokens: int, latency_ms: float) -> Provenance:
        return Provenance(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, latency_ms=latency_ms,
                          resolved_model=self.model)
