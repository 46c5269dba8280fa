"""Local models through Hugging Face transformers (CUDA when present, CPU otherwise): the compute only.

Prompts, label tokens, teacher forcing and the bookkeeping are the base's (probekit.backends.tokenized);
this engine loads the model and computes over token ids. Next-token logprobs come from one forward pass per
prompt, computing only the last position's logits (`logits_to_keep=1`); prompts are batched by a token
budget with left padding and explicit position ids, so a prompt's numbers do not depend on what it is
batched with, and the option orders of one item share their prompt prefix's key/value cache. Continuation
logprobs and generation (with per-token top-k logprobs when asked) are batched the same way.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from probekit.backends.base import GenerateRequest, ModelInfo, TokenLogprobs
from probekit.backends.hf_loader import load_model, resolve_local
from probekit.backends.tokenized import Generated, NextTokens, TokenizedBackend


class HFBackend(TokenizedBackend):
    """A transformers causal LM: exact next-token label logprobs, generation, continuation log-likelihoods.
    Prompts, label tokens and the bookkeeping are the base's (probekit.backends.tokenized)."""

    def __init__(self, model: str, *, token_budget: int | None = None, device: str | None = None, max_batch: int = 64,
                 share_prefix: bool = True, chat_template: bool | None = None):
        super().__init__(model, max_batch=max_batch, chat_template=chat_template)
        self.share_prefix = share_prefix
        """Compute a prefix shared by several prompts of one batch (the option orders of one item) once."""
        self._device_request = device
        self._token_budget = token_budget
        self._lm: Any = None

    # -- loading ------------------------------------------------------------------------------------
    def load(self) -> ModelInfo:
        import torch

        device = self._device_request or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        source = resolve_local(self.model)
        started = time.perf_counter()
        self._lm, tokenizer, details = load_model(source, device, dtype)
        self.use_tokenizer(tokenizer)
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
            capabilities=self.capabilities(),
            details=details,
        )
        return self._info

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

        def take(rows: list[int], logits: Any) -> None:
            out[rows] = torch.log_softmax(logits[:, -1, :].float(), dim=-1).cpu()

        if groups is not None and self.share_prefix:
            shared, singles = self._prefix_plan(prompts, groups)
        else:
            shared, singles = [], list(range(len(prompts)))
        with torch.inference_mode():
            for batch in self._tight_batches([len(prompts[i]) for i in singles]):
                rows = [singles[i] for i in batch]
                ids, mask, positions = self._pad([prompts[i] for i in rows])
                take(rows, self._lm(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=1,
                                    use_cache=False).logits)
            for group_batch in self._group_batches(prompts, shared):
                self._shared_prefix_batch(prompts, group_batch, take)
        return out

    # Below this many common tokens a group is scored without sharing (the bookkeeping would cost more).
    MIN_SHARED_PREFIX = 8

    def _prefix_plan(self, prompts: Sequence[Sequence[int]], groups: Sequence[Hashable],
                     own: Sequence[int] | None = None) -> tuple[list[tuple[int, list[int]]], list[int]]:
        """Split prompts into prefix-sharing groups [(shared length, member indices)] and single prompts.

        The shared length is the longest common *token* prefix of the members (computed on the final token
        ids, so a tokenizer merge across the boundary can never make the two computations differ), capped so
        that every member keeps its last `own[i]` tokens (default 1: the position whose logits are read)."""
        members: dict[Hashable, list[int]] = {}
        for index, key in enumerate(groups):
            members.setdefault(key, []).append(index)
        window = getattr(self._lm.config, "sliding_window", None)
        shared: list[tuple[int, list[int]]] = []
        singles: list[int] = []
        for indices in members.values():
            sequences = [prompts[i] for i in indices]
            limit = min(len(prompts[i]) - (own[i] if own is not None else 1) for i in indices)
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

    LOGIT_POSITIONS = 1024

    # Padding is computed too: a batch is closed when more than this share of it would be padding.
    MAX_PADDING = 0.25

    def _tight_batches(self, lengths: Sequence[int], budget: int | None = None) -> list[list[int]]:
        """Indices sorted by length and cut into batches within the token budget and with at most
        MAX_PADDING of padding (prompts of one runner batch differ a lot in length)."""
        batches: list[list[int]] = []
        current: list[int] = []
        total = 0
        for index in sorted(range(len(lengths)), key=lambda i: lengths[i]):
            width = lengths[index]  # ascending: the newcomer is the longest
            rows = len(current) + 1
            over = rows * width > (budget or self.token_budget) or (total + width) < (1 - self.MAX_PADDING) * rows * width
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

    def _shared_prefix_batch(self, prompts: Sequence[Sequence[int]], batch: list[tuple[int, list[int]]],
                             take: Callable[[list[int], Any], None], own: Sequence[int] | None = None) -> None:
        """One batch of prefix-sharing groups: the prefix pass fills a KV cache; then the members, sorted by
        suffix length into tight sub-batches, each get a cache made of their group's rows and run only their
        suffix over [prefix cache | left-padded suffix] with explicit positions. `take(rows, logits)` gets the
        logits of the sub-batch's last max(own[row]) positions (default: the last position)."""
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
        # Logits are kept for `own` positions of each member (a vocabulary-wide row each): at most
        # LOGIT_POSITIONS of them per sub-batch, so long continuations never hold budget x vocab floats.
        for sub in self._tight_batches(suffix_lengths, None if own is None else min(self.token_budget, self.LOGIT_POSITIONS)):
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
            keep = max(own[i] for i in rows) if own is not None else 1
            take(rows, self._lm(input_ids=suffix_ids, attention_mask=mask, position_ids=positions, use_cache=True,
                                logits_to_keep=keep, **{cache_argument: sub_cache}).logits)

    def continuation_logprobs_ids(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]]) -> list[list[float]]:
        """Per-token log P(continuation | prompt) for each (prompt ids, continuation ids) pair. Continuations
        of one prompt (a trial's options, a label's forms) share the prompt's key/value cache (with
        `share_prefix`), so the prompt goes through the model once, not once per continuation."""
        import torch

        results: list[list[float]] = [[] for _ in pairs]
        full = [list(p) + list(c) for p, c in pairs]
        own = [len(c) + 1 for _p, c in pairs]  # the last prompt token's logits predict the first continuation token

        def take(rows: list[int], logits: Any) -> None:
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            keep = logits.shape[1]
            for row, index in enumerate(rows):
                continuation = pairs[index][1]
                window = logprobs[row, keep - len(continuation) - 1: keep - 1, :]
                target = torch.tensor(continuation, dtype=torch.long, device=window.device)
                results[index] = window.gather(1, target[:, None]).squeeze(1).cpu().tolist()

        groups = [tuple(p) for p, _c in pairs]
        shared, singles = self._prefix_plan(full, groups, own) if self.share_prefix else ([], list(range(len(pairs))))
        with torch.inference_mode():
            for batch in self._batches([len(full[i]) for i in singles]):
                rows = [singles[i] for i in batch]
                ids, mask, positions = self._pad([full[i] for i in rows])
                take(rows, self._lm(input_ids=ids, attention_mask=mask, position_ids=positions,
                                    logits_to_keep=max(own[i] for i in rows), use_cache=False).logits)
            for group_batch in self._group_batches(full, shared):
                self._shared_prefix_batch(full, group_batch, take, own)
        return results

    def next_tokens(self, prompts: Sequence[Sequence[int]], wanted: Sequence[Sequence[int]], groups: Sequence[Hashable],
                    top_k: int) -> list[NextTokens]:
        vectors = self.next_token_logprobs(prompts, groups)
        found = []
        for vector, ids in zip(vectors, wanted):
            top = None
            if top_k > 0:
                best = vector.topk(top_k)
                top = [(self._tok.decode([int(t)]), float(v)) for v, t in zip(best.values, best.indices)]
            found.append(NextTokens(dict(zip(ids, vector[list(ids)].tolist())), top))
        return found

    def generate_ids(self, prompts: Sequence[Sequence[int]], requests: Sequence[GenerateRequest]) -> list[list[Generated]]:
        """Greedy requests are batched (by max_tokens and top-k); seeded sampling runs request by request
        (its random stream must not depend on what it is batched with). `stop` is applied by the caller
        (the text is cut there)."""
        outputs: list[list[Generated]] = [[] for _ in requests]
        greedy: dict[tuple[int, int], list[int]] = {}
        for index, request in enumerate(requests):
            if request.temperature <= 0:
                greedy.setdefault((request.max_tokens, request.top_logprobs), []).append(index)
            else:
                outputs[index] = self._generate([prompts[index]], request.max_tokens, request.temperature, request.n,
                                                request.seed, request.top_logprobs)[0]
        for (max_tokens, top_k), indices in greedy.items():
            for i, generated in zip(indices, self._generate([prompts[i] for i in indices], max_tokens, 0.0, 1, None, top_k)):
                outputs[i] = generated
        return outputs

    def _generate(self, prompts: Sequence[Sequence[int]], max_new_tokens: int, temperature: float, n: int, seed: int | None,
                  top_k: int) -> list[list[Generated]]:
        """`n` continuations per prompt (1 when greedy); with top_k > 0 each token's logprob and the top-k
        alternatives, from the model's raw logits (before sampling's temperature, as vLLM reports them)."""
        import torch

        outputs: list[list[Generated]] = [[] for _ in prompts]
        sample = temperature > 0
        per = n if sample else 1
        ends = self._end_ids()
        with torch.inference_mode():
            for batch in self._batches([len(p) * per for p in prompts]):
                ids, mask, _ = self._pad([prompts[i] for i in batch])
                if seed is not None and sample:
                    torch.manual_seed(seed)
                result = self._lm.generate(
                    input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=sample,
                    temperature=temperature if sample else None, top_p=None, top_k=None, num_return_sequences=per,
                    pad_token_id=self._tok.pad_token_id, return_dict_in_generate=True, output_logits=top_k > 0,
                )
                new_tokens = result.sequences[:, ids.shape[1]:]
                texts = self._tok.batch_decode(new_tokens, skip_special_tokens=True)
                tokens = self._token_logprobs(result.logits, new_tokens, top_k) if top_k > 0 else None
                for row, text in enumerate(texts):
                    generated = new_tokens[row].tolist()
                    length = next((k + 1 for k, t in enumerate(generated) if t in ends), len(generated))
                    outputs[batch[row // per]].append(
                        Generated(text, generated[:length], tokens[row][:length] if tokens else None))
        return outputs

    def _end_ids(self) -> set[int]:
        """Token ids that end a generation (what follows them is padding)."""
        configured = getattr(getattr(self._lm, "generation_config", None), "eos_token_id", None)
        ends = set(configured if isinstance(configured, list) else [configured])
        ends.update((self._tok.eos_token_id, self._tok.pad_token_id))
        return {int(t) for t in ends if t is not None}

    def _token_logprobs(self, logits: Sequence[Any], new_tokens: Any, top_k: int) -> list[list[TokenLogprobs]]:
        """Per row and generated position: the chosen token's logprob and the top-k (one step at a time, so
        only k values per row are kept, never a [rows, steps, vocab] tensor)."""
        import torch

        rows: list[list[TokenLogprobs]] = [[] for _ in range(new_tokens.shape[0])]
        for step, step_logits in enumerate(logits):
            logprobs = torch.log_softmax(step_logits.float(), dim=-1)
            chosen = logprobs.gather(1, new_tokens[:, step:step + 1]).squeeze(1).tolist()
            best = logprobs.topk(min(top_k, logprobs.shape[-1]))
            chosen_ids = new_tokens[:, step].tolist()
            for row, (token, values, indices) in enumerate(zip(chosen_ids, best.values.tolist(), best.indices.tolist())):
                top = tuple((self._tok.decode([t]), v) for t, v in zip(indices, values))
                rows[row].append(TokenLogprobs(self._tok.decode([token]), chosen[row], top))
        return rows
